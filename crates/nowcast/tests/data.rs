//! Loading the real file layout, its error reports, the reshaping helpers and normalization.

use std::fs;
use std::path::{Path, PathBuf};

use handgrad_nowcast::data::{batch_indices, gather, DataError, Dataset, Split};
use handgrad_nowcast::normalize::{Method, Normalizer};
use ndarray::{Array2, Array5, ArrayD, IxDyn};

/// The fixture folder, or `None` (after a skip line) when the shared folder is absent.
#[allow(clippy::print_stderr)]
fn fixtures() -> Option<PathBuf> {
    let Some(shared) = handgrad_data::testing::shared_dir() else {
        eprintln!("skipped: shared folder not found (set HANDGRAD_SHARED)");
        return None;
    };
    Some(shared.join("fixtures").join("nowcast-pickles"))
}

/// A writable copy of the fixture pickles.
fn fixture_copy(fixtures: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(fixtures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "pk") {
            fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

fn sum(values: impl IntoIterator<Item = f32>) -> f64 {
    values.into_iter().map(f64::from).sum()
}

fn assert_relative(actual: f64, expected: f64) {
    let error = (actual - expected).abs() / expected.abs().max(1e-12);
    assert!(error < 1e-6, "expected {expected}, found {actual}");
}

#[test]
fn fixture_months_load_into_splits() {
    let Some(fixtures) = fixtures() else { return };
    let dataset = Dataset::load_real(&fixtures).unwrap();

    // Months 6, 7 and 8 contain 7, 3 and 11 sequences, month 9 contains 4 and month 10 six.
    assert_eq!(dataset.train.features.shape(), &[21, 5, 5, 5, 3]);
    assert_eq!(dataset.train.labels.shape(), &[21, 5]);
    assert_eq!(dataset.validation.len(), 4);
    assert_eq!(dataset.test.len(), 6);

    // Sums and end values from the fixture's expected.json, month by month.
    let train_sum = 628_947.870_819_091_8 + 270_172.283_050_351_37 + 992_485.257_781_982_4;
    assert_relative(sum(dataset.train.features.iter().copied()), train_sum);
    assert_relative(sum(dataset.validation.features.iter().copied()), 359_888.097_094_909_9);
    assert_relative(sum(dataset.test.features.iter().copied()), 540_593.939_682_006_8);
    let label_sum = 21.482_171_845_098_49 + 1.113_831_770_939_711_9 + 16.234_679_494_227_75;
    assert_relative(sum(dataset.train.labels.iter().copied()), label_sum);
    assert_eq!(dataset.train.features[[0, 0, 0, 0, 0]], 231.892_700_195_312_5_f64 as f32);
    assert_eq!(dataset.test.features[[5, 4, 4, 4, 2]], 245.322_357_177_734_38_f64 as f32);
    // Month 7 (float64) starts at sequence 7 of the training split.
    assert_eq!(dataset.train.features[[7, 0, 0, 0, 0]], 234.560_755_906_443_57_f64 as f32);
    // Month 8 starts at sequence 10 with label 6.08364200592041.
    assert_eq!(dataset.train.labels[[10, 0]], 6.083_642_005_920_41_f64 as f32);
}

#[test]
fn missing_file_is_named() {
    let Some(fixtures) = fixtures() else { return };
    let dir = fixture_copy(&fixtures);
    fs::remove_file(dir.path().join("labels-m9.pk")).unwrap();
    let error = Dataset::load_real(dir.path()).unwrap_err();
    assert!(
        matches!(&error, DataError::MissingFile { stem, .. } if stem == "labels-m9"),
        "{error}"
    );
    assert!(error.to_string().contains("labels-m9.npy"), "{error}");
}

#[test]
fn count_mismatch_names_both_files() {
    let Some(fixtures) = fixtures() else { return };
    let dir = fixture_copy(&fixtures);
    // Month 7 labels (3 sequences) beside month 6 features (7 sequences).
    fs::copy(dir.path().join("labels-m7.pk"), dir.path().join("labels-m6.pk")).unwrap();
    let error = Dataset::load_real(dir.path()).unwrap_err();
    let DataError::CountMismatch { features, feature_count, labels, label_count } = &error else {
        panic!("expected a count mismatch, found {error}");
    };
    assert!(features.ends_with("features-m6.pk"));
    assert!(labels.ends_with("labels-m6.pk"));
    assert_eq!((*feature_count, *label_count), (7, 3));
}

#[test]
fn wrong_rank_is_named() {
    let Some(fixtures) = fixtures() else { return };
    let dir = fixture_copy(&fixtures);
    fs::copy(dir.path().join("labels-m8.pk"), dir.path().join("features-m8.pk")).unwrap();
    let error = Dataset::load_real(dir.path()).unwrap_err();
    let DataError::Shape { path, found, .. } = &error else {
        panic!("expected a shape error, found {error}");
    };
    assert!(path.ends_with("features-m8.pk"));
    assert_eq!(found, &vec![11, 5]);
    assert!(error.to_string().contains("(N, 5, 5, 5, 3)"), "{error}");
}

#[test]
fn wrong_label_width_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_month(dir.path(), 6, Array5::zeros((2, 5, 5, 5, 3)), Array2::zeros((2, 4)));
    let error = Split::load_months(dir.path(), &[6]).unwrap_err();
    assert!(matches!(&error, DataError::Shape { path, .. } if path.ends_with("labels-m6.npy")));
}

#[test]
fn pickle_of_other_object_is_rejected() {
    let Some(fixtures) = fixtures() else { return };
    let dir = fixture_copy(&fixtures);
    // Protocol 2 pickle of the integer 5: PROTO 2, BININT1 5, STOP.
    fs::write(dir.path().join("features-m10.pk"), [0x80, 0x02, b'K', 5, b'.']).unwrap();
    let error = Dataset::load_real(dir.path()).unwrap_err();
    assert!(matches!(&error, DataError::Read { path, .. } if path.ends_with("features-m10.pk")));
}

fn write_month(dir: &Path, month: u32, features: Array5<f32>, labels: Array2<f32>) {
    let features_path = dir.join(format!("features-m{month}.npy"));
    handgrad_data::npy::write_npy_f32(&features_path, &features.into_dyn().view()).unwrap();
    let labels_path = dir.join(format!("labels-m{month}.npy"));
    handgrad_data::npy::write_npy_f32(&labels_path, &labels.into_dyn().view()).unwrap();
}

#[test]
fn nan_reports_first_flat_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut features = Array5::from_elem((2, 5, 5, 5, 3), 250.0f32);
    features[[1, 0, 0, 1, 2]] = f32::NAN;
    features[[1, 4, 4, 4, 2]] = f32::INFINITY;
    write_month(dir.path(), 9, features, Array2::zeros((2, 5)));
    let error = Split::load_months(dir.path(), &[9]).unwrap_err();
    let DataError::NonFinite { path, index, value } = &error else {
        panic!("expected a non-finite error, found {error}");
    };
    assert!(path.ends_with("features-m9.npy"));
    // Flat index of [1, 0, 0, 1, 2]: 375 + 1 * 3 + 2.
    assert_eq!(*index, 380);
    assert!(value.is_nan());
}

