//! Scores for rainfall predictions: error measures, correlation and categorical scores.
//!
//! Every function takes a prediction and an observation of the same shape, in mm per hour,
//! and accumulates in `f64`. Categorical scores count an event when `value >= threshold`,
//! with both sides compared as `f64`. The formulas and the conventions for empty
//! denominators are in `docs/nowcast-metrics.md`.

use ndarray::{ArrayView, Dimension, Zip};

/// Thresholds in mm per hour at which rainfall predictions are usually scored.
pub const STANDARD_THRESHOLDS_MM: [f64; 4] = [0.1, 1.0, 5.0, 10.0];

/// Errors raised by the scores.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricError {
    /// Prediction and observation have different shapes.
    #[error("{metric}: prediction shape {prediction:?} does not match observation shape {observation:?}")]
    ShapeMismatch { metric: &'static str, prediction: Vec<usize>, observation: Vec<usize> },
    /// There is nothing to score.
    #[error("{metric}: no values to score, expected at least one")]
    Empty { metric: &'static str },
}

/// Result alias for the scores.
pub type Result<T> = std::result::Result<T, MetricError>;

fn check_pair<D: Dimension>(
    metric: &'static str,
    prediction: &ArrayView<'_, f32, D>,
    observation: &ArrayView<'_, f32, D>,
) -> Result<()> {
    if prediction.shape() != observation.shape() {
        return Err(MetricError::ShapeMismatch {
            metric,
            prediction: prediction.shape().to_vec(),
            observation: observation.shape().to_vec(),
        });
    }
    if prediction.is_empty() {
        return Err(MetricError::Empty { metric });
    }
    Ok(())
}

fn mean_of<D: Dimension>(
    prediction: &ArrayView<'_, f32, D>,
    observation: &ArrayView<'_, f32, D>,
    term: impl Fn(f64) -> f64,
) -> f64 {
    let mut sum = 0.0;
    Zip::from(prediction).and(observation).for_each(|&p, &o| sum += term(p as f64 - o as f64));
    sum / prediction.len() as f64
}

/// Mean squared error over all predictions: `sum((p - o)^2) / n`, in mm².
///
/// # Errors
/// [`MetricError::ShapeMismatch`] when the shapes differ, [`MetricError::Empty`] when `n = 0`.
pub fn mse<D: Dimension>(
    prediction: &ArrayView<'_, f32, D>,
    observation: &ArrayView<'_, f32, D>,
) -> Result<f64> {
    check_pair("mse", prediction, observation)?;
    Ok(mean_of(prediction, observation, |d| d * d))
}

/// Root mean squared error: `sqrt(mse)`, in mm.
///
/// # Errors
/// As [`mse`].
pub fn rmse<D: Dimension>(
    prediction: &ArrayView<'_, f32, D>,
    observation: &ArrayView<'_, f32, D>,
) -> Result<f64> {
    check_pair("rmse", prediction, observation)?;
    Ok(mean_of(prediction, observation, |d| d * d).sqrt())
}

/// Mean absolute error: `sum(|p - o|) / n`, in mm.
///
/// # Errors
/// As [`mse`].
pub fn mae<D: Dimension>(
    prediction: &ArrayView<'_, f32, D>,
    observation: &ArrayView<'_, f32, D>,
) -> Result<f64> {
    check_pair("mae", prediction, observation)?;
    Ok(mean_of(prediction, observation, f64::abs))
}

/// Pearson correlation between prediction and observation over all elements.
///
/// `r = sum((p - mean_p)(o - mean_o)) / sqrt(sum((p - mean_p)^2) sum((o - mean_o)^2))`.
/// Returns `Ok(None)` when either side is constant (including a single element), because the
/// correlation is then undefined. A constant baseline therefore has no correlation, not 0.
///
/// # Errors
/// As [`mse`].
pub fn correlation<D: Dimension>(
    prediction: &ArrayView<'_, f32, D>,
    observation: &ArrayView<'_, f32, D>,
) -> Result<Option<f64>> {
    check_pair("correlation", prediction, observation)?;
    let n = prediction.len() as f64;
    let mean_p = prediction.iter().map(|&p| p as f64).sum::<f64>() / n;
    let mean_o = observation.iter().map(|&o| o as f64).sum::<f64>() / n;

    let (mut cov, mut var_p, mut var_o) = (0.0, 0.0, 0.0);
    Zip::from(prediction).and(observation).for_each(|&p, &o| {
        let (dp, d_o) = (p as f64 - mean_p, o as f64 - mean_o);
        cov += dp * d_o;
        var_p += dp * dp;
        var_o += d_o * d_o;
    });

    if var_p == 0.0 || var_o == 0.0 {
        return Ok(None);
    }
    Ok(Some((cov / (var_p.sqrt() * var_o.sqrt())).clamp(-1.0, 1.0)))
}

/// A 2x2 contingency table of rain events at one threshold.
///
/// An event is `value >= threshold_mm`. `hits`: predicted and observed; `false_alarms`:
/// predicted, not observed; `misses`: observed, not predicted; `correct_negatives`: neither.
/// Each score returns `None` when its denominator is zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contingency {
    /// Threshold in mm per hour.
    pub threshold_mm: f64,
    /// Events predicted and observed.
    pub hits: u64,
    /// Events predicted but not observed.
    pub false_alarms: u64,
    /// Events observed but not predicted.
    pub misses: u64,
    /// Hours with no event predicted and none observed.
    pub correct_negatives: u64,
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator != 0.0).then(|| numerator / denominator)
}

