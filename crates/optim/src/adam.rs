//! Adam with bias correction, following `torch.optim.Adam` (non-AMSGrad, coupled weight decay).

use handgrad_tensor::{Param, Scalar};
use ndarray::{ArrayD, Zip};

use crate::validate::{non_negative, params_match_shapes, positive, states_agree, unit_interval};
use crate::{OptimError, Optimizer, Result};

const COMPONENT: &str = "adam";

/// Hyperparameters of [`Adam`]; [`Default`] gives PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Step size lr, finite and >= 0 (default 1e-3).
    pub learning_rate: f64,
    /// Decay of the first-moment average, in [0, 1) (default 0.9).
    pub beta1: f64,
    /// Decay of the second-moment average, in [0, 1) (default 0.999).
    pub beta2: f64,
    /// Term added to the denominator after the square root, finite and > 0 (default 1e-8).
    pub eps: f64,
    /// L2 penalty coefficient added to the gradient, finite and >= 0 (default 0).
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self { learning_rate: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

impl AdamConfig {
    fn validate(&self) -> Result<()> {
        non_negative(COMPONENT, "learning_rate", self.learning_rate)?;
        unit_interval(COMPONENT, "beta1", self.beta1)?;
        unit_interval(COMPONENT, "beta2", self.beta2)?;
        positive(COMPONENT, "eps", self.eps)?;
        non_negative(COMPONENT, "weight_decay", self.weight_decay)
    }
}

/// Saved state of [`Adam`]: the step count and both moment averages, one array per parameter in
/// the order the parameters are passed to [`Optimizer::step`].
///
/// Before the first step `step` is 0 and both lists are empty.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamState<F> {
    /// Number of steps taken.
    pub step: u64,
    /// First-moment averages m, one per parameter, shaped like it.
    pub exp_avg: Vec<ArrayD<F>>,
    /// Second-moment averages v, one per parameter, shaped like it.
    pub exp_avg_sq: Vec<ArrayD<F>>,
}

impl<F> Default for AdamState<F> {
    fn default() -> Self {
        Self { step: 0, exp_avg: Vec::new(), exp_avg_sq: Vec::new() }
    }
}

/// The Adam optimiser with PyTorch's update rule.
///
/// At step t, for each parameter p with gradient g (all operations element-wise):
///
/// ```text
/// g   = g + weight_decay * p
/// m   = beta1 * m + (1 - beta1) * g
/// v   = beta2 * v + (1 - beta2) * g^2
/// p   = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
///
/// so `eps` is added after the square root of the bias-corrected second moment, and weight
/// decay is an L2 term added to the gradient (not the decoupled decay of AdamW). Scalar factors
/// are computed in `f64` and rounded to `F`, and the first-moment update uses the same
/// `lerp` formula as PyTorch, so `f64` trajectories match `torch.optim.Adam(foreach=False)` to
/// rounding (the tests compare them at a relative tolerance of 1e-12).
///
/// # Example
///
/// ```
/// use handgrad_optim::{Adam, AdamConfig, Optimizer};
/// use handgrad_tensor::Param;
/// use ndarray::arr1;
///
/// let mut w = Param::new("weight", arr1(&[1.0f64, -1.0]).into_dyn());
/// w.grad = arr1(&[0.5, -2.0]).into_dyn();
/// let mut adam = Adam::new(AdamConfig::default())?;
/// adam.step(&mut [&mut w])?;
/// // The first step moves every entry by lr against the sign of its gradient (up to eps).
/// assert!((w.value[0] - (1.0 - 1e-3)).abs() < 1e-10);
/// assert!((w.value[1] - (-1.0 + 1e-3)).abs() < 1e-10);
/// # Ok::<(), handgrad_optim::OptimError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Adam<F = f64> {
    config: AdamConfig,
    state: AdamState<F>,
}

impl<F: Scalar> Adam<F> {
    /// Creates an optimiser with empty state.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperparameter`] when lr < 0, a beta is outside [0, 1), eps <= 0,
    /// weight_decay < 0, or any of them is not finite.
    pub fn new(config: AdamConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, state: AdamState::default() })
    }

    /// Hyperparameters, with the learning rate as last set.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Returns a copy of the step count and moment averages, for a checkpoint.
    pub fn state(&self) -> AdamState<F> {
        self.state.clone()
    }

    /// Replaces the state with one saved by [`Adam::state`].
    ///
    /// The next step checks the parameters against the loaded moments.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidState`] when the two moment lists differ in length or shapes, or
    /// when the step count and the lists disagree (moments without steps or steps without
    /// moments). The current state is kept on error.
    pub fn load_state(&mut self, state: AdamState<F>) -> Result<()> {
        states_agree(COMPONENT, &state.exp_avg, &state.exp_avg_sq)?;
        if (state.step == 0) != state.exp_avg.is_empty() {
            return Err(OptimError::InvalidState {
                component: COMPONENT,
                reason: format!(
                    "step count {} with {} moment arrays; both must be zero or both non-zero",
                    state.step,
                    state.exp_avg.len()
                ),
            });
        }
        self.state = state;
        Ok(())
    }

    /// Allocates zero moments shaped like `params` on the first step.
    fn ensure_state(&mut self, params: &[&mut Param<F>]) {
        if self.state.exp_avg.is_empty() {
            let zeros = || params.iter().map(|p| ArrayD::zeros(p.value.raw_dim())).collect();
            self.state.exp_avg = zeros();
            self.state.exp_avg_sq = zeros();
        }
    }
}

