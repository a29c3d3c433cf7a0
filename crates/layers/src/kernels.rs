//! Small array helpers shared by the layers: reshaping to matrices, buffers kept between
//! batches, column sums and matrix products split over the rayon pool.
//!
//! Layers keep their caches and parameter gradients in buffers that survive from one batch to
//! the next, because a fresh array of a few megabytes costs page faults and zeroing on every
//! batch. In `perf` profiles of a CNN training batch, that kernel time was about a sixth of the
//! total.

use handgrad_tensor::linalg::gemm_into;
use handgrad_tensor::Scalar;
use ndarray::{Array, Array1, Array2, ArrayD, ArrayView2, ArrayViewMut2, Axis, Dimension, IxDyn};

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

/// Replaces `buffer` with zeros of shape `dim` unless it already has that shape in standard
/// layout. A kept buffer keeps its contents.
pub(crate) fn ensure_shape<F: Scalar, D: Dimension>(buffer: &mut Array<F, D>, dim: D) {
    if buffer.raw_dim() != dim || !buffer.is_standard_layout() {
        *buffer = Array::zeros(dim);
    }
}

/// Copies `x` into `buffer` as a row-major (rows, cols) matrix, reusing the buffer's memory
/// when it already has that shape. `rows * cols` must equal `x.len()`.
pub(crate) fn copy_to_matrix<F: Scalar>(
    x: &ArrayD<F>,
    rows: usize,
    cols: usize,
    buffer: &mut Array2<F>,
) {
    ensure_shape(buffer, ndarray::Ix2(rows, cols));
    let target = buffer.as_slice_mut().expect("ensure_shape keeps standard layout");
    match x.as_slice() {
        Some(values) => target.copy_from_slice(values),
        None => buffer.assign(&to_matrix(x, rows, cols)),
    }
}

/// Returns `grad` as a mutable (rows, cols) matrix after making it a standard-layout array of
/// `shape`. `rows * cols` must equal the product of `shape`.
///
/// Parameter gradients are overwritten by every backward pass, so their memory is reused.
pub(crate) fn grad_matrix<'a, F: Scalar>(
    grad: &'a mut ArrayD<F>,
    shape: &[usize],
    rows: usize,
    cols: usize,
) -> ArrayViewMut2<'a, F> {
    ensure_shape(grad, IxDyn(shape));
    grad.view_mut().into_shape_with_order((rows, cols)).expect("rows * cols entries")
}

/// Writes the sum of each column of `m` into `sums`, reshaped to (cols): the gradient of a bias
/// broadcast over rows.
pub(crate) fn column_sums_into<F: Scalar>(m: &ArrayView2<'_, F>, sums: &mut ArrayD<F>) {
    ensure_shape(sums, IxDyn(&[m.ncols()]));
    sums.assign(&column_sums(m.view()));
}

/// Smallest matrix, in entries, whose column sums are split into two halves of rows summed in
/// parallel.
const PARALLEL_SUM: usize = 1 << 16;

fn column_sums<F: Scalar>(m: ArrayView2<'_, F>) -> Array1<F> {
    if m.len() < PARALLEL_SUM || m.nrows() < 2 {
        let mut sums = Array1::zeros(m.ncols());
        for row in m.rows() {
            sums += &row;
        }
        return sums;
    }
    let (top, bottom) = m.split_at(Axis(0), m.nrows() / 2);
    let (top, bottom) = rayon::join(|| column_sums(top), || column_sums(bottom));
    top + bottom
}

/// Returns a (rows, bias.len()) matrix whose every row is `bias`, in the memory of `values`.
///
/// A layer's output starts as its bias, and the product is then added with `beta = 1`, which
/// saves a separate pass over the output.
pub(crate) fn bias_rows<F: Scalar>(bias: &[F], rows: usize, mut values: Vec<F>) -> Array2<F> {
    values.clear();
    values.reserve(rows * bias.len());
    for _ in 0..rows {
        values.extend_from_slice(bias);
    }
    Array2::from_shape_vec((rows, bias.len()), values).expect("rows * bias.len() entries")
}

/// Maximum number of arrays a layer keeps in [`take_spare`]'s pool.
const SPARE_ARRAYS: usize = 2;

/// Takes the smallest array of `spare` with room for `len` entries, emptied, or a new one.
///
/// A layer returns the arrays it received by value and no longer needs (its previous input
/// cache, an output gradient) to the pool with [`keep_spare`]. In a chain of layers that pass
/// arrays by value, most outputs then reuse memory instead of allocating it.
pub(crate) fn take_spare<F>(spare: &mut Vec<Vec<F>>, len: usize) -> Vec<F> {
    let fitting = spare.iter().enumerate().filter(|(_, values)| values.capacity() >= len);
    let smallest = fitting.min_by_key(|(_, values)| values.capacity()).map(|(index, _)| index);
    match smallest {
        Some(index) => {
            let mut values = spare.swap_remove(index);
            values.clear();
            values
        }
        None => Vec::with_capacity(len),
    }
}

