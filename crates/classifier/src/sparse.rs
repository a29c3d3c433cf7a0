//! The first layer's two large products computed from a sparse form of the inputs.
//!
//! Centred MNIST pixels are dense, but each column holds one value far more often than any
//! other: `-mean` wherever the raw pixel is 0, which is about 81 % of the entries. Writing the
//! inputs as `X = S + 1 c^T`, with `c` that most common value per column and `S` sparse,
//!
//! ```text
//! X W1     = S W1 + 1 (c^T W1)
//! X^T dz1  = S^T dz1 + c (1^T dz1)
//! ```
//!
//! so the products cost about a fifth of their dense form. [`OffsetRows`] holds `S` in
//! compressed sparse rows, built once per data set; minibatches are lists of its rows. The
//! inner loops run inside [`pulp::Arch::dispatch`], which compiles them for AVX-512, AVX2 and the
//! baseline and runs the widest set that the processor supports.

use ndarray::{Array1, ArrayView2};
use rayon::prelude::*;

use crate::kernels::{self, Workspace};
use crate::net::{Gradients, TwoLayerNet};
use crate::Result;

/// Largest fraction of stored entries for which the sparse products are used. An estimate, not
/// measured: above it the dense products should be as fast.
pub(crate) const MAX_DENSITY: f64 = 0.4;

/// Matrix rows (minibatch rows forward, rows of `dW1` backward) handled by one rayon task.
const ROWS_PER_TASK: usize = 16;

/// A matrix (N, D) stored as `S + 1 c^T`: per-column offsets `c` and the entries of `S` that
/// are not 0, in compressed sparse rows.
#[derive(Debug, Clone)]
pub(crate) struct OffsetRows {
    /// `c`, (D).
    offsets: Array1<f64>,
    /// Row `i` owns entries `row_starts[i]..row_starts[i + 1]`.
    row_starts: Vec<usize>,
    /// Column of each stored entry.
    columns: Vec<u32>,
    /// `x[i, j] - c[j]` of each stored entry.
    values: Vec<f64>,
}

impl OffsetRows {
    /// Stores `x` against `offsets`, keeping the entries that differ from their column's offset.
    pub fn new(x: &ArrayView2<'_, f64>, offsets: Array1<f64>) -> Self {
        let mut row_starts = Vec::with_capacity(x.nrows() + 1);
        let mut columns = Vec::new();
        let mut values = Vec::new();
        row_starts.push(0);
        for row in x.rows() {
            for ((column, &value), &offset) in row.iter().enumerate().zip(&offsets) {
                if value != offset {
                    columns.push(column as u32);
                    values.push(value - offset);
                }
            }
            row_starts.push(values.len());
        }
        Self { offsets, row_starts, columns, values }
    }

    /// Fraction of the entries of `S` that are stored.
    pub fn density(&self) -> f64 {
        let total = (self.row_starts.len() - 1) * self.offsets.len();
        self.values.len() as f64 / total.max(1) as f64
    }

    /// The stored columns and values of row `i`.
    fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let range = self.row_starts[i]..self.row_starts[i + 1];
        (&self.columns[range.clone()], &self.values[range])
    }
}

