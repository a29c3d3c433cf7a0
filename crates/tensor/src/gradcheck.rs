//! Numerical gradients by central differences, and the relative error used to compare them.
//!
//! Every layer and loss in handgrad checks its hand-derived backward pass against
//! [`numerical_gradient`] in its tests.

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
    fn relative_error_of_known_pair() {
        let a = array![1.0, 0.0];
        let b = array![3.0, 0.0];
        assert_eq!(relative_error(&a, &b), 0.5);
    }
}
