//! Property tests of the losses: gradients against central differences, softmax normalisation
//! and numerical stability for large logits.

use handgrad_losses::{mse, softmax, softmax_cross_entropy, LossError};
use handgrad_tensor::gradcheck::numerical_gradient;
use ndarray::{array, Array2, ArrayD, IxDyn};
use proptest::prelude::*;

/// Step of the central differences on the cross-entropy.
const STEP: f64 = 1e-4;

/// Largest error that central differences may show on softmax cross-entropy for logits bounded
/// by `magnitude` in absolute value.
///
/// Two effects bound the error of `(L(x + h) - L(x - h)) / 2h`:
/// - rounding: L is a sum of C exponentials at most 1, a logarithm, and a logit difference of
///   size up to 2M. Each evaluation is therefore off by at most about `eps * (C + 2M + 2)`, and
///   the difference quotient divides twice that by 2h. A factor 4 covers the mean over the batch
///   and rounding of `x +- h` itself.
/// - truncation: `h^2 / 6 * |d^3 L / dx^3|`, and the third derivative of log-sum-exp along one
///   logit is `p (1 - p)(1 - 2p)`, at most `1 / (6 sqrt 3) < 0.1`, so `h^2 / 60` bounds it.
///
/// With h = 1e-4, C = 50 and M = 1e3 this is about 2e-8. A gradient missing the `- Y` is off by
/// 1/N >= 0.25 at the label entry, and one missing the `/ N` by (N - 1) |P - Y| / N, so both fail
/// the comparison; see `check_rejects_wrong_gradients`.
fn tolerance(classes: usize, magnitude: f64) -> f64 {
    let rounding = 4.0 * f64::EPSILON * (classes as f64 + 2.0 * magnitude + 2.0) / STEP;
    rounding + STEP * STEP / 60.0
}

/// Largest absolute difference between `gradient` and central differences of the loss.
fn max_gradient_error(logits: &Array2<f64>, labels: &[usize], gradient: &Array2<f64>) -> f64 {
    let loss_at = |x: &Array2<f64>| softmax_cross_entropy(&x.view(), labels).unwrap().0;
    let numeric = numerical_gradient(loss_at, logits, STEP);
    numeric.iter().zip(gradient).map(|(n, a)| (n - a).abs()).fold(0.0, f64::max)
}