#[test]
fn infinite_label_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut labels = Array2::zeros((1, 5));
    labels[[0, 3]] = f32::NEG_INFINITY;
    write_month(dir.path(), 10, Array5::zeros((1, 5, 5, 5, 3)), labels);
    let error = Split::load_months(dir.path(), &[10]).unwrap_err();
    assert!(matches!(error, DataError::NonFinite { index: 3, .. }), "{error}");
}

#[test]
fn f64_beyond_f32_range_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut labels = ArrayD::<f64>::zeros(IxDyn(&[1, 5]));
    labels[[0, 1]] = 1e300;
    handgrad_data::npy::write_npy_f64(&dir.path().join("labels-m6.npy"), &labels.view()).unwrap();
    let features = Array5::<f32>::zeros((1, 5, 5, 5, 3)).into_dyn();
    let features_path = dir.path().join("features-m6.npy");
    handgrad_data::npy::write_npy_f32(&features_path, &features.view()).unwrap();
    let error = Split::load_months(dir.path(), &[6]).unwrap_err();
    assert!(matches!(error, DataError::NonFinite { index: 1, value, .. } if value == 1e300));
}

#[test]
fn pickle_preferred_over_npy() {
    let Some(fixtures) = fixtures() else { return };
    let dir = fixture_copy(&fixtures);
    write_month(dir.path(), 9, Array5::zeros((1, 5, 5, 5, 3)), Array2::zeros((1, 5)));
    let validation = Split::load_months(dir.path(), &[9]).unwrap();
    assert_eq!(validation.len(), 4);
}

