//! Compares matrix-multiply engines on the shapes that handgrad's models multiply.
//!
//! Run with `cargo bench -p handgrad-tensor --bench matmul`. Each case is timed over several
//! repeats after a warm-up, and the table reports GFLOP/s (2mnk floating-point operations per
//! product) for the median and the best repeat. `cargo bench ... -- quick` runs fewer repeats,
//! and another argument, such as `gru`, runs only the cases whose name contains it.
#![allow(clippy::print_stdout, unsafe_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use gemm::Parallelism;
use handgrad_tensor::{matmul, Scalar};
use ndarray::{Array2, ArrayView2};

/// One product `a · b`, with `a` (m, k) and `b` (k, n); a transposed operand is a `.t()` view.
struct Case {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    transpose_a: bool,
    transpose_b: bool,
}

const CASES: &[Case] = &[
    Case { name: "tiny 4", m: 4, k: 4, n: 4, transpose_a: false, transpose_b: false },
    Case { name: "tiny 8", m: 8, k: 8, n: 8, transpose_a: false, transpose_b: false },
    Case { name: "small 16", m: 16, k: 16, n: 16, transpose_a: false, transpose_b: false },
    Case { name: "one sample", m: 1, k: 200, n: 200, transpose_a: false, transpose_b: false },
    Case { name: "gru step", m: 64, k: 200, n: 600, transpose_a: false, transpose_b: false },
    Case { name: "mnist hidden", m: 200, k: 784, n: 250, transpose_a: false, transpose_b: false },
    Case {
        name: "mnist dW1 = Xt.dH",
        m: 784,
        k: 200,
        n: 250,
        transpose_a: true,
        transpose_b: false,
    },
    Case { name: "mnist scores", m: 200, k: 250, n: 10, transpose_a: false, transpose_b: false },
    Case {
        name: "mnist dH = dS.W2t",
        m: 200,
        k: 10,
        n: 250,
        transpose_a: false,
        transpose_b: true,
    },
    Case { name: "nowcast input", m: 1024, k: 75, n: 200, transpose_a: false, transpose_b: false },
    Case {
        name: "nowcast hidden",
        m: 1024,
        k: 200,
        n: 200,
        transpose_a: false,
        transpose_b: false,
    },
    Case {
        name: "nowcast dW = Ht.dY",
        m: 200,
        k: 1024,
        n: 200,
        transpose_a: true,
        transpose_b: false,
    },
    Case {
        name: "nowcast dX = dY.Wt",
        m: 1024,
        k: 200,
        n: 200,
        transpose_a: false,
        transpose_b: true,
    },
    Case { name: "conv im2col", m: 25600, k: 27, n: 200, transpose_a: false, transpose_b: false },
    Case {
        name: "gru input gates",
        m: 1024,
        k: 200,
        n: 600,
        transpose_a: false,
        transpose_b: false,
    },
];

/// Stores operands in the layout the case describes, so a transposed operand is a strided view.
struct Operands<F> {
    a: Array2<F>,
    b: Array2<F>,
    transpose_a: bool,
    transpose_b: bool,
}

impl<F: Scalar> Operands<F> {
    fn new(case: &Case) -> Self {
        let fill = |rows: usize, cols: usize| {
            Array2::from_shape_fn((rows, cols), |(i, j)| {
                F::from_f64_lossy(((i * 7 + j * 13) % 17) as f64 / 17.0 - 0.5)
            })
        };
        let a = if case.transpose_a { fill(case.k, case.m) } else { fill(case.m, case.k) };
        let b = if case.transpose_b { fill(case.n, case.k) } else { fill(case.k, case.n) };
        Self { a, b, transpose_a: case.transpose_a, transpose_b: case.transpose_b }
    }

    fn a(&self) -> ArrayView2<'_, F> {
        if self.transpose_a {
            self.a.t()
        } else {
            self.a.view()
        }
    }

    fn b(&self) -> ArrayView2<'_, F> {
        if self.transpose_b {
            self.b.t()
        } else {
            self.b.view()
        }
    }
}

/// Computes `a · b` with the `gemm` crate directly.
fn gemm_product<F: Scalar>(
    a: &ArrayView2<F>,
    b: &ArrayView2<F>,
    parallelism: Parallelism,
) -> Array2<F> {
    let (m, k) = a.dim();
    let n = b.ncols();
    let mut c = Array2::<F>::zeros((m, n));
    let c_strides = c.strides().to_vec();
    // SAFETY: the pointers and strides come from live ndarray views of shapes (m, k), (k, n) and
    // (m, n), and `c` is not aliased by `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_strides[1],
            c_strides[0],
            false,
            a.as_ptr(),
            a.strides()[1],
            a.strides()[0],
            b.as_ptr(),
            b.strides()[1],
            b.strides()[0],
            F::zero(),
            F::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
    c
}

/// Times `run` and returns the median and best time per call over the repeats.
///
/// Fast cases run many calls per repeat, so each repeat lasts at least a millisecond and the
/// clock's resolution does not matter.
fn time_repeats(repeats: usize, mut run: impl FnMut()) -> (Duration, Duration) {
    let start = Instant::now();
    run();
    run();
    let calls = (Duration::from_millis(2).as_secs_f64() / start.elapsed().as_secs_f64()).ceil();
    let calls = (calls as u32).max(1);

    let mut times: Vec<Duration> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                run();
            }
            start.elapsed() / calls
        })
        .collect();
    times.sort();
    (times[times.len() / 2], times[0])
}

fn gflops(case: &Case, time: Duration) -> f64 {
    2.0 * (case.m * case.k * case.n) as f64 / time.as_secs_f64() / 1e9
}

fn bench_type<F: Scalar>(type_name: &str, repeats: usize, filter: &str) {
    type Engine<F> = (&'static str, fn(&ArrayView2<F>, &ArrayView2<F>) -> Array2<F>);
    let engines: [Engine<F>; 4] = [
        ("ndarray dot", |a, b| a.dot(b)),
        ("gemm serial", |a, b| gemm_product(a, b, Parallelism::None)),
        ("gemm rayon", |a, b| gemm_product(a, b, Parallelism::Rayon(0))),
        ("handgrad matmul", |a, b| matmul(a, b)),
    ];
    // Measure `matmul` as callers get it by default, with serial gemm.
    handgrad_tensor::linalg::set_threading(false);
    for case in CASES.iter().filter(|case| case.name.contains(filter)) {
        let operands = Operands::<F>::new(case);
        let (a, b) = (operands.a(), operands.b());
        for (engine, product) in &engines {
            let (median, best) = time_repeats(repeats, || {
                black_box(product(&a, &b));
            });
            println!(
                "| {type_name} | {} | {}x{}·{}x{} | {engine} | {:.1} | {:.1} |",
                case.name,
                case.m,
                case.k,
                case.k,
                case.n,
                gflops(case, median),
                gflops(case, best)
            );
        }
    }
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "quick");
    // Cargo passes `--bench`, and another argument keeps only the cases whose name contains it.
    let filter = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with("--") && arg != "quick")
        .unwrap_or_default();
    let repeats = if quick { 5 } else { 25 };
    println!("rayon threads: {}, repeats: {repeats}", rayon::current_num_threads());
    println!("| type | case | shape | engine | median GFLOP/s | best GFLOP/s |");
    println!("|---|---|---|---|---:|---:|");
    bench_type::<f32>("f32", repeats, &filter);
    bench_type::<f64>("f64", repeats, &filter);
}
