//! The rainfall data set: satellite patches around rain gauges and hourly gauge totals.
//!
//! One sequence is 5 consecutive hours at one gauge. Its features are a 5x5 patch of
//! Himawari-9 pixels centred on the gauge with 3 channels: water vapour, then two infrared
//! window bands, as brightness temperatures in kelvin. Its labels are the rain in mm that the
//! gauge measured in each of the 5 hours.
//!
//! On disk each month `M` is a pair of files `features-mM` (shape `(N, 5, 5, 5, 3)`) and
//! `labels-mM` (shape `(N, 5)`), as pickled numpy arrays (`.pk`) or `.npy`. Months 6-8 form
//! the training split, month 9 the validation split and month 10 the test split.
//!
//! [`Split`] stores one split and reshapes it for each kind of model: rows of 75 numbers for a
//! feed-forward net, 3x5x5 images for a CNN, sequences of 5 steps for a GRU.

use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::{s, Array1, Array2, Array3, Array4, Array5, Axis, Ix2, Ix5};
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Hours in one sequence.
pub const HOURS: usize = 5;
/// Pixels along each side of a patch.
pub const GRID: usize = 5;
/// Channels per pixel: water vapour, infrared window 1, infrared window 2.
pub const CHANNELS: usize = 3;
/// Numbers describing one hour of one sequence: `GRID * GRID * CHANNELS`.
pub const FEATURES_PER_HOUR: usize = GRID * GRID * CHANNELS;
/// Channel names in storage order.
pub const CHANNEL_NAMES: [&str; CHANNELS] =
    ["water vapour", "infrared window 1", "infrared window 2"];

/// Months of the training split.
pub const TRAIN_MONTHS: [u32; 3] = [6, 7, 8];
/// Month of the validation split.
pub const VALIDATION_MONTHS: [u32; 1] = [9];
/// Month of the test split.
pub const TEST_MONTHS: [u32; 1] = [10];

/// Errors raised while loading, checking or writing the rainfall data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Neither a `.pk` nor a `.npy` file exists for a month.
    #[error("missing data file: neither {stem}.pk nor {stem}.npy exists in {dir}")]
    MissingFile {
        /// The folder searched.
        dir: PathBuf,
        /// The file name without extension, such as `features-m6`.
        stem: String,
    },
    /// The file could not be read as a numpy array. The reader's message already names the
    /// file, so it is shown as it is.
    #[error("{source}")]
    Read {
        /// The file being read.
        path: PathBuf,
        /// The reader's error.
        source: handgrad_data::DataError,
    },
    /// An array has the wrong rank or shape.
    #[error("{path}: expected an array of shape {expected}, found shape {found:?}")]
    Shape {
        /// The file (or array) at fault.
        path: PathBuf,
        /// The expected shape, with `N` for any count.
        expected: String,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A features file and its labels file contain different numbers of sequences.
    #[error("{features} contains {feature_count} sequences but {labels} contains {label_count}; both files of a month must have the same N")]
    CountMismatch {
        /// The features file.
        features: PathBuf,
        /// Sequences in the features file.
        feature_count: usize,
        /// The labels file.
        labels: PathBuf,
        /// Sequences in the labels file.
        label_count: usize,
    },
    /// A value is NaN or infinite.
    #[error("{path}: value {value} at flat index {index} is not finite (as f32)")]
    NonFinite {
        /// The file (or array) at fault.
        path: PathBuf,
        /// Index of the first non-finite value in C order.
        index: usize,
        /// The value as read, before conversion to `f32`.
        value: f64,
    },
    /// A sequence or row index lies outside the split.
    #[error("index {index} is out of range for {len} items")]
    IndexOutOfRange {
        /// The index requested.
        index: usize,
        /// Number of items available.
        len: usize,
    },
    /// An argument is outside the values accepted.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Writing a data file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The destination file.
        path: PathBuf,
        /// The writer's error.
        source: handgrad_data::DataError,
    },
}

/// Result alias for data loading and checking.
pub type Result<T> = std::result::Result<T, DataError>;

/// One split of the data set: `N` sequences of 5 hours.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Brightness temperatures in kelvin, shape `(N, hour, y, x, channel)` = `(N, 5, 5, 5, 3)`.
    pub features: Array5<f32>,
    /// Gauge rain in mm per hour, shape `(N, 5)`.
    pub labels: Array2<f32>,
}

