//! Model construction: parameter counts, shape-calculator summaries, input layouts and the
//! wiring of the hand-derived backward passes.

use handgrad_layers::Mode;
use handgrad_nowcast::models::{Model, ModelConfig, ModelError, ModelKind};
use ndarray::{s, Array2, Array5, ArrayD};

/// A small deterministic feature array (N, 5, 5, 5, 3) with values in [-1, 1).
fn features(n: usize, seed: u64) -> Array5<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    Array5::from_shape_fn((n, 5, 5, 5, 3), |_| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    })
}

fn small(kind: ModelKind) -> ModelConfig {
    ModelConfig { hidden: 6, conv_channels: 4, ..ModelConfig::new(kind, 3) }
}

#[test]
fn feed_forward_counts() {
    let model = Model::new(ModelConfig::new(ModelKind::FeedForward, 0)).unwrap();
    let first: usize = model.params().iter().take(2).map(|param| param.len()).sum();
    assert_eq!(first, 15_200, "75 x 200 weights + 200 biases");
    assert_eq!(model.parameter_count(), 15_200 + 40_200 + 40_200 + 201);
}

#[test]
fn dropout_counts_match_feed_forward() {
    let model = Model::new(ModelConfig::new(ModelKind::Dropout, 0)).unwrap();
    assert_eq!(model.parameter_count(), 95_801);
}

#[test]
fn cnn_counts() {
    let model = Model::new(ModelConfig::new(ModelKind::Cnn, 0)).unwrap();
    assert_eq!(model.parameter_count(), 406_201, "5,600 + 360,200 + 40,200 + 201");
}

#[test]
fn gru_counts() {
    let model = Model::new(ModelConfig::new(ModelKind::Gru, 0)).unwrap();
    assert_eq!(model.parameter_count(), 206_601, "166,200 + 40,200 + 201");
}

#[test]
fn best_counts() {
    let model = Model::new(ModelConfig::new(ModelKind::Best, 0)).unwrap();
    // GRU: 3 x (75 x 100 + 100 x 100 + 2 x 100); head: 100 x 100 + 100, 100 + 1.
    assert_eq!(model.parameter_count(), 53_100 + 10_100 + 101);
}

#[test]
fn best_is_gru_of_half_width() {
    let best = Model::new(ModelConfig::new(ModelKind::Best, 0)).unwrap();
    let shapes: Vec<Vec<usize>> = best.params().iter().map(|p| p.value.shape().to_vec()).collect();
    assert_eq!(
        shapes,
        [
            vec![300, 75],
            vec![300, 100],
            vec![300],
            vec![300],
            vec![100, 100],
            vec![100],
            vec![1, 100],
            vec![1]
        ]
    );
}

#[test]
fn summaries_match_parameter_counts() {
    for kind in ModelKind::ALL {
        let model = Model::new(ModelConfig::new(kind, 0)).unwrap();
        let graph = model.architecture().unwrap();
        let summary = handgrad_shapes::analyze(&graph).unwrap();
        assert_eq!(summary.params as usize, model.parameter_count(), "{}", kind.name());
    }
}

#[test]
fn names_follow_pytorch_sequential() {
    let gru = Model::new(small(ModelKind::Gru)).unwrap();
    let names: Vec<String> = gru.named_params().into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [
            "0.weight_ih_l0",
            "0.weight_hh_l0",
            "0.bias_ih_l0",
            "0.bias_hh_l0",
            "1.weight",
            "1.bias",
            "3.weight",
            "3.bias"
        ]
    );
}

#[test]
fn feed_forward_rows_are_hours_in_file_order() {
    let model = Model::new(small(ModelKind::FeedForward)).unwrap();
    let x = features(2, 1);
    let rows = model.prepare_inputs(&x.view()).unwrap();
    assert_eq!(rows.shape(), [10, 75]);
    // Row 1 * 5 + 3 is sequence 1, hour 3; entry (y * 5 + x) * 3 + c is pixel (y, x), channel c.
    assert_eq!(rows[[8, (2 * 5 + 4) * 3 + 1]], x[[1, 3, 2, 4, 1]]);
}

#[test]
fn cnn_rows_are_channels_first() {
    let model = Model::new(small(ModelKind::Cnn)).unwrap();
    let x = features(2, 2);
    let rows = model.prepare_inputs(&x.view()).unwrap();
    assert_eq!(rows.shape(), [10, 3, 5, 5]);
    assert_eq!(rows[[7, 2, 1, 3]], x[[1, 2, 1, 3, 2]]);
}

#[test]
fn sequence_models_keep_hours_together() {
    let x = features(3, 3);
    let gru = Model::new(small(ModelKind::Gru)).unwrap();
    assert_eq!(gru.prepare_inputs(&x.view()).unwrap().shape(), [3, 5, 75]);
    let best = Model::new(small(ModelKind::Best)).unwrap();
    assert_eq!(best.prepare_inputs(&x.view()).unwrap().shape(), [3, 5, 75]);
}

#[test]
fn wrong_feature_shape_is_rejected() {
    let model = Model::new(small(ModelKind::FeedForward)).unwrap();
    let x = Array5::<f32>::zeros((2, 4, 5, 5, 3));
    let error = model.prepare_inputs(&x.view()).unwrap_err();
    assert!(error.to_string().contains("(N, 5, 5, 5, 3)"), "{error}");
}

#[test]
fn invalid_dropout_is_rejected() {
    let config = ModelConfig { dropout: 1.0, ..ModelConfig::new(ModelKind::Dropout, 0) };
    assert!(Model::new(config).is_err());
}

