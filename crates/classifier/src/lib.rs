//! A two-layer fully connected classifier with hand-derived gradients, trained by minibatch SGD.
//!
//! The network is `input - fully connected - ReLU - fully connected - softmax` in `f64`:
//!
//! ```text
//! z1 = X W1 + b1        (N, H)
//! h1 = max(0, z1)       (N, H)
//! scores = h1 W2 + b2   (N, C)
//! L = mean_n -ln softmax(scores)[n, y_n] + 0.5 reg (|W1|^2 + |W2|^2)
//! ```
//!
//! - [`TwoLayerNet`]: parameters, [`TwoLayerNet::scores`], [`TwoLayerNet::loss`] with its
//!   backward pass written out, [`TwoLayerNet::predict`], [`TwoLayerNet::train`] and
//!   [`TwoLayerNet::architecture`].
//! - [`search`]: a parallel hyperparameter grid search, one configuration per rayon task.
//! - [`reference`]: the toy problem of the reference notebook and the checks against its
//!   published numbers.
//! - [`mnist`]: MNIST preprocessing (pixels as `f64` minus the mean training image).
//!
//! Weights and minibatches are drawn from [`handgrad_tensor::rng::NumpyRng`], which reproduces
//! numpy's legacy generator, so a run can be compared with the numpy implementation in
//! `reference/two_layer_net.py` value by value. The derivation of the backward pass is in
//! `docs/classifier-two-layer.md`.
//!
//! # Example
//!
//! ```
//! use handgrad_classifier::TwoLayerNet;
//! use handgrad_tensor::rng::NumpyRng;
//! use ndarray::array;
//!
//! let mut rng = NumpyRng::new(0);
//! let net = TwoLayerNet::init(2, 5, 3, 0.1, &mut rng)?;
//! let x = array![[1.0, -2.0], [0.5, 0.0]];
//! let (loss, grads) = net.loss(&x.view(), &[0, 2], 0.01)?;
//! assert!(loss > 0.0);
//! assert_eq!(grads.w1.dim(), (2, 5));
//! # Ok::<(), handgrad_classifier::ClassifierError>(())
//! ```

mod architecture;
mod error;
mod kernels;
mod net;
mod sparse;
mod train;

pub mod mnist;
pub mod reference;
pub mod search;

pub use error::{ClassifierError, Result};
pub use net::{Gradients, TwoLayerNet};
pub use train::{EpochRecord, TrainConfig, TrainHistory, TrainProgress};
