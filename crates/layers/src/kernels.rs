//! Small array helpers shared by the layers: reshaping to matrices, column sums and matrix
//! products split over the rayon pool.

use handgrad_tensor::linalg::gemm_into;
use handgrad_tensor::Scalar;
use ndarray::{Array1, Array2, ArrayD, ArrayView2, ArrayViewMut2, Axis, Zip};

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

/// Smallest product, in multiply-adds `m * n * k`, that [`gemm_split`] shares among threads.
///
/// Below about half a million multiply-adds (some tens of microseconds on one core) handing a
/// half to another thread and packing the shared operand twice cost more than they save.
const PARALLEL_PRODUCT: usize = 1 << 19;

/// Returns `a · b` in standard (row-major) layout, split over the rayon pool when large.
pub(crate) fn product<F: Scalar>(a: &ArrayView2<'_, F>, b: &ArrayView2<'_, F>) -> Array2<F> {
    let mut c = Array2::zeros((a.nrows(), b.ncols()));
    gemm_split(a.view(), b.view(), F::zero(), c.view_mut());
    c
}

/// Computes `c = a · b + beta · c` through [`handgrad_tensor::linalg::gemm_into`].
///
/// The engine runs each product on one thread. A large product is therefore cut into as many
/// blocks of rows (of columns when `c` is wider than tall) as the rayon pool has threads, and
/// the blocks run in parallel. Shapes must agree: the layers check them before multiplying.
pub(crate) fn gemm_split<F: Scalar>(
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    beta: F,
    c: ArrayViewMut2<'_, F>,
) {
    let work = a.nrows() * a.ncols() * b.ncols();
    let pieces = if work >= PARALLEL_PRODUCT { rayon::current_num_threads() } else { 1 };
    gemm_pieces(a, b, beta, c, pieces);
}

fn gemm_pieces<F: Scalar>(
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    beta: F,
    mut c: ArrayViewMut2<'_, F>,
    pieces: usize,
) {
    let (rows, columns) = c.dim();
    if pieces <= 1 || rows.max(columns) < 2 {
        gemm_into(F::one(), &a, &b, beta, &mut c).expect("layers multiply checked shapes");
        return;
    }

    let first = pieces / 2;
    if rows >= columns {
        let middle = rows * first / pieces;
        let (a_top, a_bottom) = a.split_at(Axis(0), middle);
        let (c_top, c_bottom) = c.split_at(Axis(0), middle);
        rayon::join(
            || gemm_pieces(a_top, b, beta, c_top, first),
            || gemm_pieces(a_bottom, b, beta, c_bottom, pieces - first),
        );
    } else {
        let middle = columns * first / pieces;
        let (b_left, b_right) = b.split_at(Axis(1), middle);
        let (c_left, c_right) = c.split_at(Axis(1), middle);
        rayon::join(
            || gemm_pieces(a, b_left, beta, c_left, first),
            || gemm_pieces(a, b_right, beta, c_right, pieces - first),
        );
    }
}
