//! Per-channel feature scaling, fitted on the training split and stored in checkpoints.
//!
//! Every channel `c` is mapped by `x' = (x - offset[c]) / scale[c]`. A z-score normalizer
//! uses the channel's mean and population standard deviation; a min-max normalizer uses its
//! minimum and range, so training values land in `[0, 1]`. Fit on the training split only, then
//! apply the same normalizer to validation and test, so no information leaks from them.

use ndarray::{ArrayViewMut, Axis, RemoveAxis};

use crate::data::{channel_moments, DataError, Result, Split, CHANNELS};

/// Fitting method of a [`Normalizer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `offset` = mean, `scale` = population standard deviation.
    ZScore,
    /// `offset` = minimum, `scale` = maximum - minimum.
    MinMax,
}

impl Method {
    /// Returns the method's name as stored in checkpoints: `"zscore"` or `"minmax"`.
    pub fn name(self) -> &'static str {
        match self {
            Method::ZScore => "zscore",
            Method::MinMax => "minmax",
        }
    }

    /// Parses a name written by [`Method::name`].
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] for any other name.
    pub fn from_name(name: &str) -> Result<Method> {
        match name {
            "zscore" => Ok(Method::ZScore),
            "minmax" => Ok(Method::MinMax),
            other => Err(DataError::InvalidArgument(format!(
                "normalizer method must be \"zscore\" or \"minmax\", found {other:?}"
            ))),
        }
    }
}

/// Per-channel affine scaling `x' = (x - offset[c]) / scale[c]`.
///
/// A channel that is constant in the fitted data gets `scale = 1`, so it maps to 0 (z-score)
/// or stays shifted to 0 (min-max) instead of dividing by zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalizer {
    method: Method,
    offset: [f64; CHANNELS],
    scale: [f64; CHANNELS],
}

impl Normalizer {
    /// Fits mean and population standard deviation per channel over all sequences, hours and
    /// pixels of `split`. An empty split gives the identity.
    pub fn fit_zscore(split: &Split) -> Normalizer {
        let moments = channel_moments(split);
        Normalizer {
            method: Method::ZScore,
            offset: moments.mean,
            scale: moments.std.map(nonzero_scale),
        }
    }

    /// Fits minimum and range per channel. An empty split gives the identity.
    pub fn fit_minmax(split: &Split) -> Normalizer {
        let moments = channel_moments(split);
        let range: [f64; CHANNELS] = std::array::from_fn(|c| moments.max[c] - moments.min[c]);
        Normalizer { method: Method::MinMax, offset: moments.min, scale: range.map(nonzero_scale) }
    }

    /// Rebuilds a normalizer from stored numbers, for checkpoints.
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] when an offset is not finite or a scale is not a finite
    /// positive number.
    pub fn from_parts(
        method: Method,
        offset: [f64; CHANNELS],
        scale: [f64; CHANNELS],
    ) -> Result<Normalizer> {
        if let Some(bad) = offset.iter().find(|v| !v.is_finite()) {
            return Err(DataError::InvalidArgument(format!(
                "normalizer offset must be finite, found {bad}"
            )));
        }
        if let Some(bad) = scale.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(DataError::InvalidArgument(format!(
                "normalizer scale must be finite and positive, found {bad}"
            )));
        }
        Ok(Normalizer { method, offset, scale })
    }

    /// The fitting method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Per-channel offsets (mean or minimum), K.
    pub fn offset(&self) -> [f64; CHANNELS] {
        self.offset
    }

    /// Per-channel scales (standard deviation or range), K.
    pub fn scale(&self) -> [f64; CHANNELS] {
        self.scale
    }

    /// Scales the features of `split` in place.
    pub fn apply(&self, split: &mut Split) {
        self.apply_to(split.features.view_mut());
    }

    /// Scales any feature array whose last axis is the channel axis, such as the
    /// `(N, 5, 5, 5, 3)` features or `(N * 5, 5, 5, 3)` hours.
    ///
    /// # Panics
    /// When the last axis does not have length 3.
    pub fn apply_to<D: RemoveAxis>(&self, mut features: ArrayViewMut<'_, f32, D>) {
        let last = Axis(features.ndim() - 1);
        assert_eq!(features.len_of(last), CHANNELS, "the last axis must be the 3 channels");
        for (channel, mut values) in features.axis_iter_mut(last).enumerate() {
            let (offset, scale) = (self.offset[channel], self.scale[channel]);
            values.mapv_inplace(|v| ((v as f64 - offset) / scale) as f32);
        }
    }
}

fn nonzero_scale(scale: f64) -> f64 {
    if scale > 0.0 && scale.is_finite() {
        scale
    } else {
        1.0
    }
}