impl<F: Scalar> Optimizer<F> for Adam<F> {
    fn step(&mut self, params: &mut [&mut Param<F>]) -> Result<()> {
        non_negative(COMPONENT, "learning_rate", self.config.learning_rate)?;
        let shapes: Vec<&[usize]> = self.state.exp_avg.iter().map(|m| m.shape()).collect();
        params_match_shapes(COMPONENT, params, &shapes)?;
        self.ensure_state(params);

        self.state.step += 1;
        let factors = StepFactors::new(&self.config, self.state.step);
        let moments = self.state.exp_avg.iter_mut().zip(self.state.exp_avg_sq.iter_mut());
        for (param, (exp_avg, exp_avg_sq)) in params.iter_mut().zip(moments) {
            factors.update(param, exp_avg, exp_avg_sq);
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.learning_rate
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.learning_rate = lr;
    }
}

/// Smallest parameter whose update is split over the rayon pool. Below it, handing work to
/// another thread costs more than the update itself.
const PARALLEL_ELEMENTS: usize = 1 << 17;

/// Scalar factors of one step, computed in `f64` as PyTorch computes them in Python floats.
struct StepFactors<F> {
    weight_decay: F,
    beta1_weight: F,
    beta2: F,
    beta2_weight: F,
    bias_correction2_sqrt: F,
    eps: F,
    neg_step_size: F,
}

impl<F: Scalar> StepFactors<F> {
    fn new(config: &AdamConfig, step: u64) -> Self {
        // `powf` as Python's `float ** float`, which calls C `pow`; `powi` can differ in the
        // last bit.
        let step = step as f64;
        let bias_correction1 = 1.0 - config.beta1.powf(step);
        let bias_correction2 = 1.0 - config.beta2.powf(step);
        Self {
            weight_decay: F::from_f64_lossy(config.weight_decay),
            beta1_weight: F::from_f64_lossy(1.0 - config.beta1),
            beta2: F::from_f64_lossy(config.beta2),
            beta2_weight: F::from_f64_lossy(1.0 - config.beta2),
            bias_correction2_sqrt: F::from_f64_lossy(bias_correction2.powf(0.5)),
            eps: F::from_f64_lossy(config.eps),
            neg_step_size: F::from_f64_lossy(-(config.learning_rate / bias_correction1)),
        }
    }

    fn update(&self, param: &mut Param<F>, exp_avg: &mut ArrayD<F>, exp_avg_sq: &mut ArrayD<F>) {
        let Param { value, grad, .. } = param;
        let parallel = value.len() >= PARALLEL_ELEMENTS;
        let zip = Zip::from(value).and(&*grad).and(exp_avg).and(exp_avg_sq);
        let update = |p: &mut F, &g: &F, m: &mut F, v: &mut F| {
            let g = if self.weight_decay == F::zero() { g } else { g + self.weight_decay * *p };
            *m = lerp(*m, g, self.beta1_weight);
            *v = *v * self.beta2 + self.beta2_weight * g * g;
            let denom = v.sqrt() / self.bias_correction2_sqrt + self.eps;
            *p += self.neg_step_size * *m / denom;
        };
        // Every element is updated on its own, so splitting the work changes no result.
        if parallel {
            zip.par_for_each(update);
        } else {
            zip.for_each(update);
        }
    }
}

/// `start + weight * (end - start)`, evaluated from the nearer end as `torch.lerp` does, so
/// that the result is exact at weight 0 and 1.
fn lerp<F: Scalar>(start: F, end: F, weight: F) -> F {
    let half = F::from_f64_lossy(0.5);
    if weight.abs() < half {
        start + weight * (end - start)
    } else {
        end - (end - start) * (F::one() - weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lerp_is_exact_at_ends() {
        assert_eq!(lerp(0.3f64, 0.7, 0.0), 0.3);
        assert_eq!(lerp(0.3f64, 0.7, 1.0), 0.7);
    }

    #[test]
    fn rejects_invalid_hyperparameters() {
        let cases = [
            AdamConfig { learning_rate: -1e-3, ..AdamConfig::default() },
            AdamConfig { beta1: 1.0, ..AdamConfig::default() },
            AdamConfig { beta2: -0.1, ..AdamConfig::default() },
            AdamConfig { eps: 0.0, ..AdamConfig::default() },
            AdamConfig { weight_decay: f64::NAN, ..AdamConfig::default() },
        ];
        for config in cases {
            assert!(Adam::<f64>::new(config).is_err(), "{config:?}");
        }
    }
}
