//! Loss functions with hand-derived gradients.
//!
//! - [`softmax`]: row-wise softmax of a (N, C) matrix of logits.
//! - [`softmax_cross_entropy`]: mean cross-entropy of softmax probabilities against class labels,
//!   and its gradient (P - Y) / N with respect to the logits.
//! - [`mse`]: mean squared error over all elements, and its gradient 2 (prediction - target) / n.
//! - [`gradcheck`]: a seeded numerical check of the cross-entropy gradient.
//!
//! The derivation of the cross-entropy gradient and the argument for its numerical stability are
//! in `docs/t3-softmax-cross-entropy.md`.

mod cross_entropy;
pub mod gradcheck;
mod mse;

pub use cross_entropy::{softmax, softmax_cross_entropy};
pub use mse::mse;

/// Errors raised by loss functions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LossError {
    /// The batch has no rows (or, for [`mse`], no elements).
    #[error("{loss}: empty batch, expected at least one sample")]
    EmptyBatch {
        /// Loss that rejected the input.
        loss: &'static str,
    },
    /// The logits have zero columns, so no label can be valid.
    #[error("{loss}: logits have 0 classes, expected at least 1 column")]
    NoClasses {
        /// Loss that rejected the input.
        loss: &'static str,
    },
    /// The number of labels differs from the number of logit rows.
    #[error("{loss}: expected {expected} labels (one per logit row), found {found}")]
    LengthMismatch {
        /// Loss that rejected the input.
        loss: &'static str,
        /// Number of rows in the logits.
        expected: usize,
        /// Number of labels given.
        found: usize,
    },
    /// Prediction and target have different shapes.
    #[error("{loss}: prediction shape {prediction:?} differs from target shape {target:?}")]
    ShapeMismatch {
        /// Loss that rejected the input.
        loss: &'static str,
        /// Shape of the prediction.
        prediction: Vec<usize>,
        /// Shape of the target.
        target: Vec<usize>,
    },
    /// A label is not a valid class index.
    #[error("{loss}: label {label} of sample {sample} is out of range, expected 0..{classes}")]
    LabelOutOfRange {
        /// Loss that rejected the input.
        loss: &'static str,
        /// Row of the offending label.
        sample: usize,
        /// The label found.
        label: usize,
        /// Number of classes (columns of the logits).
        classes: usize,
    },
    /// An input contains NaN or an infinity.
    #[error("{loss}: {argument} at index {index:?} is {value}, expected a finite number")]
    NonFinite {
        /// Loss that rejected the input.
        loss: &'static str,
        /// Name of the argument: `"logits"`, `"prediction"` or `"target"`.
        argument: &'static str,
        /// Multi-dimensional index of the first non-finite entry.
        index: Vec<usize>,
        /// The entry, converted to `f64`.
        value: f64,
    },
    /// A setting of a numerical check is outside its valid range.
    #[error("{name} = {value} is invalid, expected {expected}")]
    InvalidArgument {
        /// Name of the setting.
        name: &'static str,
        /// Value given.
        value: f64,
        /// Valid range, in words.
        expected: &'static str,
    },
}

/// Result alias for loss functions.
pub type Result<T> = std::result::Result<T, LossError>;

/// Checks that every entry of `values` is finite, naming the first offending entry otherwise.
fn ensure_finite<F, D>(
    values: &ndarray::ArrayView<'_, F, D>,
    loss: &'static str,
    argument: &'static str,
) -> Result<()>
where
    F: handgrad_tensor::Scalar,
    D: ndarray::Dimension,
{
    let Some(flat) = values.iter().position(|v| !v.is_finite()) else {
        return Ok(());
    };
    let value = values.iter().nth(flat).and_then(|v| v.to_f64()).unwrap_or(f64::NAN);
    Err(LossError::NonFinite { loss, argument, index: unravel(flat, values.shape()), value })
}

/// Converts a flat index in logical (row-major) order into a multi-dimensional index.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &extent) in index.iter_mut().zip(shape).rev() {
        *slot = flat % extent;
        flat /= extent;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unravel_row_major() {
        assert_eq!(unravel(0, &[2, 3]), vec![0, 0]);
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
        assert_eq!(unravel(7, &[2, 2, 2]), vec![1, 1, 1]);
    }
}
