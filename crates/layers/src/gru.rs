//! Single-layer, batch-first gated recurrent unit with PyTorch's `nn.GRU` equations and full
//! backpropagation through time.

use handgrad_tensor::{Param, Scalar};
use std::any::TypeId;

use ndarray::{
    s, Array2, Array3, ArrayD, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, Ix2,
    Ix3, Zip,
};

use crate::init::{seeded_rng, uniform};
use crate::kernels::{column_sums, gemm_split, product, to_matrix};
use crate::{
    check_grad_shape, checked_product, config_error, no_cache_error, shape_error, Layer, Mode,
    Result,
};

const NAME: &str = "gru";

/// Gated recurrent unit over a batch-first sequence, as PyTorch's
/// `nn.GRU(input_size, hidden_size, batch_first=True)` with one layer and h₀ = 0:
///
/// ```text
/// r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)
/// z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)
/// n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))
/// h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}
/// ```
///
/// Shapes: input (N, T, D), output every hidden state (N, T, H). Parameters, with the gates
/// stacked in the order r, z, n as in PyTorch: `weight_ih_l0` (3H, D), `weight_hh_l0` (3H, H),
/// `bias_ih_l0` (3H), `bias_hh_l0` (3H).
///
/// The input projections of all T steps are one (N·T, D)·(D, 3H) product; each step then needs
/// one (N, H)·(H, 3H) product. Backward runs backpropagation through time from t = T − 1 down to
/// 0, carrying dL/dh_t, and again gathers the weight gradients into single products. The
/// derivation is in `docs/layers-gru.md`.
///
/// # Errors
///
/// [`LayerError::Config`](crate::LayerError::Config) for a zero size;
/// [`LayerError::Shape`](crate::LayerError::Shape) for an input that is not (N, T, D) or a
/// gradient not shaped like the output;
/// [`LayerError::NoForwardCache`](crate::LayerError::NoForwardCache) for `backward` without a
/// training-mode `forward`.
///
/// # Example
///
/// ```
/// use handgrad_layers::{Gru, Layer, Mode};
/// use ndarray::ArrayD;
///
/// let mut gru = Gru::<f32>::new(75, 200, 0)?;
/// let y = gru.forward(&ArrayD::zeros(vec![4, 5, 75]), Mode::Train)?;
/// assert_eq!(y.shape(), &[4, 5, 200]);
///
/// let dx = gru.backward(&ArrayD::ones(vec![4, 5, 200]))?;
/// assert_eq!(dx.shape(), &[4, 5, 75]);
/// # Ok::<(), handgrad_layers::LayerError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Gru<F: Scalar> {
    weight_ih: Param<F>,
    weight_hh: Param<F>,
    bias_ih: Param<F>,
    bias_hh: Param<F>,
    cache: Option<GruCache<F>>,
}

/// Values from a training-mode forward that backpropagation through time reads.
#[derive(Debug, Clone)]
struct GruCache<F> {
    /// Input as (N·T, D) rows, row n·T + t holding x_t of sample n.
    input: Array2<F>,
    /// Hidden states h_1..h_T, (N, T, H), the layer's output.
    hidden: Array3<F>,
    /// Per step and sample: r, z, n and W_hn h_{t−1} + b_hn side by side, (T, N, 4H).
    gates: Array3<F>,
}

