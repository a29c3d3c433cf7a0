//! Rectified linear unit, y = max(x, 0).

use handgrad_tensor::Scalar;
use std::marker::PhantomData;

use ndarray::ArrayD;
use rayon::prelude::*;

use crate::{check_grad_shape, no_cache_error, Layer, Mode, Result};

const NAME: &str = "relu";

/// Rectified linear unit applied elementwise: `y = max(x, 0)`.
///
/// Shapes: any input, output of the same shape.
///
/// Backward: `dL/dx = dL/dy ⊙ 1[x > 0]`. The derivative at exactly x = 0 is taken as 0, the
/// convention PyTorch's `relu` backward also uses. Like PyTorch, a NaN input gives a NaN output
/// and passes its gradient through, so NaNs are not silently turned into zeros.
///
/// # Errors
///
/// [`LayerError::Shape`](crate::LayerError::Shape) for a gradient not shaped like the output,
/// [`LayerError::NoForwardCache`](crate::LayerError::NoForwardCache) for `backward` without a
/// training-mode `forward`.
///
/// # Example
///
/// ```
/// use handgrad_layers::{Layer, Mode, Relu};
/// use ndarray::array;
///
/// let mut relu = Relu::new();
/// let y = relu.forward(&array![-1.0, 0.0, 2.0].into_dyn(), Mode::Train)?;
/// assert_eq!(y, array![0.0, 0.0, 2.0].into_dyn());
///
/// let dx = relu.backward(&array![5.0, 5.0, 5.0].into_dyn())?;
/// assert_eq!(dx, array![0.0, 0.0, 5.0].into_dyn()); // slope 0 at x = 0
/// # Ok::<(), handgrad_layers::LayerError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Relu<F: Scalar> {
    /// Whether each element of the last training-mode input, in C order, was not ≤ 0 (NaN
    /// included), in a buffer reused from batch to batch.
    passes: Vec<bool>,
    /// Input shape of the last training-mode forward, `None` once `backward` has used it.
    pending: Option<Vec<usize>>,
    element: PhantomData<F>,
}

/// Elements per rayon task, because smaller pieces cost more to hand over than to compute.
const TASK_LEN: usize = 1 << 14;

impl<F: Scalar> Relu<F> {
    /// Creates the layer; it has no parameters.
    pub fn new() -> Self {
        Self { passes: Vec::new(), pending: None, element: PhantomData }
    }

    /// Checks the pending forward against the gradient's shape and ends it.
    fn take_pending(&mut self, grad_output: &ArrayD<F>) -> Result<()> {
        let shape = self.pending.take().ok_or_else(|| no_cache_error(NAME))?;
        if let Err(error) = check_grad_shape(NAME, grad_output, &shape) {
            self.pending = Some(shape);
            return Err(error);
        }
        Ok(())
    }
}

impl<F: Scalar> Default for Relu<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Scalar> Layer<F> for Relu<F> {
    fn forward(&mut self, input: &ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        self.forward_owned(input.as_standard_layout().into_owned(), mode)
    }

    fn backward(&mut self, grad_output: &ArrayD<F>) -> Result<ArrayD<F>> {
        self.backward_owned(grad_output.as_standard_layout().into_owned())
    }

    fn forward_owned(&mut self, mut input: ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        let Some(values) = input.as_slice_mut() else {
            return self.forward(&input, mode);
        };
        if mode == Mode::Eval {
            values.par_chunks_mut(TASK_LEN).for_each(relu_in_place);
            self.pending = None;
            return Ok(input);
        }

        self.passes.resize(values.len(), false);
        let passes = self.passes.par_chunks_mut(TASK_LEN);
        values.par_chunks_mut(TASK_LEN).zip(passes).for_each(|(values, passes)| {
            relu_recording(values, passes);
        });
        self.pending = Some(input.shape().to_vec());
        Ok(input)
    }

    fn backward_owned(&mut self, grad_output: ArrayD<F>) -> Result<ArrayD<F>> {
        self.take_pending(&grad_output)?;
        let mut grad_output = if grad_output.is_standard_layout() {
            grad_output
        } else {
            grad_output.as_standard_layout().into_owned()
        };
        let grad = grad_output.as_slice_mut().expect("standard layout");
        let passes = self.passes.par_chunks(TASK_LEN);
        grad.par_chunks_mut(TASK_LEN).zip(passes).for_each(|(grad, passes)| {
            keep_passing(grad, passes);
        });
        Ok(grad_output)
    }

    fn name(&self) -> &str {
        NAME
    }
}

/// Replaces every x ≤ 0 with 0.
fn relu_in_place<F: Scalar>(values: &mut [F]) {
    let zero = F::zero();
    for x in values {
        *x = if *x <= zero { zero } else { *x };
    }
}

/// Replaces every x ≤ 0 with 0 and records which elements passed.
fn relu_recording<F: Scalar>(values: &mut [F], passes: &mut [bool]) {
    let zero = F::zero();
    for (x, passes) in values.iter_mut().zip(passes) {
        // `|` instead of `||` avoids a branch, so the loop vectorises.
        let keep = (*x > zero) | x.is_nan();
        *passes = keep;
        *x = if keep { *x } else { zero };
    }
}

/// Zeroes the gradient of every element that did not pass.
fn keep_passing<F: Scalar>(grad: &mut [F], passes: &[bool]) {
    let zero = F::zero();
    for (g, &passes) in grad.iter_mut().zip(passes) {
        *g = if passes { *g } else { zero };
    }
}
