//! Training: learning, best-epoch selection, schedules, divergence and exact resumption.

use handgrad_nowcast::data::Split;
use handgrad_nowcast::models::{Model, ModelConfig, ModelKind};
use handgrad_nowcast::train::{
    self, split_loss, Schedule, TrainConfig, TrainError, TrainState, KEYPOINTS,
};
use ndarray::{Array2, Array5};

/// Features in [-1, 1) and labels `max(0, 2 * x[h, 2, 2, 0] + x[h, 1, 1, 2])`, which a model
/// can learn from each hour alone.
fn split(n: usize, seed: u64) -> Split {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let features = Array5::from_shape_fn((n, 5, 5, 5, 3), |_| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    });
    let labels = Array2::from_shape_fn((n, 5), |(i, h)| {
        (2.0 * features[[i, h, 2, 2, 0]] + features[[i, h, 1, 1, 2]]).max(0.0)
    });
    Split::new(features, labels).unwrap()
}

fn small(kind: ModelKind) -> Model {
    Model::new(ModelConfig { hidden: 16, conv_channels: 4, ..ModelConfig::new(kind, 5) }).unwrap()
}

fn config(epochs: usize, schedule: Schedule) -> TrainConfig {
    TrainConfig { epochs, batch_size: 64, learning_rate: 0.01, schedule, seed: 9 }
}

fn run(
    model: &mut Model,
    train_split: &Split,
    validation: &Split,
    config: &TrainConfig,
    resume: Option<TrainState>,
) -> TrainState {
    train::train(model, train_split, validation, config, resume, &mut |_| {}).unwrap()
}

/// Validation MSE of the best constant fitted on the training labels: their mean.
fn training_mean_mse(train_split: &Split, validation: &Split) -> f64 {
    let mean = train_split.labels.iter().map(|&v| f64::from(v)).sum::<f64>()
        / train_split.labels.len() as f64;
    validation.labels.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>()
        / validation.labels.len() as f64
}

#[test]
fn every_model_beats_training_mean() {
    let (train_split, validation) = (split(200, 1), split(60, 2));
    let constant = training_mean_mse(&train_split, &validation);
    for kind in ModelKind::ALL {
        let mut model = small(kind);
        // A sequence model has one row per sequence, so smaller batches give it as many steps.
        let batch_size = if kind.is_sequence() { 16 } else { 64 };
        let settings = TrainConfig { batch_size, ..config(6, Schedule::Constant) };
        let state = run(&mut model, &train_split, &validation, &settings, None);
        assert!(
            state.report.best_validation_loss < 0.8 * constant,
            "{}: validation MSE {} against {constant} for the training mean",
            kind.name(),
            state.report.best_validation_loss
        );
    }
}

#[test]
fn best_epoch_weights_are_restored() {
    let (train_split, validation) = (split(100, 3), split(40, 4));
    let mut model = small(ModelKind::FeedForward);
    let state = run(&mut model, &train_split, &validation, &config(5, Schedule::Constant), None);
    let best = &state.report.history[state.report.best_epoch - 1];
    assert_eq!(best.validation_loss, state.report.best_validation_loss);
    let restored = split_loss(&mut model, &validation).unwrap();
    assert!(
        (restored - best.validation_loss).abs() < 1e-9,
        "{restored} vs {}",
        best.validation_loss
    );
    for record in &state.report.history {
        assert!(record.validation_loss >= best.validation_loss);
    }
}

#[test]
fn history_records_every_epoch() {
    let (train_split, validation) = (split(100, 5), split(20, 6));
    let mut model = small(ModelKind::FeedForward);
    let mut batches = 0;
    let state = train::train(
        &mut model,
        &train_split,
        &validation,
        &config(3, Schedule::Constant),
        None,
        &mut |event| {
            if let train::Progress::Batch { .. } = event {
                batches += 1;
            }
        },
    )
    .unwrap();
    assert_eq!(state.report.history.len(), 3);
    // 100 sequences x 5 hours = 500 rows, 8 batches of at most 64 per epoch.
    assert_eq!(batches, 3 * 8);
    for (index, record) in state.report.history.iter().enumerate() {
        assert_eq!(record.epoch, index + 1);
        assert_eq!(record.learning_rate, 0.01);
        assert!(record.seconds > 0.0);
    }
}

