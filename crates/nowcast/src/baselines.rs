//! Reference predictions that every learned model has to beat.
//!
//! - [`majority_value`]: every hour gets the most frequent training label. Most hours are dry,
//!   so this is 0 mm and its MSE equals the mean squared rain.
//! - [`training_mean`]: every hour gets the mean training label, the constant with the lowest
//!   MSE on the training split.
//! - [`persistence`]: hour `t` gets the gauge value of hour `t - 1`. It scores hours 2-5 only,
//!   because hour 1 has no earlier value in the sequence.
//!
//! Each returns a [`Prediction`] holding predictions and the matching observations, so the
//! functions of [`crate::metrics`] apply to the pair directly.

use std::collections::HashMap;

use ndarray::{s, Array2};

use crate::data::{Split, HOURS};

/// Predictions with the observations they are scored against, both `(N, hours)` in mm.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Predicted rain per hour.
    pub predictions: Array2<f32>,
    /// Observed rain for the same hours.
    pub targets: Array2<f32>,
    /// The sequence hours (0-based) that the columns stand for.
    pub hours: std::ops::Range<usize>,
}

/// Finds the most frequent label value in `train`, compared bit for bit (with -0 counted as 0).
///
/// Ties go to the smaller value. With continuous labels where no value repeats, every count is
/// 1 and the smallest label wins, so this is only meaningful when one value dominates, as
/// 0 mm does for rain. Returns 0 for an empty split.
pub fn label_mode(train: &Split) -> f32 {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for &value in &train.labels {
        let value = if value == 0.0 { 0.0f32 } else { value };
        *counts.entry(value.to_bits()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(bits, count)| (f32::from_bits(bits), count))
        .max_by(|(value_a, count_a), (value_b, count_b)| {
            count_a.cmp(count_b).then_with(|| value_b.total_cmp(value_a))
        })
        .map_or(0.0, |(value, _)| value)
}

/// Computes the mean of all training labels in mm, accumulated in `f64`, or 0 for an empty split.
pub fn label_mean(train: &Split) -> f64 {
    if train.labels.is_empty() {
        return 0.0;
    }
    train.labels.iter().map(|&v| v as f64).sum::<f64>() / train.labels.len() as f64
}

fn constant(split: &Split, value: f32) -> Prediction {
    Prediction {
        predictions: Array2::from_elem(split.labels.raw_dim(), value),
        targets: split.labels.clone(),
        hours: 0..HOURS,
    }
}

/// Predicts [`label_mode`] of `train` for every hour of `split`.
pub fn majority_value(train: &Split, split: &Split) -> Prediction {
    constant(split, label_mode(train))
}

/// Predicts [`label_mean`] of `train` for every hour of `split`.
pub fn training_mean(train: &Split, split: &Split) -> Prediction {
    constant(split, label_mean(train) as f32)
}

/// Predicts hour `t` of each sequence by the gauge value of hour `t - 1`, for hours 2-5.
///
/// Shapes `(N, 4)`: column `k` predicts hour `k + 1` (0-based) from hour `k`.
pub fn persistence(split: &Split) -> Prediction {
    Prediction {
        predictions: split.labels.slice(s![.., ..HOURS - 1]).to_owned(),
        targets: split.labels.slice(s![.., 1..]).to_owned(),
        hours: 1..HOURS,
    }
}