/// The three splits of the data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Months 6-8.
    pub train: Split,
    /// Month 9.
    pub validation: Split,
    /// Month 10.
    pub test: Split,
}

impl Split {
    /// Builds a split after checking the shapes `(N, 5, 5, 5, 3)` and `(N, 5)`.
    ///
    /// # Errors
    /// [`DataError::Shape`] or [`DataError::CountMismatch`] (with the path `<memory>`).
    pub fn new(features: Array5<f32>, labels: Array2<f32>) -> Result<Split> {
        let memory = PathBuf::from("<memory>");
        check_features_shape(&memory, features.shape())?;
        check_labels_shape(&memory, labels.shape())?;
        if features.len_of(Axis(0)) != labels.nrows() {
            return Err(DataError::CountMismatch {
                features: memory.clone(),
                feature_count: features.len_of(Axis(0)),
                labels: memory,
                label_count: labels.nrows(),
            });
        }
        Ok(Split { features, labels })
    }

    /// Creates a split with no sequence.
    pub fn empty() -> Split {
        Split {
            features: Array5::zeros((0, HOURS, GRID, GRID, CHANNELS)),
            labels: Array2::zeros((0, HOURS)),
        }
    }

    /// Number of sequences `N`.
    pub fn len(&self) -> usize {
        self.labels.nrows()
    }

    /// Returns whether the split contains no sequence.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reshapes each hour into one row of 75 numbers, paired with its label.
    ///
    /// Row `5 i + t` is hour `t` of sequence `i`, flattened in `(y, x, channel)` C order, so
    /// feature `(y * 5 + x) * 3 + c`. Shapes `(N * 5, 75)` and `(N * 5,)`.
    pub fn hourly_rows(&self) -> (Array2<f32>, Array1<f32>) {
        let rows =
            self.features_standard().into_shape_with_order((self.len() * HOURS, FEATURES_PER_HOUR));
        let rows = rows.expect("a standard-layout (N, 5, 5, 5, 3) array reshapes to (N * 5, 75)");
        (rows, self.flat_labels())
    }

    /// Reshapes each hour into one 3x5x5 image in NCHW order, paired with its label.
    ///
    /// Image `5 i + t` is hour `t` of sequence `i`. Shapes `(N * 5, 3, 5, 5)` and `(N * 5,)`.
    pub fn hourly_images(&self) -> (Array4<f32>, Array1<f32>) {
        let hours = self.features_standard().into_shape_with_order((
            self.len() * HOURS,
            GRID,
            GRID,
            CHANNELS,
        ));
        let hours =
            hours.expect("a standard-layout (N, 5, 5, 5, 3) array reshapes to (N * 5, 5, 5, 3)");
        let images = hours.permuted_axes([0, 3, 1, 2]).as_standard_layout().into_owned();
        (images, self.flat_labels())
    }

    /// Reshapes each sequence into 5 steps of 75 numbers (as in [`Split::hourly_rows`]).
    ///
    /// Shapes `(N, 5, 75)` and `(N, 5)`.
    pub fn sequences(&self) -> (Array3<f32>, Array2<f32>) {
        let steps =
            self.features_standard().into_shape_with_order((self.len(), HOURS, FEATURES_PER_HOUR));
        let steps = steps.expect("a standard-layout (N, 5, 5, 5, 3) array reshapes to (N, 5, 75)");
        (steps, self.labels.clone())
    }

