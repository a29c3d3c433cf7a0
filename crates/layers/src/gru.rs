//! Single-layer, batch-first gated recurrent unit with PyTorch's `nn.GRU` equations and full
//! backpropagation through time.

use std::any::TypeId;
use std::marker::PhantomData;

use handgrad_tensor::{Param, Scalar};
use ndarray::{
    s, Array2, Array3, ArrayD, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, Ix2,
    Ix3, Zip,
};

use crate::activation::{Activations, Library, VectorF32};
use crate::init::{seeded_rng, uniform};
use crate::kernels::{column_sums_into, ensure_shape, gemm_split, grad_matrix};
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
    buffers: GruBuffers<F>,
    /// Batch size N and step count T of the last training-mode forward, `None` once `backward`
    /// has used it.
    pending: Option<(usize, usize)>,
}

/// Work arrays kept from batch to batch. Rows are step-major (row t·N + n belongs to sample n
/// at step t), so the rows of one step are contiguous.
#[derive(Debug, Clone)]
struct GruBuffers<F> {
    /// Input x, (T·N, D).
    input: Array2<F>,
    /// W_ih x_t without bias, (T·N, 3H).
    projected: Array2<F>,
    /// W_hh h_{t−1} without bias, for the current step, (N, 3H).
    recurrent: Array2<F>,
    /// Hidden states h_1..h_T, (T, N, H).
    states: Array3<F>,
    /// h₀ = 0, (N, H), never written after allocation.
    zero_state: Array2<F>,
    /// r, z, n and W_hn h_{t−1} + b_hn side by side, (T, N, 4H) in training mode and (1, N, 4H),
    /// the current step only, in evaluation mode.
    gates: Array3<F>,
    /// Gradients of the input-side pre-activations, (T·N, 3H).
    grad_projected: Array2<F>,
    /// Gradients of the hidden-side pre-activations, (T·N, 3H).
    grad_recurrent: Array2<F>,
    /// dL/dh_t of the current step, (N, H).
    grad_state: Array2<F>,
    /// dL/dh_{t−1} being accumulated for the next step back, (N, H).
    carried: Array2<F>,
}

impl<F: Scalar> GruBuffers<F> {
    fn new() -> Self {
        let empty = || Array2::zeros((0, 0));
        Self {
            input: empty(),
            projected: empty(),
            recurrent: empty(),
            states: Array3::zeros((0, 0, 0)),
            zero_state: empty(),
            gates: Array3::zeros((0, 0, 0)),
            grad_projected: empty(),
            grad_recurrent: empty(),
            grad_state: empty(),
            carried: empty(),
        }
    }
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
            buffers: GruBuffers::new(),
            pending: None,
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

    /// Copies the input (N, T, D) into step-major rows and computes W_ih x_t for every step in
    /// one product.
    fn project_input(&mut self, input: &ArrayD<F>, batch: usize, steps: usize) {
        let input = input.view().into_dimensionality::<Ix3>().expect("checked rank 3");
        let (input_size, hidden_size) = (self.input_size(), self.hidden_size());
        let buffers = &mut self.buffers;
        ensure_shape(&mut buffers.input, Ix2(steps * batch, input_size));
        for t in 0..steps {
            let rows = s![t * batch..(t + 1) * batch, ..];
            buffers.input.slice_mut(rows).assign(&input.index_axis(Axis(1), t));
        }
        ensure_shape(&mut buffers.projected, Ix2(steps * batch, 3 * hidden_size));
        let weight_ih = Self::matrix(&self.weight_ih);
        gemm_split(buffers.input.view(), weight_ih.t(), F::zero(), buffers.projected.view_mut());
    }

    /// Sizes the state and gate buffers of a forward pass over `steps` steps, keeping the gates
    /// of `stored_steps` of them.
    fn prepare_forward(&mut self, batch: usize, steps: usize, stored_steps: usize) {
        let hidden_size = self.hidden_size();
        let buffers = &mut self.buffers;
        ensure_shape(&mut buffers.recurrent, Ix2(batch, 3 * hidden_size));
        ensure_shape(&mut buffers.states, Ix3(steps, batch, hidden_size));
        ensure_shape(&mut buffers.zero_state, Ix2(batch, hidden_size));
        ensure_shape(&mut buffers.gates, Ix3(stored_steps, batch, 4 * hidden_size));
    }

