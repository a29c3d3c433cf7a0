//! Preprocessing and a short training run on the shared MNIST test files.

#![allow(clippy::print_stderr)]

use handgrad_classifier::mnist::{MnistFeatures, NUM_CLASSES};
use handgrad_classifier::{TrainConfig, TwoLayerNet};
use handgrad_data::mnist::{Mnist, MnistSource};
use ndarray::Axis;

fn load() -> Option<Mnist> {
    let Some(shared) = handgrad_data::testing::shared_dir() else {
        eprintln!("skipping: shared folder not found");
        return None;
    };
    Some(Mnist::load(&shared.join("data/mnist-t10k")).expect("shared MNIST files load"))
}

#[test]
fn preprocessing_centres_training_set() {
    let Some(mnist) = load() else { return };
    let features = MnistFeatures::from_mnist(&mnist);
    assert_eq!(features.source, MnistSource::TestOnly);
    assert_eq!(features.train.x.dim(), (8000, 784));
    assert_eq!(features.validation.x.dim(), (1000, 784));
    assert_eq!(features.test.y.len(), 1000);
    let column_means = features.train.x.mean_axis(Axis(0)).unwrap();
    assert!(column_means.iter().all(|m| m.abs() < 1e-9));
    assert!(features.mean_image.iter().all(|&m| (0.0..=255.0).contains(&m)));
}

#[test]
fn short_training_beats_chance() {
    let Some(mnist) = load() else { return };
    let features = MnistFeatures::from_mnist(&mnist);
    let config =
        TrainConfig { learning_rate: 1e-3, num_iters: 200, reg: 0.01, ..TrainConfig::default() };
    let (net, history) = TwoLayerNet::fit(
        50,
        1e-4,
        &features.train.x.view(),
        &features.train.y,
        &features.validation.x.view(),
        &features.validation.y,
        NUM_CLASSES,
        &config,
        &mut |_| {},
    )
    .unwrap();
    // 8,000 training images and batch 200 give an epoch every 40 iterations.
    assert_eq!(history.epochs.len(), 5);
    let accuracy = net.accuracy(&features.test.x.view(), &features.test.y).unwrap();
    assert!(accuracy > 0.5, "test accuracy {accuracy} after 200 iterations");
}
