//! `nowcast`: generates a synthetic data set, trains, evaluates and runs nowcasting models.
//!
//! ```text
//! nowcast generate --out DIR [--seed 0] [--scale 1.0]
//! nowcast train --model ff|dropout|cnn|gru|best [--data-dir DIR | --scale 1.0] [--epochs 10]
//!               [--schedule none|plateau|keypoint] [--learning-rate 0.01] [--batch-size N]
//!               [--seed 0] [--checkpoint PATH] [--resume PATH]
//! nowcast evaluate --checkpoint PATH [--data-dir DIR | --scale 1.0]
//! nowcast predict --checkpoint PATH --input FEATURES.npy --out PREDICTIONS.npy
//! ```
//!
//! Without `--data-dir`, `train` and `evaluate` use the built-in synthetic data set. Without
//! `--schedule`, `--learning-rate` and `--batch-size`, `train` uses the model's recipe,
//! `TrainConfig::recipe`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use handgrad_nowcast::baselines;
use handgrad_nowcast::checkpoint;
use handgrad_nowcast::data::{self, Dataset, Split};
use handgrad_nowcast::metrics;
use handgrad_nowcast::models::{Model, ModelConfig, ModelKind};
use handgrad_nowcast::normalize::Normalizer;
use handgrad_nowcast::synthetic::{self, SyntheticConfig};
use handgrad_nowcast::train::{self, Progress, Schedule, TrainConfig, TrainState};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;

#[derive(Debug, Parser)]
#[command(name = "nowcast", about = "Rainfall nowcasting from satellite patches", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Largest `--scale`: four times the real data set.
const MAX_SCALE: f64 = 4.0;