impl<F: Scalar> Gru<F> {
    /// Creates a layer with PyTorch's default initialisation: every weight and bias from
    /// U(−1/√H, 1/√H), drawn from a ChaCha8 generator seeded with `seed` in the order
    /// `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`.
    ///
    /// # Errors
    ///
    /// [`LayerError::Config`](crate::LayerError::Config) when either size is zero or a weight
    /// has more entries than `isize::MAX`.
    pub fn new(input_size: usize, hidden_size: usize, seed: u64) -> Result<Self> {
        if input_size == 0 || hidden_size == 0 {
            let reason = format!(
                "input_size and hidden_size must be positive, found {input_size} and {hidden_size}"
            );
            return Err(config_error(NAME, reason));
        }
        let widest = input_size.max(hidden_size);
        if checked_product(&[3, hidden_size, widest]).is_none() {
            let reason = format!(
                "weights of shape [3·{hidden_size}, {widest}] have too many entries to address"
            );
            return Err(config_error(NAME, reason));
        }
        let bound = 1.0 / (hidden_size as f64).sqrt();
        let mut rng = seeded_rng(seed);
        let weight_ih = uniform(&[3 * hidden_size, input_size], bound, &mut rng);
        let weight_hh = uniform(&[3 * hidden_size, hidden_size], bound, &mut rng);
        let bias_ih = uniform(&[3 * hidden_size], bound, &mut rng);
        let bias_hh = uniform(&[3 * hidden_size], bound, &mut rng);
        Ok(Self {
            weight_ih: Param::new("weight_ih_l0", weight_ih),
            weight_hh: Param::new("weight_hh_l0", weight_hh),
            bias_ih: Param::new("bias_ih_l0", bias_ih),
            bias_hh: Param::new("bias_hh_l0", bias_hh),
            cache: None,
        })
    }

    /// Input features D.
    pub fn input_size(&self) -> usize {
        self.weight_ih.value.shape()[1]
    }

    /// Hidden units H.
    pub fn hidden_size(&self) -> usize {
        self.weight_hh.value.shape()[1]
    }

    fn matrix(param: &Param<F>) -> ArrayView2<'_, F> {
        param.value.view().into_dimensionality::<Ix2>().expect("GRU weights are matrices")
    }

    fn vector(param: &Param<F>) -> &[F] {
        param.value.as_slice().expect("parameters are in standard layout")
    }

    fn check_input(&self, input: &ArrayD<F>) -> Result<(usize, usize)> {
        let shape = input.shape();
        if shape.len() != 3 || shape[1] == 0 || shape[2] != self.input_size() {
            let expected = format!("input (N, T, {}), batch first, with T >= 1", self.input_size());
            return Err(shape_error(NAME, expected, shape));
        }
        Ok((shape[0], shape[1]))
    }

    /// Turns the gradients of the gate pre-activations into parameter gradients and returns
    /// dL/dx; `grad_projected` is (N, T, 3H) for the input side, `grad_recurrent` is
    /// (T, N, 3H) for the hidden side.
    fn finish_backward(
        &mut self,
        cache: &GruCache<F>,
        grad_projected: Array3<F>,
        grad_recurrent: Array3<F>,
    ) -> ArrayD<F> {
        let (batch, steps, hidden_size) = cache.hidden.dim();
        let gates_width = 3 * hidden_size;

        let grad_projected =
            grad_projected.into_shape_with_order((batch * steps, gates_width)).expect("N·T rows");
        self.weight_ih.grad = product(&grad_projected.t(), &cache.input.view()).into_dyn();
        self.bias_ih.grad = column_sums(&grad_projected.view()).into_dyn();

        let grad_recurrent =
            grad_recurrent.into_shape_with_order((steps * batch, gates_width)).expect("T·N rows");
        self.bias_hh.grad = column_sums(&grad_recurrent.view()).into_dyn();

        // h_0 = 0 adds nothing to dL/dW_hh, so only steps 1..T pair with a stored h_{t-1}.
        let previous = cache.hidden.slice(s![.., ..steps - 1, ..]).permuted_axes([1, 0, 2]);
        let previous = previous
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(((steps - 1) * batch, hidden_size))
            .expect("(T-1)·N rows");
        let grad_later = grad_recurrent.slice(s![batch.., ..]);
        self.weight_hh.grad = product(&grad_later.t(), &previous.view()).into_dyn();

        let grad_input = product(&grad_projected.view(), &Self::matrix(&self.weight_ih));
        grad_input
            .into_shape_with_order((batch, steps, self.input_size()))
            .expect("N·T rows")
            .into_dyn()
    }
}

