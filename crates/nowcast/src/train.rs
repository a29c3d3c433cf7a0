//! Mini-batch training with Adam, learning-rate schedules, best-epoch selection and resumption.
//!
//! One epoch shuffles the training rows with a generator seeded from the run seed and the epoch
//! number, steps Adam once per batch on the mean squared error, then measures the validation
//! loss. The weights of the epoch with the lowest validation loss are restored at the end.
//!
//! Every random choice of an epoch (shuffle order, dropout masks) depends only on the seed and
//! the epoch number. The plateau schedule is rebuilt by replaying the recorded validation
//! losses. So training two epochs and resuming for a third gives the same weights, bit for bit,
//! as training three epochs at once.

use std::time::Instant;

use handgrad_layers::Mode;
use handgrad_optim::{
    Adam, AdamConfig, AdamState, KeypointSchedule, Optimizer, PlateauConfig, ReduceLrOnPlateau,
};
use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::models::{gather_rows, layer_seed, Model, ModelError, ModelKind};

/// Points (epoch, learning rate) of the keypoint schedule, linear in between.
pub const KEYPOINTS: [(f64, f64); 5] =
    [(0.0, 1e-4), (3.0, 1e-3), (6.0, 5e-4), (7.0, 1e-3), (9.0, 1e-4)];

/// Rows per forward pass when measuring a loss without training.
const EVAL_BATCH: usize = 4096;

/// Errors raised by training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The model rejected a batch.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The loss became NaN or infinite.
    #[error(
        "training diverged at epoch {epoch}, batch {batch}: {value}; \
         lower the learning rate or check the inputs for NaN"
    )]
    Diverged {
        /// Epoch, counted from 1.
        epoch: usize,
        /// Batch within the epoch, counted from 1.
        batch: usize,
        /// The quantity that stopped being finite, such as "loss is NaN".
        value: String,
    },
    /// The loss or the optimiser failed.
    #[error("{stage}: {reason}")]
    Step {
        /// `"loss"` or `"optimizer"`.
        stage: &'static str,
        /// The error message.
        reason: String,
    },
    /// The configuration or a resumed state cannot be used.
    #[error("invalid training configuration: {0}")]
    Config(String),
}

/// Result alias for training.
pub type Result<T> = std::result::Result<T, TrainError>;

/// How the learning rate changes from epoch to epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// The configured learning rate throughout.
    Constant,
    /// Multiply by 0.2 after 2 epochs without a relative improvement of 1e-4 in validation loss,
    /// down to 1e-4 (PyTorch `ReduceLROnPlateau`, mode "min").
    Plateau,
    /// [`KEYPOINTS`], evaluated at the 0-based epoch number; the configured rate is ignored.
    Keypoint,
}

impl Schedule {
    /// Short name used on the command line: `none`, `plateau`, `keypoint`.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Constant => "none",
            Schedule::Plateau => "plateau",
            Schedule::Keypoint => "keypoint",
        }
    }

    /// Parses a name as [`Schedule::name`] writes it.
    pub fn from_name(name: &str) -> Option<Schedule> {
        [Schedule::Constant, Schedule::Plateau, Schedule::Keypoint]
            .into_iter()
            .find(|schedule| schedule.name() == name)
    }
}

/// Settings of one training run; stored in checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs in total, counting those of a resumed run.
    pub epochs: usize,
    /// Rows per Adam step.
    pub batch_size: usize,
    /// Adam learning rate before any schedule.
    pub learning_rate: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of the shuffles and dropout masks.
    pub seed: u64,
}

impl Default for TrainConfig {
    /// 10 epochs of batches of 1024 at learning rate 0.01, no schedule, seed 0.
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 1024,
            learning_rate: 0.01,
            schedule: Schedule::Constant,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Returns the recipe that reports train `kind` with, for `epochs` epochs.
    ///
    /// [`ModelKind::Best`] takes batches of 32 sequences under the keypoint schedule; every
    /// other model takes [`TrainConfig::default`], batches of 1024 rows at a constant 0.01.
    /// A batch row of a sequence model is a whole sequence. So on 23k training sequences a
    /// batch of 1024 leaves only 23 Adam steps an epoch, and batches of 32 give 718. The
    /// keypoint schedule keeps those many steps small and ends at 1e-4.
    pub fn recipe(kind: ModelKind, epochs: usize) -> TrainConfig {
        let default = TrainConfig { epochs, ..TrainConfig::default() };
        match kind {
            ModelKind::Best => {
                TrainConfig { batch_size: 32, schedule: Schedule::Keypoint, ..default }
            }
            _ => default,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(TrainError::Config(format!(
                "epochs ({}) and batch_size ({}) must be positive",
                self.epochs, self.batch_size
            )));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(TrainError::Config(format!(
                "learning_rate must be positive and finite, found {}",
                self.learning_rate
            )));
        }
        Ok(())
    }
}

