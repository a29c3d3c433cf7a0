//! Rectified linear unit, y = max(x, 0).

use handgrad_tensor::Scalar;
use ndarray::{ArrayD, Zip};

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
#[derive(Debug, Clone, Default)]
pub struct Relu<F: Scalar> {
    /// Output of the last training-mode forward; y ≤ 0 exactly where x ≤ 0.
    cache: Option<ArrayD<F>>,
}

impl<F: Scalar> Relu<F> {
    /// Creates the layer; it has no parameters.
    pub fn new() -> Self {
        Self { cache: None }
    }
}

impl<F: Scalar> Layer<F> for Relu<F> {
    fn forward(&mut self, input: &ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        let zero = F::zero();
        let output = Zip::from(input).par_map_collect(|&x| if x <= zero { zero } else { x });
        self.cache = (mode == Mode::Train).then(|| output.clone());
        Ok(output)
    }

    fn backward(&mut self, grad_output: &ArrayD<F>) -> Result<ArrayD<F>> {
        let output = self.cache.as_ref().ok_or_else(|| no_cache_error(NAME))?;
        check_grad_shape(NAME, grad_output, output.shape())?;

        let zero = F::zero();
        let grad_input =
            Zip::from(grad_output)
                .and(output)
                .par_map_collect(|&g, &y| if y <= zero { zero } else { g });
        self.cache = None;
        Ok(grad_input)
    }

    fn name(&self) -> &str {
        NAME
    }
}
