//! Checks `matmul` and `gemm_into` against a naive triple loop for random shapes and layouts.
//!
//! Operands are row-major, transposed, strided (every second row, every third column) or
//! reversed views, so the engine receives unit, large and negative strides.

use handgrad_tensor::linalg::{gemm_into, set_threading};
use handgrad_tensor::rng::NumpyRng;
use handgrad_tensor::{matmul, Scalar, TensorError};
use ndarray::{array, s, Array2, ArrayView2, ArrayViewMut2};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Layout {
    RowMajor,
    Transposed,
    Strided,
    Reversed,
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        Just(Layout::RowMajor),
        Just(Layout::Transposed),
        Just(Layout::Strided),
        Just(Layout::Reversed),
    ]
}

/// Allocates the array that a `rows` x `cols` view of `layout` is taken from.
fn backing<F: Scalar>(rows: usize, cols: usize, layout: Layout, rng: &mut NumpyRng) -> Array2<F> {
    let shape = match layout {
        Layout::RowMajor | Layout::Reversed => (rows, cols),
        Layout::Transposed => (cols, rows),
        Layout::Strided => (2 * rows, 3 * cols),
    };
    Array2::from_shape_simple_fn(shape, || F::from_f64_lossy(rng.uniform(-1.0, 1.0)))
}

fn view<F>(backing: &Array2<F>, layout: Layout) -> ArrayView2<'_, F> {
    match layout {
        Layout::RowMajor => backing.view(),
        Layout::Transposed => backing.t(),
        Layout::Strided => backing.slice(s![..;2, ..;3]),
        Layout::Reversed => backing.slice(s![..;-1, ..;-1]),
    }
}

fn view_mut<F>(backing: &mut Array2<F>, layout: Layout) -> ArrayViewMut2<'_, F> {
    match layout {
        Layout::RowMajor => backing.view_mut(),
        Layout::Transposed => backing.view_mut().reversed_axes(),
        Layout::Strided => backing.slice_mut(s![..;2, ..;3]),
        Layout::Reversed => backing.slice_mut(s![..;-1, ..;-1]),
    }
}

/// Returns `a · b` accumulated in f64, and the sums of `|a_ip * b_pj|` that bound rounding errors.
fn naive_product<F: Scalar>(a: &ArrayView2<F>, b: &ArrayView2<F>) -> (Array2<f64>, Array2<f64>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let mut product = Array2::zeros((m, n));
    let mut magnitude = Array2::zeros((m, n));
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                let term = a[[i, p]].to_f64().unwrap() * b[[p, j]].to_f64().unwrap();
                product[[i, j]] += term;
                magnitude[[i, j]] += term.abs();
            }
        }
    }
    (product, magnitude)
}

/// Asserts `|got - expected| <= 2 (k + 2) eps magnitude` entry by entry, a standard bound for a
/// dot product of length k summed in any order.
fn assert_close<F: Scalar>(
    got: &ArrayView2<F>,
    expected: &Array2<f64>,
    magnitude: &Array2<f64>,
    k: usize,
) -> std::result::Result<(), TestCaseError> {
    prop_assert_eq!(got.dim(), expected.dim());
    let eps = F::epsilon().to_f64().unwrap();
    for ((index, &value), (&reference, &bound)) in
        got.indexed_iter().zip(expected.iter().zip(magnitude.iter()))
    {
        let tolerance = 2.0 * (k as f64 + 2.0) * eps * bound + f64::MIN_POSITIVE;
        let error = (value.to_f64().unwrap() - reference).abs();
        prop_assert!(error <= tolerance, "entry {:?}: {} vs {}", index, value, reference);
    }
    Ok(())
}

fn check_matmul<F: Scalar>(
    (m, k, n): (usize, usize, usize),
    (layout_a, layout_b): (Layout, Layout),
    seed: u32,
) -> std::result::Result<(), TestCaseError> {
    let mut rng = NumpyRng::new(seed);
    let a_backing = backing::<F>(m, k, layout_a, &mut rng);
    let b_backing = backing::<F>(k, n, layout_b, &mut rng);
    let (a, b) = (view(&a_backing, layout_a), view(&b_backing, layout_b));

    let product = matmul(&a, &b);
    let (expected, magnitude) = naive_product(&a, &b);
    prop_assert!(product.is_standard_layout());
    assert_close(&product.view(), &expected, &magnitude, k)
}

fn check_gemm_into<F: Scalar>(
    (m, k, n): (usize, usize, usize),
    layouts: (Layout, Layout, Layout),
    (alpha, beta): (f64, f64),
    seed: u32,
) -> std::result::Result<(), TestCaseError> {
    let mut rng = NumpyRng::new(seed);
    let a_backing = backing::<F>(m, k, layouts.0, &mut rng);
    let b_backing = backing::<F>(k, n, layouts.1, &mut rng);
    let mut c_backing = backing::<F>(m, n, layouts.2, &mut rng);
    let (a, b) = (view(&a_backing, layouts.0), view(&b_backing, layouts.1));
    let c_before = view(&c_backing, layouts.2).to_owned();

    let (alpha_f, beta_f) = (F::from_f64_lossy(alpha), F::from_f64_lossy(beta));
    gemm_into(alpha_f, &a, &b, beta_f, &mut view_mut(&mut c_backing, layouts.2)).unwrap();

    let (product, magnitude) = naive_product(&a, &b);
    let c_old = c_before.mapv(|v| v.to_f64().unwrap());
    let alpha_r = alpha_f.to_f64().unwrap();
    let beta_r = beta_f.to_f64().unwrap();
    let expected = &product * alpha_r + &c_old * beta_r;
    let bound = &magnitude * alpha_r.abs() + c_old.mapv(f64::abs) * beta_r.abs();
    assert_close(&view(&c_backing, layouts.2), &expected, &bound, k)
}