    /// Copies the sequences at `indices`, in that order (repeats allowed).
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] for an index `>= N`.
    pub fn select(&self, indices: &[usize]) -> Result<Split> {
        check_indices(indices, self.len())?;
        Ok(Split {
            features: self.features.select(Axis(0), indices),
            labels: self.labels.select(Axis(0), indices),
        })
    }

    /// Copies the sequences in `range` into a new split.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] when the range ends past `N`.
    pub fn slice(&self, range: Range<usize>) -> Result<Split> {
        if range.end > self.len() || range.start > range.end {
            return Err(DataError::IndexOutOfRange { index: range.end, len: self.len() });
        }
        Ok(Split {
            features: self.features.slice(s![range.clone(), .., .., .., ..]).to_owned(),
            labels: self.labels.slice(s![range, ..]).to_owned(),
        })
    }

    /// Joins splits in order.
    ///
    /// # Errors
    /// None in practice, because every [`Split`] has the checked trailing shapes; the
    /// `Result` guards against a split built by hand with other shapes.
    pub fn concatenate(parts: &[Split]) -> Result<Split> {
        if parts.is_empty() {
            return Ok(Split::empty());
        }
        let features: Vec<_> = parts.iter().map(|p| p.features.view()).collect();
        let labels: Vec<_> = parts.iter().map(|p| p.labels.view()).collect();
        let shape_error = |found: Vec<usize>| DataError::Shape {
            path: PathBuf::from("<memory>"),
            expected: "(N, 5, 5, 5, 3) and (N, 5) in every part".into(),
            found,
        };
        let features = ndarray::concatenate(Axis(0), &features)
            .map_err(|_| shape_error(parts[0].features.shape().to_vec()))?;
        let labels = ndarray::concatenate(Axis(0), &labels)
            .map_err(|_| shape_error(parts[0].labels.shape().to_vec()))?;
        Split::new(features, labels)
    }

    /// Loads the given months from `dir` and joins them in order.
    ///
    /// # Errors
    /// As [`Dataset::load_real`].
    pub fn load_months(dir: &Path, months: &[u32]) -> Result<Split> {
        let parts =
            months.iter().map(|&month| load_month(dir, month)).collect::<Result<Vec<_>>>()?;
        Split::concatenate(&parts)
    }

    fn features_standard(&self) -> Array5<f32> {
        self.features.as_standard_layout().into_owned()
    }

    fn flat_labels(&self) -> Array1<f32> {
        self.labels.iter().copied().collect()
    }
}

impl Dataset {
    /// Loads the real layout from `dir`: months 6-8 train, 9 validation, 10 test.
    ///
    /// For each month the loader reads `features-mM.pk` and `labels-mM.pk`, or the `.npy`
    /// file of the same stem when the `.pk` file is absent. Values are converted to `f32`.
    ///
    /// # Errors
    /// Each error names the file: [`DataError::MissingFile`], [`DataError::Read`] (not a
    /// numpy array, malformed file), [`DataError::Shape`] (wrong rank or shape),
    /// [`DataError::CountMismatch`] (features and labels disagree on `N`) and
    /// [`DataError::NonFinite`] (NaN or infinity, with the first flat index).
    pub fn load_real(dir: &Path) -> Result<Dataset> {
        Ok(Dataset {
            train: Split::load_months(dir, &TRAIN_MONTHS)?,
            validation: Split::load_months(dir, &VALIDATION_MONTHS)?,
            test: Split::load_months(dir, &TEST_MONTHS)?,
        })
    }

