//! MNIST preprocessing for the two-layer network, as the reference does it.
//!
//! Pixels become `f64` values 0 to 255, the mean training image is subtracted from every set,
//! and each image is one row of 784 features. Nothing is rescaled.

use handgrad_data::mnist::{Mnist, MnistSource};
use ndarray::{Array1, Array2, Axis};

use crate::search::SearchData;

/// One preprocessed set: inputs (N, 784) and labels 0 to 9.
#[derive(Debug, Clone)]
pub struct MnistSet {
    /// Pixels minus the mean training image.
    pub x: Array2<f64>,
    /// Class labels.
    pub y: Vec<usize>,
}

/// MNIST ready for [`crate::TwoLayerNet`].
#[derive(Debug, Clone)]
pub struct MnistFeatures {
    /// Training set.
    pub train: MnistSet,
    /// Validation set.
    pub validation: MnistSet,
    /// Test set.
    pub test: MnistSet,
    /// The mean training image (784) that was subtracted.
    pub mean_image: Array1<f64>,
    /// Which files the sets come from, and so how they were split.
    pub source: MnistSource,
}

/// Number of classes of MNIST.
pub const NUM_CLASSES: usize = 10;

impl MnistFeatures {
    /// Converts the pixels to `f64` and subtracts the mean training image from every set.
    pub fn from_mnist(mnist: &Mnist) -> Self {
        let train = mnist.train_images.mapv(f64::from);
        let mean_image = train.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(train.ncols()));
        let centre = |images: &Array2<u8>, labels: &[u8]| MnistSet {
            x: images.mapv(f64::from) - &mean_image,
            y: labels.iter().map(|&label| usize::from(label)).collect(),
        };
        Self {
            train: centre(&mnist.train_images, &mnist.train_labels),
            validation: centre(&mnist.validation_images, &mnist.validation_labels),
            test: centre(&mnist.test_images, &mnist.test_labels),
            mean_image,
            source: mnist.source,
        }
    }

    /// Borrows the training and validation sets as the input of [`crate::search::search`].
    pub fn search_data(&self) -> SearchData<'_> {
        SearchData {
            x_train: self.train.x.view(),
            y_train: &self.train.y,
            x_val: self.validation.x.view(),
            y_val: &self.validation.y,
            num_classes: NUM_CLASSES,
        }
    }
}