impl<F: Scalar> Layer<F> for Gru<F> {
    fn forward(&mut self, input: &ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        let (batch, steps) = self.check_input(input)?;
        let hidden_size = self.hidden_size();
        let x = to_matrix(input, batch * steps, self.input_size());
        let projected = product(&x.view(), &Self::matrix(&self.weight_ih).t());
        let projected =
            projected.into_shape_with_order((batch, steps, 3 * hidden_size)).expect("N·T rows");

        let mut hidden = Array3::zeros((batch, steps, hidden_size));
        // Evaluation keeps only the current step's gates.
        let stored_steps = if mode == Mode::Train { steps } else { 1 };
        let mut gates = Array3::zeros((stored_steps, batch, 4 * hidden_size));
        let biases = (Self::vector(&self.bias_ih), Self::vector(&self.bias_hh));
        let zero_state = Array2::zeros((batch, hidden_size));
        let weight_hh = Self::matrix(&self.weight_hh);
        // W_hh h_{t−1}, rewritten in place each step; h₀ = 0 makes it zero at t = 0.
        let mut recurrent = Array2::zeros((batch, 3 * hidden_size));

        for t in 0..steps {
            let (before, mut after) = hidden.view_mut().split_at(Axis(1), t);
            let previous = if t == 0 {
                zero_state.view()
            } else {
                let previous = before.index_axis(Axis(1), t - 1);
                gemm_split(previous, weight_hh.t(), F::zero(), recurrent.view_mut());
                previous
            };
            let step = StepInput {
                projected: projected.index_axis(Axis(1), t),
                recurrent: recurrent.view(),
                previous,
            };
            let step_gates = gates.index_axis_mut(Axis(0), t.min(stored_steps - 1));
            forward_step(step, biases, after.index_axis_mut(Axis(1), 0), step_gates);
        }

        self.cache = match mode {
            Mode::Train => Some(GruCache { input: x, hidden: hidden.clone(), gates }),
            Mode::Eval => None,
        };
        Ok(hidden.into_dyn())
    }

    fn backward(&mut self, grad_output: &ArrayD<F>) -> Result<ArrayD<F>> {
        let cache = self.cache.take().ok_or_else(|| no_cache_error(NAME))?;
        if let Err(error) = check_grad_shape(NAME, grad_output, cache.hidden.shape()) {
            self.cache = Some(cache);
            return Err(error);
        }
        let grad_output = grad_output.view().into_dimensionality::<Ix3>().expect("rank 3");
        let (batch, steps, hidden_size) = cache.hidden.dim();
        let weight_hh = Self::matrix(&self.weight_hh);

        let mut grad_projected = Array3::zeros((batch, steps, 3 * hidden_size));
        let mut grad_recurrent = Array3::zeros((steps, batch, 3 * hidden_size));
        let zero_state = Array2::zeros((batch, hidden_size));
        // dL/dh_t: the output's gradient at step t plus what flows back from step t + 1.
        let mut grad_state = Array2::zeros((batch, hidden_size));
        for t in (0..steps).rev() {
            grad_state += &grad_output.index_axis(Axis(1), t);
            let previous =
                if t == 0 { zero_state.view() } else { cache.hidden.index_axis(Axis(1), t - 1) };
            let step = StepCache {
                grad_state: grad_state.view(),
                gates: cache.gates.index_axis(Axis(0), t),
                previous,
            };
            let mut carried = Array2::zeros((batch, hidden_size));
            backward_step(
                step,
                grad_projected.index_axis_mut(Axis(1), t),
                grad_recurrent.index_axis_mut(Axis(0), t),
                carried.view_mut(),
            );
            if t > 0 {
                let grad_hidden_side = grad_recurrent.index_axis(Axis(0), t);
                gemm_split(grad_hidden_side, weight_hh.view(), F::one(), carried.view_mut());
            }
            grad_state = carried;
        }

        Ok(self.finish_backward(&cache, grad_projected, grad_recurrent).into_dyn())
    }

