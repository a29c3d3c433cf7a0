//! Flattens every axis after the batch axis: (N, d1, d2, ...) -> (N, d1·d2·...).

use handgrad_tensor::Scalar;
use ndarray::{ArrayD, IxDyn};

use crate::{check_grad_shape, no_cache_error, shape_error, Layer, Mode, Result};

const NAME: &str = "flatten";

/// Reshapes (N, d1, ..., dk) to (N, d1·...·dk) in row-major (C) order, as `torch.flatten(x, 1)`.
///
/// Backward reshapes the gradient back to the input shape.
///
/// # Errors
///
/// [`LayerError::Shape`](crate::LayerError::Shape) for an input of rank < 2 or a gradient not
/// shaped like the output, [`LayerError::NoForwardCache`](crate::LayerError::NoForwardCache) for
/// `backward` without a training-mode `forward`.
///
/// # Example
///
/// ```
/// use handgrad_layers::{Flatten, Layer, Mode};
/// use ndarray::ArrayD;
///
/// let mut flatten = Flatten::new();
/// let y = flatten.forward(&ArrayD::<f32>::zeros(vec![4, 200, 3, 3]), Mode::Train)?;
/// assert_eq!(y.shape(), &[4, 1800]);
/// let dx = flatten.backward(&ArrayD::<f32>::zeros(vec![4, 1800]))?;
/// assert_eq!(dx.shape(), &[4, 200, 3, 3]);
/// # Ok::<(), handgrad_layers::LayerError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Flatten {
    /// Input shape of the last training-mode forward.
    cache: Option<Vec<usize>>,
}

impl Flatten {
    /// Creates the layer; it has no parameters.
    pub fn new() -> Self {
        Self { cache: None }
    }
}

impl<F: Scalar> Layer<F> for Flatten {
    fn forward(&mut self, input: &ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        let shape = input.shape();
        if shape.len() < 2 {
            return Err(shape_error(NAME, "input of rank >= 2, (N, ...)", shape));
        }
        let batch = shape[0];
        let features = shape[1..].iter().product::<usize>();
        self.cache = (mode == Mode::Train).then(|| shape.to_vec());

        let flat = input.as_standard_layout().into_owned();
        Ok(flat.into_shape_with_order(IxDyn(&[batch, features])).expect("same element count"))
    }

    fn backward(&mut self, grad_output: &ArrayD<F>) -> Result<ArrayD<F>> {
        let in_shape = self.cache.take().ok_or_else(|| no_cache_error(NAME))?;
        let out_shape = [in_shape[0], in_shape[1..].iter().product()];
        if let Err(error) = check_grad_shape(NAME, grad_output, &out_shape) {
            self.cache = Some(in_shape);
            return Err(error);
        }

        let grad = grad_output.as_standard_layout().into_owned();
        Ok(grad.into_shape_with_order(IxDyn(&in_shape)).expect("same element count"))
    }

    fn forward_owned(&mut self, input: ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        if !input.is_standard_layout() {
            return self.forward(&input, mode);
        }
        let shape = input.shape();
        if shape.len() < 2 {
            return Err(shape_error(NAME, "input of rank >= 2, (N, ...)", shape));
        }
        let flat_shape = [shape[0], shape[1..].iter().product::<usize>()];
        self.cache = (mode == Mode::Train).then(|| shape.to_vec());
        Ok(input.into_shape_with_order(IxDyn(&flat_shape)).expect("standard layout, same count"))
    }

    fn backward_owned(&mut self, grad_output: ArrayD<F>) -> Result<ArrayD<F>> {
        if !grad_output.is_standard_layout() {
            return self.backward(&grad_output);
        }
        let in_shape = self.cache.take().ok_or_else(|| no_cache_error(NAME))?;
        let out_shape = [in_shape[0], in_shape[1..].iter().product()];
        if let Err(error) = check_grad_shape(NAME, &grad_output, &out_shape) {
            self.cache = Some(in_shape);
            return Err(error);
        }
        Ok(grad_output.into_shape_with_order(IxDyn(&in_shape)).expect("standard layout"))
    }

    fn name(&self) -> &str {
        NAME
    }
}