/// Returns an array's memory to the pool of [`take_spare`], which keeps the largest ones.
pub(crate) fn keep_spare<F, D: Dimension>(spare: &mut Vec<Vec<F>>, array: Array<F, D>) {
    spare.push(array.into_raw_vec_and_offset().0);
    if spare.len() > SPARE_ARRAYS {
        let smallest = (0..spare.len()).min_by_key(|&index| spare[index].capacity());
        spare.swap_remove(smallest.expect("pool is not empty"));
    }
}

/// Returns a (rows, cols) matrix of zeros in memory taken from `spare`.
pub(crate) fn spare_zeros<F: Scalar>(
    spare: &mut Vec<Vec<F>>,
    rows: usize,
    cols: usize,
) -> Array2<F> {
    let mut values = take_spare(spare, rows * cols);
    values.resize(rows * cols, F::zero());
    Array2::from_shape_vec((rows, cols), values).expect("rows * cols entries")
}

/// Smallest product, in multiply-adds `m * n * k`, that [`gemm_split`] shares among threads.
///
/// Below about half a million multiply-adds (some tens of microseconds on one core) handing a
/// half to another thread and packing the shared operand twice cost more than they save.
const PARALLEL_PRODUCT: usize = 1 << 19;

/// Largest `min(m, n)` of a product whose inner dimension [`gemm_split`] may cut. The engine's
/// main AVX-512 f32 kernel (`x4x6` in profiles) fills output tiles of 64 rows by 6 columns, so
/// halving a side of a few dozen leaves each thread mostly partial tiles.
const NARROW_OUTPUT: usize = 128;

/// Computes `c = a · b + beta · c` through [`handgrad_tensor::linalg::gemm_into`].
///
/// The engine runs each product on one thread. A large product is therefore cut into as many
/// blocks of rows (of columns when `c` is wider than tall) as the rayon pool has threads, and
/// the blocks run in parallel. A narrow output with a long inner dimension, such as a weight
/// gradient summed over a batch of thousands of rows, is cut along that inner dimension
/// instead, and the partial products are added. Shapes must agree: the layers check them
/// before multiplying.
pub(crate) fn gemm_split<F: Scalar>(
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    beta: F,
    c: ArrayViewMut2<'_, F>,
) {
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let pieces = if m * k * n >= PARALLEL_PRODUCT { rayon::current_num_threads() } else { 1 };
    if pieces > 1 && m.min(n) <= NARROW_OUTPUT && k >= 2 * m.max(n) {
        gemm_inner_pieces(a, b, beta, c, pieces);
    } else {
        gemm_pieces(a, b, beta, c, pieces);
    }
}

/// Computes `c = a · b + beta · c` as the sum of `pieces` products over consecutive blocks of
/// the inner dimension, run in parallel.
fn gemm_inner_pieces<F: Scalar>(
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    beta: F,
    mut c: ArrayViewMut2<'_, F>,
    pieces: usize,
) {
    let inner = a.ncols();
    if pieces <= 1 || inner < 2 {
        gemm_into(F::one(), &a, &b, beta, &mut c).expect("layers multiply checked shapes");
        return;
    }

    let first = pieces / 2;
    let middle = inner * first / pieces;
    let (a_left, a_right) = a.split_at(Axis(1), middle);
    let (b_top, b_bottom) = b.split_at(Axis(0), middle);
    let mut rest = Array2::zeros(c.raw_dim());
    rayon::join(
        || gemm_inner_pieces(a_left, b_top, beta, c.view_mut(), first),
        || gemm_inner_pieces(a_right, b_bottom, F::zero(), rest.view_mut(), pieces - first),
    );
    c += &rest;
}

/// Computes `c = a · b + beta · c` in `pieces` blocks of rows of `c` (of columns when `c` is
/// wider than tall), run in parallel.
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

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::gemm_split;

    fn filled(rows: usize, cols: usize, rate: f64) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| ((i * cols + j) as f64 * rate).sin())
    }

    /// Every way of splitting a product, by rows, by columns or along the inner dimension, with
    /// and without accumulation, gives the product computed by ndarray on one thread.
    #[test]
    fn split_products_match_ndarray() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        // (m, k, n): taller than wide, wider than tall, and narrow with a long inner dimension.
        for (m, k, n) in [(700, 40, 30), (30, 40, 700), (90, 2000, 40), (40, 2000, 90)] {
            let (a, b) = (filled(m, k, 0.37), filled(k, n, 0.11));
            for beta in [0.0, 1.0] {
                let start = filled(m, n, 0.53);
                let expected = a.dot(&b) + beta * &start;
                let mut c = start.clone();
                pool.install(|| gemm_split(a.view(), b.view(), beta, c.view_mut()));
                let error = (&c - &expected).iter().fold(0.0f64, |max, e| max.max(e.abs()));
                assert!(error < 1e-9, "({m}, {k}, {n}), beta {beta}: max error {error}");
            }
        }
    }
}