    fn params(&self) -> Vec<&Param<F>> {
        vec![&self.weight_ih, &self.weight_hh, &self.bias_ih, &self.bias_hh]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<F>> {
        vec![&mut self.weight_ih, &mut self.weight_hh, &mut self.bias_ih, &mut self.bias_hh]
    }

    fn name(&self) -> &str {
        NAME
    }
}

/// Inputs of one forward step, each with one row per sample.
struct StepInput<'a, F> {
    /// W_ih x_t without bias, (N, 3H).
    projected: ArrayView2<'a, F>,
    /// W_hh h_{t−1} without bias, (N, 3H).
    recurrent: ArrayView2<'a, F>,
    /// h_{t−1}, (N, H).
    previous: ArrayView2<'a, F>,
}

/// Computes h_t into `hidden` (N, H) and r, z, n, W_hn h_{t−1} + b_hn into `gates` (N, 4H),
/// in parallel over samples.
fn forward_step<F: Scalar>(
    step: StepInput<'_, F>,
    biases: (&[F], &[F]),
    mut hidden: ArrayViewMut2<'_, F>,
    mut gates: ArrayViewMut2<'_, F>,
) {
    Zip::from(step.projected.rows())
        .and(step.recurrent.rows())
        .and(step.previous.rows())
        .and(hidden.rows_mut())
        .and(gates.rows_mut())
        .par_for_each(|projected, recurrent, previous, hidden, gates| {
            forward_row(
                [contiguous(&projected), contiguous(&recurrent), contiguous(&previous)],
                biases,
                contiguous_mut(hidden),
                contiguous_mut(gates),
            );
        });
}

/// One sample of [`forward_step`]; `inputs` are W_ih x_t, W_hh h_{t−1} and h_{t−1}.
fn forward_row<F: Scalar>(
    inputs: [&[F]; 3],
    biases: (&[F], &[F]),
    hidden: &mut [F],
    gates: &mut [F],
) {
    let [projected, recurrent, previous] = inputs;
    let (bias_ih, bias_hh) = biases;
    let h = hidden.len();
    let one = F::one();
    for j in 0..h {
        let reset = sigmoid(projected[j] + bias_ih[j] + recurrent[j] + bias_hh[j]);
        let update = sigmoid(projected[h + j] + bias_ih[h + j] + recurrent[h + j] + bias_hh[h + j]);
        let hidden_candidate = recurrent[2 * h + j] + bias_hh[2 * h + j];
        let new = tanh(projected[2 * h + j] + bias_ih[2 * h + j] + reset * hidden_candidate);

        hidden[j] = (one - update) * new + update * previous[j];
        gates[j] = reset;
        gates[h + j] = update;
        gates[2 * h + j] = new;
        gates[3 * h + j] = hidden_candidate;
    }
}

/// Cached values of one backward step, each with one row per sample.
struct StepCache<'a, F> {
    /// dL/dh_t, (N, H).
    grad_state: ArrayView2<'a, F>,
    /// r, z, n, W_hn h_{t−1} + b_hn, (N, 4H).
    gates: ArrayView2<'a, F>,
    /// h_{t−1}, (N, H).
    previous: ArrayView2<'a, F>,
}

/// Writes the gradients of the input-side pre-activations (N, 3H), of the hidden-side
/// pre-activations (N, 3H), and the direct part z ⊙ dL/dh_t of dL/dh_{t−1} (N, H).
fn backward_step<F: Scalar>(
    step: StepCache<'_, F>,
    mut grad_projected: ArrayViewMut2<'_, F>,
    mut grad_recurrent: ArrayViewMut2<'_, F>,
    mut carried: ArrayViewMut2<'_, F>,
) {
    Zip::from(step.grad_state.rows())
        .and(step.gates.rows())
        .and(step.previous.rows())
        .and(grad_projected.rows_mut())
        .and(grad_recurrent.rows_mut())
        .and(carried.rows_mut())
        .par_for_each(|grad_state, gates, previous, grad_projected, grad_recurrent, carried| {
            backward_row(
                [contiguous(&grad_state), contiguous(&gates), contiguous(&previous)],
                contiguous_mut(grad_projected),
                contiguous_mut(grad_recurrent),
                contiguous_mut(carried),
            );
        });
}

