//! Neural-network layers with hand-derived backward passes.
//!
//! Every layer implements [`Layer`]: `forward` caches what `backward` needs, and `backward` takes
//! the gradient of the loss with respect to the layer's output, stores the gradients of the
//! layer's parameters in their [`Param::grad`], and returns the gradient with respect to the
//! input. The derivations live in `docs/`.

pub mod residual;

use handgrad_tensor::{Param, Scalar};
use ndarray::ArrayD;

/// Whether a forward pass is part of training (dropout active) or of evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training: stochastic layers sample, caches for `backward` are kept.
    Train,
    /// Evaluation: deterministic, `backward` may not be called afterwards.
    Eval,
}

/// Errors raised by layers.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The input or the incoming gradient has a shape the layer cannot take.
    #[error("{layer}: expected input shape {expected}, found {found:?}")]
    Shape { layer: String, expected: String, found: Vec<usize> },
    /// `backward` was called without a preceding training-mode `forward`.
    #[error("{layer}: backward called before a forward pass in training mode")]
    NoForwardCache { layer: String },
    /// A hyperparameter is outside its valid range.
    #[error("{layer}: invalid configuration: {reason}")]
    Config { layer: String, reason: String },
}

/// Result alias for layers.
pub type Result<T> = std::result::Result<T, LayerError>;

/// A differentiable building block.
pub trait Layer<F: Scalar>: Send + std::fmt::Debug {
    /// Computes the output for a batch; in [`Mode::Train`] caches what `backward` needs.
    fn forward(&mut self, input: &ArrayD<F>, mode: Mode) -> Result<ArrayD<F>>;

    /// Takes dL/d(output), overwrites the parameters' gradients and returns dL/d(input).
    fn backward(&mut self, grad_output: &ArrayD<F>) -> Result<ArrayD<F>>;

    /// The layer's trainable parameters, in a fixed order.
    fn params(&self) -> Vec<&Param<F>> {
        Vec::new()
    }

    /// Mutable access to the trainable parameters, in the same order as [`Layer::params`].
    fn params_mut(&mut self) -> Vec<&mut Param<F>> {
        Vec::new()
    }

    /// Short name used in errors and summaries, such as `"linear"`.
    fn name(&self) -> &str;
}
