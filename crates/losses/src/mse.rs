//! Mean squared error over all elements of an array of any rank.

use handgrad_tensor::Scalar;
use ndarray::{ArrayD, ArrayViewD, Zip};

use crate::{ensure_finite, LossError, Result};

const LOSS: &str = "mse";

/// Returns the mean squared error of `prediction` against `target` and its gradient.
///
/// For arrays of the same shape with n elements in total,
///
/// ```text
/// L = (1/n) sum_i (prediction_i - target_i)^2
/// dL/dprediction = 2 (prediction - target) / n      same shape as prediction
/// ```
///
/// which is PyTorch's `nn.MSELoss` with `reduction="mean"`.
///
/// # Errors
///
/// - [`LossError::ShapeMismatch`] when the shapes differ;
/// - [`LossError::EmptyBatch`] when the arrays have no elements;
/// - [`LossError::NonFinite`] when an entry of either array is NaN or infinite.
///
/// # Example
///
/// ```
/// use ndarray::array;
///
/// let prediction = array![[1.0, 2.0], [3.0, 4.0]].into_dyn();
/// let target = array![[1.0, 2.0], [3.0, 2.0]].into_dyn();
/// let (loss, grad) = handgrad_losses::mse(&prediction.view(), &target.view())?;
/// assert_eq!(loss, 1.0); // (4 - 2)^2 / 4
/// assert_eq!(grad[[1, 1]], 1.0); // 2 (4 - 2) / 4
/// # Ok::<(), handgrad_losses::LossError>(())
/// ```
pub fn mse<F: Scalar>(
    prediction: &ArrayViewD<'_, F>,
    target: &ArrayViewD<'_, F>,
) -> Result<(F, ArrayD<F>)> {
    if prediction.shape() != target.shape() {
        return Err(LossError::ShapeMismatch {
            loss: LOSS,
            prediction: prediction.shape().to_vec(),
            target: target.shape().to_vec(),
        });
    }
    if prediction.is_empty() {
        return Err(LossError::EmptyBatch { loss: LOSS });
    }
    ensure_finite(prediction, LOSS, "prediction")?;
    ensure_finite(target, LOSS, "target")?;

    let count = F::from_f64_lossy(prediction.len() as f64);
    let scale = F::from_f64_lossy(2.0) / count;
    let mut grad = ArrayD::zeros(prediction.raw_dim());
    let mut total = F::zero();
    Zip::from(&mut grad).and(prediction).and(target).for_each(|g, &p, &t| {
        let diff = p - t;
        total += diff * diff;
        *g = scale * diff;
    });
    Ok((total / count, grad))
}
