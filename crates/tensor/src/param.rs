use ndarray::{ArrayD, IxDyn};

use crate::Scalar;

/// A trainable array and the gradient of the loss with respect to it.
///
/// Layers own their parameters; optimisers update `value` from `grad` in place.
#[derive(Debug, Clone)]
pub struct Param<F> {
    /// Name used in checkpoints and summaries, such as `"weight"`.
    pub name: String,
    /// Current value.
    pub value: ArrayD<F>,
    /// Gradient from the last backward pass, same shape as `value`.
    pub grad: ArrayD<F>,
}

impl<F: Scalar> Param<F> {
    /// Wraps `value` with a zero gradient of the same shape.
    pub fn new(name: impl Into<String>, value: ArrayD<F>) -> Self {
        let grad = ArrayD::zeros(IxDyn(value.shape()));
        Self { name: name.into(), value, grad }
    }

    /// Number of scalar entries.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// True when the parameter holds no entries.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// Sets the gradient to zero.
    pub fn zero_grad(&mut self) {
        self.grad.fill(F::zero());
    }
}