    /// Runs backpropagation through time over the cached steps, leaving the gradients of the
    /// input-side and hidden-side pre-activations in the buffers.
    fn backward_through_time(&mut self, grad_output: &ArrayD<F>, batch: usize, steps: usize) {
        let grad_output = grad_output.view().into_dimensionality::<Ix3>().expect("checked rank 3");
        let hidden_size = self.hidden_size();
        let weight_hh = Self::matrix(&self.weight_hh);
        let buffers = &mut self.buffers;
        ensure_shape(&mut buffers.grad_projected, Ix2(steps * batch, 3 * hidden_size));
        ensure_shape(&mut buffers.grad_recurrent, Ix2(steps * batch, 3 * hidden_size));
        ensure_shape(&mut buffers.grad_state, Ix2(batch, hidden_size));
        ensure_shape(&mut buffers.carried, Ix2(batch, hidden_size));

        // dL/dh_t: the output's gradient at step t plus what flows back from step t + 1.
        buffers.grad_state.fill(F::zero());
        for t in (0..steps).rev() {
            buffers.grad_state += &grad_output.index_axis(Axis(1), t);
            let previous = if t == 0 {
                buffers.zero_state.view()
            } else {
                buffers.states.index_axis(Axis(0), t - 1)
            };
            let step = StepCache {
                grad_state: buffers.grad_state.view(),
                gates: buffers.gates.index_axis(Axis(0), t),
                previous,
            };
            let rows = s![t * batch..(t + 1) * batch, ..];
            backward_step(
                step,
                buffers.grad_projected.slice_mut(rows),
                buffers.grad_recurrent.slice_mut(rows),
                buffers.carried.view_mut(),
            );
            if t > 0 {
                let grad_hidden_side = buffers.grad_recurrent.slice(rows);
                gemm_split(grad_hidden_side, weight_hh, F::one(), buffers.carried.view_mut());
            }
            std::mem::swap(&mut buffers.grad_state, &mut buffers.carried);
        }
    }

    /// Turns the gradients of the gate pre-activations into parameter gradients.
    fn params_backward(&mut self, batch: usize, steps: usize) {
        let (input_size, hidden_size) = (self.input_size(), self.hidden_size());
        let gates_width = 3 * hidden_size;
        let buffers = &self.buffers;

        let weight_ih_grad = grad_matrix(
            &mut self.weight_ih.grad,
            &[gates_width, input_size],
            gates_width,
            input_size,
        );
        gemm_split(buffers.grad_projected.t(), buffers.input.view(), F::zero(), weight_ih_grad);
        column_sums_into(&buffers.grad_projected.view(), &mut self.bias_ih.grad);
        column_sums_into(&buffers.grad_recurrent.view(), &mut self.bias_hh.grad);

        // h_0 = 0 adds nothing to dL/dW_hh, so only steps 1..T pair with a stored h_{t-1}.
        let previous = buffers.states.slice(s![..steps - 1, .., ..]);
        let previous = previous
            .into_shape_with_order(((steps - 1) * batch, hidden_size))
            .expect("contiguous (T-1)·N rows");
        let grad_later = buffers.grad_recurrent.slice(s![batch.., ..]);
        let weight_hh_grad = grad_matrix(
            &mut self.weight_hh.grad,
            &[gates_width, hidden_size],
            gates_width,
            hidden_size,
        );
        gemm_split(grad_later.t(), previous, F::zero(), weight_hh_grad);
    }

    /// Returns dL/dx, (N, T, D), from the gradients of the input-side pre-activations.
    fn input_backward(&self, batch: usize, steps: usize) -> Array3<F> {
        let buffers = &self.buffers;
        // Each step's rows of dL/dx go straight to their (strided) place in the (N, T, D) result.
        let mut grad_input = Array3::zeros((batch, steps, self.input_size()));
        let weight_ih = Self::matrix(&self.weight_ih);
        for t in 0..steps {
            let grad_step = buffers.grad_projected.slice(s![t * batch..(t + 1) * batch, ..]);
            let target = grad_input.index_axis_mut(Axis(1), t);
            gemm_split(grad_step, weight_ih, F::zero(), target);
        }
        grad_input
    }
}

impl<F: Scalar> Layer<F> for Gru<F> {
    fn forward(&mut self, input: &ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        let (batch, steps) = self.check_input(input)?;
        let hidden_size = self.hidden_size();
        self.project_input(input, batch, steps);
        // Evaluation keeps only the current step's gates.
        let stored_steps = if mode == Mode::Train { steps } else { 1 };
        self.prepare_forward(batch, steps, stored_steps);

        let mut output = Array3::zeros((batch, steps, hidden_size));
        let biases = (Self::vector(&self.bias_ih), Self::vector(&self.bias_hh));
        let weight_hh = Self::matrix(&self.weight_hh);
        let buffers = &mut self.buffers;
        for t in 0..steps {
            // W_hh h_{t−1}, which is zero at t = 0 because h₀ = 0.
            if t == 0 {
                buffers.recurrent.fill(F::zero());
            } else {
                let previous = buffers.states.index_axis(Axis(0), t - 1);
                gemm_split(previous, weight_hh.t(), F::zero(), buffers.recurrent.view_mut());
            }
            let (before, mut after) = buffers.states.view_mut().split_at(Axis(0), t);
            let previous_rows;
            let previous = if t == 0 {
                buffers.zero_state.view()
            } else {
                previous_rows = before.index_axis_move(Axis(0), t - 1);
                previous_rows.view()
            };
            let step = StepInput {
                projected: buffers.projected.slice(s![t * batch..(t + 1) * batch, ..]),
                recurrent: buffers.recurrent.view(),
                previous,
            };
            let outputs = StepOutput {
                state: after.index_axis_mut(Axis(0), 0),
                output: output.index_axis_mut(Axis(1), t),
                gates: buffers.gates.index_axis_mut(Axis(0), t.min(stored_steps - 1)),
            };
            forward_step(step, biases, outputs);
        }

        self.pending = (mode == Mode::Train).then_some((batch, steps));
        Ok(output.into_dyn())
    }

