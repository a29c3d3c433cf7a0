//! Matrix multiplication.
//!
//! Every crate multiplies matrices through this module so that the engine is chosen in one place.
//!
//! The engine depends on the size of the product, `m * n * k` multiply-adds:
//!
//! - up to 64: one dot product per output entry, because packing costs more than it saves;
//! - up to 2048, and for element types other than `f32` and `f64`: ndarray's `general_mat_mul`,
//!   which calls the `matrixmultiply` crate;
//! - above: the [`gemm`](https://docs.rs/gemm/0.19) crate. It packs operands of any strides
//!   (transposed, sliced or reversed views) and picks AVX-512, AVX2 or scalar kernels at run
//!   time, so one build runs on every x86-64 machine.
//!
//! gemm runs on the calling thread unless [`set_threading`] turns on splitting products above
//! gemm's threading threshold (about 590,000 multiply-adds) over the global rayon pool. Serial is
//! the default because, on the 2-core machine of the benchmarks, threading gained at most 1.6x on
//! the largest product, and its median time was often worse while other processes competed for
//! the cores. Callers that already run batches in parallel also avoid oversubscription this way.
//!
//! `docs/benchmarks.md` records the measurements behind these choices.

use std::any::TypeId;
use std::sync::atomic::{AtomicBool, Ordering};

use gemm::Parallelism;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::{Result, Scalar, TensorError};

static THREADING: AtomicBool = AtomicBool::new(false);

/// Turns splitting large products over the global rayon pool on or off for the whole process.
///
/// Off by default. Turning it on pays off on idle machines with several cores and products of
/// millions of multiply-adds.
pub fn set_threading(enabled: bool) {
    THREADING.store(enabled, Ordering::Relaxed);
}

/// Returns whether large products are split over the global rayon pool, see [`set_threading`].
pub fn threading() -> bool {
    THREADING.load(Ordering::Relaxed)
}

/// Returns `a · b` for `a` of shape (m, k) and `b` of shape (k, n), in standard (row-major)
/// layout.
///
/// Views may be transposed (`a.t()`), sliced with steps or reversed; no copy is made for them.
///
/// # Panics
///
/// Panics when the inner dimensions differ, as `ndarray`'s `dot` does; callers validate shapes
/// first and return a typed error, or call [`gemm_into`], which returns one.
pub fn matmul<F: Scalar>(a: &ArrayView2<'_, F>, b: &ArrayView2<'_, F>) -> Array2<F> {
    let mut c = Array2::zeros((a.nrows(), b.ncols()));
    if let Err(error) = gemm_into(F::one(), a, b, F::zero(), &mut c.view_mut()) {
        panic!("{error}");
    }
    c
}

/// Computes `c = alpha * a · b + beta * c` in place, for `a` (m, k), `b` (k, n) and `c` (m, n).
///
/// As in BLAS, `c` is not read when `beta` is zero, so NaN or infinite entries in `c` do not
/// reach the result. Any operand may be a strided or transposed view.
///
/// # Errors
///
/// [`TensorError::ShapeMismatch`] when `b` does not have `a.ncols()` rows, or `c` is not (m, n).
pub fn gemm_into<F: Scalar>(
    alpha: F,
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
) -> Result<()> {
    check_shapes(a, b, c)?;
    let (m, k) = a.dim();
    let n = b.ncols();

    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        scale_in_place(beta, c);
        return Ok(());
    }

    let is_gemm_type =
        TypeId::of::<F>() == TypeId::of::<f32>() || TypeId::of::<F>() == TypeId::of::<f64>();
    // Broadcast views can have huge dimensions without memory behind them, so saturate.
    let multiply_adds = m.saturating_mul(n).saturating_mul(k);
    if multiply_adds <= TINY_PRODUCT {
        gemm_tiny(alpha, a, b, beta, c);
    } else if multiply_adds <= SMALL_PRODUCT || !is_gemm_type {
        // ndarray does not read `c` when beta is zero, for every element type.
        ndarray::linalg::general_mat_mul(alpha, a, b, beta, c);
    } else {
        gemm_strided(alpha, a, b, beta, c);
    }
    Ok(())
}