/// Builds a split whose every value encodes its own index, `n t y x c` as decimal digits.
fn coded_split(n: usize) -> Split {
    let features = Array5::from_shape_fn((n, 5, 5, 5, 3), |(i, t, y, x, c)| {
        (i * 10_000 + t * 1000 + y * 100 + x * 10 + c) as f32
    });
    let labels = Array2::from_shape_fn((n, 5), |(i, t)| (i * 10 + t) as f32);
    Split::new(features, labels).unwrap()
}

#[test]
fn hourly_rows_flatten_y_x_channel() {
    let split = coded_split(3);
    let (rows, labels) = split.hourly_rows();
    assert_eq!(rows.shape(), &[15, 75]);
    assert_eq!(labels.len(), 15);
    // Sequence 2, hour 3 is row 13; pixel (y 4, x 1), channel 2 is column (4 * 5 + 1) * 3 + 2.
    assert_eq!(rows[[13, 65]], 23_412.0);
    assert_eq!(labels[13], 23.0);
}

#[test]
fn hourly_images_are_nchw() {
    let split = coded_split(2);
    let (images, labels) = split.hourly_images();
    assert_eq!(images.shape(), &[10, 3, 5, 5]);
    assert!(images.is_standard_layout());
    // Image 7 is sequence 1, hour 2; [channel 1, y 3, x 4].
    assert_eq!(images[[7, 1, 3, 4]], 12_341.0);
    assert_eq!(labels[7], 12.0);
}

#[test]
fn sequences_keep_hour_axis() {
    let split = coded_split(2);
    let (steps, labels) = split.sequences();
    assert_eq!(steps.shape(), &[2, 5, 75]);
    assert_eq!(steps[[1, 4, 0]], 14_000.0);
    assert_eq!(steps[[0, 1, 74]], 1442.0);
    assert_eq!(labels, split.labels);
}

#[test]
fn select_and_gather_check_indices() {
    let split = coded_split(4);
    let picked = split.select(&[3, 0, 3]).unwrap();
    assert_eq!(picked.labels.column(0).to_vec(), vec![30.0, 0.0, 30.0]);
    let error = split.select(&[1, 4]).unwrap_err();
    assert!(matches!(error, DataError::IndexOutOfRange { index: 4, len: 4 }));

    let (rows, _) = split.hourly_rows();
    let batch = gather(&rows, &[19, 5]).unwrap();
    assert_eq!(batch[[0, 0]], 34_000.0);
    assert_eq!(batch[[1, 0]], 10_000.0);
    assert!(gather(&rows, &[20]).is_err());
}

#[test]
fn split_new_rejects_mismatched_counts() {
    let error = Split::new(Array5::zeros((3, 5, 5, 5, 3)), Array2::zeros((2, 5))).unwrap_err();
    assert!(matches!(error, DataError::CountMismatch { feature_count: 3, label_count: 2, .. }));
    let error = Split::new(Array5::zeros((3, 5, 4, 5, 3)), Array2::zeros((3, 5))).unwrap_err();
    assert!(matches!(error, DataError::Shape { .. }));
}

#[test]
fn concatenate_and_slice_invert() {
    let split = coded_split(5);
    let joined = Split::concatenate(&[split.slice(0..2).unwrap(), split.slice(2..5).unwrap()]);
    assert_eq!(joined.unwrap(), split);
    assert!(split.slice(3..6).is_err());
}