    fn backward(&mut self, grad_output: &ArrayD<F>) -> Result<ArrayD<F>> {
        let (batch, steps) = self.pending.ok_or_else(|| no_cache_error(NAME))?;
        check_grad_shape(NAME, grad_output, &[batch, steps, self.hidden_size()])?;
        self.pending = None;

        self.backward_through_time(grad_output, batch, steps);
        self.params_backward(batch, steps);
        Ok(self.input_backward(batch, steps).into_dyn())
    }

    fn backward_params(&mut self, grad_output: &ArrayD<F>) -> Result<()> {
        let (batch, steps) = self.pending.ok_or_else(|| no_cache_error(NAME))?;
        check_grad_shape(NAME, grad_output, &[batch, steps, self.hidden_size()])?;
        self.pending = None;

        self.backward_through_time(grad_output, batch, steps);
        self.params_backward(batch, steps);
        Ok(())
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

/// Outputs of one forward step, each with one row per sample.
struct StepOutput<'a, F> {
    /// h_t in the step-major state buffer, (N, H).
    state: ArrayViewMut2<'a, F>,
    /// h_t in the layer's (N, T, H) output, (N, H).
    output: ArrayViewMut2<'a, F>,
    /// r, z, n and W_hn h_{t−1} + b_hn, (N, 4H).
    gates: ArrayViewMut2<'a, F>,
}

/// Computes h_t and the gates of one step, in parallel over samples.
fn forward_step<F: Scalar>(
    step: StepInput<'_, F>,
    biases: (&[F], &[F]),
    outputs: StepOutput<'_, F>,
) {
    let StepOutput { mut state, mut output, mut gates } = outputs;
    let zip = Zip::from(step.projected.rows())
        .and(step.recurrent.rows())
        .and(step.previous.rows())
        .and(state.rows_mut())
        .and(output.rows_mut())
        .and(gates.rows_mut());
    // The f32 activations are branch-free so that the compiler vectorises the row loop.
    let fast = TypeId::of::<F>() == TypeId::of::<f32>();
    zip.par_for_each(|projected, recurrent, previous, state, output, gates| {
        let inputs = [contiguous(&projected), contiguous(&recurrent), contiguous(&previous)];
        let outputs = [contiguous_mut(state), contiguous_mut(output), contiguous_mut(gates)];
        if fast {
            vectorized(ForwardRow::<F, VectorF32> {
                inputs,
                biases,
                outputs,
                activations: PhantomData,
            });
        } else {
            forward_row::<F, Library>(inputs, biases, outputs);
        }
    });
}

/// Runs `kernel` compiled for the widest instruction set that the processor supports
/// (AVX-512, AVX2 or the x86-64 baseline).
///
/// `pulp` compiles only what is inlined into [`pulp::WithSimd::with_simd`] for each instruction
/// set, and a closure's body is not inlined there, so each row kernel is a struct whose
/// `with_simd` and helpers are `#[inline(always)]`.
fn vectorized<K: pulp::WithSimd>(kernel: K) -> K::Output {
    pulp::Arch::new().dispatch(kernel)
}

/// One sample of [`forward_step`], as a `pulp` kernel.
struct ForwardRow<'a, 'b, F, A> {
    inputs: [&'a [F]; 3],
    biases: (&'a [F], &'a [F]),
    outputs: [&'b mut [F]; 3],
    activations: PhantomData<A>,
}

impl<F: Scalar, A: Activations<F>> pulp::WithSimd for ForwardRow<'_, '_, F, A> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        forward_row::<F, A>(self.inputs, self.biases, self.outputs);
    }
}

/// One sample of [`backward_step`], as a `pulp` kernel.
struct BackwardRow<'a, 'b, F> {
    inputs: [&'a [F]; 3],
    grad_projected: &'b mut [F],
    grad_recurrent: &'b mut [F],
    carried: &'b mut [F],
}

impl<F: Scalar> pulp::WithSimd for BackwardRow<'_, '_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        backward_row(self.inputs, self.grad_projected, self.grad_recurrent, self.carried);
    }
}

