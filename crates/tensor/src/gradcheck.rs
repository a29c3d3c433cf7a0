//! Numerical gradients by central differences, and the relative error used to compare them.
//!
//! Every layer and loss in handgrad checks its hand-derived backward pass against
//! [`numerical_gradient`] in its tests. [`assert_gradients_close`] compares the two and names the
//! worst entry, for use in property tests. `docs/tensor-gradcheck.md` discusses step sizes and
//! tolerances.

use ndarray::{Array, Dimension};

/// Returns the gradient of `f` at `x` by central differences, `(f(x + h e_i) - f(x - h e_i)) / 2h`.
///
/// `f` is called `2 * x.len()` times with one entry of `x` moved; the error of each entry is
/// O(h^2) for a smooth `f`.
pub fn numerical_gradient<D, Func>(mut f: Func, x: &Array<f64, D>, h: f64) -> Array<f64, D>
where
    D: Dimension,
    Func: FnMut(&Array<f64, D>) -> f64,
{
    // A standard-layout copy makes flat index i the same entry in `probe` and `grad`.
    let mut probe = x.as_standard_layout().into_owned();
    let mut grad = Array::zeros(x.raw_dim());
    let grad_slice = grad.as_slice_mut().expect("zeros() is in standard layout");
    for (i, slot) in grad_slice.iter_mut().enumerate() {
        let original = probe.as_slice().expect("standard layout")[i];

        probe.as_slice_mut().expect("standard layout")[i] = original + h;
        let plus = f(&probe);
        probe.as_slice_mut().expect("standard layout")[i] = original - h;
        let minus = f(&probe);
        probe.as_slice_mut().expect("standard layout")[i] = original;

        *slot = (plus - minus) / (2.0 * h);
    }
    grad
}

/// Returns the largest entry of `|a - b| / max(|a| + |b|, 1e-8)`, or 0 for empty arrays.
///
/// The floor of 1e-8 keeps entries where both gradients are zero from dividing by zero.
pub fn relative_error<D: Dimension>(a: &Array<f64, D>, b: &Array<f64, D>) -> f64 {
    assert_eq!(a.shape(), b.shape(), "relative_error: shapes differ");
    a.iter()
        .zip(b.iter())
        .map(|(&x, &y)| (x - y).abs() / (x.abs() + y.abs()).max(1e-8))
        .fold(0.0, f64::max)
}

/// Checks that every entry of `analytic` is within `tolerance` of `numeric` in the metric of
/// [`relative_error`], `|a - n| / max(|a| + |n|, 1e-8)`.
///
/// Returns `Err` with a message naming the worst entry (its index, both values and its error)
/// when the check fails, or when the shapes differ, so property tests can forward it with
/// `prop_assert!(result.is_ok(), ...)` or `.map_err(TestCaseError::fail)`.
///
/// # Example
///
/// ```
/// use handgrad_tensor::gradcheck::{assert_gradients_close, numerical_gradient};
/// use ndarray::array;
///
/// let x = array![1.0, -2.0];
/// let analytic = x.mapv(|v: f64| 2.0 * v); // d/dx sum x^2
/// let numeric = numerical_gradient(|v| v.mapv(|e| e * e).sum(), &x, 1e-5);
/// assert_gradients_close(&analytic, &numeric, 1e-7).unwrap();
/// ```
pub fn assert_gradients_close<D: Dimension>(
    analytic: &Array<f64, D>,
    numeric: &Array<f64, D>,
    tolerance: f64,
) -> Result<(), String> {
    if analytic.shape() != numeric.shape() {
        return Err(format!(
            "gradient shapes differ: analytic {:?}, numeric {:?}",
            analytic.shape(),
            numeric.shape()
        ));
    }

    let mut worst: Option<(D::Pattern, f64, f64, f64)> = None;
    for ((index, &a), &n) in analytic.indexed_iter().zip(numeric.iter()) {
        let error = entry_error(a, n);
        // NaN compares false with everything, so the first NaN error is kept as the worst.
        let is_worse = match &worst {
            None => true,
            Some((_, _, _, worst_error)) => {
                !worst_error.is_nan() && (error.is_nan() || error > *worst_error)
            }
        };
        if is_worse {
            worst = Some((index, a, n, error));
        }
    }

    match worst {
        Some((index, a, n, error)) if error.is_nan() || error > tolerance => Err(format!(
            "gradient mismatch at {index:?}: analytic {a:e}, numeric {n:e}, relative error \
             {error:e} above tolerance {tolerance:e}"
        )),
        _ => Ok(()),
    }
}

/// Relative error of one entry, as [`relative_error`] computes it.
fn entry_error(a: f64, n: f64) -> f64 {
    (a - n).abs() / (a.abs() + n.abs()).max(1e-8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn numerical_gradient_of_cubic() {
        // f(x) = sum x^3, so df/dx_i = 3 x_i^2.
        let x = array![[1.0, -2.0], [0.5, 3.0]];
        let grad = numerical_gradient(|v| v.mapv(|e| e.powi(3)).sum(), &x, 1e-5);
        let expected = x.mapv(|e| 3.0 * e * e);
        assert!(relative_error(&grad, &expected) < 1e-9);
    }

    #[test]
    fn close_gradients_pass() {
        let a = array![[1.0, 2.0], [0.0, -3.0]];
        let n = array![[1.0 + 1e-9, 2.0], [0.0, -3.0]];
        assert_eq!(assert_gradients_close(&a, &n, 1e-6), Ok(()));
    }

    #[test]
    fn mismatch_names_worst_entry() {
        let a = array![[1.0, 2.0], [0.5, -3.0]];
        let n = array![[1.01, 2.0], [0.4, -3.0]];
        let message = assert_gradients_close(&a, &n, 1e-6).unwrap_err();
        // Entry (1, 0) has relative error 0.1 / 0.9; entry (0, 0) only 0.01 / 2.01.
        assert!(message.contains("(1, 0)"), "{message}");
        assert!(message.contains("analytic 5e-1"), "{message}");
        assert!(message.contains("numeric 4e-1"), "{message}");
    }

    #[test]
    fn nan_gradient_fails() {
        let a = array![1.0, f64::NAN, 3.0];
        let n = array![1.0, 2.0, 30.0];
        let message = assert_gradients_close(&a, &n, 1e-6).unwrap_err();
        assert!(message.contains("at 1:"), "{message}");
        assert!(message.contains("NaN"), "{message}");
    }

    #[test]
    fn shape_mismatch_fails() {
        let a = array![1.0, 2.0];
        let n = array![1.0, 2.0, 3.0];
        let message = assert_gradients_close(&a, &n, 1e-6).unwrap_err();
        assert!(message.contains("shapes differ"), "{message}");
    }

    #[test]
    fn relative_error_of_known_pair() {
        let a = array![1.0, 0.0];
        let b = array![3.0, 0.0];
        assert_eq!(relative_error(&a, &b), 0.5);
    }
}