#[test]
fn keypoint_rates_follow_points() {
    let (train_split, validation) = (split(20, 7), split(10, 8));
    let mut model = small(ModelKind::FeedForward);
    let state = run(&mut model, &train_split, &validation, &config(10, Schedule::Keypoint), None);
    let rates: Vec<f64> = state.report.history.iter().map(|record| record.learning_rate).collect();
    // Linear between (0, 1e-4), (3, 1e-3), (6, 5e-4), (7, 1e-3) and (9, 1e-4).
    let expected =
        [1e-4, 4e-4, 7e-4, 1e-3, 1e-3 - 5e-4 / 3.0, 1e-3 - 1e-3 / 3.0, 5e-4, 1e-3, 5.5e-4, 1e-4];
    for (epoch, (rate, want)) in rates.iter().zip(expected).enumerate() {
        assert!((rate - want).abs() < 1e-12, "epoch {epoch}: {rate} vs {want}");
    }
    assert_eq!(KEYPOINTS.len(), 5);
}

#[test]
fn plateau_reduces_after_patience() {
    // After the third epoch without a relative improvement of 1e-4, the rate falls by 0.2.
    let rates = train::plateau_rates(0.01, &[1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]);
    let expected = [0.01, 0.01, 0.01, 0.002, 0.002, 0.002, 0.002, 0.0004];
    for (rate, want) in rates.iter().zip(expected) {
        assert!((rate - want).abs() < 1e-15, "{rates:?}");
    }
}

#[test]
fn plateau_stops_at_minimum() {
    let rates = train::plateau_rates(0.01, &[1.0; 30]);
    assert_eq!(*rates.last().unwrap(), 1e-4);
}

#[test]
fn divergence_names_epoch_and_batch() {
    let (mut train_split, validation) = (split(100, 9), split(10, 10));
    // Sequence 70 lands in a later batch of the first epoch, not necessarily the first one.
    train_split.features[[70, 0, 0, 0, 0]] = f32::NAN;
    let mut model = small(ModelKind::FeedForward);
    let error = train::train(
        &mut model,
        &train_split,
        &validation,
        &config(2, Schedule::Constant),
        None,
        &mut |_| {},
    )
    .unwrap_err();
    match error {
        TrainError::Diverged { epoch, batch, value } => {
            assert_eq!(epoch, 1);
            assert!((1..=8).contains(&batch), "batch {batch}");
            assert!(value.contains("NaN"), "{value}");
        }
        other => panic!("expected divergence, found {other}"),
    }
}

#[test]
fn zero_epochs_are_rejected() {
    let (train_split, validation) = (split(10, 11), split(10, 12));
    let mut model = small(ModelKind::FeedForward);
    let result = train::train(
        &mut model,
        &train_split,
        &validation,
        &config(0, Schedule::Constant),
        None,
        &mut |_| {},
    );
    assert!(matches!(result, Err(TrainError::Config(_))));
}

/// Trains 2 epochs, resumes to 3, and compares with 3 epochs in one run, bit for bit.
fn check_resume(kind: ModelKind, schedule: Schedule) {
    let (train_split, validation) = (split(120, 13), split(30, 14));

    let mut straight = small(kind);
    let full = run(&mut straight, &train_split, &validation, &config(3, schedule), None);

    let mut first = small(kind);
    let partial = run(&mut first, &train_split, &validation, &config(2, schedule), None);
    let mut resumed_model = first;
    let resumed =
        run(&mut resumed_model, &train_split, &validation, &config(3, schedule), Some(partial));

    assert_eq!(resumed.report, full.report_without_seconds_of(&resumed), "{}", kind.name());
    assert_eq!(resumed.last_weights, full.last_weights, "{}", kind.name());
    assert_eq!(resumed_model.weights(), straight.weights(), "{}", kind.name());
    assert_eq!(resumed.optimizer.step, full.optimizer.step);
    assert_eq!(resumed.optimizer.exp_avg, full.optimizer.exp_avg);
    assert_eq!(resumed.optimizer.exp_avg_sq, full.optimizer.exp_avg_sq);
}