/// One sample of [`backward_step`]; `inputs` are dL/dh_t, the cached gates and h_{t−1}.
fn backward_row<F: Scalar>(
    inputs: [&[F]; 3],
    grad_projected: &mut [F],
    grad_recurrent: &mut [F],
    carried: &mut [F],
) {
    let [grad_state, gates, previous] = inputs;
    let h = grad_state.len();
    let one = F::one();
    for j in 0..h {
        let (reset, update, new) = (gates[j], gates[h + j], gates[2 * h + j]);
        let hidden_candidate = gates[3 * h + j];
        let grad_h = grad_state[j];

        let grad_new_pre = grad_h * (one - update) * (one - new * new);
        let grad_update_pre = grad_h * (previous[j] - new) * update * (one - update);
        let grad_reset_pre = grad_new_pre * hidden_candidate * reset * (one - reset);

        grad_projected[j] = grad_reset_pre;
        grad_projected[h + j] = grad_update_pre;
        grad_projected[2 * h + j] = grad_new_pre;
        grad_recurrent[j] = grad_reset_pre;
        grad_recurrent[h + j] = grad_update_pre;
        grad_recurrent[2 * h + j] = grad_new_pre * reset;
        carried[j] = grad_h * update;
    }
}

fn sigmoid<F: Scalar>(x: F) -> F {
    F::one() / (F::one() + (-x).exp())
}

/// Returns the hyperbolic tangent: the library's `tanh` in f64, and in f32 a formula through
/// `exp`, because `exp` costs several times less than the `expm1` inside the C library's `tanhf`.
///
/// For |x| ≥ 1/4, tanh |x| = 1 − 2 / (e^{2|x|} + 1) loses at most a factor 4 to cancellation;
/// below, the Taylor series to x⁹ has a truncation error under 1e-8 relative. The result stays
/// within 1e-6 relative of the exact value (tested against f64 below).
fn tanh<F: Scalar>(x: F) -> F {
    if TypeId::of::<F>() != TypeId::of::<f32>() {
        return x.tanh();
    }
    let constant = F::from_f64_lossy;
    let magnitude = x.abs();
    if magnitude < constant(0.25) {
        let square = x * x;
        let series = constant(-17.0 / 315.0) + square * constant(62.0 / 2835.0);
        let series = constant(2.0 / 15.0) + square * series;
        let series = constant(-1.0 / 3.0) + square * series;
        return x + x * square * series;
    }
    let two = constant(2.0);
    let value = F::one() - two / ((two * magnitude).exp() + F::one());
    if x < F::zero() {
        -value
    } else {
        value
    }
}

fn contiguous<'a, F>(row: &ArrayView1<'a, F>) -> &'a [F] {
    row.to_slice().expect("GRU rows are contiguous")
}

fn contiguous_mut<F>(row: ArrayViewMut1<'_, F>) -> &mut [F] {
    row.into_slice().expect("GRU rows are contiguous")
}

#[cfg(test)]
mod tests {
    use super::tanh;

    /// The f32 `tanh` against the f64 library function, on a grid over [−12, 12] refined near 0,
    /// where the series and the `exp` formula meet, and on special values.
    #[test]
    fn f32_tanh_is_within_a_millionth_relative() {
        let grid = (-120_000..=120_000).map(|i| i as f32 * 1e-4);
        let near_zero = (-30_000..=30_000).map(|i| i as f32 * 1e-5);
        let tiny = [1e-30_f32, -1e-30, 1e-10, f32::MIN_POSITIVE, 0.25, -0.25, 0.249_999_98];
        for x in grid.chain(near_zero).chain(tiny) {
            let exact = f64::from(x).tanh();
            let error = (f64::from(tanh(x)) - exact).abs();
            assert!(error <= 1e-6 * exact.abs(), "tanh({x}) = {}, exact {exact}", tanh(x));
        }
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(tanh(0.0_f32), 0.0);
    }
}
