//! Learning-rate schedules that depend only on the epoch: constant-factor decay and piecewise
//! linear keypoints.

use crate::validate::positive;
use crate::{OptimError, Result};

/// Multiplies the learning rate by `gamma` once per epoch: `lr_e = lr_0 * gamma^e`.
///
/// This is the per-epoch decay of a plain SGD training loop, and PyTorch's `ExponentialLR`.
///
/// # Example
///
/// ```
/// use handgrad_optim::StepDecay;
///
/// let decay = StepDecay::new(0.95)?;
/// assert!((decay.next_learning_rate(1e-3) - 9.5e-4).abs() < 1e-18);
/// assert!((decay.at(1e-3, 2) - 9.025e-4).abs() < 1e-18);
/// # Ok::<(), handgrad_optim::OptimError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepDecay {
    /// Factor applied at the end of every epoch, finite and > 0.
    pub gamma: f64,
}

impl StepDecay {
    /// Creates a decay by `gamma` per epoch.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperparameter`] when `gamma` is not finite and positive.
    pub fn new(gamma: f64) -> Result<Self> {
        positive("step_decay", "gamma", gamma)?;
        Ok(Self { gamma })
    }

    /// Returns the learning rate for the next epoch, `lr * gamma`.
    pub fn next_learning_rate(&self, lr: f64) -> f64 {
        lr * self.gamma
    }

    /// Returns the learning rate of epoch `epoch` (0-based), `initial * gamma^epoch`, computed by
    /// repeated multiplication as a training loop applying [`StepDecay::next_learning_rate`]
    /// each epoch would.
    pub fn at(&self, initial: f64, epoch: u32) -> f64 {
        (0..epoch).fold(initial, |lr, _| self.next_learning_rate(lr))
    }
}

/// A learning rate that is linear between keypoints `(epoch, lr)` and constant outside them.
///
/// For keypoints `(e_0, r_0), ..., (e_k, r_k)` with `e_0 < ... < e_k`:
///
/// ```text
/// lr(e) = r_0                                               e <= e_0
/// lr(e) = r_i + (e - e_i) / (e_{i+1} - e_i) * (r_{i+1} - r_i)  e_i <= e <= e_{i+1}
/// lr(e) = r_k                                               e >= e_k
/// ```
///
/// Epochs are `f64` so that the rate can change within an epoch (pass `epoch + batch / batches`).
///
/// # Example
///
/// ```
/// use handgrad_optim::KeypointSchedule;
///
/// // Warm up to 1e-3, dip to 5e-4, rise again, then decay.
/// let points = vec![(0.0, 1e-4), (3.0, 1e-3), (6.0, 5e-4), (7.0, 1e-3), (9.0, 1e-4)];
/// let schedule = KeypointSchedule::new(points)?;
/// assert!((schedule.at(1.5) - 5.5e-4).abs() < 1e-15);
/// assert!((schedule.at(8.0) - 5.5e-4).abs() < 1e-15);
/// assert_eq!(schedule.at(-1.0), 1e-4);
/// assert_eq!(schedule.at(20.0), 1e-4);
/// # Ok::<(), handgrad_optim::OptimError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct KeypointSchedule {
    points: Vec<(f64, f64)>,
}

impl KeypointSchedule {
    /// Creates a schedule through `points`, given as `(epoch, learning_rate)` in increasing epoch
    /// order.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidKeypoints`] when `points` is empty, an epoch or rate is not finite, a
    /// rate is negative, or the epochs are not strictly increasing (a repeated epoch would make
    /// the rate jump, so it is rejected too).
    pub fn new(points: Vec<(f64, f64)>) -> Result<Self> {
        if points.is_empty() {
            return Err(invalid("no keypoints given, expected at least one (epoch, lr) pair"));
        }
        for (index, &(epoch, lr)) in points.iter().enumerate() {
            if !(epoch.is_finite() && lr.is_finite() && lr >= 0.0) {
                return Err(invalid(&format!(
                    "point {index} is ({epoch}, {lr}), expected a finite epoch and a finite lr >= 0"
                )));
            }
        }
        for (index, pair) in points.windows(2).enumerate() {
            let (previous, current) = (pair[0].0, pair[1].0);
            if current == previous {
                return Err(invalid(&format!(
                    "points {index} and {} share epoch {current}, expected distinct epochs",
                    index + 1
                )));
            }
            if current < previous {
                return Err(invalid(&format!(
                    "point {} has epoch {current} after epoch {previous}, expected increasing epochs",
                    index + 1
                )));
            }
        }
        Ok(Self { points })
    }

    /// Keypoints in increasing epoch order.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }

    /// Returns the learning rate at `epoch`; NaN for a NaN epoch.
    pub fn at(&self, epoch: f64) -> f64 {
        if epoch.is_nan() {
            return f64::NAN;
        }
        let after = self.points.partition_point(|&(e, _)| e <= epoch);
        if after == 0 {
            return self.points[0].1;
        }
        if after == self.points.len() {
            return self.points[after - 1].1;
        }
        let (e0, r0) = self.points[after - 1];
        let (e1, r1) = self.points[after];
        r0 + (epoch - e0) / (e1 - e0) * (r1 - r0)
    }
}

fn invalid(reason: &str) -> OptimError {
    OptimError::InvalidKeypoints { reason: reason.to_owned() }
}
