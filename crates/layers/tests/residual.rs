//! Tests of the scalar residual block against hand-computed values and central differences.

use handgrad_layers::residual::{
    backward, forward, numerical_gradients, ResidualGradients, ResidualInputs,
};
use handgrad_layers::LayerError;
use proptest::prelude::*;

const POINT: ResidualInputs = ResidualInputs { x0: 1.0, w0: 0.3, b0: 0.1, w1: -0.2, b1: -0.3 };

fn analytic(inputs: &ResidualInputs) -> ResidualGradients {
    backward(inputs, &forward(inputs))
}

#[test]
fn forward_at_reference_point() {
    let values = forward(&POINT);
    // a0 = 1.0 * 0.3 + 0.1 = 0.4, positive, so x1 = 0.4.
    assert!((values.a0 - 0.4).abs() < 1e-15);
    assert!((values.x1 - 0.4).abs() < 1e-15);
    // y1 = 0.4 * (-0.2) - 0.3 = -0.38.
    assert!((values.y1 + 0.38).abs() < 1e-15);
    // s = -0.38 + 1.0 = 0.62, positive, so z = 0.62.
    assert!((values.s - 0.62).abs() < 1e-15);
    assert!((values.z - 0.62).abs() < 1e-15);
}

#[test]
fn backward_at_reference_point() {
    let grads = analytic(&POINT);
    // dz/ds = 1 and ReLU'(a0) = 1 at this point.
    assert!((grads.x0 - 0.94).abs() < 1e-15); // 1 + w1 * w0 = 1 - 0.06
    assert!((grads.w0 + 0.2).abs() < 1e-15); // w1 * x0
    assert!((grads.b0 + 0.2).abs() < 1e-15); // w1
    assert!((grads.w1 - 0.4).abs() < 1e-15); // x1
    assert!((grads.b1 - 1.0).abs() < 1e-15); // dz/ds
}

#[test]
fn central_differences_agree_at_reference_point() {
    let numeric = numerical_gradients(&POINT, 1e-6).unwrap();
    let exact = analytic(&POINT);
    // The block is linear in each variable near this point, so only rounding separates the two:
    // about eps * |z| / h = 1e-10.
    for (n, a) in numeric.to_array().iter().zip(exact.to_array()) {
        assert!((n - a).abs() < 1e-8, "numeric {n} vs analytic {a}");
    }
}

#[test]
fn relu_derivative_at_zero_is_zero() {
    // a0 = 1.0 * (-0.5) + 0.5 = 0 exactly, so the weighted path contributes nothing.
    let inputs = ResidualInputs { x0: 1.0, w0: -0.5, b0: 0.5, w1: 2.0, b1: 0.0 };
    let grads = analytic(&inputs);
    assert_eq!(forward(&inputs).a0, 0.0);
    assert_eq!(grads.w0, 0.0);
    assert_eq!(grads.b0, 0.0);
    assert_eq!(grads.x0, 1.0);
}

#[test]
fn output_relu_at_zero_blocks_everything() {
    // a0 = 0.5, x1 = 0.5, y1 = 0.5 * 2 - 3 = -2, s = -2 + 2 = 0.
    let inputs = ResidualInputs { x0: 2.0, w0: 0.25, b0: 0.0, w1: 2.0, b1: -3.0 };
    assert_eq!(forward(&inputs).s, 0.0);
    assert_eq!(analytic(&inputs).to_array(), [0.0; 5]);
}

#[test]
fn numerical_gradients_rejects_bad_step() {
    for h in [0.0, -1e-6, f64::NAN, f64::INFINITY] {
        let result = numerical_gradients(&POINT, h);
        assert!(matches!(result, Err(LayerError::Config { .. })), "h = {h}");
    }
}

proptest! {
    #[test]
    fn backward_matches_central_differences(
        x0 in -2.0f64..2.0,
        w0 in -2.0f64..2.0,
        b0 in -2.0f64..2.0,
        w1 in -2.0f64..2.0,
        b1 in -2.0f64..2.0,
    ) {
        let inputs = ResidualInputs { x0, w0, b0, w1, b1 };
        let values = forward(&inputs);
        let h = 1e-6;
        // A step of h in any variable moves a0 and s by at most h * 9 here (|x0|, |w0|, |w1|,
        // |x1| are below 2 and 6); points that close to a kink are where the derivative jumps.
        prop_assume!(values.a0.abs() > 1e-4 && values.s.abs() > 1e-4);

        let numeric = numerical_gradients(&inputs, h).unwrap();
        let exact = analytic(&inputs);
        for (n, a) in numeric.to_array().iter().zip(exact.to_array()) {
            prop_assert!((n - a).abs() < 1e-7, "numeric {} vs analytic {}", n, a);
        }
    }
}
