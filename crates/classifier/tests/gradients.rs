//! Property test: the hand-derived gradient of `TwoLayerNet::loss` agrees with central
//! differences for random small networks, batches, labels and regularization strengths.

use handgrad_classifier::reference::gradient_errors;
use handgrad_classifier::TwoLayerNet;
use handgrad_tensor::rng::NumpyRng;
use ndarray::{Array1, Ix2};
use proptest::prelude::*;

/// Largest relative error accepted; central differences with h = 1e-5 on these sizes stay
/// well below it unless an input sits within h of a ReLU kink.
const TOLERANCE: f64 = 1e-6;

fn case() -> impl Strategy<Value = (usize, usize, usize, usize, f64, u32)> {
    (1usize..6, 1usize..8, 2usize..5, 1usize..7, 0.0f64..1.0, any::<u32>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn loss_gradient_matches_central_differences(
        (input, hidden, classes, batch, reg, seed) in case()
    ) {
        let mut rng = NumpyRng::new(seed);
        let mut net = TwoLayerNet::init(input, hidden, classes, 0.5, &mut rng).unwrap();
        // Nonzero biases exercise the bias gradients away from their zero initialization.
        net.b1 = Array1::from_iter((0..hidden).map(|_| rng.standard_normal() * 0.1));
        net.b2 = Array1::from_iter((0..classes).map(|_| rng.standard_normal() * 0.1));
        let x = rng.randn(&[batch, input]).into_dimensionality::<Ix2>().unwrap();
        let y: Vec<usize> = (0..batch).map(|_| rng.randint(classes as u64) as usize).collect();

        // A hidden pre-activation within the difference step of 0 makes the loss kinked there,
        // where central differences are not a gradient; such draws are skipped.
        let z1 = x.dot(&net.w1) + &net.b1;
        prop_assume!(z1.iter().all(|z| z.abs() > 1e-4));

        // Central differences carry a rounding error of about eps * loss / h, near 1e-11 here,
        // so an entry far below 1e-4 cannot be checked to TOLERANCE relative; such draws are
        // skipped too. Entries that are exactly 0 (units dead for the whole batch) stay.
        let (_, grads) = net.loss(&x.view(), &y, reg).unwrap();
        let tiny = |g: &f64| *g != 0.0 && g.abs() < 1e-4;
        let mut entries = grads.w1.iter().chain(&grads.b1).chain(&grads.w2).chain(&grads.b2);
        prop_assume!(!entries.any(tiny));

        for (name, error) in gradient_errors(&net, &x, &y, reg).unwrap() {
            prop_assert!(error < TOLERANCE, "{} relative error {:e}", name, error);
        }
    }
}
