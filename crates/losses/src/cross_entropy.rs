//! Softmax and softmax cross-entropy over a batch of logit rows.

use handgrad_tensor::Scalar;
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1};

use crate::{ensure_finite, LossError, Result};

const LOSS: &str = "softmax_cross_entropy";

/// Returns the row-wise softmax `P[n, j] = exp(x[n, j]) / sum_k exp(x[n, k])` of logits (N, C).
///
/// Each row's maximum is subtracted before exponentiating, so every exponent is at most 0 and no
/// finite logit overflows. The output has the shape of the input and each row sums to 1 up to
/// rounding. A row that contains NaN or an infinity yields NaN entries; use
/// [`softmax_cross_entropy`] where such input must be rejected with an error.
///
/// # Example
///
/// ```
/// use ndarray::array;
///
/// let p = handgrad_losses::softmax(&array![[1000.0f64, 1000.0, -1000.0]].view());
/// assert!((p[[0, 0]] - 0.5).abs() < 1e-15);
/// assert_eq!(p[[0, 2]], 0.0);
/// ```
pub fn softmax<F: Scalar>(logits: &ArrayView2<'_, F>) -> Array2<F> {
    let mut probabilities = logits.to_owned();
    for mut row in probabilities.rows_mut() {
        let max = row_max(&row.view());
        row.mapv_inplace(|x| (x - max).exp());
        let sum: F = row.iter().copied().sum();
        row.mapv_inplace(|e| e / sum);
    }
    probabilities
}

/// Returns the mean cross-entropy loss of logits (N, C) against labels (N) and its gradient.
///
/// With `P = softmax(logits)` and `Y` the one-hot encoding of `labels`,
///
/// ```text
/// L = -(1/N) sum_n ln P[n, labels[n]]
/// dL/dlogits = (P - Y) / N            shape (N, C)
/// ```
///
/// The loss is computed as a log-sum-exp with the row maximum subtracted. It therefore stays
/// finite and accurate for logits of any finite magnitude whose true loss fits in `F`, which
/// includes all logits within ±1e3 in `f32` and `f64`. The label entry of the gradient, `P - 1`, is
/// formed as `-(sum of the other probabilities)`, which avoids cancellation when `P` is close
/// to 1.
///
/// # Errors
///
/// - [`LossError::EmptyBatch`] when N = 0, [`LossError::NoClasses`] when C = 0;
/// - [`LossError::LengthMismatch`] when `labels.len() != N`;
/// - [`LossError::LabelOutOfRange`] when a label is `>= C`;
/// - [`LossError::NonFinite`] when a logit is NaN or infinite.
///
/// # Example
///
/// ```
/// use ndarray::array;
///
/// let logits = array![[0.0, 0.0], [0.0, 0.0]];
/// let (loss, grad) = handgrad_losses::softmax_cross_entropy(&logits.view(), &[0, 1])?;
/// assert!((loss - 2f64.ln()).abs() < 1e-15);
/// // (P - Y) / N with P = 1/2 everywhere and N = 2.
/// assert_eq!(grad, array![[-0.25, 0.25], [0.25, -0.25]]);
/// # Ok::<(), handgrad_losses::LossError>(())
/// ```
pub fn softmax_cross_entropy<F: Scalar>(
    logits: &ArrayView2<'_, F>,
    labels: &[usize],
) -> Result<(F, Array2<F>)> {
    validate(logits, labels)?;

    let batch = F::from_f64_lossy(logits.nrows() as f64);
    let mut grad = Array2::zeros(logits.raw_dim());
    let mut total = F::zero();
    for ((row, mut grad_row), &label) in logits.rows().into_iter().zip(grad.rows_mut()).zip(labels)
    {
        total += row_loss_and_probabilities(&row, label, &mut grad_row);
    }

    grad.mapv_inplace(|g| g / batch);
    Ok((total / batch, grad))
}

/// Rejects empty, mislabelled or non-finite input before any arithmetic.
fn validate<F: Scalar>(logits: &ArrayView2<'_, F>, labels: &[usize]) -> Result<()> {
    let (samples, classes) = logits.dim();
    if samples == 0 {
        return Err(LossError::EmptyBatch { loss: LOSS });
    }
    if classes == 0 {
        return Err(LossError::NoClasses { loss: LOSS });
    }
    if labels.len() != samples {
        return Err(LossError::LengthMismatch {
            loss: LOSS,
            expected: samples,
            found: labels.len(),
        });
    }
    if let Some((sample, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(LossError::LabelOutOfRange { loss: LOSS, sample, label, classes });
    }
    ensure_finite(logits, LOSS, "logits")
}

/// Returns `-ln P[label]` for one row and writes `P - onehot(label)` into `out`.
fn row_loss_and_probabilities<F: Scalar>(
    row: &ArrayView1<'_, F>,
    label: usize,
    out: &mut ArrayViewMut1<'_, F>,
) -> F {
    let argmax = row_argmax(row);
    let max = row[argmax];
    out.zip_mut_with(row, |e, &x| *e = (x - max).exp());

    // sum = 1 + rest, because the maximum's term is exp(0) = 1; ln_1p(rest) keeps its accuracy
    // when the other terms are tiny and ln(sum) would round to 0.
    let rest: F = out.iter().enumerate().filter(|&(j, _)| j != argmax).map(|(_, &e)| e).sum();
    let sum = F::one() + rest;
    let loss = rest.ln_1p() - (row[label] - max);

    // P[label] - 1 = -(sum of the other exponentials) / sum, without subtracting from 1.
    let others: F = out.iter().enumerate().filter(|&(j, _)| j != label).map(|(_, &e)| e).sum();
    out.mapv_inplace(|e| e / sum);
    out[label] = -others / sum;
    loss
}

fn row_max<F: Scalar>(row: &ArrayView1<'_, F>) -> F {
    row.iter().copied().fold(F::neg_infinity(), F::max)
}

/// Index of the first largest entry; the row is non-empty and finite.
fn row_argmax<F: Scalar>(row: &ArrayView1<'_, F>) -> usize {
    let mut best = 0;
    for (j, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = j;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn loss_of_known_logits() {
        // P = softmax([1, 2, 3]) = [0.0900, 0.2447, 0.6652]; L = ln(e + e^2 + e^3) - 1.
        let logits = array![[1.0, 2.0, 3.0]];
        let (loss, grad) = softmax_cross_entropy(&logits.view(), &[0]).unwrap();
        let lse = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((loss - (lse - 1.0)).abs() < 1e-15);
        assert!((grad[[0, 0]] - ((1.0 - lse).exp() - 1.0)).abs() < 1e-15);
        assert!((grad[[0, 2]] - (3.0 - lse).exp()).abs() < 1e-15);
    }

    #[test]
    fn loss_of_confident_correct_row() {
        // L = ln(1 + e^-40) = e^-40 to double precision; ln(sum) would round to exactly 0.
        let logits = array![[40.0, 0.0]];
        let (loss, grad) = softmax_cross_entropy(&logits.view(), &[0]).unwrap();
        assert!((loss - (-40f64).exp()).abs() < 1e-30);
        assert!((grad[[0, 0]] + (-40f64).exp()).abs() < 1e-30);
    }

    #[test]
    fn argmax_takes_first_of_ties() {
        assert_eq!(row_argmax(&array![1.0, 3.0, 3.0].view()), 1);
    }
}
