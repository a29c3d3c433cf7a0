//! Optimisers and learning-rate schedules with PyTorch's update rules.
//!
//! - [`Optimizer`]: the interface every optimiser implements; it updates [`Param::value`] in
//!   place from [`Param::grad`].
//! - [`Sgd`]: stochastic gradient descent with momentum and L2 weight decay, as
//!   `torch.optim.SGD`.
//! - [`Adam`]: Adam with bias correction, as `torch.optim.Adam` (without AMSGrad).
//! - Schedules: [`StepDecay`] (multiply by a constant every epoch), [`ReduceLrOnPlateau`]
//!   (as `torch.optim.lr_scheduler.ReduceLROnPlateau` in mode "min", threshold mode "rel") and
//!   [`KeypointSchedule`] (piecewise linear through given points).
//!
//! Optimisers remember the number and shapes of the parameters from their first step and reject
//! a later step with different ones, because their per-parameter state would no longer line up.
//! Their state can be saved and restored for checkpoints ([`Adam::state`], [`Sgd::state`]).
//!
//! # Example
//!
//! ```
//! use handgrad_optim::{Adam, AdamConfig, Optimizer};
//! use handgrad_tensor::Param;
//! use ndarray::{arr1, ArrayD};
//!
//! // Minimise (x - 3)^2 from x = 0.
//! let mut x = Param::new("x", arr1(&[0.0f64]).into_dyn());
//! let mut adam = Adam::new(AdamConfig { learning_rate: 0.1, ..AdamConfig::default() })?;
//! for _ in 0..500 {
//!     x.grad = x.value.mapv(|v| 2.0 * (v - 3.0));
//!     adam.step(&mut [&mut x])?;
//! }
//! assert!((x.value[0] - 3.0).abs() < 1e-3);
//! # Ok::<(), handgrad_optim::OptimError>(())
//! ```

mod adam;
mod plateau;
mod schedule;
mod sgd;
mod validate;

pub use adam::{Adam, AdamConfig, AdamState};
pub use plateau::{PlateauConfig, PlateauState, ReduceLrOnPlateau};
pub use schedule::{KeypointSchedule, StepDecay};
pub use sgd::{Sgd, SgdConfig, SgdState};

use handgrad_tensor::{Param, Scalar};

/// Errors raised by optimisers and schedules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimError {
    /// A hyperparameter is outside its valid range.
    #[error("{component}: {name} = {value} is invalid, expected {expected}")]
    InvalidHyperparameter {
        /// Optimiser or schedule that rejected the value, such as `"adam"`.
        component: &'static str,
        /// Name of the hyperparameter.
        name: &'static str,
        /// Value given.
        value: f64,
        /// Valid range, in words.
        expected: &'static str,
    },
    /// A step received a different number of parameters than the optimiser's state holds.
    #[error("{component}: step received {found} parameters, expected {expected} as before")]
    ParamCount {
        /// Optimiser that rejected the step.
        component: &'static str,
        /// Number of parameters in the optimiser's state.
        expected: usize,
        /// Number of parameters given.
        found: usize,
    },
    /// A parameter has a different shape than in the optimiser's state.
    #[error("{component}: parameter {index} ({name}) has shape {found:?}, expected {expected:?}")]
    ParamShape {
        /// Optimiser that rejected the step.
        component: &'static str,
        /// Position of the parameter in the slice given to `step`.
        index: usize,
        /// [`Param::name`] of the parameter.
        name: String,
        /// Shape in the optimiser's state.
        expected: Vec<usize>,
        /// Shape of the parameter.
        found: Vec<usize>,
    },
    /// A parameter's gradient has a different shape than its value.
    #[error(
        "{component}: parameter {index} ({name}) has gradient shape {grad:?}, expected {value:?}"
    )]
    GradShape {
        /// Optimiser that rejected the step.
        component: &'static str,
        /// Position of the parameter in the slice given to `step`.
        index: usize,
        /// [`Param::name`] of the parameter.
        name: String,
        /// Shape of the value.
        value: Vec<usize>,
        /// Shape of the gradient.
        grad: Vec<usize>,
    },
    /// A saved state cannot be loaded because its parts do not fit together.
    #[error("{component}: invalid state: {reason}")]
    InvalidState {
        /// Optimiser or schedule that rejected the state.
        component: &'static str,
        /// Description of the inconsistency.
        reason: String,
    },
    /// Keypoints of a [`KeypointSchedule`] are empty, unsorted, repeated or not finite.
    #[error("keypoint schedule: {reason}")]
    InvalidKeypoints {
        /// Description of the problem, naming the offending point.
        reason: String,
    },
}

/// Result alias for optimisers and schedules.
pub type Result<T> = std::result::Result<T, OptimError>;

/// An update rule that changes parameters in place from their gradients.
pub trait Optimizer<F: Scalar> {
    /// Updates every parameter from its gradient, in the order given.
    ///
    /// The slice must hold the same parameters, with the same shapes and in the same order, at
    /// every step; per-parameter state is matched by position.
    ///
    /// # Errors
    ///
    /// [`OptimError::ParamCount`] or [`OptimError::ParamShape`] when the parameters differ from
    /// earlier steps, [`OptimError::GradShape`] when a gradient's shape differs from its value's,
    /// [`OptimError::InvalidHyperparameter`] when the learning rate set with
    /// [`Optimizer::set_learning_rate`] is negative or not finite. Parameters are left unchanged
    /// on error.
    fn step(&mut self, params: &mut [&mut Param<F>]) -> Result<()>;

    /// Current learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate for the following steps, as schedules do between epochs.
    ///
    /// The value is checked by the next [`Optimizer::step`].
    fn set_learning_rate(&mut self, lr: f64);
}