/// Returns, for each column of `x`, the most frequent of three candidates: the value that the
/// Boyer-Moore majority vote finds, the column's minimum, and 0.
///
/// Any offsets give the same products; frequent ones leave fewer entries to store. A value held
/// by more than half a column is always found; the minimum catches the value of the raw pixel
/// 0 in centred images where it fills less than half a column; 0 leaves uncentred data as it
/// is. Values are compared bit for bit.
pub(crate) fn common_offsets(x: &ArrayView2<'_, f64>) -> Array1<f64> {
    let columns = x.ncols();
    let mut majority = vec![0.0f64; columns];
    let mut votes = vec![0usize; columns];
    let mut minimum = vec![f64::INFINITY; columns];
    for row in x.rows() {
        let columns = majority.iter_mut().zip(&mut votes).zip(&mut minimum);
        for (&value, ((candidate, vote), low)) in row.iter().zip(columns) {
            *low = low.min(value);
            if *vote == 0 {
                *candidate = value;
                *vote = 1;
            } else if value.to_bits() == candidate.to_bits() {
                *vote += 1;
            } else {
                *vote -= 1;
            }
        }
    }

    let candidates: Vec<[f64; 3]> =
        majority.iter().zip(&minimum).map(|(&m, &low)| [m, low, 0.0]).collect();
    let mut counts = vec![[0usize; 3]; columns];
    for row in x.rows() {
        for ((&value, candidate), count) in row.iter().zip(&candidates).zip(&mut counts) {
            for (c, n) in candidate.iter().zip(count.iter_mut()) {
                *n += usize::from(value.to_bits() == c.to_bits());
            }
        }
    }
    let most_frequent = |(candidate, count): (&[f64; 3], &[usize; 3])| {
        let best = (0..3).max_by_key(|&k| (count[k], std::cmp::Reverse(k))).unwrap_or(2);
        candidate[best]
    };
    candidates.iter().zip(&counts).map(most_frequent).collect()
}

/// Buffers of the sparse passes, reused by every iteration.
#[derive(Debug, Clone)]
pub(crate) struct SparseWorkspace {
    /// `b1 + c^T W1`, (H): the hidden pre-activation of a row whose `S` row is empty.
    base: Array1<f64>,
    /// The minibatch's entries sorted by column: column `j` owns
    /// `column_starts[j]..column_starts[j + 1]` of `batch_rows` and `batch_values`.
    column_starts: Vec<usize>,
    batch_rows: Vec<u32>,
    batch_values: Vec<f64>,
}

impl SparseWorkspace {
    /// Allocates buffers for `net`.
    pub fn new(net: &TwoLayerNet) -> Self {
        Self {
            base: Array1::zeros(net.hidden_size()),
            column_starts: vec![0; net.input_size() + 1],
            batch_rows: Vec::new(),
            batch_values: Vec::new(),
        }
    }
}

/// Whether the sparse passes can read the parameters and buffers as contiguous rows.
pub(crate) fn layouts_fit(net: &TwoLayerNet) -> bool {
    net.w1.is_standard_layout() && net.w2.is_standard_layout()
}

/// Runs the forward pass over rows `rows` of `x`: fills `z1`, `h1` and `scores` of `ws`, which
/// must have `rows.len()` rows.
pub(crate) fn forward(
    net: &TwoLayerNet,
    x: &OffsetRows,
    rows: &[usize],
    ws: &mut Workspace,
    sparse: &mut SparseWorkspace,
) {
    let w1 = net.w1.as_slice().expect("layouts_fit checked");
    let hidden = net.hidden_size();
    sparse.base.assign(&net.b1);
    let base = sparse.base.as_slice_mut().expect("owned vector");
    pulp::Arch::new().dispatch(|| {
        for (&offset, w1_row) in x.offsets.iter().zip(w1.chunks_exact(hidden)) {
            if offset != 0.0 {
                axpy(base, offset, w1_row);
            }
        }
    });

    let base = sparse.base.as_slice().expect("owned vector");
    let z1 = ws.z1.as_slice_mut().expect("owned matrix");
    let h1 = ws.h1.as_slice_mut().expect("owned matrix");
    let tasks =
        z1.par_chunks_mut(hidden * ROWS_PER_TASK).zip(h1.par_chunks_mut(hidden * ROWS_PER_TASK));
    tasks.zip(rows.par_chunks(ROWS_PER_TASK)).for_each(|((z1, h1), rows)| {
        pulp::Arch::new().dispatch(|| {
            let pairs = z1.chunks_exact_mut(hidden).zip(h1.chunks_exact_mut(hidden));
            for ((z, h), &row) in pairs.zip(rows) {
                z.copy_from_slice(base);
                let (columns, values) = x.row(row);
                gather_rows(z, columns, values, w1, hidden);
                for (h, &z) in h.iter_mut().zip(z.iter()) {
                    *h = z.max(0.0);
                }
            }
        });
    });

    kernels::second_layer_forward(net, ws);
}

