//! Stochastic gradient descent with momentum and weight decay, following `torch.optim.SGD`.

use handgrad_tensor::{Param, Scalar};
use ndarray::{ArrayD, Zip};

use crate::validate::{non_negative, params_match_shapes};
use crate::{OptimError, Optimizer, Result};

const COMPONENT: &str = "sgd";

/// Hyperparameters of [`Sgd`]; [`Default`] gives PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Step size lr, finite and >= 0 (default 1e-3).
    pub learning_rate: f64,
    /// Momentum factor mu, finite and >= 0; 0 disables momentum (default 0).
    pub momentum: f64,
    /// L2 penalty coefficient added to the gradient, finite and >= 0 (default 0).
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self { learning_rate: 1e-3, momentum: 0.0, weight_decay: 0.0 }
    }
}

impl SgdConfig {
    fn validate(&self) -> Result<()> {
        non_negative(COMPONENT, "learning_rate", self.learning_rate)?;
        non_negative(COMPONENT, "momentum", self.momentum)?;
        non_negative(COMPONENT, "weight_decay", self.weight_decay)
    }
}

/// Saved state of [`Sgd`]: the momentum buffer of each parameter, in the order the parameters
/// are passed to [`Optimizer::step`].
///
/// The list is empty before the first step and always empty when momentum is 0.
#[derive(Debug, Clone, PartialEq)]
pub struct SgdState<F> {
    /// Momentum buffers b, one per parameter, shaped like it.
    pub momentum_buffers: Vec<ArrayD<F>>,
}

/// Stochastic gradient descent with PyTorch's update rule (dampening 0, no Nesterov).
///
/// For each parameter p with gradient g (element-wise):
///
/// ```text
/// g = g + weight_decay * p
/// b = g                       on the first step (momentum > 0)
/// b = momentum * b + g        on later steps
/// p = p - lr * b              (p - lr * g when momentum is 0)
/// ```
///
/// # Example
///
/// ```
/// use handgrad_optim::{Optimizer, Sgd, SgdConfig};
/// use handgrad_tensor::Param;
/// use ndarray::arr1;
///
/// let mut w = Param::new("weight", arr1(&[1.0f64]).into_dyn());
/// let mut sgd = Sgd::new(SgdConfig { learning_rate: 0.1, momentum: 0.9, weight_decay: 0.0 })?;
/// for _ in 0..2 {
///     w.grad = arr1(&[1.0]).into_dyn();
///     sgd.step(&mut [&mut w])?;
/// }
/// // b = 1 after the first step and 0.9 * 1 + 1 = 1.9 after the second: 1 - 0.1 - 0.19.
/// assert!((w.value[0] - 0.71).abs() < 1e-15);
/// # Ok::<(), handgrad_optim::OptimError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sgd<F = f64> {
    config: SgdConfig,
    momentum_buffers: Vec<ArrayD<F>>,
    /// Parameter shapes seen at the first step, so that a later step with other parameters is
    /// rejected even without momentum buffers.
    shapes: Vec<Vec<usize>>,
}

impl<F: Scalar> Sgd<F> {
    /// Creates an optimiser with empty state.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperparameter`] when lr, momentum or weight_decay is negative or not
    /// finite.
    pub fn new(config: SgdConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, momentum_buffers: Vec::new(), shapes: Vec::new() })
    }

    /// Hyperparameters, with the learning rate as last set.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// Returns a copy of the momentum buffers, for a checkpoint.
    pub fn state(&self) -> SgdState<F> {
        SgdState { momentum_buffers: self.momentum_buffers.clone() }
    }

    /// Replaces the momentum buffers with ones saved by [`Sgd::state`].
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidState`] when buffers are given but momentum is 0. The current state
    /// is kept on error.
    pub fn load_state(&mut self, state: SgdState<F>) -> Result<()> {
        if self.config.momentum == 0.0 && !state.momentum_buffers.is_empty() {
            return Err(OptimError::InvalidState {
                component: COMPONENT,
                reason: format!(
                    "{} momentum buffers given but momentum is 0",
                    state.momentum_buffers.len()
                ),
            });
        }
        self.shapes = state.momentum_buffers.iter().map(|b| b.shape().to_vec()).collect();
        self.momentum_buffers = state.momentum_buffers;
        Ok(())
    }

    fn update(&mut self, index: usize, param: &mut Param<F>) {
        let lr = F::from_f64_lossy(self.config.learning_rate);
        let weight_decay = F::from_f64_lossy(self.config.weight_decay);
        let momentum = F::from_f64_lossy(self.config.momentum);
        let first_step = self.momentum_buffers.len() <= index;
        if self.config.momentum != 0.0 && first_step {
            self.momentum_buffers.push(ArrayD::zeros(param.value.raw_dim()));
        }

        let Param { value, grad, .. } = param;
        let decayed = |g: F, p: F| if weight_decay == F::zero() { g } else { g + weight_decay * p };
        if self.config.momentum == 0.0 {
            Zip::from(value).and(&*grad).for_each(|p, &g| *p -= lr * decayed(g, *p));
            return;
        }
        let buffer = &mut self.momentum_buffers[index];
        Zip::from(value).and(&*grad).and(buffer).for_each(|p, &g, b| {
            let g = decayed(g, *p);
            *b = if first_step { g } else { *b * momentum + g };
            *p -= lr * *b;
        });
    }
}

impl<F: Scalar> Optimizer<F> for Sgd<F> {
    fn step(&mut self, params: &mut [&mut Param<F>]) -> Result<()> {
        non_negative(COMPONENT, "learning_rate", self.config.learning_rate)?;
        let shapes: Vec<&[usize]> = self.shapes.iter().map(Vec::as_slice).collect();
        params_match_shapes(COMPONENT, params, &shapes)?;
        if self.shapes.is_empty() {
            self.shapes = params.iter().map(|p| p.value.shape().to_vec()).collect();
        }

        for (index, param) in params.iter_mut().enumerate() {
            self.update(index, param);
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
