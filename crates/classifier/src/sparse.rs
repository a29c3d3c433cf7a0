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

/// Runs `kernel` compiled for the widest instruction set that the processor supports.
///
/// `pulp` compiles only what is inlined into [`pulp::WithSimd::with_simd`] for each instruction
/// set. A closure's body is not inlined there (it stays baseline SSE2 code), so every kernel is a
/// struct whose `with_simd` is `#[inline(always)]`, as are the helpers it calls.
fn vectorized<K: pulp::WithSimd>(kernel: K) -> K::Output {
    pulp::Arch::new().dispatch(kernel)
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
    vectorized(OffsetProduct { base, offsets: x.offsets.as_slice().expect("owned"), w1, hidden });

    let base = sparse.base.as_slice().expect("owned vector");
    let z1 = ws.z1.as_slice_mut().expect("owned matrix");
    let h1 = ws.h1.as_slice_mut().expect("owned matrix");
    let tasks =
        z1.par_chunks_mut(hidden * ROWS_PER_TASK).zip(h1.par_chunks_mut(hidden * ROWS_PER_TASK));
    tasks.zip(rows.par_chunks(ROWS_PER_TASK)).for_each(|((z1, h1), rows)| {
        vectorized(HiddenRows { x, rows, base, w1, hidden, z1, h1 });
    });

    kernels::second_layer_forward(net, ws);
}

/// `base += sum_j offsets[j] W1[j, ..]`: the hidden pre-activation shared by every row.
struct OffsetProduct<'a> {
    base: &'a mut [f64],
    offsets: &'a [f64],
    w1: &'a [f64],
    hidden: usize,
}

impl pulp::WithSimd for OffsetProduct<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for (&offset, w1_row) in self.offsets.iter().zip(self.w1.chunks_exact(self.hidden)) {
            if offset != 0.0 {
                axpy(self.base, offset, w1_row);
            }
        }
    }
}

/// `z1 = base + S[rows] W1` and `h1 = max(0, z1)` for one task's rows.
struct HiddenRows<'a> {
    x: &'a OffsetRows,
    rows: &'a [usize],
    base: &'a [f64],
    w1: &'a [f64],
    hidden: usize,
    z1: &'a mut [f64],
    h1: &'a mut [f64],
}

impl pulp::WithSimd for HiddenRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let hidden = self.hidden;
        let pairs = self.z1.chunks_exact_mut(hidden).zip(self.h1.chunks_exact_mut(hidden));
        for ((z, h), &row) in pairs.zip(self.rows) {
            z.copy_from_slice(self.base);
            let (columns, values) = self.x.row(row);
            gather_rows(z, columns, values, self.w1, hidden);
            for (h, &z) in h.iter_mut().zip(z.iter()) {
                *h = z.max(0.0);
            }
        }
    }
}

/// Rows `rows` of a sparse data set `x`, with their labels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Minibatch<'a> {
    /// The whole data set.
    pub x: &'a OffsetRows,
    /// Indices of the drawn rows, repeats allowed.
    pub rows: &'a [usize],
    /// Label of each drawn row.
    pub labels: &'a [usize],
}

/// Returns the mean loss over `batch` and fills `grads`.
///
/// Training steps `W1` inside [`step_first_layer`] instead; the tests compare both with the
/// dense passes.
#[cfg(test)]
pub(crate) fn loss_and_gradients(
    net: &TwoLayerNet,
    batch: Minibatch<'_>,
    reg: f64,
    ws: &mut Workspace,
    sparse: &mut SparseWorkspace,
    grads: &mut Gradients,
) -> Result<f64> {
    let data_loss = backward_to_hidden(net, batch, reg, ws, sparse, grads)?;

    let hidden = net.hidden_size();
    let w1 = net.w1.as_slice().expect("layouts_fit checked");
    let dw1 = grads.w1.as_slice_mut().expect("owned matrix");
    let db1 = grads.b1.as_slice().expect("owned vector");
    let pass = FirstLayerPass::new(batch.x, ws, sparse, db1, reg);
    let tasks =
        dw1.par_chunks_mut(hidden * ROWS_PER_TASK).zip(w1.par_chunks(hidden * ROWS_PER_TASK));
    tasks.enumerate().for_each(|(task, (dw1, w1))| {
        vectorized(GradientRows { pass: &pass, first: task * ROWS_PER_TASK, dw1, w1 });
    });
    Ok(data_loss + kernels::regularization(net, reg))
}