/// Returns the mean loss over rows `rows` of `x` with labels `labels` and fills `grads`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn loss_and_gradients(
    net: &TwoLayerNet,
    x: &OffsetRows,
    rows: &[usize],
    labels: &[usize],
    reg: f64,
    ws: &mut Workspace,
    sparse: &mut SparseWorkspace,
    grads: &mut Gradients,
) -> Result<f64> {
    forward(net, x, rows, ws, sparse);
    let (data_loss, dscores) = handgrad_losses::softmax_cross_entropy(&ws.scores.view(), labels)?;
    kernels::backward_to_hidden(net, &dscores.view(), reg, ws, grads);
    first_layer_weight_gradient(net, x, rows, reg, ws, sparse, grads);
    Ok(data_loss + kernels::regularization(net, reg))
}

/// Sets `dW1 = S^T dz1 + c db1^T + reg W1`, with `db1 = 1^T dz1` already in `grads`.
fn first_layer_weight_gradient(
    net: &TwoLayerNet,
    x: &OffsetRows,
    rows: &[usize],
    reg: f64,
    ws: &Workspace,
    sparse: &mut SparseWorkspace,
    grads: &mut Gradients,
) {
    sort_by_column(x, rows, sparse);

    let hidden = net.hidden_size();
    let w1 = net.w1.as_slice().expect("layouts_fit checked");
    let dz1 = ws.dz1.as_slice().expect("owned matrix");
    let db1 = grads.b1.as_slice().expect("owned vector");
    let dw1 = grads.w1.as_slice_mut().expect("owned matrix");
    let sparse = &*sparse;
    let tasks =
        dw1.par_chunks_mut(hidden * ROWS_PER_TASK).zip(w1.par_chunks(hidden * ROWS_PER_TASK));
    tasks.enumerate().for_each(|(task, (dw1, w1))| {
        pulp::Arch::new().dispatch(|| {
            let first = task * ROWS_PER_TASK;
            let pairs = dw1.chunks_exact_mut(hidden).zip(w1.chunks_exact(hidden));
            for (j, (dw, w)) in (first..).zip(pairs) {
                let offset = x.offsets[j];
                for ((d, &w), &g) in dw.iter_mut().zip(w).zip(db1) {
                    *d = reg * w + offset * g;
                }
                let range = sparse.column_starts[j]..sparse.column_starts[j + 1];
                let (batch_rows, values) =
                    (&sparse.batch_rows[range.clone()], &sparse.batch_values[range]);
                gather_rows(dw, batch_rows, values, dz1, hidden);
            }
        });
    });
}

/// Lists the minibatch's stored entries column by column (a counting sort), so that each row
/// of `dW1` can be summed by one task.
fn sort_by_column(x: &OffsetRows, rows: &[usize], sparse: &mut SparseWorkspace) {
    let starts = &mut sparse.column_starts;
    starts.iter_mut().for_each(|start| *start = 0);
    for &row in rows {
        for &column in x.row(row).0 {
            starts[column as usize + 1] += 1;
        }
    }
    for j in 1..starts.len() {
        starts[j] += starts[j - 1];
    }

    let total = starts[starts.len() - 1];
    sparse.batch_rows.resize(total, 0);
    sparse.batch_values.resize(total, 0.0);
    // `starts[j]` walks through column j's slots and ends at the start of column j + 1.
    for (batch_row, &row) in rows.iter().enumerate() {
        let (columns, values) = x.row(row);
        for (&column, &value) in columns.iter().zip(values) {
            let slot = &mut starts[column as usize];
            sparse.batch_rows[*slot] = batch_row as u32;
            sparse.batch_values[*slot] = value;
            *slot += 1;
        }
    }
    starts.rotate_right(1);
    starts[0] = 0;
}