fn shape() -> impl Strategy<Value = (usize, usize, usize)> {
    // Sizes past 48 cross the register-block and packing boundaries of the kernels.
    (0usize..70, 0usize..70, 0usize..70)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn matmul_f64_matches_naive(dims in shape(), la in layout(), lb in layout(), seed in any::<u32>()) {
        check_matmul::<f64>(dims, (la, lb), seed)?;
    }

    #[test]
    fn matmul_f32_matches_naive(dims in shape(), la in layout(), lb in layout(), seed in any::<u32>()) {
        check_matmul::<f32>(dims, (la, lb), seed)?;
    }

    #[test]
    fn gemm_into_f64_matches_naive(
        dims in shape(),
        layouts in (layout(), layout(), layout()),
        alpha in -2.0f64..2.0,
        beta in prop_oneof![Just(0.0), Just(1.0), -2.0f64..2.0],
        seed in any::<u32>(),
    ) {
        check_gemm_into::<f64>(dims, layouts, (alpha, beta), seed)?;
    }

    #[test]
    fn gemm_into_f32_matches_naive(
        dims in shape(),
        layouts in (layout(), layout(), layout()),
        alpha in -2.0f64..2.0,
        beta in prop_oneof![Just(0.0), Just(1.0), -2.0f64..2.0],
        seed in any::<u32>(),
    ) {
        check_gemm_into::<f32>(dims, layouts, (alpha, beta), seed)?;
    }
}

#[test]
fn threaded_large_transposed_f32() {
    // Past gemm's threading threshold, so the product is split over the rayon pool. Other tests
    // may run while threading is on; they check results, which do not depend on it.
    set_threading(true);
    let mut rng = NumpyRng::new(1);
    let x = Array2::from_shape_simple_fn((300, 120), || rng.uniform(-1.0, 1.0) as f32);
    let dy = Array2::from_shape_simple_fn((300, 90), || rng.uniform(-1.0, 1.0) as f32);
    let product = matmul(&x.t(), &dy.view());
    set_threading(false);

    let (expected, magnitude) = naive_product(&x.t(), &dy.view());
    assert_close(&product.view(), &expected, &magnitude, 300).unwrap();
}

#[test]
fn small_integers_are_exact() {
    let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let b = array![[7.0, 8.0], [9.0, 10.0], [11.0, 12.0]];
    assert_eq!(matmul(&a.view(), &b.view()), array![[58.0, 64.0], [139.0, 154.0]]);
    assert_eq!(matmul(&b.t(), &a.t()), array![[58.0, 139.0], [64.0, 154.0]]);
}

#[test]
fn beta_zero_ignores_nan_in_output() {
    let a = array![[1.0f32, 2.0]];
    let b = array![[3.0f32], [4.0]];
    let mut c = array![[f32::NAN]];
    gemm_into(1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut()).unwrap();
    assert_eq!(c[[0, 0]], 11.0);
}

#[test]
fn empty_inner_dimension_scales_output() {
    let a = Array2::<f64>::zeros((2, 0));
    let b = Array2::<f64>::zeros((0, 3));
    let mut c = Array2::from_elem((2, 3), 4.0);
    gemm_into(1.0, &a.view(), &b.view(), 0.5, &mut c.view_mut()).unwrap();
    assert_eq!(c, Array2::from_elem((2, 3), 2.0));
    assert_eq!(matmul(&a.view(), &b.view()), Array2::zeros((2, 3)));
}

#[test]
fn inner_dimension_mismatch_is_error() {
    let a = Array2::<f64>::zeros((2, 3));
    let b = Array2::<f64>::zeros((4, 5));
    let mut c = Array2::<f64>::zeros((2, 5));
    let error = gemm_into(1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut()).unwrap_err();
    assert!(matches!(error, TensorError::ShapeMismatch { op: "matmul", .. }), "{error}");
    assert!(error.to_string().contains("4x5"), "{error}");
}

#[test]
fn output_shape_mismatch_is_error() {
    let a = Array2::<f32>::zeros((2, 3));
    let b = Array2::<f32>::zeros((3, 5));
    let mut c = Array2::<f32>::zeros((5, 2));
    let error = gemm_into(1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut()).unwrap_err();
    assert!(matches!(error, TensorError::ShapeMismatch { op: "gemm_into", .. }), "{error}");
}

#[test]
#[should_panic(expected = "shape mismatch")]
fn matmul_panics_on_mismatch() {
    let a = Array2::<f64>::zeros((2, 3));
    let b = Array2::<f64>::zeros((2, 3));
    matmul(&a.view(), &b.view());
}
