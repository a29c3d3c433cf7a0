//! The toy problem of the reference notebook and the numbers it publishes.
//!
//! The notebook builds a network of 4 inputs, 10 hidden units and 3 classes with `std = 0.1`
//! right after `np.random.seed(0)`, and 5 inputs `X = 10 * randn(5, 4)` right after
//! `np.random.seed(1)` with labels `[0, 1, 2, 2, 1]`. It then checks the scores, the loss at
//! `reg = 0.1`, the gradients against central differences, and trains the network on the five
//! samples. [`run`] repeats all of it; the tests and `cargo xtask reproduce` compare the result
//! with the constants below.

use handgrad_tensor::gradcheck::{numerical_gradient, relative_error};
use handgrad_tensor::rng::NumpyRng;
use ndarray::{Array2, Ix2};

use crate::{Result, TrainConfig, TrainHistory, TwoLayerNet};

/// Scores of the toy network on the toy inputs, as printed by the reference notebook.
pub const EXPECTED_SCORES: [[f64; 3]; 5] = [
    [-0.81233741, -1.27654624, -0.70335995],
    [-0.17129677, -1.18803311, -0.47310444],
    [-0.51590475, -1.01354314, -0.8504215],
    [-0.15419291, -0.48629638, -0.52901952],
    [-0.00618733, -0.12435261, -0.15226949],
];

/// Sum of absolute differences allowed between the scores and [`EXPECTED_SCORES`].
pub const SCORES_TOLERANCE: f64 = 1e-7;

/// Loss of the toy network at [`LOSS_REG`], as published by the reference notebook.
pub const EXPECTED_LOSS: f64 = 1.30378789133;

/// Absolute tolerance of the loss check.
pub const LOSS_TOLERANCE: f64 = 1e-10;

/// Regularization strength of the loss check.
pub const LOSS_REG: f64 = 0.1;

/// Regularization strength of the gradient check.
pub const GRADIENT_REG: f64 = 0.05;

/// Step of the central differences in the gradient check.
pub const GRADIENT_STEP: f64 = 1e-5;

/// Largest relative error allowed between analytic and numerical gradients.
pub const GRADIENT_TOLERANCE: f64 = 1e-8;

/// Training loss the toy run must end below.
pub const FINAL_LOSS_LIMIT: f64 = 0.05;

/// Final toy training loss printed by the numpy implementation, from
/// `python crates/classifier/reference/two_layer_net.py toy` (numpy 2.4.6, OpenBLAS 0.3.31).
pub const NUMPY_FINAL_LOSS: f64 = 0.017143643532923747;

/// Relative tolerance between the final training loss and [`NUMPY_FINAL_LOSS`].
pub const NUMPY_TOLERANCE: f64 = 1e-10;

/// The toy training hyperparameters of the notebook: learning rate 0.1 decaying by 0.95 per
/// epoch, reg 5e-6, 100 iterations of batch 200 (each epoch is one iteration on 5 samples).
pub const TOY_TRAIN: TrainConfig = TrainConfig {
    learning_rate: 0.1,
    learning_rate_decay: 0.95,
    reg: 5e-6,
    num_iters: 100,
    batch_size: 200,
    momentum: 0.0,
    seed: 0,
};

/// Returns the toy inputs (5, 4) drawn after seeding with 1, and their labels.
pub fn toy_data() -> (Array2<f64>, Vec<usize>) {
    let mut rng = NumpyRng::new(1);
    let x = rng.randn(&[5, 4]).into_dimensionality::<Ix2>().expect("randn returns rank 2") * 10.0;
    (x, vec![0, 1, 2, 2, 1])
}

/// Returns the toy network drawn after seeding with 0, and the generator after the draws.
///
/// The notebook trains the toy network with minibatches from that same generator state.
pub fn toy_net() -> (TwoLayerNet, NumpyRng) {
    let mut rng = NumpyRng::new(0);
    let net = TwoLayerNet::init(4, 10, 3, 0.1, &mut rng).expect("the toy sizes are valid");
    (net, rng)
}

/// Everything the reference checks measure.
#[derive(Debug, Clone)]
pub struct ReferenceReport {
    /// Scores of the toy network on the toy inputs, (5, 3).
    pub scores: Array2<f64>,
    /// Sum of absolute differences to [`EXPECTED_SCORES`].
    pub scores_difference: f64,
    /// Loss at [`LOSS_REG`].
    pub loss: f64,
    /// Maximum relative error of the analytic gradient against central differences, per
    /// parameter, in the order W1, b1, W2, b2.
    pub gradient_errors: [(&'static str, f64); 4],
    /// The toy training run.
    pub history: TrainHistory,
    /// Last entry of the training loss history.
    pub final_loss: f64,
    /// `|final_loss - NUMPY_FINAL_LOSS| / NUMPY_FINAL_LOSS`.
    pub numpy_relative_difference: f64,
}

/// Runs the scores, loss, gradient and training checks of the reference notebook.
///
/// # Errors
///
/// Only if the network rejects the toy data, which would be a bug.
pub fn run() -> Result<ReferenceReport> {
    let (x, y) = toy_data();
    let (net, mut rng) = toy_net();

    let scores = net.scores(&x.view())?;
    let expected = Array2::from_shape_fn((5, 3), |(i, j)| EXPECTED_SCORES[i][j]);
    let scores_difference = (&scores - &expected).mapv(f64::abs).sum();

    let (loss, _) = net.loss(&x.view(), &y, LOSS_REG)?;
    let gradient_errors = gradient_errors(&net, &x, &y, GRADIENT_REG)?;

    let mut trained = net.clone();
    let history = trained.train(&x.view(), &y, &x.view(), &y, &TOY_TRAIN, &mut rng, &mut |_| {})?;
    let final_loss = *history.loss.last().expect("the toy run has 100 iterations");
    let numpy_relative_difference = (final_loss - NUMPY_FINAL_LOSS).abs() / NUMPY_FINAL_LOSS;

    Ok(ReferenceReport {
        scores,
        scores_difference,
        loss,
        gradient_errors,
        history,
        final_loss,
        numpy_relative_difference,
    })
}

/// Returns the maximum relative error of each analytic gradient against central differences
/// with step [`GRADIENT_STEP`], in the order W1, b1, W2, b2.
///
/// # Errors
///
/// As [`TwoLayerNet::loss`].
pub fn gradient_errors(
    net: &TwoLayerNet,
    x: &Array2<f64>,
    y: &[usize],
    reg: f64,
) -> Result<[(&'static str, f64); 4]> {
    let (_, grads) = net.loss(&x.view(), y, reg)?;
    let loss_with = |edit: &dyn Fn(&mut TwoLayerNet)| {
        let mut probe = net.clone();
        edit(&mut probe);
        probe.loss(&x.view(), y, reg).map(|(loss, _)| loss).unwrap_or(f64::NAN)
    };
    let h = GRADIENT_STEP;

    let w1 = numerical_gradient(|w| loss_with(&|n| n.w1.assign(w)), &net.w1, h);
    let b1 = numerical_gradient(|b| loss_with(&|n| n.b1.assign(b)), &net.b1, h);
    let w2 = numerical_gradient(|w| loss_with(&|n| n.w2.assign(w)), &net.w2, h);
    let b2 = numerical_gradient(|b| loss_with(&|n| n.b2.assign(b)), &net.b2, h);

    Ok([
        ("W1", relative_error(&grads.w1, &w1)),
        ("b1", relative_error(&grads.b1, &b1)),
        ("W2", relative_error(&grads.w2, &w2)),
        ("b2", relative_error(&grads.b2, &b2)),
    ])
}
