//! The forward and backward passes written into caller-owned buffers.
//!
//! [`crate::TwoLayerNet::loss`] and the training loop share these functions, so the gradient
//! that the tests check numerically is the gradient that training uses. The training loop keeps
//! one [`Workspace`] for all iterations and allocates nothing per step but the loss's output.

use handgrad_tensor::linalg::gemm_into;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, Zip};

use crate::net::{Gradients, TwoLayerNet};
use crate::{ClassifierError, Result};

/// Intermediate arrays of one forward and backward pass over a batch of `rows` samples.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    /// Hidden pre-activations `z1 = X W1 + b1`, (N, H).
    pub z1: Array2<f64>,
    /// Hidden activations `h1 = max(0, z1)`, (N, H).
    pub h1: Array2<f64>,
    /// Class scores `h1 W2 + b2`, (N, C).
    pub scores: Array2<f64>,
    /// Gradient with respect to `z1`, (N, H).
    pub dz1: Array2<f64>,
}

impl Workspace {
    /// Allocates buffers for batches of `rows` samples through `net`.
    pub fn new(net: &TwoLayerNet, rows: usize) -> Self {
        let hidden = net.hidden_size();
        Self {
            z1: Array2::zeros((rows, hidden)),
            h1: Array2::zeros((rows, hidden)),
            scores: Array2::zeros((rows, net.num_classes())),
            dz1: Array2::zeros((rows, hidden)),
        }
    }
}

/// Computes `c = alpha a b + beta c` with the engine that `handgrad_tensor::linalg` chooses.
fn gemm(
    alpha: f64,
    a: &ArrayView2<'_, f64>,
    b: &ArrayView2<'_, f64>,
    beta: f64,
    c: &mut Array2<f64>,
) {
    // Every caller passes operands shaped from one validated network and batch.
    gemm_into(alpha, a, b, beta, &mut c.view_mut()).expect("operand shapes agree");
}

/// Writes `rows + bias` into every row of `out`, broadcasting the bias.
fn add_bias(out: &mut ArrayViewMut2<'_, f64>, bias: &ArrayView1<'_, f64>) {
    for mut row in out.rows_mut() {
        row += bias;
    }
}

/// Runs the forward pass: fills `z1`, `h1` and `scores` for the rows of `x`.
pub(crate) fn forward(net: &TwoLayerNet, x: &ArrayView2<'_, f64>, ws: &mut Workspace) {
    gemm(1.0, x, &net.w1.view(), 0.0, &mut ws.z1);
    add_bias(&mut ws.z1.view_mut(), &net.b1.view());

    Zip::from(&mut ws.h1).and(&ws.z1).for_each(|h, &z| *h = z.max(0.0));

    second_layer_forward(net, ws);
}

/// Fills `scores = h1 W2 + b2` from `h1`.
pub(crate) fn second_layer_forward(net: &TwoLayerNet, ws: &mut Workspace) {
    gemm(1.0, &ws.h1.view(), &net.w2.view(), 0.0, &mut ws.scores);
    add_bias(&mut ws.scores.view_mut(), &net.b2.view());
}

/// Runs the backward pass from `dscores = dL/dscores` (N, C) and adds the weight decay terms.
///
/// ```text
/// dW2 = h1^T dscores + reg W2      db2 = sum_n dscores[n]
/// dz1 = (dscores W2^T) * [z1 > 0]
/// dW1 = X^T dz1 + reg W1           db1 = sum_n dz1[n]
/// ```
pub(crate) fn backward(
    net: &TwoLayerNet,
    x: &ArrayView2<'_, f64>,
    dscores: &ArrayView2<'_, f64>,
    reg: f64,
    ws: &mut Workspace,
    grads: &mut Gradients,
) {
    backward_to_hidden(net, dscores, reg, ws, grads);

    grads.w1.assign(&net.w1);
    gemm(1.0, &x.t(), &ws.dz1.view(), reg, &mut grads.w1);
}

/// Runs the backward pass down to the hidden pre-activations: fills `dW2`, `db2`, `dz1` and
/// `db1`, leaving `dW1`, which needs the inputs, to the caller.
pub(crate) fn backward_to_hidden(
    net: &TwoLayerNet,
    dscores: &ArrayView2<'_, f64>,
    reg: f64,
    ws: &mut Workspace,
    grads: &mut Gradients,
) {
    grads.w2.assign(&net.w2);
    gemm(1.0, &ws.h1.t(), dscores, reg, &mut grads.w2);
    grads.b2.assign(&dscores.sum_axis(Axis(0)));

    gemm(1.0, dscores, &net.w2.t(), 0.0, &mut ws.dz1);
    // ReLU passes the gradient where z1 > 0; its derivative at 0 is taken as 0. A select
    // rather than a branch, because about half the units are active and a branch would
    // mispredict that often.
    Zip::from(&mut ws.dz1).and(&ws.z1).for_each(|d, &z| *d = if z > 0.0 { *d } else { 0.0 });
    grads.b1.assign(&ws.dz1.sum_axis(Axis(0)));
}

/// Returns `0.5 reg (|W1|^2 + |W2|^2)`.
pub(crate) fn regularization(net: &TwoLayerNet, reg: f64) -> f64 {
    let squares = |w: &Array2<f64>| w.iter().map(|v| v * v).sum::<f64>();
    0.5 * reg * (squares(&net.w1) + squares(&net.w2))
}

/// Returns the index of the largest entry of each row; the first one wins a tie, as
/// `np.argmax` does.
pub(crate) fn argmax_rows(scores: &ArrayView2<'_, f64>) -> Vec<usize> {
    scores
        .rows()
        .into_iter()
        .map(|row| {
            let mut best = 0;
            for (j, &value) in row.iter().enumerate() {
                if value > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// Returns the mean loss over the batch and fills `grads`, with `ws` sized for `x`.
pub(crate) fn loss_and_gradients(
    net: &TwoLayerNet,
    x: &ArrayView2<'_, f64>,
    labels: &[usize],
    reg: f64,
    ws: &mut Workspace,
    grads: &mut Gradients,
) -> Result<f64> {
    forward(net, x, ws);
    let (data_loss, dscores) = handgrad_losses::softmax_cross_entropy(&ws.scores.view(), labels)?;
    backward(net, x, &dscores.view(), reg, ws, grads);
    Ok(data_loss + regularization(net, reg))
}

/// Checks that every entry of `x` is finite.
pub(crate) fn ensure_finite(
    op: &'static str,
    argument: &'static str,
    x: &ArrayView2<'_, f64>,
) -> Result<()> {
    for ((row, column), &value) in x.indexed_iter() {
        if !value.is_finite() {
            return Err(ClassifierError::NonFinite { op, argument, row, column, value });
        }
    }
    Ok(())
}

/// Zero-filled gradients shaped like the parameters of `net`.
pub(crate) fn zero_gradients(net: &TwoLayerNet) -> Gradients {
    Gradients {
        w1: Array2::zeros(net.w1.raw_dim()),
        b1: Array1::zeros(net.b1.raw_dim()),
        w2: Array2::zeros(net.w2.raw_dim()),
        b2: Array1::zeros(net.b2.raw_dim()),
    }
}
