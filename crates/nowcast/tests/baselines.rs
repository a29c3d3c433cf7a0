//! Baseline predictions checked on small hand-made splits.

use handgrad_nowcast::baselines::{
    label_mean, label_mode, majority_value, persistence, training_mean,
};
use handgrad_nowcast::data::Split;
use handgrad_nowcast::metrics::mse;
use ndarray::{arr2, Array2, Array5};

fn split_with_labels(labels: Array2<f32>) -> Split {
    let features = Array5::from_elem((labels.nrows(), 5, 5, 5, 3), 280.0f32);
    Split::new(features, labels).expect("valid shapes")
}

#[test]
fn mode_picks_most_frequent_value() {
    let train = split_with_labels(arr2(&[[0.0, 0.0, 1.5, 0.0, 2.0], [1.5, 0.0, 0.0, 3.0, 0.0]]));
    assert_eq!(label_mode(&train), 0.0);
}

#[test]
fn mode_counts_negative_zero_as_zero() {
    let train = split_with_labels(arr2(&[[-0.0, 0.0, 0.5, 0.5, 0.5], [-0.0, 0.0, 1.0, 2.0, 3.0]]));
    // Four zeros (two of them -0) against three values of 0.5.
    assert_eq!(label_mode(&train).to_bits(), 0.0f32.to_bits());
}

#[test]
fn mode_breaks_ties_towards_smaller_value() {
    let train = split_with_labels(arr2(&[[2.0, 2.0, 1.0, 1.0, 7.0]]));
    assert_eq!(label_mode(&train), 1.0);
}

#[test]
fn mode_of_wet_majority_is_not_zero() {
    let train = split_with_labels(arr2(&[[0.2, 0.2, 0.2, 0.0, 0.0]]));
    assert_eq!(label_mode(&train), 0.2);
}

#[test]
fn mean_over_all_hours() {
    let train = split_with_labels(arr2(&[[0.0, 1.0, 2.0, 3.0, 4.0], [5.0, 0.0, 0.0, 0.0, 0.0]]));
    assert_eq!(label_mean(&train), 15.0 / 10.0);
}

#[test]
fn majority_value_mse_is_mean_square_when_mode_is_zero() {
    let train = split_with_labels(arr2(&[[0.0, 0.0, 0.0, 1.0, 0.0]]));
    let validation =
        split_with_labels(arr2(&[[0.0, 2.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 3.0]]));
    let prediction = majority_value(&train, &validation);
    assert_eq!(prediction.predictions, Array2::<f32>::zeros((2, 5)));
    assert_eq!(prediction.targets, validation.labels);
    assert_eq!(prediction.hours, 0..5);
    // (4 + 1 + 9) / 10.
    let error = mse(&prediction.predictions.view(), &prediction.targets.view()).unwrap();
    assert!((error - 1.4).abs() < 1e-12, "{error}");
}

#[test]
fn training_mean_fills_every_hour() {
    let train = split_with_labels(arr2(&[[0.0, 0.0, 0.0, 0.0, 2.5]]));
    let test = split_with_labels(arr2(&[[1.0, 1.0, 1.0, 1.0, 1.0]]));
    let prediction = training_mean(&train, &test);
    assert_eq!(prediction.predictions, Array2::from_elem((1, 5), 0.5f32));
}

#[test]
fn persistence_shifts_by_one_hour() {
    let split = split_with_labels(arr2(&[[0.0, 1.0, 4.0, 0.0, 2.0], [3.0, 3.0, 0.0, 0.0, 0.0]]));
    let prediction = persistence(&split);
    assert_eq!(prediction.hours, 1..5);
    assert_eq!(prediction.predictions, arr2(&[[0.0, 1.0, 4.0, 0.0], [3.0, 3.0, 0.0, 0.0]]));
    assert_eq!(prediction.targets, arr2(&[[1.0, 4.0, 0.0, 2.0], [3.0, 0.0, 0.0, 0.0]]));
    // Squared errors 1, 9, 16, 4 and 0, 9, 0, 0 over 8 predictions.
    let error = mse(&prediction.predictions.view(), &prediction.targets.view()).unwrap();
    assert!((error - 39.0 / 8.0).abs() < 1e-12, "{error}");
}

#[test]
fn baselines_on_empty_split() {
    let empty = Split::empty();
    assert_eq!(label_mode(&empty), 0.0);
    assert_eq!(label_mean(&empty), 0.0);
    assert_eq!(persistence(&empty).predictions.shape(), &[0, 4]);
}
