//! Bad input gives typed errors, never a panic.

use handgrad_classifier::search::{search, SearchData, SearchGrid};
use handgrad_classifier::{ClassifierError, TrainConfig, TwoLayerNet};
use handgrad_tensor::rng::NumpyRng;
use ndarray::{array, Array1, Array2};

fn net() -> TwoLayerNet {
    TwoLayerNet::init(3, 4, 2, 0.1, &mut NumpyRng::new(0)).unwrap()
}

#[test]
fn label_out_of_range() {
    let x = Array2::<f64>::ones((2, 3));
    let error = net().loss(&x.view(), &[0, 2], 0.0).unwrap_err();
    assert_eq!(
        error,
        ClassifierError::LabelOutOfRange {
            op: "TwoLayerNet::loss",
            sample: 1,
            label: 2,
            classes: 2
        }
    );
    assert!(error.to_string().contains("label 2 of sample 1 is out of range, expected 0..2"));
}

#[test]
fn wrong_feature_count() {
    let x = Array2::<f64>::ones((2, 5));
    let error = net().scores(&x.view()).unwrap_err();
    assert!(
        matches!(error, ClassifierError::ShapeMismatch { argument: "x", ref found, .. } if found == &[2, 5])
    );
}

#[test]
fn label_count_mismatch() {
    let x = Array2::<f64>::ones((3, 3));
    let error = net().loss(&x.view(), &[0, 1], 0.0).unwrap_err();
    assert!(matches!(error, ClassifierError::ShapeMismatch { argument: "labels", .. }));
}

#[test]
fn empty_batch() {
    let x = Array2::<f64>::zeros((0, 3));
    let error = net().loss(&x.view(), &[], 0.0).unwrap_err();
    assert!(matches!(error, ClassifierError::ShapeMismatch { argument: "x", .. }));
}

#[test]
fn non_finite_input() {
    let x = array![[0.0, f64::NAN, 1.0]];
    let error = net().loss(&x.view(), &[0], 0.0).unwrap_err();
    assert!(matches!(error, ClassifierError::NonFinite { row: 0, column: 1, .. }));
}

#[test]
fn negative_reg() {
    let x = Array2::<f64>::ones((1, 3));
    let error = net().loss(&x.view(), &[0], -1.0).unwrap_err();
    assert!(matches!(error, ClassifierError::InvalidConfig { name: "reg", .. }));
}

#[test]
fn mismatched_parameters() {
    let error = TwoLayerNet::from_params(
        Array2::zeros((3, 4)),
        Array1::zeros(5),
        Array2::zeros((4, 2)),
        Array1::zeros(2),
    )
    .unwrap_err();
    assert!(matches!(error, ClassifierError::ShapeMismatch { argument: "b1", .. }));

    let error = TwoLayerNet::from_params(
        Array2::zeros((3, 4)),
        Array1::zeros(4),
        Array2::zeros((3, 2)),
        Array1::zeros(2),
    )
    .unwrap_err();
    assert!(matches!(error, ClassifierError::ShapeMismatch { argument: "w2", .. }));
}

#[test]
fn zero_sizes_rejected() {
    let error = TwoLayerNet::init(3, 0, 2, 0.1, &mut NumpyRng::new(0)).unwrap_err();
    assert!(matches!(error, ClassifierError::InvalidConfig { name: "hidden_size", .. }));
}

#[test]
fn invalid_train_config() {
    let x = Array2::<f64>::ones((4, 3));
    let y = [0, 1, 0, 1];
    let mut net = net();
    let mut rng = NumpyRng::new(0);
    let cases = [
        ("learning_rate", TrainConfig { learning_rate: 0.0, ..TrainConfig::default() }),
        (
            "learning_rate_decay",
            TrainConfig { learning_rate_decay: f64::NAN, ..TrainConfig::default() },
        ),
        ("batch_size", TrainConfig { batch_size: 0, ..TrainConfig::default() }),
        ("momentum", TrainConfig { momentum: 1.0, ..TrainConfig::default() }),
    ];
    for (field, config) in cases {
        let error =
            net.train(&x.view(), &y, &x.view(), &y, &config, &mut rng, &mut |_| {}).unwrap_err();
        assert!(
            matches!(error, ClassifierError::InvalidConfig { name, .. } if name == field),
            "{field}: {error}"
        );
    }
}

#[test]
fn validation_labels_checked() {
    let x = Array2::<f64>::ones((4, 3));
    let error = net()
        .train(
            &x.view(),
            &[0, 1, 0, 1],
            &x.view(),
            &[0, 1, 0, 7],
            &TrainConfig::default(),
            &mut NumpyRng::new(0),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(error, ClassifierError::LabelOutOfRange { sample: 3, label: 7, .. }));
}

#[test]
fn divergence_is_reported() {
    // Inputs of 1e150 overflow the scores at the first step.
    let x = Array2::<f64>::from_elem((4, 3), 1e150);
    let y = [0, 1, 0, 1];
    let config =
        TrainConfig { learning_rate: 1e10, num_iters: 5, batch_size: 2, ..TrainConfig::default() };
    let mut net = TwoLayerNet::init(3, 4, 2, 1.0, &mut NumpyRng::new(0)).unwrap();
    let error = net
        .train(&x.view(), &y, &x.view(), &y, &config, &mut NumpyRng::new(0), &mut |_| {})
        .unwrap_err();
    assert!(matches!(error, ClassifierError::Diverged { .. }), "{error}");
}

#[test]
fn empty_grid_rejected() {
    let x = Array2::<f64>::ones((4, 3));
    let y = [0, 1, 0, 1];
    let data =
        SearchData { x_train: x.view(), y_train: &y, x_val: x.view(), y_val: &y, num_classes: 2 };
    let grid = SearchGrid { hidden_sizes: vec![], ..SearchGrid::quick() };
    let error = search(&grid, &data, &|_| {}).unwrap_err();
    assert!(matches!(error, ClassifierError::InvalidConfig { name: "grid", .. }));
}
