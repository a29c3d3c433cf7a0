//! Small array helpers shared by the layers: reshaping to matrices and column sums.

use handgrad_tensor::Scalar;
use ndarray::{Array1, Array2, ArrayD, ArrayView2, Axis, Zip};

/// Copies `x` into a row-major (rows, cols) matrix; `rows * cols` must equal `x.len()`.
pub(crate) fn to_matrix<F: Scalar>(x: &ArrayD<F>, rows: usize, cols: usize) -> Array2<F> {
    let owned = x.as_standard_layout().into_owned();
    owned.into_shape_with_order((rows, cols)).expect("rows * cols equals the element count")
}

/// Returns a row-major (rows, cols) view of `x` without copying when `x` is in standard layout.
pub(crate) fn matrix_view<F: Scalar>(
    x: &ArrayD<F>,
    rows: usize,
    cols: usize,
) -> Option<ArrayView2<'_, F>> {
    if !x.is_standard_layout() {
        return None;
    }
    x.view().into_shape_with_order((rows, cols)).ok()
}

/// Returns the sum of each column, the gradient of a bias broadcast over rows.
pub(crate) fn column_sums<F: Scalar>(m: &ArrayView2<'_, F>) -> Array1<F> {
    m.sum_axis(Axis(0))
}

/// Adds `bias` to every row of `m` in place, in parallel over rows.
pub(crate) fn add_row_bias<F: Scalar>(m: &mut Array2<F>, bias: &ndarray::ArrayView1<'_, F>) {
    Zip::from(m.rows_mut()).par_for_each(|mut row| row += bias);
}

/// Returns `a · b` through [`handgrad_tensor::matmul`], in standard (row-major) layout.
///
/// The engine may return a column-major result (ndarray's `dot` does for column-major
/// operands); the layers reshape and slice products row by row, so those are copied once.
pub(crate) fn product<F: Scalar>(a: &ArrayView2<'_, F>, b: &ArrayView2<'_, F>) -> Array2<F> {
    let result = handgrad_tensor::matmul(a, b);
    if result.is_standard_layout() {
        return result;
    }
    result.as_standard_layout().into_owned()
}