/// Adds `sum_k values[k] * matrix[indices[k], ..]` to `out`, four rows of `matrix` per pass
/// over `out` so that `out` is loaded and stored a quarter as often.
#[inline(always)]
fn gather_rows(out: &mut [f64], indices: &[u32], values: &[f64], matrix: &[f64], width: usize) {
    let row = |k: usize| {
        let start = indices[k] as usize * width;
        &matrix[start..start + width]
    };
    let quads = indices.len() / 4 * 4;
    for k in (0..quads).step_by(4) {
        let (r0, r1, r2, r3) = (row(k), row(k + 1), row(k + 2), row(k + 3));
        let (v0, v1, v2, v3) = (values[k], values[k + 1], values[k + 2], values[k + 3]);
        let rows = r0.iter().zip(r1).zip(r2).zip(r3);
        for (o, (((&a, &b), &c), &d)) in out.iter_mut().zip(rows) {
            *o += v0 * a + v1 * b + v2 * c + v3 * d;
        }
    }
    for (&index, &value) in indices[quads..].iter().zip(&values[quads..]) {
        let start = index as usize * width;
        axpy(out, value, &matrix[start..start + width]);
    }
}

/// `out += alpha * row`.
#[inline(always)]
fn axpy(out: &mut [f64], alpha: f64, row: &[f64]) {
    for (o, &r) in out.iter_mut().zip(row) {
        *o += alpha * r;
    }
}

/// Returns `X` rebuilt from its sparse form, for tests.
#[cfg(test)]
pub(crate) fn to_dense(x: &OffsetRows) -> ndarray::Array2<f64> {
    let (rows, columns) = (x.row_starts.len() - 1, x.offsets.len());
    let mut dense = ndarray::Array2::zeros((rows, columns));
    for (i, mut out) in dense.rows_mut().into_iter().enumerate() {
        out.assign(&x.offsets);
        let (stored, values) = x.row(i);
        for (&j, &v) in stored.iter().zip(values) {
            out[j as usize] += v;
        }
    }
    dense
}

#[cfg(test)]
mod tests {
    use handgrad_tensor::rng::NumpyRng;
    use ndarray::{Array2, Ix2};
    use proptest::prelude::*;

    use super::*;

    /// Largest norm-wise relative difference accepted between the sparse and dense results;
    /// only the order of the additions differs.
    const TOLERANCE: f64 = 1e-12;

    /// `|a - b| / |b|` in the Frobenius norm, with `|b| = 0` compared absolutely.
    fn relative<D: ndarray::Dimension>(
        a: &ndarray::Array<f64, D>,
        b: &ndarray::Array<f64, D>,
    ) -> f64 {
        let diff = a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f64>().sqrt();
        let norm = b.iter().map(|q| q * q).sum::<f64>().sqrt();
        if norm == 0.0 {
            diff
        } else {
            diff / norm
        }
    }