// `allow_negative_numbers` lets "--learning-rate -0.01" reach the flag's own check instead of
// reading as an unknown flag.
#[derive(Debug, Subcommand)]
enum Command {
    /// Writes a synthetic data set in the file layout of the real one.
    #[command(allow_negative_numbers = true)]
    Generate {
        /// Folder for the files; created when missing.
        #[arg(long)]
        out: PathBuf,
        /// Seed of the generator.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Multiplies the default number of sequences of every split; above 0, at most 4.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
    },
    /// Trains a model and writes a checkpoint.
    #[command(allow_negative_numbers = true)]
    Train {
        /// Model: ff, dropout, cnn, gru or best.
        #[arg(long)]
        model: String,
        /// Folder of the real data set (months 6-10); the synthetic set when absent.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Size of the synthetic set as a multiple of the real one, at most 4 (without
        /// --data-dir).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Total epochs, counting those of a resumed checkpoint.
        #[arg(long, default_value_t = 10)]
        epochs: usize,
        /// Learning-rate schedule: none, plateau or keypoint [default: keypoint for best, none
        /// for the others].
        #[arg(long)]
        schedule: Option<String>,
        /// Adam learning rate, ignored by the keypoint schedule [default: 0.01].
        #[arg(long)]
        learning_rate: Option<f64>,
        /// Rows per Adam step; sequences for gru and best [default: 32 for best, 1024 for the
        /// others].
        #[arg(long)]
        batch_size: Option<usize>,
        /// Seed of the weights, shuffles and dropout masks.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Where to write the checkpoint; `nowcast-MODEL.safetensors` when absent.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// A checkpoint to continue training from.
        #[arg(long)]
        resume: Option<PathBuf>,
    },
    /// Scores a checkpoint on the test split against the baselines.
    #[command(allow_negative_numbers = true)]
    Evaluate {
        /// The checkpoint to score.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Folder of the real data set; the synthetic set when absent.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Size of the synthetic set as a multiple of the real one, at most 4 (without
        /// --data-dir).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
    },
    /// Predicts rainfall (N, 5) in mm for raw features (N, 5, 5, 5, 3) from a `.npy` file.
    Predict {
        /// The checkpoint to run.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Features as float32 or float64 `.npy`, shaped (N, 5, 5, 5, 3).
        #[arg(long)]
        input: PathBuf,
        /// Where to write the predictions as float32 `.npy`.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let command = Cli::parse().command;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = run(command, &mut out).and_then(|()| Ok(out.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped early, as `| head` does, needs no message. The exit code still
        // shows that the command did not finish, as a SIGPIPE death would.
        Err(error) if is_broken_pipe(&error) => ExitCode::FAILURE,
        Err(error) => {
            let message = handgrad_data::report::describe(error.as_ref());
            // Nothing is left to report to when standard error is closed too.
            let _ = writeln!(io::stderr().lock(), "error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io_error| io_error.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        Command::Generate { out: dir, seed, scale } => generate(&dir, seed, scale, out),
        Command::Train {
            model,
            data_dir,
            scale,
            epochs,
            schedule,
            learning_rate,
            batch_size,
            seed,
            checkpoint,
            resume,
        } => {
            let kind = ModelKind::from_name(&model).with_context(|| {
                format!("unknown model \"{model}\"; use ff, dropout, cnn, gru or best")
            })?;
            check_training_flags(epochs, batch_size, learning_rate)?;
            let recipe = TrainConfig::recipe(kind, epochs);
            let schedule = match schedule {
                Some(name) => Schedule::from_name(&name).with_context(|| {
                    format!("unknown schedule \"{name}\"; use none, plateau or keypoint")
                })?,
                None => recipe.schedule,
            };
            let config = TrainConfig {
                epochs,
                batch_size: batch_size.unwrap_or(recipe.batch_size),
                learning_rate: learning_rate.unwrap_or(recipe.learning_rate),
                schedule,
                seed,
            };
            let target =
                checkpoint.unwrap_or_else(|| PathBuf::from(format!("nowcast-{model}.safetensors")));
            check_destination("--checkpoint", &target)?;
            let source = DataSource::new(data_dir, scale)?;
            train_model(kind, &source, &config, &target, resume.as_deref(), out)
        }
        Command::Evaluate { checkpoint, data_dir, scale } => {
            evaluate(&checkpoint, &DataSource::new(data_dir, scale)?, out)
        }
        Command::Predict { checkpoint, input, out: target } => {
            check_destination("--out", &target)?;
            predict(&checkpoint, &input, &target, out)
        }
    }
}

/// Rejects flag values before the library checks them, so that errors name the flags.
fn check_training_flags(
    epochs: usize,
    batch_size: Option<usize>,
    learning_rate: Option<f64>,
) -> anyhow::Result<()> {
    if epochs == 0 {
        bail!("--epochs must be at least 1, found 0");
    }
    if batch_size == Some(0) {
        bail!("--batch-size must be at least 1, found 0");
    }
    if let Some(rate) = learning_rate.filter(|rate| !(*rate > 0.0 && rate.is_finite())) {
        bail!("--learning-rate must be a positive finite number, found {rate}");
    }
    Ok(())
}

/// Checks before any work that `path` can receive a file: its folder exists and it is not a
/// folder itself. Otherwise a long training run would fail only when saving.
fn check_destination(flag: &str, path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!("{flag} {}: expected a file name, found a folder", path.display());
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.exists() {
        bail!("{flag} {}: the folder {} does not exist", path.display(), parent.display());
    }
    if !parent.is_dir() {
        bail!("{flag} {}: {} is a file, not a folder", path.display(), parent.display());
    }
    Ok(())
}

fn generate(dir: &Path, seed: u64, scale: f64, out: &mut dyn Write) -> anyhow::Result<()> {
    let dataset = synthetic::generate(&synthetic_config(seed, scale)?);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    synthetic::write_real_layout(&dataset, dir)?;
    writeln!(
        out,
        "wrote {} train, {} validation and {} test sequences to {}",
        dataset.train.len(),
        dataset.validation.len(),
        dataset.test.len(),
        dir.display()
    )?;
    Ok(())
}

/// The synthetic set's configuration with every split's size multiplied by `scale`.
fn synthetic_config(seed: u64, scale: f64) -> anyhow::Result<SyntheticConfig> {
    if !(scale > 0.0 && scale <= MAX_SCALE) {
        bail!(
            "--scale must be above 0 and at most {MAX_SCALE} (1 is the real size), found {scale}"
        );
    }
    let real = SyntheticConfig::default();
    let scaled = |count: usize| ((count as f64 * scale).round() as usize).max(1);
    let config = SyntheticConfig {
        seed,
        train: scaled(real.train),
        validation: scaled(real.validation),
        test: scaled(real.test),
    };
    config.check()?;
    Ok(config)
}

/// Where `train` and `evaluate` take their data from.
enum DataSource {
    Real(PathBuf),
    Synthetic(SyntheticConfig),
}

impl DataSource {
    fn new(data_dir: Option<PathBuf>, scale: f64) -> anyhow::Result<DataSource> {
        match data_dir {
            Some(dir) => Ok(DataSource::Real(dir)),
            None => Ok(DataSource::Synthetic(synthetic_config(0, scale)?)),
        }
    }

    /// Rejects an empty split, naming it and, for the real set, its months.
    fn check_not_empty(&self, name: &str, months: &str, split: &Split) -> anyhow::Result<()> {
        if split.is_empty() {
            let origin = match self {
                DataSource::Real(dir) => format!("in {} ({months})", dir.display()),
                DataSource::Synthetic(_) => "of the synthetic set".to_string(),
            };
            bail!("the {name} split {origin} has 0 sequences; it needs at least 1");
        }
        Ok(())
    }

    fn load(&self) -> anyhow::Result<Dataset> {
        match self {
            DataSource::Real(dir) => Dataset::load_real(dir)
                .with_context(|| format!("cannot load the data set in {}", dir.display())),
            DataSource::Synthetic(config) => Ok(synthetic::generate(config)),
        }
    }
}

fn normalized(split: &Split, normalizer: &Normalizer) -> Split {
    let mut copy = split.clone();
    normalizer.apply(&mut copy);
    copy
}

fn train_model(
    kind: ModelKind,
    source: &DataSource,
    config: &TrainConfig,
    target: &Path,
    resume: Option<&Path>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let dataset = source.load()?;
    source.check_not_empty("training", "months 6-8", &dataset.train)?;
    source.check_not_empty("validation", "month 9", &dataset.validation)?;
    let (mut model, normalizer, state) = match resume {
        Some(path) => {
            let loaded = checkpoint::load(path)?;
            if loaded.model.config().kind != kind {
                bail!(
                    "{} contains a {} model, not {}",
                    path.display(),
                    loaded.model.config().kind.name(),
                    kind.name()
                );
            }
            let state = loaded
                .state
                .with_context(|| format!("{} holds no training state", path.display()))?;
            (loaded.model, loaded.normalizer, Some(state))
        }
        None => (
            Model::new(ModelConfig::new(kind, config.seed))?,
            Normalizer::fit_zscore(&dataset.train),
            None,
        ),
    };
    writeln!(
        out,
        "{} model, {} parameters; {} train / {} validation sequences",
        kind.name(),
        model.parameter_count(),
        dataset.train.len(),
        dataset.validation.len()
    )?;

    let train_split = normalized(&dataset.train, &normalizer);
    let validation_split = normalized(&dataset.validation, &normalizer);
    let mut bars = EpochBars::new(config.epochs);
    let state =
        train::train(&mut model, &train_split, &validation_split, config, state, &mut |event| {
            bars.update(event)
        })?;
    // Saved before printing, so that a closed standard output cannot lose the trained model.
    checkpoint::save(target, &model, &normalizer, Some(&state))?;
    print_history(&state, out)?;
    writeln!(out, "checkpoint written to {}", target.display())?;
    Ok(())
}

/// One progress bar per epoch, with the running batch loss.
struct EpochBars {
    epochs: usize,
    bar: Option<ProgressBar>,
}

impl EpochBars {
    fn new(epochs: usize) -> EpochBars {
        EpochBars { epochs, bar: None }
    }

    fn update(&mut self, event: Progress<'_>) {
        match event {
            Progress::EpochStart { epoch, batches } => {
                let bar = ProgressBar::new(batches as u64);
                let style = ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
                )
                .expect("valid template")
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(format!("{epoch}/{}", self.epochs));
                self.bar = Some(bar);
            }
            Progress::Batch { loss, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("loss {loss:.4}"));
                    bar.inc(1);
                }
            }
            Progress::EpochEnd(record) => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_with_message(format!(
                        "train {:.4}, validation {:.4}",
                        record.train_loss, record.validation_loss
                    ));
                }
            }
        }
    }
}