/// Logits (N, C) with entries in `[-10^e, 10^e]` for e drawn from [-1, 3], labels in 0..C.
fn logits_and_labels() -> impl Strategy<Value = (Array2<f64>, Vec<usize>, f64)> {
    (1usize..=4, 2usize..=50, -1.0f64..=3.0).prop_flat_map(|(batch, classes, exponent)| {
        let magnitude = 10f64.powf(exponent);
        (
            prop::collection::vec(-magnitude..=magnitude, batch * classes),
            prop::collection::vec(0..classes, batch),
        )
            .prop_map(move |(values, labels)| {
                let logits = Array2::from_shape_vec((batch, classes), values).unwrap();
                (logits, labels, magnitude)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn cross_entropy_gradient_matches_central_differences(
        (logits, labels, magnitude) in logits_and_labels()
    ) {
        let (loss, gradient) = softmax_cross_entropy(&logits.view(), &labels).unwrap();
        prop_assert!(loss.is_finite() && loss >= 0.0, "loss {}", loss);

        let error = max_gradient_error(&logits, &labels, &gradient);
        let bound = tolerance(logits.ncols(), magnitude);
        prop_assert!(error <= bound, "error {:e} above bound {:e}", error, bound);
    }

    #[test]
    fn softmax_rows_sum_to_one((logits, _, _) in logits_and_labels()) {
        let probabilities = softmax(&logits.view());
        for row in probabilities.rows() {
            let sum: f64 = row.sum();
            prop_assert!((sum - 1.0).abs() <= 4.0 * row.len() as f64 * f64::EPSILON, "sum {}", sum);
            prop_assert!(row.iter().all(|&p| (0.0..=1.0).contains(&p)));
        }
    }

    #[test]
    fn cross_entropy_gradient_rows_sum_to_zero((logits, labels, _) in logits_and_labels()) {
        // sum_j (P_j - Y_j) = 1 - 1 = 0 for every row.
        let (_, gradient) = softmax_cross_entropy(&logits.view(), &labels).unwrap();
        for row in gradient.rows() {
            prop_assert!(row.sum().abs() <= 4.0 * row.len() as f64 * f64::EPSILON);
        }
    }

    #[test]
    fn mse_gradient_matches_central_differences(
        values in prop::collection::vec((-100.0f64..100.0, -100.0f64..100.0), 1..40)
    ) {
        let count = values.len();
        let prediction = ArrayD::from_shape_vec(IxDyn(&[count]), values.iter().map(|v| v.0).collect()).unwrap();
        let target = ArrayD::from_shape_vec(IxDyn(&[count]), values.iter().map(|v| v.1).collect()).unwrap();
        let (_, gradient) = mse(&prediction.view(), &target.view()).unwrap();

        let loss_at = |p: &ArrayD<f64>| mse(&p.view(), &target.view()).unwrap().0;
        let numeric = numerical_gradient(loss_at, &prediction, 0.5);
        // L is quadratic, so central differences are exact for any h and only rounding remains.
        // Summing up to 40 squares of at most 4e4 rounds L by at most 40 * eps * 4e4 = 3.6e-10,
        // and the quotient divides twice that by 2h = 1.
        for (n, a) in numeric.iter().zip(&gradient) {
            prop_assert!((n - a).abs() < 1e-9, "numeric {} vs analytic {}", n, a);
        }
    }
}

#[test]
fn check_rejects_wrong_gradients() {
    // Two confident rows of 3 classes; the correct gradient passes, two common mistakes fail.
    let logits = array![[900.0, -50.0, 3.0], [-200.0, 700.0, 699.0]];
    let labels = [1, 1];
    let (_, correct) = softmax_cross_entropy(&logits.view(), &labels).unwrap();
    let bound = tolerance(3, 900.0);
    assert!(max_gradient_error(&logits, &labels, &correct) <= bound);

    let probabilities = softmax(&logits.view());
    let missing_onehot = &probabilities / 2.0;
    assert!(max_gradient_error(&logits, &labels, &missing_onehot) > 0.4);

    let missing_mean = &correct * 2.0;
    assert!(max_gradient_error(&logits, &labels, &missing_mean) > 0.1);
}

#[test]
fn cross_entropy_is_finite_for_huge_logits() {
    for magnitude in [1e3f64, 1e10, 1e300] {
        let logits = array![[magnitude, -magnitude, 0.0], [-magnitude, -magnitude, magnitude]];
        let (loss, gradient) = softmax_cross_entropy(&logits.view(), &[1, 2]).unwrap();
        // Row 0 puts all mass on class 0 and its label is 1: loss 2M / 2 from that row.
        assert!((loss - magnitude).abs() <= magnitude * 1e-15, "loss {loss}");
        assert!(gradient.iter().all(|g| g.is_finite()));
        assert_eq!(gradient, array![[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]]);
    }
}

#[test]
fn cross_entropy_is_finite_for_large_f32_logits() {
    let logits = array![[1000.0f32, -1000.0, 999.0], [-1000.0, -1000.0, -1000.0]];
    let (loss, gradient) = softmax_cross_entropy(&logits.view(), &[2, 0]).unwrap();
    // Row 0: ln(1 + e^-1) + 1; row 1: ln 3. Mean of the two.
    let expected = ((1.0 + (-1.0f64).exp()).ln() + 1.0 + 3f64.ln()) / 2.0;
    assert!((f64::from(loss) - expected).abs() < 1e-6, "loss {loss}");
    assert!(gradient.iter().all(|g| g.is_finite()));
}

#[test]
fn cross_entropy_rejects_bad_input() {
    let logits = array![[0.0, 1.0], [2.0, 3.0]];
    let empty = Array2::<f64>::zeros((0, 3));
    let no_classes = Array2::<f64>::zeros((2, 0));
    let with_nan = array![[0.0, f64::NAN], [2.0, 3.0]];

    assert_eq!(
        softmax_cross_entropy(&empty.view(), &[]).unwrap_err(),
        LossError::EmptyBatch { loss: "softmax_cross_entropy" }
    );
    assert!(matches!(
        softmax_cross_entropy(&no_classes.view(), &[0, 0]),
        Err(LossError::NoClasses { .. })
    ));
    assert!(matches!(
        softmax_cross_entropy(&logits.view(), &[0]),
        Err(LossError::LengthMismatch { expected: 2, found: 1, .. })
    ));
    assert!(matches!(
        softmax_cross_entropy(&logits.view(), &[0, 2]),
        Err(LossError::LabelOutOfRange { sample: 1, label: 2, classes: 2, .. })
    ));
    let error = softmax_cross_entropy(&with_nan.view(), &[0, 1]).unwrap_err();
    assert!(
        matches!(&error, LossError::NonFinite { argument: "logits", index, .. } if index == &[0, 1])
    );
}

#[test]
fn mse_rejects_bad_input() {
    let a = ArrayD::<f64>::zeros(IxDyn(&[2, 3]));
    let b = ArrayD::<f64>::zeros(IxDyn(&[3, 2]));
    let empty = ArrayD::<f64>::zeros(IxDyn(&[0, 3]));
    let mut with_inf = a.clone();
    with_inf[[1, 2]] = f64::INFINITY;

    assert!(matches!(mse(&a.view(), &b.view()), Err(LossError::ShapeMismatch { .. })));
    assert!(matches!(mse(&empty.view(), &empty.view()), Err(LossError::EmptyBatch { .. })));
    let error = mse(&a.view(), &with_inf.view()).unwrap_err();
    assert!(
        matches!(&error, LossError::NonFinite { argument: "target", index, .. } if index == &[1, 2])
    );
}
