//! A scalar residual block with a hand-derived backward pass.
//!
//! The block computes, on `f64` scalars,
//!
//! ```text
//! a0 = x0 * w0 + b0      x1 = ReLU(a0)
//! y1 = x1 * w1 + b1      s  = y1 + x0      z = ReLU(s)
//! ```
//!
//! so the input `x0` reaches the output along two paths: through the weights and directly
//! through the skip connection. [`backward`] applies the chain rule node by node, and
//! [`numerical_gradients`] computes the same five derivatives by central differences so the two
//! can be compared. ReLU'(0) is taken as 0, as in [`crate::Layer`] implementations of ReLU. The
//! derivation is in `docs/t1-residual-block.md`.

use handgrad_tensor::gradcheck::numerical_gradient;
use ndarray::Array1;

use crate::{LayerError, Result};

/// Inputs and parameters of the block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResidualInputs {
    /// Block input.
    pub x0: f64,
    /// Weight of the first affine node.
    pub w0: f64,
    /// Bias of the first affine node.
    pub b0: f64,
    /// Weight of the second affine node.
    pub w1: f64,
    /// Bias of the second affine node.
    pub b1: f64,
}

/// Every intermediate value of a forward pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResidualForward {
    /// Pre-activation `a0 = x0 * w0 + b0`.
    pub a0: f64,
    /// Hidden activation `x1 = ReLU(a0)`.
    pub x1: f64,
    /// Second affine output `y1 = x1 * w1 + b1`.
    pub y1: f64,
    /// Sum with the skip connection `s = y1 + x0`.
    pub s: f64,
    /// Output `z = ReLU(s)`.
    pub z: f64,
}

/// Derivatives of the output `z` with respect to the input and the parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResidualGradients {
    /// dz/dx0.
    pub x0: f64,
    /// dz/dw0.
    pub w0: f64,
    /// dz/db0.
    pub b0: f64,
    /// dz/dw1.
    pub w1: f64,
    /// dz/db1.
    pub b1: f64,
}

impl ResidualGradients {
    /// Returns the derivatives in the order dz/dx0, dz/dw0, dz/db0, dz/dw1, dz/db1.
    pub fn to_array(&self) -> [f64; 5] {
        [self.x0, self.w0, self.b0, self.w1, self.b1]
    }
}

/// Returns every intermediate value of the block for `inputs`.
///
/// NaN or infinite inputs propagate into the outputs as IEEE arithmetic makes them.
///
/// # Example
///
/// ```
/// use handgrad_layers::residual::{forward, ResidualInputs};
///
/// let inputs = ResidualInputs { x0: 1.0, w0: 0.3, b0: 0.1, w1: -0.2, b1: -0.3 };
/// let values = forward(&inputs);
/// assert!((values.z - 0.62).abs() < 1e-15);
/// ```
pub fn forward(inputs: &ResidualInputs) -> ResidualForward {
    let a0 = inputs.x0 * inputs.w0 + inputs.b0;
    let x1 = relu(a0);
    let y1 = x1 * inputs.w1 + inputs.b1;
    let s = y1 + inputs.x0;
    ResidualForward { a0, x1, y1, s, z: relu(s) }
}

/// Returns dz/d(x0, w0, b0, w1, b1) by the chain rule, from the values of [`forward`].
///
/// With `r(u) = 1` for `u > 0` and `0` otherwise (so ReLU'(0) = 0):
///
/// ```text
/// dz/ds  = r(s)
/// dz/db1 = dz/ds                  dz/dw1 = dz/ds * x1
/// dz/da0 = dz/ds * w1 * r(a0)
/// dz/db0 = dz/da0                 dz/dw0 = dz/da0 * x0
/// dz/dx0 = dz/ds + dz/da0 * w0    (skip path plus weighted path)
/// ```
///
/// # Example
///
/// ```
/// use handgrad_layers::residual::{backward, forward, ResidualInputs};
///
/// let inputs = ResidualInputs { x0: 1.0, w0: 0.3, b0: 0.1, w1: -0.2, b1: -0.3 };
/// let grads = backward(&inputs, &forward(&inputs));
/// assert!((grads.x0 - 0.94).abs() < 1e-15); // 1 + (-0.2)(0.3)
/// assert!((grads.w1 - 0.4).abs() < 1e-15); // x1 = 0.4
/// ```
pub fn backward(inputs: &ResidualInputs, values: &ResidualForward) -> ResidualGradients {
    let dz_ds = relu_derivative(values.s);
    let dz_da0 = dz_ds * inputs.w1 * relu_derivative(values.a0);
    ResidualGradients {
        x0: dz_ds + dz_da0 * inputs.w0,
        w0: dz_da0 * inputs.x0,
        b0: dz_da0,
        w1: dz_ds * values.x1,
        b1: dz_ds,
    }
}

/// Returns dz/d(x0, w0, b0, w1, b1) by central differences `(z(v + h) - z(v - h)) / 2h`.
///
/// Near a kink of either ReLU (|a0| or |s| within about `h * (1 + |w0| + |x0|)` of 0) the
/// difference straddles the kink and disagrees with [`backward`]; elsewhere the block is
/// piecewise linear in each variable and the two agree up to rounding.
///
/// # Errors
///
/// [`LayerError::Config`] when `h` is not finite and positive.
///
/// # Example
///
/// ```
/// use handgrad_layers::residual::{numerical_gradients, ResidualInputs};
///
/// let inputs = ResidualInputs { x0: 1.0, w0: 0.3, b0: 0.1, w1: -0.2, b1: -0.3 };
/// let numeric = numerical_gradients(&inputs, 1e-6)?;
/// assert!((numeric.w0 + 0.2).abs() < 1e-8);
/// # Ok::<(), handgrad_layers::LayerError>(())
/// ```
pub fn numerical_gradients(inputs: &ResidualInputs, h: f64) -> Result<ResidualGradients> {
    if !(h.is_finite() && h > 0.0) {
        return Err(LayerError::Config {
            layer: "residual".to_owned(),
            reason: format!("finite-difference step h = {h}, expected a finite number > 0"),
        });
    }

    let point = Array1::from(vec![inputs.x0, inputs.w0, inputs.b0, inputs.w1, inputs.b1]);
    let output_at = |v: &Array1<f64>| {
        forward(&ResidualInputs { x0: v[0], w0: v[1], b0: v[2], w1: v[3], b1: v[4] }).z
    };
    let grad = numerical_gradient(output_at, &point, h);
    Ok(ResidualGradients { x0: grad[0], w0: grad[1], b0: grad[2], w1: grad[3], b1: grad[4] })
}

fn relu(u: f64) -> f64 {
    if u > 0.0 {
        u
    } else {
        0.0
    }
}

/// Derivative of ReLU, taken as 0 at u = 0.
fn relu_derivative(u: f64) -> f64 {
    if u > 0.0 {
        1.0
    } else {
        0.0
    }
}
