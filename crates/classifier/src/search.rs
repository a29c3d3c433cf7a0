//! Hyperparameter grid search: one training run per configuration, run in parallel with rayon.
//!
//! Every configuration trains a fresh network from a generator seeded with the grid's seed, so
//! runs are independent of scheduling and give the same result on any number of threads. The
//! best configuration is the one with the highest validation accuracy after training; the
//! lowest grid index wins a tie.

use std::sync::Mutex;

use handgrad_tensor::rng::NumpyRng;
use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::net::invalid;
use crate::{ClassifierError, Result, TrainConfig, TrainHistory, TwoLayerNet};

/// The grid: every combination of the four lists is one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchGrid {
    /// Initial learning rates.
    pub learning_rates: Vec<f64>,
    /// Learning-rate decays per epoch.
    pub learning_rate_decays: Vec<f64>,
    /// Regularization strengths.
    pub regs: Vec<f64>,
    /// Hidden layer sizes.
    pub hidden_sizes: Vec<usize>,
    /// Iterations per configuration.
    pub num_iters: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Momentum of every run (0 for plain SGD).
    pub momentum: f64,
    /// Standard deviation of the initial weights.
    pub std: f64,
    /// Seed of every run's generator.
    pub seed: u32,
}

impl SearchGrid {
    /// Returns the reference grid: learning rates {1e-3, 5e-3, 1e-4, 5e-4, 1e-5} x decays {0.95, 1}
    /// x reg {0.1, 0.01, 0.001} x hidden {150, 200, 250}, 2,000 iterations of batch 200,
    /// plain SGD, `std = 1e-4`, seed 0: 90 configurations.
    pub fn reference() -> Self {
        Self {
            learning_rates: vec![1e-3, 5e-3, 1e-4, 5e-4, 1e-5],
            learning_rate_decays: vec![0.95, 1.0],
            regs: vec![0.1, 0.01, 0.001],
            hidden_sizes: vec![150, 200, 250],
            num_iters: 2000,
            batch_size: 200,
            momentum: 0.0,
            std: 1e-4,
            seed: 0,
        }
    }

    /// Returns a reduced grid for quick runs: learning rates {1e-3, 1e-4} x decays {0.95, 1} x
    /// reg {0.01} x hidden {150}, 300 iterations: 4 configurations.
    pub fn quick() -> Self {
        Self {
            learning_rates: vec![1e-3, 1e-4],
            learning_rate_decays: vec![0.95, 1.0],
            regs: vec![0.01],
            hidden_sizes: vec![150],
            num_iters: 300,
            ..Self::reference()
        }
    }

    /// Lists the configurations in grid order: learning rate slowest, hidden size fastest.
    pub fn configurations(&self) -> Vec<TrialConfig> {
        let mut configurations = Vec::new();
        for &learning_rate in &self.learning_rates {
            for &learning_rate_decay in &self.learning_rate_decays {
                for &reg in &self.regs {
                    for &hidden_size in &self.hidden_sizes {
                        let train = TrainConfig {
                            learning_rate,
                            learning_rate_decay,
                            reg,
                            num_iters: self.num_iters,
                            batch_size: self.batch_size,
                            momentum: self.momentum,
                            seed: self.seed,
                        };
                        configurations.push(TrialConfig { hidden_size, std: self.std, train });
                    }
                }
            }
        }
        configurations
    }
}

/// One configuration of the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialConfig {
    /// Hidden layer size.
    pub hidden_size: usize,
    /// Standard deviation of the initial weights.
    pub std: f64,
    /// Training hyperparameters, including the seed.
    pub train: TrainConfig,
}

/// Training and validation data of a search, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct SearchData<'a> {
    /// Training inputs (N, D).
    pub x_train: ArrayView2<'a, f64>,
    /// Training labels (N).
    pub y_train: &'a [usize],
    /// Validation inputs (M, D).
    pub x_val: ArrayView2<'a, f64>,
    /// Validation labels (M).
    pub y_val: &'a [usize],
    /// Number of classes C.
    pub num_classes: usize,
}

/// The result of one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Position in [`SearchGrid::configurations`].
    pub index: usize,
    /// The configuration.
    pub config: TrialConfig,
    /// Validation accuracy of the trained network; 0 when training diverged.
    pub val_accuracy: f64,
    /// Recorded losses and accuracies; empty when training diverged.
    pub history: TrainHistory,
    /// Iteration at which the loss stopped being finite, if it did.
    pub diverged_at: Option<usize>,
}