fn print_history(state: &TrainState, out: &mut dyn Write) -> io::Result<()> {
    let header = ["epoch", "train MSE", "val MSE", "lr", "seconds"];
    writeln!(
        out,
        "{:>5} {:>12} {:>12} {:>10} {:>9}",
        header[0], header[1], header[2], header[3], header[4]
    )?;
    for record in &state.report.history {
        writeln!(
            out,
            "{:>5} {:>12.5} {:>12.5} {:>10.2e} {:>9.2}",
            record.epoch,
            record.train_loss,
            record.validation_loss,
            record.learning_rate,
            record.seconds
        )?;
    }
    writeln!(
        out,
        "kept epoch {} (validation MSE {:.5})",
        state.report.best_epoch, state.report.best_validation_loss
    )
}

fn evaluate(
    checkpoint_path: &Path,
    source: &DataSource,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut loaded = checkpoint::load(checkpoint_path)?;
    let dataset = source.load()?;
    source.check_not_empty("test", "month 10", &dataset.test)?;
    let test = normalized(&dataset.test, &loaded.normalizer);
    let predictions = loaded.model.predict(&test.features.view())?;
    writeln!(
        out,
        "{} model on {} test sequences ({} hours)",
        loaded.model.config().kind.name(),
        dataset.test.len(),
        dataset.test.labels.len()
    )?;
    writeln!(
        out,
        "{:<18} {:>9} {:>8} {:>8} {:>8}  CSI at 0.1/1/5/10 mm",
        "predictor", "MSE", "RMSE", "MAE", "corr"
    )?;
    print_scores(out, "model", &predictions, &dataset.test.labels)?;
    let majority = baselines::majority_value(&dataset.train, &dataset.test);
    print_scores(out, "majority value", &majority.predictions, &majority.targets)?;
    let mean = baselines::training_mean(&dataset.train, &dataset.test);
    print_scores(out, "training mean", &mean.predictions, &mean.targets)?;
    let persistence = baselines::persistence(&dataset.test);
    print_scores(out, "persistence (h2-5)", &persistence.predictions, &persistence.targets)?;
    writeln!(out)?;
    writeln!(out, "model contingency scores:")?;
    writeln!(
        out,
        "{:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "threshold", "POD", "FAR", "CSI", "bias", "HSS", "ETS"
    )?;
    for table in metrics::standard_contingencies(&predictions.view(), &dataset.test.labels.view())?
    {
        writeln!(
            out,
            "{:>6} mm {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
            table.threshold_mm,
            score(table.pod()),
            score(table.far()),
            score(table.csi()),
            score(table.bias()),
            score(table.hss()),
            score(table.ets())
        )?;
    }
    Ok(())
}

