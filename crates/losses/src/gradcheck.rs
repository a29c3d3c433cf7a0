//! A seeded numerical check of the softmax cross-entropy gradient.
//!
//! [`check_softmax_cross_entropy`] draws random logits and labels, computes the analytic gradient
//! (P - Y) / N and compares it with central differences of the loss. It backs the reproduction of
//! the claim dL/dh_i = P(y = i) - y_i and can be called from any tool that reports on it.

use handgrad_tensor::gradcheck::{numerical_gradient, relative_error};
use ndarray::Array2;

use crate::{softmax_cross_entropy, LossError, Result};

/// Settings of one numerical gradient check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradientCheckConfig {
    /// Seed of the generator that draws logits and labels.
    pub seed: u64,
    /// Number of rows N, at least 1.
    pub batch: usize,
    /// Number of classes C, at least 1.
    pub classes: usize,
    /// Logits are drawn uniformly from `[-scale, scale]`; finite and non-negative.
    pub scale: f64,
    /// Central-difference step h; finite and positive.
    pub step: f64,
}

impl Default for GradientCheckConfig {
    /// Four rows of ten classes, logits in [-3, 3] and h = 1e-5: a well-conditioned example.
    fn default() -> Self {
        Self { seed: 0, batch: 4, classes: 10, scale: 3.0, step: 1e-5 }
    }
}

/// Result of [`check_softmax_cross_entropy`].
#[derive(Debug, Clone, PartialEq)]
pub struct GradientCheck {
    /// Logits (N, C) the check used.
    pub logits: Array2<f64>,
    /// Labels (N) the check used.
    pub labels: Vec<usize>,
    /// Loss at the logits.
    pub loss: f64,
    /// Analytic gradient (P - Y) / N.
    pub analytic: Array2<f64>,
    /// Central-difference gradient.
    pub numeric: Array2<f64>,
    /// Largest `|a - n| / max(|a| + |n|, 1e-8)` over all entries.
    pub max_relative_error: f64,
    /// Largest `|a - n|` over all entries.
    pub max_absolute_error: f64,
}

/// Compares the analytic cross-entropy gradient with central differences on a seeded example.
///
/// The same `config` always draws the same logits and labels. Central differences have a
/// truncation error of O(h^2) and a rounding error of about `eps * |L| / h`. With logits of
/// moderate size and h near 1e-5 the relative error is therefore around 1e-8 (9.0e-9 for the
/// default config). Entries whose gradient is near zero are compared through the 1e-8 floor of
/// [`handgrad_tensor::gradcheck::relative_error`], so with logits large enough to make some
/// probabilities tiny the relative error grows while the absolute error stays small.
///
/// # Errors
///
/// [`LossError::InvalidArgument`] for a non-finite or negative `scale` or a step that is not
/// finite and positive, and the errors of [`softmax_cross_entropy`] (such as
/// [`LossError::EmptyBatch`] for `batch = 0`).
///
/// # Example
///
/// ```
/// use handgrad_losses::gradcheck::{check_softmax_cross_entropy, GradientCheckConfig};
///
/// let check = check_softmax_cross_entropy(&GradientCheckConfig::default())?;
/// assert!(check.max_relative_error < 1e-6);
/// # Ok::<(), handgrad_losses::LossError>(())
/// ```
pub fn check_softmax_cross_entropy(config: &GradientCheckConfig) -> Result<GradientCheck> {
    validate(config)?;

    let mut rng = SplitMix64(config.seed);
    let logits = Array2::from_shape_fn((config.batch, config.classes), |_| {
        config.scale * (2.0 * rng.next_unit() - 1.0)
    });
    let labels: Vec<usize> =
        (0..config.batch).map(|_| rng.next_below(config.classes.max(1))).collect();

    let (loss, analytic) = softmax_cross_entropy(&logits.view(), &labels)?;
    let loss_at = |x: &Array2<f64>| match softmax_cross_entropy(&x.view(), &labels) {
        Ok((value, _)) => value,
        Err(_) => f64::NAN,
    };
    let numeric = numerical_gradient(loss_at, &logits, config.step);

    let max_relative_error = relative_error(&analytic, &numeric);
    let max_absolute_error =
        analytic.iter().zip(&numeric).map(|(a, n)| (a - n).abs()).fold(0.0, f64::max);
    Ok(GradientCheck {
        logits,
        labels,
        loss,
        analytic,
        numeric,
        max_relative_error,
        max_absolute_error,
    })
}

fn validate(config: &GradientCheckConfig) -> Result<()> {
    if !(config.scale.is_finite() && config.scale >= 0.0) {
        return Err(LossError::InvalidArgument {
            name: "scale",
            value: config.scale,
            expected: "a finite number >= 0",
        });
    }
    if !(config.step.is_finite() && config.step > 0.0) {
        return Err(LossError::InvalidArgument {
            name: "step",
            value: config.step,
            expected: "a finite number > 0",
        });
    }
    Ok(())
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a small, fast, seedable generator, enough for
/// drawing test inputs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..bound; the modulo bias is below 2^-50 for the bounds used here.
    fn next_below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_draws_same_example() {
        let config = GradientCheckConfig::default();
        let first = check_softmax_cross_entropy(&config).unwrap();
        let second = check_softmax_cross_entropy(&config).unwrap();
        assert_eq!(first.logits, second.logits);
        assert_eq!(first.labels, second.labels);
    }

    #[test]
    fn rejects_zero_step() {
        let config = GradientCheckConfig { step: 0.0, ..GradientCheckConfig::default() };
        assert!(matches!(
            check_softmax_cross_entropy(&config),
            Err(LossError::InvalidArgument { name: "step", .. })
        ));
    }
}