#[test]
fn batches_cover_each_index_once() {
    let batches = batch_indices(10, 4, Some(7)).unwrap();
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
    let mut all: Vec<usize> = batches.concat();
    assert_ne!(all, (0..10).collect::<Vec<_>>(), "seeded batches should be shuffled");
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<_>>());

    assert_eq!(batch_indices(10, 4, Some(7)).unwrap(), batches);
    assert_ne!(batch_indices(10, 4, Some(8)).unwrap(), batches);
    assert_eq!(batch_indices(5, 2, None).unwrap(), vec![vec![0, 1], vec![2, 3], vec![4]]);
    assert!(batch_indices(5, 0, None).is_err());
}

fn two_value_split() -> Split {
    // Channel 0 is 200 or 300 in equal numbers, channel 1 is constant, channel 2 counts 0 to 249.
    let features = Array5::from_shape_fn((2, 5, 5, 5, 3), |(i, t, y, x, c)| match c {
        0 if (i + t + y + x) % 2 == 0 => 200.0,
        0 => 300.0,
        1 => 250.0,
        _ => (i * 125 + t * 25 + y * 5 + x) as f32,
    });
    Split::new(features, Array2::zeros((2, 5))).unwrap()
}

#[test]
fn zscore_uses_mean_and_population_std() {
    let split = two_value_split();
    let normalizer = Normalizer::fit_zscore(&split);
    // 250 values, half 200 and half 300 (parity of i + t + y + x): mean 250, std 50.
    assert!((normalizer.offset()[0] - 250.0).abs() < 1e-9);
    assert!((normalizer.scale()[0] - 50.0).abs() < 1e-9);
    // Constant channel: scale 1, so it maps to 0.
    assert_eq!(normalizer.offset()[1], 250.0);
    assert_eq!(normalizer.scale()[1], 1.0);

    let mut scaled = split.clone();
    normalizer.apply(&mut scaled);
    for channel in 0..3 {
        let values = scaled.features.index_axis(ndarray::Axis(4), channel);
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
        assert!(mean.abs() < 1e-5, "channel {channel} mean {mean}");
    }
    let channel2 = scaled.features.index_axis(ndarray::Axis(4), 2);
    let var = channel2.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / channel2.len() as f64;
    assert!((var - 1.0).abs() < 1e-5, "channel 2 variance {var}");
    assert!(scaled.features.index_axis(ndarray::Axis(4), 1).iter().all(|&v| v == 0.0));
}

#[test]
fn minmax_maps_to_unit_interval() {
    let split = two_value_split();
    let normalizer = Normalizer::fit_minmax(&split);
    assert_eq!(normalizer.method(), Method::MinMax);
    let mut scaled = split.clone();
    normalizer.apply(&mut scaled);
    let channel0 = scaled.features.index_axis(ndarray::Axis(4), 0);
    assert!(channel0.iter().all(|&v| v == 0.0 || v == 1.0));
    let channel2 = scaled.features.index_axis(ndarray::Axis(4), 2);
    let (low, high) = channel2.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    assert_eq!((low, high), (0.0, 1.0));
}

#[test]
fn normalizer_round_trips_through_numbers() {
    let normalizer = Normalizer::fit_zscore(&two_value_split());
    let name = normalizer.method().name();
    let rebuilt = Normalizer::from_parts(
        Method::from_name(name).unwrap(),
        normalizer.offset(),
        normalizer.scale(),
    )
    .unwrap();
    assert_eq!(rebuilt, normalizer);
    assert!(Method::from_name("robust").is_err());
    assert!(Normalizer::from_parts(Method::ZScore, [0.0; 3], [1.0, 0.0, 1.0]).is_err());
    assert!(Normalizer::from_parts(Method::ZScore, [f64::NAN, 0.0, 0.0], [1.0; 3]).is_err());
}

#[test]
fn normalizer_applies_to_hourly_images_layout() {
    let split = two_value_split();
    let normalizer = Normalizer::fit_minmax(&split);
    let mut hours = split.features.clone().into_shape_with_order((10, 5, 5, 3)).unwrap();
    normalizer.apply_to(hours.view_mut());
    let mut whole = split.clone();
    normalizer.apply(&mut whole);
    assert_eq!(hours.into_shape_with_order((2, 5, 5, 5, 3)).unwrap(), whole.features);
}