/// Copies the epoch timings of `other` so that reports compare on losses and rates only.
trait WithoutSeconds {
    fn report_without_seconds_of(&self, other: &TrainState) -> train::TrainReport;
}

impl WithoutSeconds for TrainState {
    fn report_without_seconds_of(&self, other: &TrainState) -> train::TrainReport {
        let mut report = self.report.clone();
        for (record, timed) in report.history.iter_mut().zip(&other.report.history) {
            record.seconds = timed.seconds;
        }
        report
    }
}

#[test]
fn resume_equals_uninterrupted_feed_forward() {
    check_resume(ModelKind::FeedForward, Schedule::Constant);
}

#[test]
fn resume_equals_uninterrupted_dropout_plateau() {
    check_resume(ModelKind::Dropout, Schedule::Plateau);
}

#[test]
fn resume_equals_uninterrupted_gru_keypoint() {
    check_resume(ModelKind::Gru, Schedule::Keypoint);
}

#[test]
fn resume_rejects_other_settings() {
    let (train_split, validation) = (split(20, 15), split(10, 16));
    let mut model = small(ModelKind::FeedForward);
    let partial = run(&mut model, &train_split, &validation, &config(1, Schedule::Constant), None);
    let other = TrainConfig { seed: 10, ..config(2, Schedule::Constant) };
    let result =
        train::train(&mut model, &train_split, &validation, &other, Some(partial), &mut |_| {});
    assert!(matches!(result, Err(TrainError::Config(_))));
}

/// Returns the message of a [`TrainError::Config`], and panics naming any other outcome.
fn config_message(result: train::Result<TrainState>) -> String {
    match result {
        Err(TrainError::Config(message)) => message,
        other => panic!("expected a configuration error, found {:?}", other.map(|_| ())),
    }
}

#[test]
fn empty_splits_are_rejected_by_name() {
    let (data, empty) = (split(10, 17), Split::empty());
    let settings = config(1, Schedule::Constant);
    let mut model = small(ModelKind::FeedForward);
    let message =
        config_message(train::train(&mut model, &empty, &data, &settings, None, &mut |_| {}));
    assert!(message.contains("training split has 0 sequences"), "{message}");
    let message =
        config_message(train::train(&mut model, &data, &empty, &settings, None, &mut |_| {}));
    assert!(message.contains("validation split has 0 sequences"), "{message}");
}

#[test]
fn resume_mismatch_names_the_flag() {
    let (train_split, validation) = (split(20, 15), split(10, 16));
    let mut model = small(ModelKind::FeedForward);
    let partial = run(&mut model, &train_split, &validation, &config(1, Schedule::Constant), None);
    let other = TrainConfig { batch_size: 8, ..config(2, Schedule::Constant) };
    let message = config_message(train::train(
        &mut model,
        &train_split,
        &validation,
        &other,
        Some(partial.clone()),
        &mut |_| {},
    ));
    assert!(message.contains("--batch-size 8 differs from 64 in the checkpoint"), "{message}");
    assert!(!message.contains("TrainConfig"), "{message}");

    let same = config(1, Schedule::Constant);
    let message = config_message(train::train(
        &mut model,
        &train_split,
        &validation,
        &same,
        Some(partial),
        &mut |_| {},
    ));
    assert!(message.contains("already contains 1 epoch;"), "{message}");
}