/// Losses and timing of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, counted from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches, weighted by batch size, in training mode.
    pub train_loss: f64,
    /// Mean squared error on the validation split in evaluation mode.
    pub validation_loss: f64,
    /// Learning rate used during the epoch.
    pub learning_rate: f64,
    /// Wall-clock seconds of the epoch, validation included.
    pub seconds: f64,
}

/// What a training run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// One record per epoch, resumed epochs included.
    pub history: Vec<EpochRecord>,
    /// Epoch (from 1) whose weights the model holds after training.
    pub best_epoch: usize,
    /// Validation loss of that epoch.
    pub best_validation_loss: f64,
}

/// Everything needed to continue a run: saved in checkpoints by [`crate::checkpoint`].
#[derive(Debug, Clone)]
pub struct TrainState {
    /// The configuration of the run.
    pub config: TrainConfig,
    /// History and best epoch so far.
    pub report: TrainReport,
    /// Weights after the last epoch, in the order of [`Model::params`].
    pub last_weights: Vec<ArrayD<f32>>,
    /// Adam's step count and moments after the last epoch.
    pub optimizer: AdamState<f32>,
}

/// Progress reported to the caller while training.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// An epoch is starting.
    EpochStart {
        /// Epoch, counted from 1.
        epoch: usize,
        /// Batches it will run.
        batches: usize,
    },
    /// A batch finished.
    Batch {
        /// Batch, counted from 1.
        batch: usize,
        /// Its loss.
        loss: f64,
    },
    /// An epoch finished.
    EpochEnd(&'a EpochRecord),
}

/// Model-layout inputs and targets of one split.
struct Rows {
    inputs: ArrayD<f32>,
    targets: ArrayD<f32>,
}

impl Rows {
    fn new(model: &Model, split: &Split) -> Result<Rows> {
        let inputs = model.prepare_inputs(&split.features.view())?;
        let targets = model.prepare_targets(&split.labels.view());
        Ok(Rows { inputs, targets })
    }

    fn len(&self) -> usize {
        self.inputs.shape()[0]
    }
}