fn check_shapes<F>(
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    c: &ArrayViewMut2<'_, F>,
) -> Result<()> {
    let (m, k) = a.dim();
    if b.nrows() != k {
        return Err(TensorError::ShapeMismatch {
            op: "matmul",
            expected: format!("right operand with {k} rows to match left operand {m}x{k}"),
            found: format!("{}x{}", b.nrows(), b.ncols()),
        });
    }
    if c.dim() != (m, b.ncols()) {
        return Err(TensorError::ShapeMismatch {
            op: "gemm_into",
            expected: format!("output {m}x{}", b.ncols()),
            found: format!("{}x{}", c.nrows(), c.ncols()),
        });
    }
    Ok(())
}

/// Sets `c = beta * c`, treating `beta = 0` as an overwrite with zeros.
fn scale_in_place<F: Scalar>(beta: F, c: &mut ArrayViewMut2<'_, F>) {
    if beta == F::zero() {
        c.fill(F::zero());
    } else {
        c.mapv_inplace(|value| beta * value);
    }
}

/// Largest `m * n * k` computed by [`gemm_tiny`]. Measured with `benches/matmul.rs`: a 4x4x4
/// product takes about 0.1 µs this way, 0.1 to 0.3 µs with matrixmultiply and 0.4 to 0.6 µs with
/// gemm.
const TINY_PRODUCT: usize = 64;

/// Largest `m * n * k` sent to ndarray's `general_mat_mul` (the `matrixmultiply` crate). Measured:
/// at 8x8x8 it is 3.2 times faster than gemm in f32 and as fast in f64, and at 16x16x16 gemm is
/// faster.
const SMALL_PRODUCT: usize = 2048;

/// Computes `c = alpha * a · b + beta * c` with one dot product per entry.
///
/// For products of a few dozen multiply-adds the engines spend more time packing operands and
/// dispatching kernels than multiplying.
fn gemm_tiny<F: Scalar>(
    alpha: F,
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
) {
    for (a_row, mut c_row) in a.rows().into_iter().zip(c.rows_mut()) {
        for (b_column, c_entry) in b.columns().into_iter().zip(c_row.iter_mut()) {
            let product = alpha * a_row.dot(&b_column);
            *c_entry = if beta == F::zero() { product } else { product + beta * *c_entry };
        }
    }
}

/// Calls the `gemm` crate on the raw pointers and strides of the views.
///
/// Shapes must have been checked and `F` must be `f32` or `f64`, the types gemm dispatches on.
#[allow(unsafe_code)]
fn gemm_strided<F: Scalar>(
    alpha: F,
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let (c_row_stride, c_col_stride) = (c.strides()[0], c.strides()[1]);
    let parallelism = if threading() { Parallelism::Rayon(0) } else { Parallelism::None };

    // SAFETY: every pointer is the address of element (0, 0) of a live view. gemm touches only
    // the elements `ptr + i * row_stride + j * col_stride` for indices inside the checked shapes
    // (m, k), (k, n) and (m, n), so it stays inside those views, whatever the signs of the
    // strides. `c` is borrowed mutably, so it overlaps neither `a` nor `b`. A mutable view never
    // maps two indices to one element, which gemm's parallel writes rely on.
    unsafe {
        // gemm computes dst = alpha * dst + beta * lhs · rhs, so the scale factors swap roles.
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_col_stride,
            c_row_stride,
            beta != F::zero(),
            a.as_ptr(),
            a.strides()[1],
            a.strides()[0],
            b.as_ptr(),
            b.strides()[1],
            b.strides()[0],
            beta,
            alpha,
            false,
            false,
            false,
            parallelism,
        );
    }
}