impl Contingency {
    /// Counts the table from predictions and observations at `threshold_mm`.
    ///
    /// # Errors
    /// As [`mse`].
    pub fn at_threshold<D: Dimension>(
        prediction: &ArrayView<'_, f32, D>,
        observation: &ArrayView<'_, f32, D>,
        threshold_mm: f64,
    ) -> Result<Contingency> {
        check_pair("contingency", prediction, observation)?;
        let mut table = Contingency::from_counts(threshold_mm, 0, 0, 0, 0);
        Zip::from(prediction).and(observation).for_each(|&p, &o| {
            match (p as f64 >= threshold_mm, o as f64 >= threshold_mm) {
                (true, true) => table.hits += 1,
                (true, false) => table.false_alarms += 1,
                (false, true) => table.misses += 1,
                (false, false) => table.correct_negatives += 1,
            }
        });
        Ok(table)
    }

    /// Builds a table from counts already made.
    pub fn from_counts(
        threshold_mm: f64,
        hits: u64,
        false_alarms: u64,
        misses: u64,
        correct_negatives: u64,
    ) -> Contingency {
        Contingency { threshold_mm, hits, false_alarms, misses, correct_negatives }
    }

    /// Number of scored values.
    pub fn total(&self) -> u64 {
        self.hits + self.false_alarms + self.misses + self.correct_negatives
    }

    fn counts(&self) -> (f64, f64, f64, f64) {
        let c = |v: u64| v as f64;
        (c(self.hits), c(self.false_alarms), c(self.misses), c(self.correct_negatives))
    }

    /// Probability of detection `H / (H + M)`; `None` when no event was observed.
    pub fn pod(&self) -> Option<f64> {
        let (h, _, m, _) = self.counts();
        ratio(h, h + m)
    }

    /// False alarm ratio `F / (H + F)`; `None` when no event was predicted.
    pub fn far(&self) -> Option<f64> {
        let (h, f, _, _) = self.counts();
        ratio(f, h + f)
    }

    /// Critical success index (threat score) `H / (H + M + F)`; `None` when no event was
    /// predicted or observed.
    pub fn csi(&self) -> Option<f64> {
        let (h, f, m, _) = self.counts();
        ratio(h, h + m + f)
    }

    /// Frequency bias `(H + F) / (H + M)`; `None` when no event was observed.
    pub fn bias(&self) -> Option<f64> {
        let (h, f, m, _) = self.counts();
        ratio(h + f, h + m)
    }

    /// Heidke skill score `2 (H C - F M) / ((H + M)(M + C) + (H + F)(F + C))`; `None` when
    /// the denominator is zero, as when every hour is a hit or every hour a correct negative.
    pub fn hss(&self) -> Option<f64> {
        let (h, f, m, c) = self.counts();
        ratio(2.0 * (h * c - f * m), (h + m) * (m + c) + (h + f) * (f + c))
    }

    /// Equitable threat score (Gilbert skill score) `(H - Hr) / (H + M + F - Hr)` with the
    /// hits expected by chance `Hr = (H + M)(H + F) / total`; `None` when the denominator is zero.
    pub fn ets(&self) -> Option<f64> {
        let (h, f, m, _) = self.counts();
        let total = self.total() as f64;
        if total == 0.0 {
            return None;
        }
        let random_hits = (h + m) * (h + f) / total;
        ratio(h - random_hits, h + m + f - random_hits)
    }
}

/// Scores at each of [`STANDARD_THRESHOLDS_MM`].
///
/// # Errors
/// As [`mse`].
pub fn standard_contingencies<D: Dimension>(
    prediction: &ArrayView<'_, f32, D>,
    observation: &ArrayView<'_, f32, D>,
) -> Result<Vec<Contingency>> {
    STANDARD_THRESHOLDS_MM
        .iter()
        .map(|&threshold| Contingency::at_threshold(prediction, observation, threshold))
        .collect()
}
