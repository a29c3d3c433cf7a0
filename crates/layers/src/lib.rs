//! Neural-network layers with hand-derived backward passes.
//!
//! Every layer implements [`Layer`]: `forward` caches what `backward` needs, and `backward` takes
//! the gradient of the loss with respect to the layer's output, stores the gradients of the
//! layer's parameters in their [`Param::grad`], and returns the gradient with respect to the
//! input. The derivations live in `docs/layers-*.md`.
//!
//! | Layer | Input | Output | Parameters |
//! |---|---|---|---|
//! | [`Linear`] | (..., in) | (..., out) | `weight` (out, in), `bias` (out) |
//! | [`Relu`] | any | same | none |
//! | [`Dropout`] | any | same | none |
//! | [`Flatten`] | (N, ...) | (N, prod) | none |
//! | [`Conv2d`] | (N, C, H, W) | (N, O, H', W') | `weight` (O, C, k, k), `bias` (O) |
//! | [`Gru`] | (N, T, D) | (N, T, H) | `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0` |
//! | [`Sequential`] | first layer's | last layer's | its layers', named `"0.weight"`, ... |
//!
//! Initial weights follow PyTorch's defaults and are drawn from a [`rand_chacha::ChaCha8Rng`]
//! seeded with the `seed` given to the constructor, so the same seed gives the same layer on
//! every platform.
//!
//! ```
//! use handgrad_layers::{Layer, Linear, Mode, Relu, Sequential};
//! use ndarray::ArrayD;
//!
//! let mut net = Sequential::<f32>::new();
//! net.push(Box::new(Linear::new(4, 8, 0)?));
//! net.push(Box::new(Relu::new()));
//! net.push(Box::new(Linear::new(8, 1, 1)?));
//!
//! let x = ArrayD::<f32>::ones(vec![16, 4]);
//! let y = net.forward(&x, Mode::Train)?;
//! assert_eq!(y.shape(), &[16, 1]);
//!
//! let dx = net.backward(&ArrayD::ones(vec![16, 1]))?;
//! assert_eq!(dx.shape(), &[16, 4]);
//! assert_eq!(net.named_params()[0].0, "0.weight");
//! # Ok::<(), handgrad_layers::LayerError>(())
//! ```

mod activation;
mod conv2d;
mod dropout;
mod flatten;
mod gru;
mod init;
mod kernels;
mod linear;
mod relu;
pub mod residual;
mod sequential;

pub use conv2d::{Conv2d, Conv2dConfig};
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use gru::Gru;
pub use linear::Linear;
pub use relu::Relu;
pub use sequential::Sequential;

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
    #[error("{layer}: expected {expected}, found shape {found:?}")]
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
///
/// A `backward` call consumes the cache of the latest [`Mode::Train`] `forward`, so each
/// training-mode `forward` allows exactly one `backward`.
pub trait Layer<F: Scalar>: Send + std::fmt::Debug {
    /// Computes the output for a batch; in [`Mode::Train`] caches what `backward` needs.
    fn forward(&mut self, input: &ArrayD<F>, mode: Mode) -> Result<ArrayD<F>>;

    /// Takes dL/d(output), overwrites the parameters' gradients and returns dL/d(input).
    fn backward(&mut self, grad_output: &ArrayD<F>) -> Result<ArrayD<F>>;

    /// [`Layer::forward`] on an input the caller no longer needs, so that the layer may keep
    /// or overwrite its memory instead of copying it.
    ///
    /// The result is the same as `forward(&input, mode)`, which the default calls. ReLU and
    /// flatten override it to work in place, and linear layers keep the input as their cache.
    fn forward_owned(&mut self, input: ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        self.forward(&input, mode)
    }

    /// [`Layer::backward`] on a gradient the caller no longer needs, so that the layer may
    /// overwrite it. The default calls `backward(&grad_output)`.
    fn backward_owned(&mut self, grad_output: ArrayD<F>) -> Result<ArrayD<F>> {
        self.backward(&grad_output)
    }

    /// [`Layer::backward`] without dL/d(input): only the parameters' gradients are stored.
    ///
    /// Meant for the first layer of a network, whose input gradient is never read. Layers with
    /// parameters override it to skip that product, and the default calls `backward` and
    /// drops the result.
    fn backward_params(&mut self, grad_output: &ArrayD<F>) -> Result<()> {
        self.backward(grad_output).map(drop)
    }

    /// The layer's trainable parameters, in a fixed order.
    fn params(&self) -> Vec<&Param<F>> {
        Vec::new()
    }

    /// Mutable access to the trainable parameters, in the same order as [`Layer::params`].
    fn params_mut(&mut self) -> Vec<&mut Param<F>> {
        Vec::new()
    }

    /// The parameters with their state-dict names, in the order of [`Layer::params`].
    ///
    /// A plain layer uses each [`Param::name`]; containers prefix their children's names with
    /// the child's index, as PyTorch's `state_dict` does (`"0.weight"`).
    fn named_params(&self) -> Vec<(String, &Param<F>)> {
        self.params().into_iter().map(|p| (p.name.clone(), p)).collect()
    }

    /// Short name used in errors and summaries, such as `"linear"`.
    fn name(&self) -> &str;
}

/// Builds the error for an input or gradient of the wrong shape.
pub(crate) fn shape_error(layer: &str, expected: impl Into<String>, found: &[usize]) -> LayerError {
    LayerError::Shape { layer: layer.to_string(), expected: expected.into(), found: found.to_vec() }
}

/// Builds the error for an invalid hyperparameter.
pub(crate) fn config_error(layer: &str, reason: impl Into<String>) -> LayerError {
    LayerError::Config { layer: layer.to_string(), reason: reason.into() }
}

/// Multiplies sizes, `None` when the product exceeds `isize::MAX`, the most elements an
/// array can address.
pub(crate) fn checked_product(sizes: &[usize]) -> Option<usize> {
    sizes
        .iter()
        .try_fold(1usize, |total, &size| total.checked_mul(size))
        .filter(|&total| isize::try_from(total).is_ok())
}

/// Builds the error for a `backward` without a cached training-mode `forward`.
pub(crate) fn no_cache_error(layer: &str) -> LayerError {
    LayerError::NoForwardCache { layer: layer.to_string() }
}

/// Checks that a gradient has the shape of the output that `forward` produced.
pub(crate) fn check_grad_shape(
    layer: &str,
    grad: &ArrayD<impl Sized>,
    shape: &[usize],
) -> Result<()> {
    if grad.shape() == shape {
        return Ok(());
    }
    Err(shape_error(layer, format!("gradient of the output shape {shape:?}"), grad.shape()))
}