fn print_scores(
    out: &mut dyn Write,
    name: &str,
    predictions: &Array2<f32>,
    observed: &Array2<f32>,
) -> anyhow::Result<()> {
    let (p, o) = (predictions.view(), observed.view());
    let csi = metrics::standard_contingencies(&p, &o)?
        .iter()
        .map(|table| score(table.csi()))
        .collect::<Vec<_>>()
        .join(" ");
    writeln!(
        out,
        "{name:<18} {:>9.4} {:>8.4} {:>8.4} {:>8} {csi}",
        metrics::mse(&p, &o)?,
        metrics::rmse(&p, &o)?,
        metrics::mae(&p, &o)?,
        score(metrics::correlation(&p, &o)?),
    )?;
    Ok(())
}

fn score(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"))
}

fn predict(
    checkpoint_path: &Path,
    input: &Path,
    target: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut loaded = checkpoint::load(checkpoint_path)?;
    if input.extension().is_none_or(|ext| ext != "npy") {
        bail!("--input {}: predict reads features from a .npy file (numpy.save)", input.display());
    }
    let mut features = data::read_features_npy(input)?;
    loaded.normalizer.apply_to(features.view_mut());
    let predictions = loaded.model.predict(&features.view())?;
    handgrad_data::npy::write_npy_f32(target, &predictions.view().into_dyn())?;
    writeln!(
        out,
        "wrote {} predictions of shape {:?} to {}",
        predictions.len(),
        predictions.shape(),
        target.display()
    )?;
    Ok(())
}