/// Progress report that [`search`] passes to its callback, from any worker thread.
#[derive(Debug, Clone, Copy)]
pub enum SearchEvent<'a> {
    /// A configuration finished one iteration.
    Iteration {
        /// Position of the configuration in the grid.
        index: usize,
        /// Iteration just finished, 0-based.
        iteration: usize,
    },
    /// A configuration finished training.
    Finished(&'a Trial),
}

/// All trials in grid order, and the best network.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// One entry per configuration, in grid order.
    pub trials: Vec<Trial>,
    /// Index into `trials` of the best configuration.
    pub best: usize,
    /// The trained network of the best configuration.
    pub best_net: TwoLayerNet,
}

impl SearchResult {
    /// The best trial.
    pub fn best_trial(&self) -> &Trial {
        &self.trials[self.best]
    }
}

/// Trains one network per configuration of `grid` in parallel and keeps the best.
///
/// Configurations run as rayon tasks on the current thread pool; wrap the call in
/// `ThreadPool::install` to choose the number of threads. A configuration whose loss stops
/// being finite is recorded with `diverged_at` set and validation accuracy 0 and does not stop
/// the others.
///
/// # Errors
///
/// - [`ClassifierError::InvalidConfig`] when the grid is empty or a setting is out of range;
/// - the errors of [`TwoLayerNet::train`] for data that does not fit, except
///   [`ClassifierError::Diverged`];
/// - [`ClassifierError::InvalidConfig`] when every configuration diverged.
pub fn search(
    grid: &SearchGrid,
    data: &SearchData<'_>,
    progress: &(dyn Fn(SearchEvent<'_>) + Sync),
) -> Result<SearchResult> {
    let configurations = grid.configurations();
    if configurations.is_empty() {
        return Err(invalid("grid", "an empty list", "at least one value per hyperparameter"));
    }
    for config in &configurations {
        config.train.validate()?;
    }

    let best: Mutex<Option<(f64, usize, TwoLayerNet)>> = Mutex::new(None);
    let trials = configurations
        .par_iter()
        .enumerate()
        .map(|(index, config)| {
            let (trial, net) = run_trial(index, config, data, progress)?;
            progress(SearchEvent::Finished(&trial));
            if let Some(net) = net {
                keep_better(&best, trial.val_accuracy, index, net);
            }
            Ok(trial)
        })
        .collect::<Result<Vec<Trial>>>()?;

    let best = best.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some((_, best, best_net)) = best else {
        return Err(invalid("learning_rates", "every configuration", "one that does not diverge"));
    };
    Ok(SearchResult { trials, best, best_net })
}

/// Trains one configuration; the network is `None` when training diverged.
fn run_trial(
    index: usize,
    config: &TrialConfig,
    data: &SearchData<'_>,
    progress: &(dyn Fn(SearchEvent<'_>) + Sync),
) -> Result<(Trial, Option<TwoLayerNet>)> {
    let mut rng = NumpyRng::new(config.train.seed);
    let input = data.x_train.ncols();
    let mut net =
        TwoLayerNet::init(input, config.hidden_size, data.num_classes, config.std, &mut rng)?;
    let mut report = |p: &crate::TrainProgress| {
        progress(SearchEvent::Iteration { index, iteration: p.iteration });
    };
    let outcome = net.train(
        &data.x_train,
        data.y_train,
        &data.x_val,
        data.y_val,
        &config.train,
        &mut rng,
        &mut report,
    );

    let trial = |val_accuracy, history, diverged_at| Trial {
        index,
        config: *config,
        val_accuracy,
        history,
        diverged_at,
    };
    match outcome {
        Ok(history) => {
            let val_accuracy = net.accuracy(&data.x_val, data.y_val)?;
            Ok((trial(val_accuracy, history, None), Some(net)))
        }
        Err(ClassifierError::Diverged { iteration, .. }) => {
            Ok((trial(0.0, TrainHistory::default(), Some(iteration)), None))
        }
        Err(other) => Err(other),
    }
}

/// Replaces the kept network when `accuracy` is higher, or equal with a lower grid index.
fn keep_better(
    best: &Mutex<Option<(f64, usize, TwoLayerNet)>>,
    accuracy: f64,
    index: usize,
    net: TwoLayerNet,
) {
    let mut guard = best.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let better = match guard.as_ref() {
        None => true,
        Some(&(kept, kept_index, _)) => accuracy > kept || (accuracy == kept && index < kept_index),
    };
    if better {
        *guard = Some((accuracy, index, net));
    }
}
