//! Scores checked against values computed by hand.

use handgrad_nowcast::metrics::{
    correlation, mae, mse, rmse, standard_contingencies, Contingency, MetricError,
};
use ndarray::{arr1, arr2, Array1};

fn close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-12, "expected {expected}, found {actual}");
}

fn close_some(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("score should be defined");
    close(actual, expected);
}

#[test]
fn mse_rmse_mae_by_hand() {
    let prediction = arr1(&[1.0f32, 2.0, 0.0, 4.0]);
    let observation = arr1(&[0.0f32, 2.0, 3.0, 2.0]);
    // Differences 1, 0, -3, 2: squares 1 + 0 + 9 + 4 = 14; absolute 1 + 0 + 3 + 2 = 6.
    close(mse(&prediction.view(), &observation.view()).unwrap(), 14.0 / 4.0);
    close(rmse(&prediction.view(), &observation.view()).unwrap(), 3.5f64.sqrt());
    close(mae(&prediction.view(), &observation.view()).unwrap(), 6.0 / 4.0);
}

#[test]
fn mse_averages_over_every_element() {
    let prediction = arr2(&[[0.0f32, 0.0], [0.0, 0.0], [0.0, 0.0]]);
    let observation = arr2(&[[1.0f32, 0.0], [0.0, 3.0], [0.0, 0.0]]);
    // (1 + 9) / 6 elements, not divided by rows.
    close(mse(&prediction.view(), &observation.view()).unwrap(), 10.0 / 6.0);
}

#[test]
fn scores_reject_shape_mismatch() {
    let prediction = arr1(&[1.0f32, 2.0]);
    let observation = arr1(&[1.0f32, 2.0, 3.0]);
    let error = mse(&prediction.view(), &observation.view()).unwrap_err();
    assert_eq!(
        error,
        MetricError::ShapeMismatch { metric: "mse", prediction: vec![2], observation: vec![3] }
    );
    assert!(error.to_string().contains("[2]"), "{error}");
}

#[test]
fn scores_reject_empty_input() {
    let empty = Array1::<f32>::zeros(0);
    let error = mae(&empty.view(), &empty.view()).unwrap_err();
    assert_eq!(error, MetricError::Empty { metric: "mae" });
}

#[test]
fn correlation_by_hand() {
    let prediction = arr1(&[1.0f32, 2.0, 3.0]);
    let observation = arr1(&[2.0f32, 4.0, 5.0]);
    // Deviations (-1, 0, 1) and (-5/3, 1/3, 4/3): covariance sum 3, variance sums 2 and 42/9.
    let expected = 3.0 / (2.0f64.sqrt() * (42.0f64 / 9.0).sqrt());
    close_some(correlation(&prediction.view(), &observation.view()).unwrap(), expected);
}

#[test]
fn correlation_of_opposites_is_minus_one() {
    let prediction = arr1(&[0.0f32, 1.0, 2.0, 3.0]);
    let observation = arr1(&[6.0f32, 4.0, 2.0, 0.0]);
    close_some(correlation(&prediction.view(), &observation.view()).unwrap(), -1.0);
}

#[test]
fn correlation_of_constant_is_none() {
    let constant = arr1(&[0.5f32, 0.5, 0.5]);
    let varying = arr1(&[0.0f32, 1.0, 2.0]);
    assert_eq!(correlation(&constant.view(), &varying.view()).unwrap(), None);
    assert_eq!(correlation(&varying.view(), &constant.view()).unwrap(), None);
}

#[test]
fn contingency_counts_with_inclusive_threshold() {
    // Threshold 1 mm, event = value >= 1.
    // pairs (p, o): (1, 1) hit at equality, (2, 0) false alarm, (0, 5) miss,
    // (0.5, 0.99) correct negative, (3, 1.5) hit.
    let prediction = arr1(&[1.0f32, 2.0, 0.0, 0.5, 3.0]);
    let observation = arr1(&[1.0f32, 0.0, 5.0, 0.99, 1.5]);
    let table = Contingency::at_threshold(&prediction.view(), &observation.view(), 1.0).unwrap();
    assert_eq!(table, Contingency::from_counts(1.0, 2, 1, 1, 1));
    assert_eq!(table.total(), 5);
}

#[test]
fn contingency_scores_by_hand() {
    // H = 20, F = 10, M = 5, C = 65; total 100.
    let table = Contingency::from_counts(1.0, 20, 10, 5, 65);
    close_some(table.pod(), 20.0 / 25.0);
    close_some(table.far(), 10.0 / 30.0);
    close_some(table.csi(), 20.0 / 35.0);
    close_some(table.bias(), 30.0 / 25.0);
    // HSS = 2 (20*65 - 10*5) / (25 * 70 + 30 * 75) = 2500 / 4000.
    close_some(table.hss(), 2500.0 / 4000.0);
    // Hr = 25 * 30 / 100 = 7.5; ETS = (20 - 7.5) / (35 - 7.5).
    close_some(table.ets(), 12.5 / 27.5);
}

#[test]
fn contingency_perfect_and_random_forecasts() {
    let perfect = Contingency::from_counts(5.0, 10, 0, 0, 90);
    close_some(perfect.hss(), 1.0);
    close_some(perfect.ets(), 1.0);
    close_some(perfect.far(), 0.0);

    // Prediction independent of observation: H = Hr exactly, so HSS = ETS = 0.
    // Observed 20 of 100, predicted 50 of 100: H = 10, F = 40, M = 10, C = 40.
    let random = Contingency::from_counts(5.0, 10, 40, 10, 40);
    close_some(random.hss(), 0.0);
    close_some(random.ets(), 0.0);
}

#[test]
fn contingency_empty_denominators_are_none() {
    // Nothing predicted and nothing observed.
    let dry = Contingency::from_counts(10.0, 0, 0, 0, 7);
    assert_eq!(dry.pod(), None);
    assert_eq!(dry.far(), None);
    assert_eq!(dry.csi(), None);
    assert_eq!(dry.bias(), None);
    assert_eq!(dry.hss(), None);
    assert_eq!(dry.ets(), None);

    // Events observed, never predicted: POD 0, FAR undefined.
    let missed = Contingency::from_counts(10.0, 0, 0, 3, 7);
    close_some(missed.pod(), 0.0);
    assert_eq!(missed.far(), None);
    close_some(missed.bias(), 0.0);

    let nothing = Contingency::from_counts(10.0, 0, 0, 0, 0);
    assert_eq!(nothing.ets(), None);
}

#[test]
fn standard_thresholds_cover_four_levels() {
    let prediction = arr1(&[0.1f32, 1.0, 5.0, 10.0]);
    let observation = arr1(&[0.0f32, 1.0, 5.0, 12.0]);
    let tables = standard_contingencies(&prediction.view(), &observation.view()).unwrap();
    let thresholds: Vec<f64> = tables.iter().map(|t| t.threshold_mm).collect();
    assert_eq!(thresholds, vec![0.1, 1.0, 5.0, 10.0]);
    // At 0.1 mm: f32 0.1 rounds up, so the first prediction is an event; the observation 0 is not.
    assert_eq!(tables[0], Contingency::from_counts(0.1, 3, 1, 0, 0));
    assert_eq!(tables[3], Contingency::from_counts(10.0, 1, 0, 0, 3));
}
