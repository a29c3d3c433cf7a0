//! The synthetic generator: determinism, physical ranges, rain statistics and the file layout.

use std::sync::OnceLock;

use handgrad_nowcast::data::{Dataset, SplitStats, CHANNELS};
use handgrad_nowcast::metrics::correlation;
use handgrad_nowcast::synthetic::{
    dataset_stats, generate, month_ranges, write_real_layout, SyntheticConfig,
};
use ndarray::Array1;
use proptest::prelude::*;

fn small(seed: u64) -> SyntheticConfig {
    SyntheticConfig { seed, train: 90, validation: 40, test: 37 }
}

/// Brightness-temperature bounds per channel (water vapour, window 1, window 2), K.
const CHANNEL_BOUNDS: [(f32, f32); CHANNELS] = [(190.0, 270.0), (185.0, 310.0), (180.0, 310.0)];

fn assert_physical(dataset: &Dataset) {
    for (name, split) in dataset.splits() {
        for (channel, &(low, high)) in CHANNEL_BOUNDS.iter().enumerate() {
            let values = split.features.index_axis(ndarray::Axis(4), channel);
            for &value in values {
                assert!(value.is_finite(), "{name} channel {channel}: {value}");
                assert!((low..=high).contains(&value), "{name} channel {channel}: {value} K");
            }
        }
        for &rain in &split.labels {
            assert!(rain.is_finite(), "{name} rain {rain}");
            assert!((0.0..=300.0).contains(&rain), "{name} rain {rain} mm");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn same_seed_same_data(seed in any::<u64>()) {
        prop_assert_eq!(generate(&small(seed)), generate(&small(seed)));
    }

    #[test]
    fn different_seeds_differ(seed in any::<u64>()) {
        let first = generate(&small(seed));
        let second = generate(&small(seed.wrapping_add(1)));
        prop_assert_ne!(first.train.features, second.train.features);
        prop_assert_ne!(first.test.features, second.test.features);
    }

    #[test]
    fn values_finite_and_physical(seed in any::<u64>()) {
        assert_physical(&generate(&small(seed)));
    }
}

#[test]
fn counts_follow_config() {
    let dataset = generate(&small(3));
    assert_eq!(dataset.train.features.shape(), &[90, 5, 5, 5, 3]);
    assert_eq!(dataset.train.labels.shape(), &[90, 5]);
    assert_eq!(dataset.validation.len(), 40);
    assert_eq!(dataset.test.len(), 37);
}

#[test]
fn empty_config_gives_empty_splits() {
    let dataset = generate(&SyntheticConfig { seed: 1, train: 0, validation: 0, test: 0 });
    assert!(dataset.train.is_empty());
    assert!(dataset.validation.is_empty());
    assert!(dataset.test.is_empty());
}

#[test]
fn default_config_is_real_size() {
    let config = SyntheticConfig::default();
    assert_eq!((config.train, config.validation, config.test), (229_548, 92_839, 111_715));
}

#[test]
fn prefix_does_not_depend_on_count() {
    // Scenes are seeded by index, so a larger validation split starts with the smaller one.
    let smaller = generate(&SyntheticConfig { seed: 9, train: 0, validation: 50, test: 0 });
    let larger = generate(&SyntheticConfig { seed: 9, train: 0, validation: 80, test: 0 });
    assert_eq!(smaller.validation, larger.validation.slice(0..50).unwrap());
}

#[test]
fn month_ranges_cover_everything() {
    assert_eq!(month_ranges(10, 3), vec![0..4, 4..7, 7..10]);
    assert_eq!(month_ranges(2, 3), vec![0..1, 1..2, 2..2]);
    assert_eq!(month_ranges(0, 1), vec![0..0]);
}

/// Draws a 36,000-sequence data set and its statistics once, for the tests that need volume.
fn medium_stats() -> &'static (Dataset, [(&'static str, SplitStats); 3]) {
    static MEDIUM: OnceLock<(Dataset, [(&'static str, SplitStats); 3])> = OnceLock::new();
    MEDIUM.get_or_init(|| {
        let config = SyntheticConfig { seed: 5, train: 20_000, validation: 8_000, test: 8_000 };
        let dataset = generate(&config);
        let stats = dataset_stats(&dataset);
        (dataset, stats)
    })
}

#[test]
fn rain_is_rare_with_heavy_tail() {
    let (_, stats) = medium_stats();
    let (_, train) = &stats[0];
    assert_eq!(train.majority_value, 0.0);
    assert!(
        (0.80..0.95).contains(&(1.0 - train.rain_fraction)),
        "dry fraction {}",
        train.rain_fraction
    );
    assert!(train.max_mm > 20.0, "max {}", train.max_mm);
    assert!(train.p99_mm > 1.0, "p99 {}", train.p99_mm);
    assert!(train.p99_mm < 20.0, "p99 {}", train.p99_mm);
    for (name, split) in stats {
        assert!((0.5..4.0).contains(&split.majority_mse), "{name} mse {}", split.majority_mse);
    }
}

#[test]
fn channels_have_expected_climate() {
    let (_, stats) = medium_stats();
    let (_, train) = &stats[0];
    assert!((225.0..255.0).contains(&train.channel_mean[0]), "{:?}", train.channel_mean);
    assert!((270.0..296.0).contains(&train.channel_mean[1]), "{:?}", train.channel_mean);
    assert!(train.channel_mean[2] < train.channel_mean[1], "{:?}", train.channel_mean);
    assert!(train.channel_min[1] < 215.0, "no cold cloud tops: {:?}", train.channel_min);
    assert!(train.channel_max[1] > 290.0, "no warm surface: {:?}", train.channel_max);
}

#[test]
fn rain_follows_cold_cloud_at_gauge() {
    let (dataset, _) = medium_stats();
    let (rows, rain) = dataset.train.hourly_rows();
    // Window 1 at the centre pixel (y = 2, x = 2): feature (2 * 5 + 2) * 3 + 1.
    let coldness: Array1<f32> = rows.column(37).mapv(|kelvin| -kelvin);
    let r = correlation(&coldness.view(), &rain.view()).unwrap().unwrap();
    assert!(r > 0.2, "correlation of coldness with rain {r}");
}

#[test]
fn real_layout_round_trip() {
    let dataset = generate(&small(11));
    let dir = tempfile::tempdir().unwrap();
    let written = write_real_layout(&dataset, dir.path()).unwrap();
    assert_eq!(written.len(), 10);
    assert!(dir.path().join("features-m7.npy").is_file());
    assert!(dir.path().join("labels-m10.npy").is_file());
    let loaded = Dataset::load_real(dir.path()).unwrap();
    assert_eq!(loaded, dataset);
}

#[test]
fn real_layout_rejects_shadowing_pickle() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("labels-m9.pk"), b"old").unwrap();
    let error = write_real_layout(&generate(&small(2)), dir.path()).unwrap_err();
    assert!(error.to_string().contains("labels-m9.pk"), "{error}");
    assert!(!dir.path().join("features-m6.npy").exists());
}

#[test]
fn check_rejects_absurd_sizes_by_split() {
    use handgrad_nowcast::synthetic::MAX_SEQUENCES;
    assert!(SyntheticConfig::default().check().is_ok());
    let huge = SyntheticConfig { validation: MAX_SEQUENCES + 1, ..SyntheticConfig::default() };
    let message = huge.check().unwrap_err().to_string();
    assert!(message.contains("validation split requests"), "{message}");
}