/// Runs the forward pass and the backward pass down to the hidden layer: fills `dW2`, `db2`,
/// `db1`, `ws.dz1`, and lists the minibatch's entries by column. Returns the mean data loss.
fn backward_to_hidden(
    net: &TwoLayerNet,
    batch: Minibatch<'_>,
    reg: f64,
    ws: &mut Workspace,
    sparse: &mut SparseWorkspace,
    grads: &mut Gradients,
) -> Result<f64> {
    let Minibatch { x, rows, labels } = batch;
    forward(net, x, rows, ws, sparse);
    let (data_loss, dscores) = handgrad_losses::softmax_cross_entropy(&ws.scores.view(), labels)?;
    kernels::backward_to_hidden(net, &dscores.view(), reg, ws, grads);
    sort_by_column(x, rows, sparse);
    Ok(data_loss)
}

/// One SGD step of the first-layer weights, `W1 -= learning_rate * step`, where `step` is the
/// gradient or, with momentum, `v = momentum v + gradient`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Update {
    pub learning_rate: f64,
    pub momentum: f64,
}

/// Computes the loss and gradients over `batch` and steps `W1` in the same pass, row by row,
/// without storing `dW1`. The other gradients land in `grads` for the caller to apply.
///
/// `w1_squares` must be `|W1|^2` of the current weights and is set to that of the updated
/// ones. `velocity` is the momentum buffer of `W1` when `update.momentum > 0`. Returns the loss
/// before the step; when it is not finite, nothing is updated.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step_first_layer(
    net: &mut TwoLayerNet,
    batch: Minibatch<'_>,
    reg: f64,
    update: Update,
    w1_squares: &mut f64,
    velocity: Option<&mut ndarray::Array2<f64>>,
    ws: &mut Workspace,
    sparse: &mut SparseWorkspace,
    grads: &mut Gradients,
) -> Result<f64> {
    let data_loss = backward_to_hidden(net, batch, reg, ws, sparse, grads)?;
    let w2_squares = net.w2.iter().map(|v| v * v).sum::<f64>();
    let loss = data_loss + 0.5 * reg * (*w1_squares + w2_squares);
    if !loss.is_finite() {
        return Ok(loss);
    }

    let hidden = net.hidden_size();
    let chunk = hidden * ROWS_PER_TASK;
    let w1 = net.w1.as_slice_mut().expect("layouts_fit checked");
    let db1 = grads.b1.as_slice().expect("owned vector");
    let pass = FirstLayerPass::new(batch.x, ws, sparse, db1, reg);
    let velocity = velocity.map(|v| v.as_slice_mut().expect("owned matrix"));
    let velocity_chunks = velocity.into_iter().flat_map(|v| v.chunks_mut(chunk).map(Some));
    let mut tasks: Vec<(&mut [f64], Option<&mut [f64]>)> =
        w1.chunks_mut(chunk).zip(velocity_chunks.chain(std::iter::repeat_with(|| None))).collect();
    let squares: Vec<f64> = tasks
        .par_iter_mut()
        .enumerate()
        .map_init(
            || vec![0.0; hidden],
            |scratch, (task, (w1, velocity))| {
                let first = task * ROWS_PER_TASK;
                let velocity = velocity.as_deref_mut();
                vectorized(UpdateRows { pass: &pass, first, w1, velocity, scratch, update })
            },
        )
        .collect();
    // Summed in task order, so the result does not depend on the thread count.
    *w1_squares = squares.iter().sum();
    Ok(loss)
}

/// Inputs that every row of the first-layer weight gradient reads:
/// `dW1[j] = reg W1[j] + c[j] db1 + sum over column j of S[b, j] dz1[b]`.
struct FirstLayerPass<'a> {
    offsets: &'a [f64],
    column_starts: &'a [usize],
    batch_rows: &'a [u32],
    batch_values: &'a [f64],
    dz1: &'a [f64],
    db1: &'a [f64],
    reg: f64,
}

impl<'a> FirstLayerPass<'a> {
    fn new(
        x: &'a OffsetRows,
        ws: &'a Workspace,
        sparse: &'a SparseWorkspace,
        db1: &'a [f64],
        reg: f64,
    ) -> Self {
        Self {
            offsets: x.offsets.as_slice().expect("owned vector"),
            column_starts: &sparse.column_starts,
            batch_rows: &sparse.batch_rows,
            batch_values: &sparse.batch_values,
            dz1: ws.dz1.as_slice().expect("owned matrix"),
            db1,
            reg,
        }
    }