/// Computes one sample of [`forward_step`]. `inputs` are W_ih x_t, W_hh h_{t−1} and h_{t−1},
/// and `outputs` are h_t twice and the gates.
#[inline(always)]
fn forward_row<F: Scalar, A: Activations<F>>(
    inputs: [&[F]; 3],
    biases: (&[F], &[F]),
    outputs: [&mut [F]; 3],
) {
    let [projected, recurrent, previous] = inputs;
    let [state, output, gates] = outputs;
    let h = state.len();
    // Slices of exactly h entries let the compiler drop the bounds checks inside the loop.
    let (input_r, input_z, input_n) = thirds(projected, h);
    let (hidden_r, hidden_z, hidden_n) = thirds(recurrent, h);
    let (bias_ir, bias_iz, bias_in) = thirds(biases.0, h);
    let (bias_hr, bias_hz, bias_hn) = thirds(biases.1, h);
    let (previous, output) = (&previous[..h], &mut output[..h]);
    let (reset, rest) = gates.split_at_mut(h);
    let (update, rest) = rest.split_at_mut(h);
    let (new, rest) = rest.split_at_mut(h);
    let candidate = &mut rest[..h];
    let one = F::one();
    for j in 0..h {
        let r = A::sigmoid(input_r[j] + bias_ir[j] + hidden_r[j] + bias_hr[j]);
        let z = A::sigmoid(input_z[j] + bias_iz[j] + hidden_z[j] + bias_hz[j]);
        let hidden_candidate = hidden_n[j] + bias_hn[j];
        let n = A::tanh(input_n[j] + bias_in[j] + r * hidden_candidate);
        let h_new = (one - z) * n + z * previous[j];

        state[j] = h_new;
        output[j] = h_new;
        reset[j] = r;
        update[j] = z;
        new[j] = n;
        candidate[j] = hidden_candidate;
    }
}

/// Splits the first 3h entries of `values` into three slices of h.
#[inline(always)]
fn thirds<F>(values: &[F], h: usize) -> (&[F], &[F], &[F]) {
    (&values[..h], &values[h..2 * h], &values[2 * h..3 * h])
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
            vectorized(BackwardRow {
                inputs: [contiguous(&grad_state), contiguous(&gates), contiguous(&previous)],
                grad_projected: contiguous_mut(grad_projected),
                grad_recurrent: contiguous_mut(grad_recurrent),
                carried: contiguous_mut(carried),
            });
        });
}

/// One sample of [`backward_step`]; `inputs` are dL/dh_t, the cached gates and h_{t−1}.
#[inline(always)]
fn backward_row<F: Scalar>(
    inputs: [&[F]; 3],
    grad_projected: &mut [F],
    grad_recurrent: &mut [F],
    carried: &mut [F],
) {
    let [grad_state, gates, previous] = inputs;
    let h = grad_state.len();
    let (reset, update, new) = thirds(gates, h);
    let candidate = &gates[3 * h..4 * h];
    let previous = &previous[..h];
    let carried = &mut carried[..h];
    let (grad_input_r, rest) = grad_projected.split_at_mut(h);
    let (grad_input_z, rest) = rest.split_at_mut(h);
    let grad_input_n = &mut rest[..h];
    let (grad_hidden_r, rest) = grad_recurrent.split_at_mut(h);
    let (grad_hidden_z, rest) = rest.split_at_mut(h);
    let grad_hidden_n = &mut rest[..h];
    let one = F::one();
    for j in 0..h {
        let (r, z, n) = (reset[j], update[j], new[j]);
        let grad_h = grad_state[j];

        let grad_new_pre = grad_h * (one - z) * (one - n * n);
        let grad_update_pre = grad_h * (previous[j] - n) * z * (one - z);
        let grad_reset_pre = grad_new_pre * candidate[j] * r * (one - r);

        grad_input_r[j] = grad_reset_pre;
        grad_input_z[j] = grad_update_pre;
        grad_input_n[j] = grad_new_pre;
        grad_hidden_r[j] = grad_reset_pre;
        grad_hidden_z[j] = grad_update_pre;
        grad_hidden_n[j] = grad_new_pre * r;
        carried[j] = grad_h * z;
    }
}

fn contiguous<'a, F>(row: &ArrayView1<'a, F>) -> &'a [F] {
    row.to_slice().expect("GRU rows are contiguous")
}

fn contiguous_mut<F>(row: ArrayViewMut1<'_, F>) -> &mut [F] {
    row.into_slice().expect("GRU rows are contiguous")
}