#[test]
fn predictions_have_one_value_per_hour() {
    for kind in ModelKind::ALL {
        let mut model = Model::new(small(kind)).unwrap();
        let predictions = model.predict(&features(7, 4).view()).unwrap();
        assert_eq!(predictions.shape(), [7, 5], "{}", kind.name());
        assert!(predictions.iter().all(|v| v.is_finite()), "{}", kind.name());
    }
}

#[test]
fn predictions_do_not_depend_on_earlier_passes() {
    // 1,700 sequences take three forward passes of up to 819; the middle rows predicted alone
    // must match, so no pass leaks state such as a hidden state into the next.
    let x = features(1_700, 6);
    for kind in ModelKind::ALL {
        let mut model = Model::new(small(kind)).unwrap();
        let all = model.predict(&x.view()).unwrap();
        let again = model.predict(&x.view()).unwrap();
        let middle = model.predict(&x.slice(s![819..1638, .., .., .., ..])).unwrap();
        assert_eq!(all, again, "{}: two calls differ", kind.name());
        let largest =
            (&all.slice(s![819..1638, ..]) - &middle).abs().fold(0.0f32, |a, &b| a.max(b));
        assert!(largest < 1e-5, "{}: rows 819..1638 differ by {largest}", kind.name());
    }
}

#[test]
fn same_seed_same_weights() {
    let a = Model::new(small(ModelKind::Best)).unwrap();
    let b = Model::new(small(ModelKind::Best)).unwrap();
    let c = Model::new(ModelConfig { seed: 4, ..small(ModelKind::Best) }).unwrap();
    assert_eq!(a.weights(), b.weights());
    assert_ne!(a.weights(), c.weights());
}

/// Half the mean squared error against a fixed target, and its gradient for `model`.
fn loss(model: &mut Model, inputs: &ArrayD<f32>, targets: &ArrayD<f32>, backward: bool) -> f64 {
    let predictions = model.forward(inputs, Mode::Train).unwrap();
    let (value, grad) = handgrad_losses::mse(&predictions.view(), &targets.view()).unwrap();
    if backward {
        model.backward(&grad).unwrap();
    }
    f64::from(value)
}

/// Checks the model's gradient along a random direction d against
/// (L(w + h d) - L(w - h d)) / 2h, which exercises every layer and the reshapes between them.
fn check_directional_derivative(kind: ModelKind) {
    let mut model = Model::new(small(kind)).unwrap();
    let x = features(4, 11);
    let inputs = model.prepare_inputs(&x.view()).unwrap();
    let labels = Array2::from_shape_fn((4, 5), |(n, h)| ((n + h) % 3) as f32 * 0.5);
    let targets = model.prepare_targets(&labels.view());
    let weights = model.weights();

    loss(&mut model, &inputs, &targets, true);
    let direction: Vec<ArrayD<f32>> =
        weights.iter().enumerate().map(|(i, w)| features_like(w, i as u64)).collect();
    let analytic: f64 = model
        .params()
        .iter()
        .zip(&direction)
        .map(|(param, d)| param.grad.iter().zip(d).map(|(&g, &v)| f64::from(g * v)).sum::<f64>())
        .sum();

    // Small enough that no ReLU input changes sign between the two evaluations.
    let h = 1e-4f32;
    let moved = |sign: f32| -> Vec<ArrayD<f32>> {
        weights.iter().zip(&direction).map(|(w, d)| w + &(d * (sign * h))).collect()
    };
    model.set_weights(&moved(1.0)).unwrap();
    let plus = loss(&mut model, &inputs, &targets, false);
    model.set_weights(&moved(-1.0)).unwrap();
    let minus = loss(&mut model, &inputs, &targets, false);
    let numeric = (plus - minus) / (2.0 * f64::from(h));

    let relative = (numeric - analytic).abs() / (numeric.abs() + analytic.abs()).max(1e-6);
    assert!(relative < 2e-2, "{}: numeric {numeric}, analytic {analytic}", kind.name());
}

fn features_like(array: &ArrayD<f32>, seed: u64) -> ArrayD<f32> {
    let values = features(array.len().div_ceil(375), seed + 100);
    let flat: Vec<f32> = values.iter().copied().take(array.len()).collect();
    ArrayD::from_shape_vec(array.raw_dim(), flat).unwrap()
}

#[test]
fn feed_forward_gradient_matches_differences() {
    check_directional_derivative(ModelKind::FeedForward);
}

#[test]
fn cnn_gradient_matches_differences() {
    check_directional_derivative(ModelKind::Cnn);
}

#[test]
fn gru_gradient_matches_differences() {
    check_directional_derivative(ModelKind::Gru);
}

#[test]
fn best_gradient_matches_differences() {
    check_directional_derivative(ModelKind::Best);
}

#[test]
fn huge_widths_are_rejected_before_allocating() {
    for kind in ModelKind::ALL {
        for (hidden, conv_channels) in [(1_000_000_000_000, 200), (200, 1 << 40), (60_000, 200)] {
            let config = ModelConfig { hidden, conv_channels, ..ModelConfig::new(kind, 0) };
            let result = Model::new(config);
            let Err(ModelError::Config(message)) = result else {
                panic!("{kind:?} with hidden {hidden}, conv_channels {conv_channels} was accepted");
            };
            assert!(message.contains("at most"), "{message}");
        }
    }
}

#[test]
fn wide_models_within_the_bound_stay_valid() {
    let config = ModelConfig { hidden: 1024, ..ModelConfig::new(ModelKind::FeedForward, 0) };
    assert!(Model::new(config).is_ok());
}
