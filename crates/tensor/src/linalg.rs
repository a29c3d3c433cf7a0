//! Matrix multiplication.
//!
//! Every crate multiplies matrices through this module so that the engine is chosen in one place.

use ndarray::{Array2, ArrayView2};

use crate::Scalar;

/// Returns `a · b` for `a` of shape (m, k) and `b` of shape (k, n).
///
/// Views may be transposed (`a.t()`); no copy is made for them.
///
/// # Panics
///
/// Panics when the inner dimensions differ, as `ndarray`'s `dot` does; callers validate shapes
/// first and return a typed error.
pub fn matmul<F: Scalar>(a: &ArrayView2<'_, F>, b: &ArrayView2<'_, F>) -> Array2<F> {
    a.dot(b)
}