    /// Writes `dW1[j]` into `out`, given `w = W1[j]`.
    #[inline(always)]
    fn gradient_row(&self, j: usize, w: &[f64], out: &mut [f64]) {
        let offset = self.offsets[j];
        for ((d, &w), &g) in out.iter_mut().zip(w).zip(self.db1) {
            *d = self.reg * w + offset * g;
        }
        let range = self.column_starts[j]..self.column_starts[j + 1];
        let (rows, values) = (&self.batch_rows[range.clone()], &self.batch_values[range]);
        gather_rows(out, rows, values, self.dz1, self.db1.len());
    }
}

/// `dW1` for one task's rows, starting at row `first`.
#[cfg(test)]
struct GradientRows<'a> {
    pass: &'a FirstLayerPass<'a>,
    first: usize,
    dw1: &'a mut [f64],
    w1: &'a [f64],
}

#[cfg(test)]
impl pulp::WithSimd for GradientRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let hidden = self.pass.db1.len();
        let pairs = self.dw1.chunks_exact_mut(hidden).zip(self.w1.chunks_exact(hidden));
        for (j, (dw, w)) in (self.first..).zip(pairs) {
            self.pass.gradient_row(j, w, dw);
        }
    }
}

/// The SGD step of one task's rows of `W1`; returns `|W1|^2` of the updated rows.
struct UpdateRows<'a> {
    pass: &'a FirstLayerPass<'a>,
    first: usize,
    w1: &'a mut [f64],
    velocity: Option<&'a mut [f64]>,
    scratch: &'a mut [f64],
    update: Update,
}

impl pulp::WithSimd for UpdateRows<'_> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(mut self, _simd: S) -> f64 {
        let hidden = self.pass.db1.len();
        let Update { learning_rate, momentum } = self.update;
        let mut squares = [0.0; LANES];
        for (row, w) in self.w1.chunks_exact_mut(hidden).enumerate() {
            self.pass.gradient_row(self.first + row, w, self.scratch);
            let step: &[f64] = match self.velocity.as_deref_mut() {
                Some(velocity) => {
                    let v = &mut velocity[row * hidden..(row + 1) * hidden];
                    for (v, &g) in v.iter_mut().zip(self.scratch.iter()) {
                        *v = momentum * *v + g;
                    }
                    v
                }
                None => &*self.scratch,
            };
            descend(w, step, learning_rate, &mut squares);
        }
        squares.iter().sum()
    }
}