    /// Compares the sparse loss and gradients on rows `rows` of `x` with the dense ones.
    fn compare(net: &TwoLayerNet, x: &Array2<f64>, rows: &[usize], labels: &[usize], reg: f64) {
        let batch = x.select(ndarray::Axis(0), rows);
        let mut dense_ws = Workspace::new(net, rows.len());
        let mut dense = kernels::zero_gradients(net);
        let dense_loss =
            kernels::loss_and_gradients(net, &batch.view(), labels, reg, &mut dense_ws, &mut dense)
                .unwrap();

        let stored = OffsetRows::new(&x.view(), common_offsets(&x.view()));
        // `c + (x - c)` may differ from `x` in the last bit.
        assert!(relative(&to_dense(&stored), x) < 1e-15);
        let mut ws = Workspace::new(net, rows.len());
        let mut sparse_ws = SparseWorkspace::new(net);
        let mut grads = kernels::zero_gradients(net);
        let loss = loss_and_gradients(
            net,
            &stored,
            rows,
            labels,
            reg,
            &mut ws,
            &mut sparse_ws,
            &mut grads,
        )
        .unwrap();

        assert!((loss - dense_loss).abs() <= TOLERANCE * dense_loss.abs(), "{loss} {dense_loss}");
        assert!(relative(&ws.scores, &dense_ws.scores) < TOLERANCE, "scores");
        assert!(relative(&grads.w1, &dense.w1) < TOLERANCE, "w1");
        assert!(relative(&grads.b1, &dense.b1) < TOLERANCE, "b1");
        assert!(relative(&grads.w2, &dense.w2) < TOLERANCE, "w2");
        assert!(relative(&grads.b2, &dense.b2) < TOLERANCE, "b2");
    }

    #[test]
    fn offsets_are_the_most_frequent_candidate() {
        let x = ndarray::array![
            [1.5, 2.0, 7.0, 0.0],
            [1.5, 3.0, 7.0, -1.0],
            [4.0, -2.0, 8.0, 0.0],
            [1.5, -2.0, 9.0, 0.0],
            [1.5, 5.0, 10.0, 0.0],
        ];
        // Column 1: -2 is the minimum and fills two of five rows; column 2: no value repeats
        // more than 7.0, which is also the minimum.
        assert_eq!(common_offsets(&x.view()).to_vec(), vec![1.5, -2.0, 7.0, 0.0]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn sparse_passes_match_dense(
            (samples, input, hidden, classes) in (1usize..24, 1usize..40, 1usize..20, 2usize..6),
            (batch, density, reg, seed) in (1usize..30, 0.0f64..0.6, 0.0f64..0.5, any::<u32>()),
        ) {
            let mut rng = NumpyRng::new(seed);
            let mut net = TwoLayerNet::init(input, hidden, classes, 0.5, &mut rng).unwrap();
            net.b1 = Array1::from_iter((0..hidden).map(|_| rng.standard_normal()));
            let offsets: Vec<f64> = (0..input).map(|_| rng.standard_normal() * 50.0).collect();
            let values = rng.randn(&[samples, input]).into_dimensionality::<Ix2>().unwrap();
            let x = Array2::from_shape_fn((samples, input), |(i, j)| {
                if rng.random_sample() < density { offsets[j] + 50.0 * values[[i, j]] } else { offsets[j] }
            });
            let rows: Vec<usize> = rng.choice(samples, batch);
            let labels: Vec<usize> = (0..batch).map(|_| rng.randint(classes as u64) as usize).collect();
            compare(&net, &x, &rows, &labels, reg);
        }
    }

    #[test]
    #[allow(clippy::print_stderr)]
    fn sparse_passes_match_dense_on_mnist() {
        let Some(shared) = handgrad_data::testing::shared_dir() else {
            eprintln!("skipping: shared folder not found");
            return;
        };
        let mnist = handgrad_data::mnist::Mnist::load(&shared.join("data/mnist-t10k")).unwrap();
        let features = crate::mnist::MnistFeatures::from_mnist(&mnist);
        let x = features.train.x;
        let stored = OffsetRows::new(&x.view(), common_offsets(&x.view()));
        assert!(stored.density() < 0.2, "density {}", stored.density());

        let mut rng = NumpyRng::new(3);
        let mut net = TwoLayerNet::init(784, 40, 10, 1e-3, &mut rng).unwrap();
        net.b1 = Array1::from_iter((0..40).map(|_| rng.standard_normal() * 0.1));
        let rows = rng.choice(x.nrows(), 200);
        let labels: Vec<usize> = rows.iter().map(|&i| features.train.y[i]).collect();
        compare(&net, &x, &rows, &labels, 0.01);
    }
}