    /// Lists the splits with their names, in the order train, validation, test.
    pub fn splits(&self) -> [(&'static str, &Split); 3] {
        [("train", &self.train), ("validation", &self.validation), ("test", &self.test)]
    }
}

/// Finds the file of `stem` in `dir`: `stem.pk` when it exists, else `stem.npy`.
///
/// # Errors
/// [`DataError::MissingFile`] when neither exists.
pub fn find_data_file(dir: &Path, stem: &str) -> Result<PathBuf> {
    ["pk", "npy"]
        .iter()
        .map(|ext| dir.join(format!("{stem}.{ext}")))
        .find(|path| path.is_file())
        .ok_or_else(|| DataError::MissingFile { dir: dir.to_path_buf(), stem: stem.to_string() })
}

fn load_month(dir: &Path, month: u32) -> Result<Split> {
    let features_path = find_data_file(dir, &format!("features-m{month}"))?;
    let labels_path = find_data_file(dir, &format!("labels-m{month}"))?;

    let features = read_finite_f32(&features_path)?;
    check_features_shape(&features_path, features.shape())?;
    let labels = read_finite_f32(&labels_path)?;
    check_labels_shape(&labels_path, labels.shape())?;

    if features.shape()[0] != labels.shape()[0] {
        return Err(DataError::CountMismatch {
            feature_count: features.shape()[0],
            features: features_path,
            label_count: labels.shape()[0],
            labels: labels_path,
        });
    }
    let features = features.into_dimensionality::<Ix5>().expect("rank checked above");
    let labels = labels.into_dimensionality::<Ix2>().expect("rank checked above");
    Ok(Split { features, labels })
}

/// Reads features shaped (N, 5, 5, 5, 3) from a float32 or float64 `.npy` file.
///
/// # Errors
///
/// [`DataError::InvalidArgument`] when the name does not end in `.npy`, [`DataError::Read`]
/// for a malformed file, [`DataError::NonFinite`] with the first flat index of a NaN or
/// infinity, and [`DataError::Shape`] with the shape found. Every error names the file.
pub fn read_features_npy(path: &Path) -> Result<Array5<f32>> {
    if path.extension().is_none_or(|ext| ext != "npy") {
        return Err(DataError::InvalidArgument(format!(
            "{}: expected a NumPy .npy file (numpy.save), found extension {:?}",
            path.display(),
            path.extension().unwrap_or_default()
        )));
    }
    let features = read_finite_f32(path)?;
    check_features_shape(path, features.shape())?;
    Ok(features.into_dimensionality::<Ix5>().expect("rank checked above"))
}

fn read_finite_f32(path: &Path) -> Result<ndarray::ArrayD<f32>> {
    let is_npy = path.extension().is_some_and(|ext| ext == "npy");
    let array = if is_npy {
        handgrad_data::npy::read_npy(path)
    } else {
        handgrad_data::pickle::read_numpy_pickle(path)
    };
    let array = array.map_err(|source| DataError::Read { path: path.to_path_buf(), source })?;

    // Checked after conversion so that a finite f64 beyond the f32 range is caught too.
    let converted = array.data.mapv(|v| v as f32);
    let bad = converted.iter().position(|v| !v.is_finite());
    if let Some(index) = bad {
        let value = array.data.iter().nth(index).copied().unwrap_or(f64::NAN);
        return Err(DataError::NonFinite { path: path.to_path_buf(), index, value });
    }
    Ok(converted.as_standard_layout().into_owned())
}

fn check_features_shape(path: &Path, shape: &[usize]) -> Result<()> {
    if shape.len() != 5 || shape[1..] != [HOURS, GRID, GRID, CHANNELS] {
        return Err(DataError::Shape {
            path: path.to_path_buf(),
            expected: "(N, 5, 5, 5, 3)".into(),
            found: shape.to_vec(),
        });
    }
    Ok(())
}

fn check_labels_shape(path: &Path, shape: &[usize]) -> Result<()> {
    if shape.len() != 2 || shape[1] != HOURS {
        return Err(DataError::Shape {
            path: path.to_path_buf(),
            expected: "(N, 5)".into(),
            found: shape.to_vec(),
        });
    }
    Ok(())
}

fn check_indices(indices: &[usize], len: usize) -> Result<()> {
    match indices.iter().find(|&&index| index >= len) {
        Some(&index) => Err(DataError::IndexOutOfRange { index, len }),
        None => Ok(()),
    }
}

/// Gathers the rows of `array` (along axis 0) at `indices`, for batching hourly rows,
/// images or sequences.
///
/// # Errors
/// [`DataError::IndexOutOfRange`] for an index past the first axis.
pub fn gather<A: Clone, D: ndarray::RemoveAxis>(
    array: &ndarray::Array<A, D>,
    indices: &[usize],
) -> Result<ndarray::Array<A, D>> {
    check_indices(indices, array.len_of(Axis(0)))?;
    Ok(array.select(Axis(0), indices))
}

/// Splits `0..n` into batches of `batch_size` indices (the last one may be shorter),
/// shuffled by `seed` when it is `Some`, in order otherwise.
///
/// The shuffle is a Fisher-Yates pass driven by xoshiro256++ seeded with `seed`, so equal
/// seeds give equal batches on every platform.
///
/// # Errors
/// [`DataError::InvalidArgument`] when `batch_size` is 0.
pub fn batch_indices(n: usize, batch_size: usize, seed: Option<u64>) -> Result<Vec<Vec<usize>>> {
    if batch_size == 0 {
        return Err(DataError::InvalidArgument("batch size must be at least 1, found 0".into()));
    }
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(seed) = seed {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        for i in (1..n).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
    }
    Ok(order.chunks(batch_size).map(<[usize]>::to_vec).collect())
}

/// Summary statistics of one split, for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitStats {
    /// Number of sequences.
    pub sequences: usize,
    /// Number of hourly labels (`5 * sequences`).
    pub hours: usize,
    /// Fraction of hours with rain > 0 mm.
    pub rain_fraction: f64,
    /// Fraction of hours with rain >= 0.1 mm.
    pub rain_fraction_0_1mm: f64,
    /// Mean rain per hour, mm.
    pub mean_mm: f64,
    /// 99th percentile of hourly rain (nearest rank), mm.
    pub p99_mm: f64,
    /// Largest hourly rain, mm.
    pub max_mm: f64,
    /// Fraction of hours with rain > 20 mm.
    pub heavy_fraction_20mm: f64,
    /// MSE of predicting `majority_value` for every hour, mm².
    pub majority_mse: f64,
    /// The constant used for `majority_mse`, normally the mode of the training labels.
    pub majority_value: f32,
    /// Mean of each channel over all pixels and hours, K.
    pub channel_mean: [f64; CHANNELS],
    /// Population standard deviation of each channel, K.
    pub channel_std: [f64; CHANNELS],
    /// Smallest value of each channel, K.
    pub channel_min: [f64; CHANNELS],
    /// Largest value of each channel, K.
    pub channel_max: [f64; CHANNELS],
}

