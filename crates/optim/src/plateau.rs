//! Learning-rate reduction when a monitored metric stops improving, following
//! `torch.optim.lr_scheduler.ReduceLROnPlateau` with mode "min" and threshold mode "rel".

use crate::validate::{non_negative, unit_interval};
use crate::{OptimError, Result};

const COMPONENT: &str = "reduce_lr_on_plateau";

/// Hyperparameters of [`ReduceLrOnPlateau`]; [`Default`] gives PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlateauConfig {
    /// Factor the learning rate is multiplied by on a plateau, in [0, 1) (default 0.1).
    pub factor: f64,
    /// Number of epochs without improvement tolerated before reducing (default 10).
    pub patience: usize,
    /// Relative improvement needed: a metric counts as better when it is below
    /// `best * (1 - threshold)`; in [0, 1) (default 1e-4).
    pub threshold: f64,
    /// Lower bound of the learning rate, finite and >= 0 (default 0).
    pub min_lr: f64,
    /// Number of epochs after a reduction during which bad epochs are not counted (default 0).
    pub cooldown: usize,
    /// Reductions smaller than this are skipped, finite and >= 0 (default 1e-8).
    pub eps: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        Self { factor: 0.1, patience: 10, threshold: 1e-4, min_lr: 0.0, cooldown: 0, eps: 1e-8 }
    }
}

/// Saved state of [`ReduceLrOnPlateau`], for checkpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlateauState {
    /// Best metric so far; +infinity before the first step.
    pub best: f64,
    /// Consecutive epochs without improvement, outside cooldown.
    pub num_bad_epochs: usize,
    /// Epochs of cooldown left.
    pub cooldown_counter: usize,
    /// Number of steps taken.
    pub last_epoch: usize,
}

impl Default for PlateauState {
    fn default() -> Self {
        Self { best: f64::INFINITY, num_bad_epochs: 0, cooldown_counter: 0, last_epoch: 0 }
    }
}

/// Reduces the learning rate by a factor when a metric to be minimised stops improving.
///
/// Each [`ReduceLrOnPlateau::step`] takes one epoch's metric and does, in this order:
///
/// 1. if `metric < best * (1 - threshold)`, record it as `best` and reset the bad-epoch count,
///    otherwise count a bad epoch (a NaN metric is never better, so it counts as bad);
/// 2. during cooldown, count the cooldown down and discard the bad epochs;
/// 3. when the bad epochs exceed `patience`, set `lr = max(lr * factor, min_lr)` unless that
///    changes it by `eps` or less, start a cooldown of `cooldown` epochs and reset the count.
///
/// This is PyTorch's `ReduceLROnPlateau(mode="min", threshold_mode="rel")` for one parameter
/// group; the tests compare learning-rate sequences with PyTorch 2.15.
///
/// # Example
///
/// ```
/// use handgrad_optim::{PlateauConfig, ReduceLrOnPlateau};
///
/// let config = PlateauConfig { factor: 0.5, patience: 1, ..PlateauConfig::default() };
/// let mut scheduler = ReduceLrOnPlateau::new(config)?;
/// let mut lr = 0.1;
/// for loss in [1.0, 0.9, 0.95, 0.95] {
///     lr = scheduler.step(loss, lr);
/// }
/// // Two epochs without improvement exceed a patience of 1.
/// assert_eq!(lr, 0.05);
/// # Ok::<(), handgrad_optim::OptimError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReduceLrOnPlateau {
    config: PlateauConfig,
    state: PlateauState,
}

impl ReduceLrOnPlateau {
    /// Creates a scheduler that has seen no metric yet.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperparameter`] when `factor` or `threshold` is outside [0, 1), or
    /// `min_lr` or `eps` is negative or not finite.
    pub fn new(config: PlateauConfig) -> Result<Self> {
        unit_interval(COMPONENT, "factor", config.factor)?;
        unit_interval(COMPONENT, "threshold", config.threshold)?;
        non_negative(COMPONENT, "min_lr", config.min_lr)?;
        non_negative(COMPONENT, "eps", config.eps)?;
        Ok(Self { config, state: PlateauState::default() })
    }

    /// Hyperparameters.
    pub fn config(&self) -> &PlateauConfig {
        &self.config
    }

    /// Returns a copy of the counters and the best metric, for a checkpoint.
    pub fn state(&self) -> PlateauState {
        self.state
    }

    /// Replaces the state with one saved by [`ReduceLrOnPlateau::state`].
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidState`] when `best` is NaN or the cooldown counter exceeds the
    /// configured cooldown.
    pub fn load_state(&mut self, state: PlateauState) -> Result<()> {
        if state.best.is_nan() || state.cooldown_counter > self.config.cooldown {
            return Err(OptimError::InvalidState {
                component: COMPONENT,
                reason: format!(
                    "best {} and cooldown counter {} (cooldown {}); expected a non-NaN best and a \
                     counter at most the cooldown",
                    state.best, state.cooldown_counter, self.config.cooldown
                ),
            });
        }
        self.state = state;
        Ok(())
    }

    /// Records one epoch's `metric` and returns the learning rate to use next, given the
    /// `current_lr`.
    pub fn step(&mut self, metric: f64, current_lr: f64) -> f64 {
        let state = &mut self.state;
        state.last_epoch += 1;
        if metric < state.best * (1.0 - self.config.threshold) {
            state.best = metric;
            state.num_bad_epochs = 0;
        } else {
            state.num_bad_epochs += 1;
        }

        if state.cooldown_counter > 0 {
            state.cooldown_counter -= 1;
            state.num_bad_epochs = 0;
        }

        if state.num_bad_epochs <= self.config.patience {
            return current_lr;
        }
        state.cooldown_counter = self.config.cooldown;
        state.num_bad_epochs = 0;
        let reduced = (current_lr * self.config.factor).max(self.config.min_lr);
        if current_lr - reduced > self.config.eps {
            reduced
        } else {
            current_lr
        }
    }
}