/// Lists the minibatch's stored entries column by column (a counting sort), so that each row
/// of `dW1` can be summed by one task.
fn sort_by_column(x: &OffsetRows, rows: &[usize], sparse: &mut SparseWorkspace) {
    let SparseWorkspace { column_starts: starts, batch_rows, batch_values, .. } = sparse;
    starts.fill(0);
    for &row in rows {
        for &column in x.row(row).0 {
            starts[column as usize + 1] += 1;
        }
    }
    for j in 1..starts.len() {
        starts[j] += starts[j - 1];
    }

    let total = starts[starts.len() - 1];
    batch_rows.resize(total, 0);
    batch_values.resize(total, 0.0);
    // Plain slices, so that the loop below keeps their lengths in registers.
    let (slots, batch_rows, batch_values) =
        (&mut starts[..], &mut batch_rows[..], &mut batch_values[..]);
    // `slots[j]` walks through column j's slots and ends at the start of column j + 1.
    for (batch_row, &row) in rows.iter().enumerate() {
        let (columns, values) = x.row(row);
        for (&column, &value) in columns.iter().zip(values) {
            let slot = &mut slots[column as usize];
            batch_rows[*slot] = batch_row as u32;
            batch_values[*slot] = value;
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

/// Lanes of the partial sums in [`descend`]: eight `f64` fill one AVX-512 register.
const LANES: usize = 8;

/// Sets `w -= learning_rate * step` and adds the squares of the new `w` to `squares`, lane by
/// lane so that the sum vectorizes (a single running sum would have to be added in order).
#[inline(always)]
fn descend(w: &mut [f64], step: &[f64], learning_rate: f64, squares: &mut [f64; LANES]) {
    let mut w_chunks = w.chunks_exact_mut(LANES);
    let mut step_chunks = step.chunks_exact(LANES);
    for (w, step) in (&mut w_chunks).zip(&mut step_chunks) {
        for ((w, &s), sum) in w.iter_mut().zip(step).zip(squares.iter_mut()) {
            *w -= learning_rate * s;
            *sum += *w * *w;
        }
    }
    let rest = w_chunks.into_remainder().iter_mut().zip(step_chunks.remainder());
    for ((w, &s), sum) in rest.zip(squares.iter_mut()) {
        *w -= learning_rate * s;
        *sum += *w * *w;
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

    /// Runs the dense passes on rows `rows` of `x` and returns the loss, the gradients and the
    /// buffers.
    fn dense_pass(
        net: &TwoLayerNet,
        x: &Array2<f64>,
        rows: &[usize],
        labels: &[usize],
        reg: f64,
    ) -> (f64, Gradients, Workspace) {
        let batch = x.select(ndarray::Axis(0), rows);
        let mut ws = Workspace::new(net, rows.len());
        let mut grads = kernels::zero_gradients(net);
        let loss =
            kernels::loss_and_gradients(net, &batch.view(), labels, reg, &mut ws, &mut grads)
                .unwrap();
        (loss, grads, ws)
    }

    /// Compares the sparse loss and gradients on rows `rows` of `x` with the dense ones.
    fn compare(net: &TwoLayerNet, x: &Array2<f64>, rows: &[usize], labels: &[usize], reg: f64) {
        let (dense_loss, dense, dense_ws) = dense_pass(net, x, rows, labels, reg);

        let stored = OffsetRows::new(&x.view(), common_offsets(&x.view()));
        // `c + (x - c)` may differ from `x` in the last bit.
        assert!(relative(&to_dense(&stored), x) < 1e-15);
        let mut ws = Workspace::new(net, rows.len());
        let mut sparse_ws = SparseWorkspace::new(net);
        let mut grads = kernels::zero_gradients(net);
        let batch = Minibatch { x: &stored, rows, labels };
        let loss =
            loss_and_gradients(net, batch, reg, &mut ws, &mut sparse_ws, &mut grads).unwrap();

        assert!((loss - dense_loss).abs() <= TOLERANCE * dense_loss.abs(), "{loss} {dense_loss}");
        assert!(relative(&ws.scores, &dense_ws.scores) < TOLERANCE, "scores");
        assert!(relative(&grads.w1, &dense.w1) < TOLERANCE, "w1");
        assert!(relative(&grads.b1, &dense.b1) < TOLERANCE, "b1");
        assert!(relative(&grads.w2, &dense.w2) < TOLERANCE, "w2");
        assert!(relative(&grads.b2, &dense.b2) < TOLERANCE, "b2");
    }

    /// Compares one fused SGD step of `W1` with the dense gradient applied by hand.
    fn compare_step(
        net: &TwoLayerNet,
        x: &Array2<f64>,
        rows: &[usize],
        labels: &[usize],
        reg: f64,
    ) {
        let update = Update { learning_rate: 0.3, momentum: 0.9 };
        let (dense_loss, dense, _) = dense_pass(net, x, rows, labels, reg);
        let old_velocity = net.w1.mapv(|w| (w * 7.0).sin());
        let velocity = &old_velocity * update.momentum + &dense.w1;
        let stepped = &net.w1 - &(&velocity * update.learning_rate);

        let stored = OffsetRows::new(&x.view(), common_offsets(&x.view()));
        for with_momentum in [false, true] {
            let mut fused = net.clone();
            let mut squares = net.w1.iter().map(|v| v * v).sum::<f64>();
            let mut fused_velocity = old_velocity.clone();
            let (update, velocity_buffer, expected) = if with_momentum {
                (update, Some(&mut fused_velocity), stepped.clone())
            } else {
                let plain = Update { momentum: 0.0, ..update };
                (plain, None, &net.w1 - &(&dense.w1 * update.learning_rate))
            };
            let mut ws = Workspace::new(net, rows.len());
            let mut sparse_ws = SparseWorkspace::new(net);
            let mut grads = kernels::zero_gradients(net);
            let loss = step_first_layer(
                &mut fused,
                Minibatch { x: &stored, rows, labels },
                reg,
                update,
                &mut squares,
                velocity_buffer,
                &mut ws,
                &mut sparse_ws,
                &mut grads,
            )
            .unwrap();

            assert!(
                (loss - dense_loss).abs() <= TOLERANCE * dense_loss.abs(),
                "{loss} {dense_loss}"
            );
            assert!(relative(&fused.w1, &expected) < TOLERANCE, "w1, momentum {with_momentum}");
            if with_momentum {
                assert!(relative(&fused_velocity, &velocity) < TOLERANCE, "velocity");
            }
            let new_squares = fused.w1.iter().map(|v| v * v).sum::<f64>();
            assert!((squares - new_squares).abs() <= TOLERANCE * new_squares.max(1e-300));
            assert_eq!(fused.b1, net.b1, "only W1 is stepped");
            assert!(relative(&grads.b1, &dense.b1) < TOLERANCE, "b1");
            assert!(relative(&grads.w2, &dense.w2) < TOLERANCE, "w2");
        }
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
            compare_step(&net, &x, &rows, &labels, reg);
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
        compare_step(&net, &x, &rows, &labels, 0.01);
    }
}
