//! The reference notebook's checks on its toy problem, and agreement with the numpy peer.

use handgrad_classifier::reference::{self, ReferenceReport};

fn report() -> ReferenceReport {
    reference::run().expect("the toy problem fits the toy network")
}

#[test]
fn toy_scores_match_notebook() {
    let report = report();
    assert!(
        report.scores_difference < reference::SCORES_TOLERANCE,
        "sum |scores - expected| = {:e}, scores = {:?}",
        report.scores_difference,
        report.scores
    );
}

#[test]
fn toy_loss_matches_notebook() {
    let loss = report().loss;
    let difference = (loss - reference::EXPECTED_LOSS).abs();
    assert!(difference < reference::LOSS_TOLERANCE, "loss {loss:.15}, difference {difference:e}");
}

#[test]
fn toy_gradients_match_central_differences() {
    for (name, error) in report().gradient_errors {
        assert!(error < reference::GRADIENT_TOLERANCE, "{name}: max relative error {error:e}");
    }
}

#[test]
fn toy_training_ends_below_limit() {
    let report = report();
    assert_eq!(report.history.loss.len(), 100);
    assert!(report.final_loss < reference::FINAL_LOSS_LIMIT, "final loss {}", report.final_loss);
}

#[test]
fn toy_training_matches_numpy() {
    // reference::NUMPY_FINAL_LOSS was printed by
    // `python crates/classifier/reference/two_layer_net.py toy`.
    let report = report();
    assert!(
        report.numpy_relative_difference < reference::NUMPY_TOLERANCE,
        "final loss {:.17} against numpy {:.17}: relative difference {:e}",
        report.final_loss,
        reference::NUMPY_FINAL_LOSS,
        report.numpy_relative_difference
    );
}

#[test]
fn toy_training_decays_every_iteration() {
    // Five samples and batch 200 make every iteration an epoch.
    let report = report();
    assert_eq!(report.history.epochs.len(), 100);
    let rates: Vec<f64> = report.history.epochs.iter().map(|e| e.learning_rate).collect();
    assert_eq!(rates[0], 0.1);
    assert!((rates[1] - 0.095).abs() < 1e-15);
    assert!((rates[99] - 0.1 * 0.95f64.powi(99)).abs() < 1e-15);
}