impl SplitStats {
    /// Measures `split`, scoring the constant prediction `majority_value` against it.
    /// For an empty split every number is 0.
    pub fn compute(split: &Split, majority_value: f32) -> SplitStats {
        let labels: Vec<f64> = split.labels.iter().map(|&v| v as f64).collect();
        let hours = labels.len();
        let fraction = |keep: &dyn Fn(f64) -> bool| {
            if hours == 0 {
                0.0
            } else {
                labels.iter().filter(|&&v| keep(v)).count() as f64 / hours as f64
            }
        };
        let mean_of = |term: &dyn Fn(f64) -> f64| {
            if hours == 0 {
                0.0
            } else {
                labels.iter().map(|&v| term(v)).sum::<f64>() / hours as f64
            }
        };
        let channels = channel_moments(split);
        SplitStats {
            sequences: split.len(),
            hours,
            rain_fraction: fraction(&|v| v > 0.0),
            rain_fraction_0_1mm: fraction(&|v| v >= 0.1),
            mean_mm: mean_of(&|v| v),
            p99_mm: percentile(&labels, 0.99),
            max_mm: labels.iter().copied().fold(0.0, f64::max),
            heavy_fraction_20mm: fraction(&|v| v > 20.0),
            majority_mse: mean_of(&|v| (v - majority_value as f64).powi(2)),
            majority_value,
            channel_mean: channels.mean,
            channel_std: channels.std,
            channel_min: channels.min,
            channel_max: channels.max,
        }
    }
}

/// Per-channel moments of the features, accumulated in `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ChannelMoments {
    pub(crate) mean: [f64; CHANNELS],
    pub(crate) std: [f64; CHANNELS],
    pub(crate) min: [f64; CHANNELS],
    pub(crate) max: [f64; CHANNELS],
}

/// Uses two passes per channel (mean, then squared deviations), because a one-pass
/// `E[x²] - mean²` loses digits on kelvin-scale values. An empty split gives zeros.
pub(crate) fn channel_moments(split: &Split) -> ChannelMoments {
    let mut moments = ChannelMoments {
        mean: [0.0; CHANNELS],
        std: [0.0; CHANNELS],
        min: [0.0; CHANNELS],
        max: [0.0; CHANNELS],
    };
    for channel in 0..CHANNELS {
        let values = split.features.index_axis(Axis(4), channel);
        let count = values.len();
        if count == 0 {
            continue;
        }
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / count as f64;
        let variance =
            values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / count as f64;
        moments.mean[channel] = mean;
        moments.std[channel] = variance.sqrt();
        moments.min[channel] = values.iter().fold(f64::INFINITY, |m, &v| m.min(v as f64));
        moments.max[channel] = values.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    }
    moments
}

/// Returns the nearest-rank percentile `q` in `[0, 1]` of `values`, or 0 for no values.
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