/// Trains `model` on `train`, selecting the epoch by its loss on `validation`.
///
/// With `resume`, training continues after the last epoch of that state up to `config.epochs`;
/// the state must come from a run with the same configuration apart from `epochs`. On return the
/// model holds the weights of the best epoch, and the returned state holds those of the last.
///
/// # Errors
///
/// [`TrainError::Diverged`] names the epoch and batch whose loss or updated weights were not
/// finite;
/// [`TrainError::Config`] for zero epochs or batch size, a non-positive learning rate, an empty
/// training or validation split, or a resumed state that does not match.
pub fn train(
    model: &mut Model,
    train: &Split,
    validation: &Split,
    config: &TrainConfig,
    resume: Option<TrainState>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<TrainState> {
    config.validate()?;
    check_not_empty("training", train)?;
    check_not_empty("validation", validation)?;
    let train_rows = Rows::new(model, train)?;
    let validation_rows = Rows::new(model, validation)?;
    let mut optimizer = new_adam(config.learning_rate)?;
    let mut report =
        TrainReport { history: Vec::new(), best_epoch: 0, best_validation_loss: f64::INFINITY };
    let mut best_weights = model.weights();
    if let Some(state) = resume {
        check_resume(config, &state)?;
        best_weights = model.weights();
        model.set_weights(&state.last_weights)?;
        optimizer.load_state(state.optimizer).map_err(|error| step_error("optimizer", error))?;
        report = state.report;
    }

    let mut schedule = LearningRate::new(config, &report.history)?;
    for epoch in report.history.len() + 1..=config.epochs {
        let record = run_epoch(
            model,
            &mut optimizer,
            &train_rows,
            &validation_rows,
            config,
            epoch,
            &mut schedule,
            progress,
        )?;
        if record.validation_loss < report.best_validation_loss {
            report.best_validation_loss = record.validation_loss;
            report.best_epoch = epoch;
            best_weights = model.weights();
        }
        schedule.after_epoch(record.validation_loss);
        progress(Progress::EpochEnd(&record));
        report.history.push(record);
    }

    let last_weights = model.weights();
    model.set_weights(&best_weights)?;
    Ok(TrainState { config: config.clone(), report, last_weights, optimizer: optimizer.state() })
}

#[allow(clippy::too_many_arguments)]
fn run_epoch(
    model: &mut Model,
    optimizer: &mut Adam<f32>,
    train_rows: &Rows,
    validation_rows: &Rows,
    config: &TrainConfig,
    epoch: usize,
    schedule: &mut LearningRate,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<EpochRecord> {
    let started = Instant::now();
    let learning_rate = schedule.at_epoch(epoch - 1);
    optimizer.set_learning_rate(learning_rate);
    let epoch_seed = layer_seed(config.seed, epoch);
    model.reseed_dropout(epoch_seed)?;
    let order = permutation(train_rows.len(), epoch_seed);
    let batches = order.len().div_ceil(config.batch_size);
    progress(Progress::EpochStart { epoch, batches });

    let mut loss_sum = 0.0;
    for (batch_index, indices) in order.chunks(config.batch_size).enumerate() {
        let batch = batch_index + 1;
        // Inside the rayon pool, each product or loop that the layers split starts on a worker
        // thread and hands half to the other. From outside, every split wakes the pool and puts
        // this thread to sleep until it finishes: measured 3-5% slower for the feed-forward model.
        let loss = rayon::scope(|_| train_batch(model, optimizer, train_rows, indices));
        let loss = loss.map_err(|error| match error {
            TrainError::Diverged { value, .. } => TrainError::Diverged { epoch, batch, value },
            other => other,
        })?;
        loss_sum += loss * indices.len() as f64;
        progress(Progress::Batch { batch, loss });
    }

    let validation_loss = rayon::scope(|_| evaluate_loss(model, validation_rows))?;
    Ok(EpochRecord {
        epoch,
        train_loss: loss_sum / order.len().max(1) as f64,
        validation_loss,
        learning_rate,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Runs forward, loss, backward and one Adam step on the rows `indices`; returns the loss.
fn train_batch(
    model: &mut Model,
    optimizer: &mut Adam<f32>,
    rows: &Rows,
    indices: &[usize],
) -> Result<f64> {
    let inputs = gather_rows(&rows.inputs, indices);
    let targets = gather_rows(&rows.targets, indices);
    let predictions = model.forward(&inputs, Mode::Train)?;
    if let Some(bad) = predictions.iter().find(|v| !v.is_finite()) {
        return Err(TrainError::Diverged {
            epoch: 0,
            batch: 0,
            value: format!("a prediction is {bad}"),
        });
    }
    let (loss, grad) = handgrad_losses::mse(&predictions.view(), &targets.view())
        .map_err(|error| step_error("loss", error))?;
    let loss = f64::from(loss);
    if !loss.is_finite() {
        return Err(TrainError::Diverged { epoch: 0, batch: 0, value: format!("loss is {loss}") });
    }
    model.backward(&grad)?;
    optimizer.step(&mut model.params_mut()).map_err(|error| step_error("optimizer", error))?;

    // A NaN input can leave the loss finite (ReLU maps NaN to 0) yet poison the weights.
    for (name, param) in model.named_params() {
        if let Some(bad) = param.value.iter().find(|v| !v.is_finite()) {
            return Err(TrainError::Diverged {
                epoch: 0,
                batch: 0,
                value: format!("parameter {name} became {bad}"),
            });
        }
    }
    Ok(loss)
}

/// Mean squared error of `model` on `rows` in evaluation mode.
fn evaluate_loss(model: &mut Model, rows: &Rows) -> Result<f64> {
    let mut squared_sum = 0.0;
    let mut count = 0usize;
    let all: Vec<usize> = (0..rows.len()).collect();
    for indices in all.chunks(EVAL_BATCH) {
        let inputs = gather_rows(&rows.inputs, indices);
        let targets = gather_rows(&rows.targets, indices);
        let predictions = model.forward(&inputs, Mode::Eval)?;
        squared_sum += predictions
            .iter()
            .zip(targets.iter())
            .map(|(&p, &t)| f64::from(p - t).powi(2))
            .sum::<f64>();
        count += targets.len();
    }
    Ok(squared_sum / count.max(1) as f64)
}

/// Returns the mean squared error of `model` on a split, in evaluation mode.
///
/// # Errors
///
/// [`TrainError::Model`] when the split does not fit the model.
pub fn split_loss(model: &mut Model, split: &Split) -> Result<f64> {
    let rows = Rows::new(model, split)?;
    evaluate_loss(model, &rows)
}

fn new_adam(learning_rate: f64) -> Result<Adam<f32>> {
    let config =
        AdamConfig { learning_rate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
    Adam::new(config).map_err(|error| step_error("optimizer", error))
}

fn step_error(stage: &'static str, error: impl std::fmt::Display) -> TrainError {
    TrainError::Step { stage, reason: error.to_string() }
}

/// Rejects an empty split: it would train on nothing, or select an epoch by the loss of no rows.
fn check_not_empty(name: &str, split: &Split) -> Result<()> {
    if split.is_empty() {
        return Err(TrainError::Config(format!(
            "the {name} split has 0 sequences; it needs at least 1"
        )));
    }
    Ok(())
}

fn check_resume(config: &TrainConfig, state: &TrainState) -> Result<()> {
    let previous = &state.config;
    let differences = [
        ("--batch-size", config.batch_size.to_string(), previous.batch_size.to_string()),
        ("--learning-rate", config.learning_rate.to_string(), previous.learning_rate.to_string()),
        ("--schedule", config.schedule.name().to_string(), previous.schedule.name().to_string()),
        ("--seed", config.seed.to_string(), previous.seed.to_string()),
    ];
    let differing: Vec<String> = differences
        .iter()
        .filter(|(_, requested, saved)| requested != saved)
        .map(|(flag, requested, saved)| {
            format!("{flag} {requested} differs from {saved} in the checkpoint")
        })
        .collect();
    if !differing.is_empty() {
        return Err(TrainError::Config(format!(
            "{}; resume with the settings of the checkpoint, changing only --epochs",
            differing.join(", ")
        )));
    }

    let done = state.report.history.len();
    if done >= config.epochs {
        let plural = if done == 1 { "" } else { "s" };
        return Err(TrainError::Config(format!(
            "the checkpoint already contains {done} epoch{plural}; set --epochs above {done} to resume"
        )));
    }
    Ok(())
}

/// The learning rate of each epoch under the configured schedule.
#[derive(Debug)]
enum LearningRate {
    Constant(f64),
    Plateau { current: f64, schedule: ReduceLrOnPlateau },
    Keypoint(KeypointSchedule),
}

impl LearningRate {
    /// Builds the schedule and replays the validation losses of `history`, so a resumed run
    /// continues with the state an uninterrupted one would have.
    fn new(config: &TrainConfig, history: &[EpochRecord]) -> Result<LearningRate> {
        let mut rate = match config.schedule {
            Schedule::Constant => LearningRate::Constant(config.learning_rate),
            Schedule::Plateau => LearningRate::Plateau {
                current: config.learning_rate,
                schedule: ReduceLrOnPlateau::new(plateau_config())
                    .map_err(|error| step_error("optimizer", error))?,
            },
            Schedule::Keypoint => LearningRate::Keypoint(
                KeypointSchedule::new(KEYPOINTS.to_vec())
                    .map_err(|error| step_error("optimizer", error))?,
            ),
        };
        for record in history {
            rate.after_epoch(record.validation_loss);
        }
        Ok(rate)
    }

    /// Learning rate of the 0-based `epoch`.
    fn at_epoch(&self, epoch: usize) -> f64 {
        match self {
            LearningRate::Constant(rate) => *rate,
            LearningRate::Plateau { current, .. } => *current,
            LearningRate::Keypoint(schedule) => schedule.at(epoch as f64),
        }
    }

    fn after_epoch(&mut self, validation_loss: f64) {
        if let LearningRate::Plateau { current, schedule } = self {
            *current = schedule.step(validation_loss, *current);
        }
    }
}

/// Settings of the plateau schedule: factor 0.2, patience 2, minimum 1e-4.
pub fn plateau_config() -> PlateauConfig {
    PlateauConfig {
        factor: 0.2,
        patience: 2,
        threshold: 1e-4,
        min_lr: 1e-4,
        cooldown: 0,
        eps: 1e-8,
    }
}

/// Learning rates the plateau schedule gives after each validation loss of `losses`.
pub fn plateau_rates(initial: f64, losses: &[f64]) -> Vec<f64> {
    let mut rates = Vec::with_capacity(losses.len());
    let Ok(mut schedule) = ReduceLrOnPlateau::new(plateau_config()) else {
        return rates;
    };
    let mut current = initial;
    for &loss in losses {
        current = schedule.step(loss, current);
        rates.push(current);
    }
    rates
}

/// A permutation of `0..n` by Fisher-Yates with a SplitMix64 stream seeded by `seed`.
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = seed;
    for i in (1..n).rev() {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let j = (layer_seed(state, 0) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_covers_every_index() {
        let mut order = permutation(1000, 7);
        assert_ne!(order, (0..1000).collect::<Vec<_>>());
        order.sort_unstable();
        assert_eq!(order, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn permutation_depends_on_seed() {
        assert_ne!(permutation(100, 1), permutation(100, 2));
        assert_eq!(permutation(100, 1), permutation(100, 1));
    }
}
