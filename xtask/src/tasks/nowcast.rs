//! Rainfall nowcasting: trains every model, compares them with the baselines, pictures the
//! learning-rate schedules, loss curves, predictions and input patches, and checks parameter
//! counts, baseline margins and exact resumption from a checkpoint.
//!
//! Data: the real set from `--data-dir` (or its `nowcast/` folder) when its month files are
//! there, else the synthetic set. A run without `--quick` uses a tenth of the sequences of each
//! split, on which six models train for 10 epochs. `--nowcast-scale` sets another share, and 1
//! trains on every sequence. A `--quick` run uses 400 training sequences and 2 epochs.
//!
//! Every model trains with its recipe, [`TrainConfig::recipe`]: the best model with batches of
//! 32 under the keypoint schedule, the others with batches of 1024 at a constant 0.01. The
//! GRU trains a second time with the best model's recipe, so the table separates what the
//! architecture gains from what the recipe gains.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _};
use handgrad_nowcast::baselines::{self, Prediction};
use handgrad_nowcast::checkpoint;
use handgrad_nowcast::data::{Dataset, Split, CHANNEL_NAMES};
use handgrad_nowcast::metrics::{self, Contingency};
use handgrad_nowcast::models::{Model, ModelConfig, ModelKind};
use handgrad_nowcast::normalize::Normalizer;
use handgrad_nowcast::synthetic::{self, SyntheticConfig};
use handgrad_nowcast::train::{self, Progress, Schedule, TrainConfig, TrainState, KEYPOINTS};
use handgrad_optim::KeypointSchedule;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{s, Array2};

use crate::context::{Check, Context, TaskOutput};
use crate::plot::{self, Series};

/// Fraction of every split used by a run without `--quick` or `--nowcast-scale`.
const DEFAULT_FRACTION: f64 = 0.1;

/// How much data and how many epochs this run uses.
struct Scale {
    description: String,
    epochs: usize,
    /// Whether the margins over the baselines are expected (not on the tiny quick set).
    full: bool,
}

/// One trained model and its scores.
struct Trained {
    kind: ModelKind,
    /// Row label: the model name, plus the recipe when it is not the model's own.
    label: String,
    config: TrainConfig,
    parameters: usize,
    state: TrainState,
    train_mse: f64,
    test_mse: f64,
    test_csi_1mm: Option<f64>,
    test_predictions: Array2<f32>,
}

/// Runs the nowcasting task.
pub fn run(ctx: &Context) -> anyhow::Result<TaskOutput> {
    let (raw, scale) = load(ctx)?;
    check_sizes(&raw, &scale)?;
    let normalizer = Normalizer::fit_zscore(&raw.train);
    let data = normalized(&raw, &normalizer);
    let mut out = TaskOutput::default();
    let mut md = String::new();
    writeln!(
        md,
        "Data: {}. Features z-scored per channel on the training split.\n",
        scale.description
    )?;

    let mut trained = Vec::new();
    for kind in ModelKind::ALL {
        let config = TrainConfig::recipe(kind, scale.epochs);
        trained.push(train_one(kind, kind.name().to_string(), &data, &raw, config)?);
    }
    let best_recipe = TrainConfig::recipe(ModelKind::Best, scale.epochs);
    let label = "gru, best's recipe".to_string();
    trained.push(train_one(ModelKind::Gru, label, &data, &raw, best_recipe)?);
    results_table(&mut md, &trained, &raw)?;
    baseline_checks(&mut out, &trained, &raw, &scale)?;
    best_check(&mut out, &trained, &scale);
    count_checks(&mut out)?;
    schedules(ctx, &mut md, &data, &raw, scale.epochs)?;
    pictures(ctx, &mut md, &trained, &raw)?;
    resume_check(ctx, &mut out, &data)?;
    out.markdown = md;
    Ok(out)
}

/// Loads the real data set when present, else generates the synthetic one, and shrinks it.
fn load(ctx: &Context) -> anyhow::Result<(Dataset, Scale)> {
    let real_dir = ctx
        .data_dir
        .iter()
        .flat_map(|dir| [dir.clone(), dir.join("nowcast")])
        .find(|dir| handgrad_nowcast::data::find_data_file(dir, "features-m6").is_ok());
    let Some(dir) = real_dir else {
        return Ok(synthetic_set(ctx));
    };
    let dataset = Dataset::load_real(&dir)?;
    let fraction = ctx.nowcast_scale.unwrap_or(if ctx.quick { 0.01 } else { DEFAULT_FRACTION });
    let shrunk = Dataset {
        train: evenly_spaced(&dataset.train, fraction)?,
        validation: evenly_spaced(&dataset.validation, fraction)?,
        test: evenly_spaced(&dataset.test, fraction)?,
    };
    let description = format!(
        "month files from {}, {fraction} of each split: {} of {} train / {} of {} validation / \
         {} of {} test sequences",
        dir.display(),
        shrunk.train.len(),
        dataset.train.len(),
        shrunk.validation.len(),
        dataset.validation.len(),
        shrunk.test.len(),
        dataset.test.len()
    );
    let epochs = if ctx.quick { 2 } else { 10 };
    Ok((shrunk, Scale { description, epochs, full: !ctx.quick }))
}

/// Generates the synthetic set: 400/150/150 sequences for a quick run, else the requested
/// fraction of the real size.
fn synthetic_set(ctx: &Context) -> (Dataset, Scale) {
    let epochs = if ctx.quick { 2 } else { 10 };
    let full = !ctx.quick;
    let fraction = match (ctx.nowcast_scale, ctx.quick) {
        (Some(fraction), _) => fraction,
        (None, false) => DEFAULT_FRACTION,
        (None, true) => {
            let config = SyntheticConfig { seed: 0, train: 400, validation: 150, test: 150 };
            let description =
                "synthetic, 400/150/150 train/validation/test sequences (quick)".to_string();
            return (synthetic::generate(&config), Scale { description, epochs, full });
        }
    };
    let real = SyntheticConfig::default();
    let scaled = |count: usize| ((count as f64 * fraction).round() as usize).max(1);
    let config = SyntheticConfig {
        seed: 0,
        train: scaled(real.train),
        validation: scaled(real.validation),
        test: scaled(real.test),
    };
    let size =
        if fraction < 1.0 { format!("{fraction} of the real size") } else { "full size".into() };
    let description = format!(
        "synthetic at {size}: {} train / {} validation / {} test sequences",
        config.train, config.validation, config.test
    );
    (synthetic::generate(&config), Scale { description, epochs, full })
}

/// Keeps `fraction` of the sequences, at least one, evenly spaced so every month stays represented.
fn evenly_spaced(split: &Split, fraction: f64) -> anyhow::Result<Split> {
    let len = split.len();
    let keep = ((len as f64 * fraction).round() as usize).clamp(len.min(1), len);
    let indices: Vec<usize> = (0..keep).map(|index| index * len / keep).collect();
    Ok(split.select(&indices)?)
}

/// Rejects splits too small for the task: the report pictures patches of the first two training
/// sequences, and validation and test scores need at least one sequence each.
fn check_sizes(data: &Dataset, scale: &Scale) -> anyhow::Result<()> {
    let splits = [
        ("training", data.train.len(), 2),
        ("validation", data.validation.len(), 1),
        ("test", data.test.len(), 1),
    ];
    for (name, len, least) in splits {
        if len < least {
            bail!(
                "the {name} split has {len} sequences, but the nowcasting task needs at least \
                 {least}; raise --nowcast-scale or add data (data: {})",
                scale.description
            );
        }
    }
    Ok(())
}

fn normalized(raw: &Dataset, normalizer: &Normalizer) -> Dataset {
    let mut data = raw.clone();
    normalizer.apply(&mut data.train);
    normalizer.apply(&mut data.validation);
    normalizer.apply(&mut data.test);
    data
}

fn train_one(
    kind: ModelKind,
    label: String,
    data: &Dataset,
    raw: &Dataset,
    config: TrainConfig,
) -> anyhow::Result<Trained> {
    let mut model = Model::new(ModelConfig::new(kind, 0))?;
    let (epochs, schedule) = (config.epochs, config.schedule);
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{label} {}", schedule.name()));
    let state =
        train::train(&mut model, &data.train, &data.validation, &config, None, &mut |event| {
            match event {
                Progress::EpochStart { epoch, batches } => {
                    bar.set_length(batches as u64);
                    bar.set_position(0);
                    bar.set_message(format!("epoch {epoch}/{epochs}"));
                }
                Progress::Batch { .. } => bar.inc(1),
                Progress::EpochEnd(record) => bar.set_message(format!(
                    "epoch {}: val {:.4}",
                    record.epoch, record.validation_loss
                )),
            }
        })?;
    bar.finish_and_clear();
    let train_mse = train::split_loss(&mut model, &data.train)?;
    let test_predictions = model.predict(&data.test.features.view())?;
    let test_mse = metrics::mse(&test_predictions.view(), &raw.test.labels.view())?;
    let test_csi_1mm =
        Contingency::at_threshold(&test_predictions.view(), &raw.test.labels.view(), 1.0)?.csi();
    Ok(Trained {
        kind,
        label,
        config,
        parameters: model.parameter_count(),
        state,
        train_mse,
        test_mse,
        test_csi_1mm,
        test_predictions,
    })
}

fn results_table(md: &mut String, trained: &[Trained], raw: &Dataset) -> anyhow::Result<()> {
    writeln!(md, "| model | parameters | batch, schedule | train MSE | val MSE (best epoch) | test MSE | test CSI at 1 mm | s / epoch |")?;
    writeln!(md, "|---|---:|---|---:|---:|---:|---:|---:|")?;
    for model in trained {
        let report = &model.state.report;
        let seconds =
            report.history.iter().map(|r| r.seconds).sum::<f64>() / report.history.len() as f64;
        writeln!(
            md,
            "| {} | {} | {}, {} | {:.4} | {:.4} ({}) | {:.4} | {} | {:.2} |",
            model.label,
            model.parameters,
            model.config.batch_size,
            recipe_schedule(&model.config),
            model.train_mse,
            report.best_validation_loss,
            report.best_epoch,
            model.test_mse,
            score(model.test_csi_1mm),
            seconds
        )?;
    }
    for (name, validation, test) in baseline_predictions(raw) {
        let val_mse = metrics::mse(&validation.predictions.view(), &validation.targets.view())?;
        let test_mse = metrics::mse(&test.predictions.view(), &test.targets.view())?;
        let csi =
            Contingency::at_threshold(&test.predictions.view(), &test.targets.view(), 1.0)?.csi();
        writeln!(
            md,
            "| {name} (baseline) | - | | | {val_mse:.4} | {test_mse:.4} | {} | |",
            score(csi)
        )?;
    }
    writeln!(
        md,
        "\nPersistence scores hours 2-5 only. MSE in mm² per hour. Model seed 0; Adam.\n"
    )?;
    Ok(())
}

/// Describes a recipe's learning rate: `constant 0.01` or the schedule's name.
fn recipe_schedule(config: &TrainConfig) -> String {
    match config.schedule {
        Schedule::Constant => format!("constant {}", config.learning_rate),
        Schedule::Plateau => format!("plateau from {}", config.learning_rate),
        Schedule::Keypoint => "keypoint".to_string(),
    }
}

fn baseline_predictions(raw: &Dataset) -> Vec<(&'static str, Prediction, Prediction)> {
    vec![
        (
            "majority value",
            baselines::majority_value(&raw.train, &raw.validation),
            baselines::majority_value(&raw.train, &raw.test),
        ),
        (
            "training mean",
            baselines::training_mean(&raw.train, &raw.validation),
            baselines::training_mean(&raw.train, &raw.test),
        ),
        ("persistence", baselines::persistence(&raw.validation), baselines::persistence(&raw.test)),
    ]
}

fn baseline_checks(
    out: &mut TaskOutput,
    trained: &[Trained],
    raw: &Dataset,
    scale: &Scale,
) -> anyhow::Result<()> {
    if !scale.full {
        return Ok(());
    }
    let majority = baselines::majority_value(&raw.train, &raw.validation);
    let majority_mse = metrics::mse(&majority.predictions.view(), &majority.targets.view())?;
    for model in trained {
        let mse = model.state.report.best_validation_loss;
        out.checks.push(Check {
            name: format!("{} validation MSE below the majority baseline", model.label),
            value: format!("{mse:.4}"),
            reference: format!("< {majority_mse:.4}"),
            pass: mse < majority_mse,
        });
    }
    Ok(())
}

/// Checks that the best model beats the plain GRU trained with the GRU's recipe.
fn best_check(out: &mut TaskOutput, trained: &[Trained], scale: &Scale) {
    if !scale.full {
        return;
    }
    let validation = |kind: ModelKind| {
        trained
            .iter()
            .find(|model| model.kind == kind && model.label == kind.name())
            .map(|model| model.state.report.best_validation_loss)
    };
    if let (Some(best), Some(gru)) = (validation(ModelKind::Best), validation(ModelKind::Gru)) {
        out.checks.push(Check {
            name: "best validation MSE below the gru's".to_string(),
            value: format!("{best:.4}"),
            reference: format!("< {gru:.4}"),
            pass: best < gru,
        });
    }
}

fn count_checks(out: &mut TaskOutput) -> anyhow::Result<()> {
    let ff = Model::new(ModelConfig::new(ModelKind::FeedForward, 0))?;
    let first_layer: usize = ff.params().iter().take(2).map(|param| param.len()).sum();
    out.checks.push(exact("ff first layer parameters", first_layer, 15_200));
    let references =
        [(ModelKind::Cnn, 406_201), (ModelKind::Gru, 206_601), (ModelKind::Best, 63_301)];
    for (kind, reference) in references {
        let model = Model::new(ModelConfig::new(kind, 0))?;
        out.checks.push(exact(
            &format!("{} parameters", kind.name()),
            model.parameter_count(),
            reference,
        ));
    }
    for kind in ModelKind::ALL {
        let model = Model::new(ModelConfig::new(kind, 0))?;
        let summary = handgrad_shapes::analyze(&model.architecture()?)?;
        out.checks.push(exact(
            &format!("{} shape-calculator total", kind.name()),
            summary.params as usize,
            model.parameter_count(),
        ));
    }
    Ok(())
}

fn exact(name: &str, value: usize, reference: usize) -> Check {
    Check {
        name: name.to_string(),
        value: value.to_string(),
        reference: reference.to_string(),
        pass: value == reference,
    }
}

/// Pictures both schedules: the keypoint curve, and the rates and losses of the feed-forward
/// model trained under each schedule.
fn schedules(
    ctx: &Context,
    md: &mut String,
    data: &Dataset,
    raw: &Dataset,
    epochs: usize,
) -> anyhow::Result<()> {
    let keypoints = KeypointSchedule::new(KEYPOINTS.to_vec())?;
    let curve: Vec<(f64, f64)> =
        (0..=90).map(|i| i as f64 / 10.0).map(|e| (e, keypoints.at(e))).collect();
    let mut rate_series = vec![Series { label: "keypoint schedule".into(), points: curve }];
    let mut loss_series = Vec::new();
    writeln!(
        md,
        "| feed-forward, schedule | best val MSE | epoch | final lr |\n|---|---:|---:|---:|"
    )?;
    for schedule in [Schedule::Constant, Schedule::Plateau, Schedule::Keypoint] {
        let config = TrainConfig { epochs, schedule, ..TrainConfig::default() };
        let run = train_one(ModelKind::FeedForward, "ff".to_string(), data, raw, config)?;
        let history = &run.state.report.history;
        let rates = history.iter().map(|r| ((r.epoch - 1) as f64, r.learning_rate)).collect();
        rate_series.push(Series { label: format!("{} (used)", schedule.name()), points: rates });
        let losses = history.iter().map(|r| (r.epoch as f64, r.validation_loss)).collect();
        loss_series.push(Series { label: format!("val, {}", schedule.name()), points: losses });
        let report = &run.state.report;
        let last_rate = history.last().map_or(0.0, |r| r.learning_rate);
        writeln!(
            md,
            "| {} | {:.4} | {} | {last_rate:.1e} |",
            schedule.name(),
            report.best_validation_loss,
            report.best_epoch
        )?;
    }
    plot::line_chart(
        &ctx.out_dir.join("nowcast-schedules.png"),
        "Learning-rate schedules",
        "epoch",
        "learning rate",
        &rate_series,
        true,
    )?;
    plot::line_chart(
        &ctx.out_dir.join("nowcast-schedule-losses.png"),
        "Feed-forward validation loss by schedule",
        "epoch",
        "validation MSE",
        &loss_series,
        false,
    )?;
    writeln!(md, "\n![schedules](nowcast-schedules.png) ![losses by schedule](nowcast-schedule-losses.png)\n")?;
    Ok(())
}

fn pictures(
    ctx: &Context,
    md: &mut String,
    trained: &[Trained],
    raw: &Dataset,
) -> anyhow::Result<()> {
    let mut curves = Vec::new();
    for model in trained {
        let history = &model.state.report.history;
        curves.push(Series {
            label: format!("{} train", model.label),
            points: history.iter().map(|r| (r.epoch as f64, r.train_loss)).collect(),
        });
        curves.push(Series {
            label: format!("{} val", model.label),
            points: history.iter().map(|r| (r.epoch as f64, r.validation_loss)).collect(),
        });
    }
    plot::line_chart(
        &ctx.out_dir.join("nowcast-loss-curves.png"),
        "Loss per epoch",
        "epoch",
        "MSE",
        &curves,
        true,
    )?;

    let best = trained
        .iter()
        .min_by(|a, b| {
            a.state.report.best_validation_loss.total_cmp(&b.state.report.best_validation_loss)
        })
        .context("no model trained")?;
    let points: Vec<(f64, f64)> = best
        .test_predictions
        .iter()
        .zip(raw.test.labels.iter())
        .step_by((raw.test.labels.len() / 3000).max(1))
        .map(|(&p, &o)| (f64::from(o), f64::from(p)))
        .collect();
    let title = format!("{} model on the test split", best.label);
    plot::scatter(
        &ctx.out_dir.join("nowcast-scatter.png"),
        &title,
        "observed mm",
        "predicted mm",
        &points,
        true,
    )?;

    plot::image_grid(
        &ctx.out_dir.join("nowcast-patches.png"),
        "Input patches: one row per channel",
        &patches(raw),
        6,
    )?;

    let mut bars: Vec<(String, f64)> =
        trained.iter().map(|m| (m.label.clone(), m.state.report.best_validation_loss)).collect();
    for (name, validation, _) in baseline_predictions(raw) {
        bars.push((
            name.to_string(),
            metrics::mse(&validation.predictions.view(), &validation.targets.view())?,
        ));
    }
    plot::bar_chart(
        &ctx.out_dir.join("nowcast-comparison.png"),
        "Validation MSE",
        "MSE (mm²)",
        &bars,
    )?;
    writeln!(
        md,
        "![loss curves](nowcast-loss-curves.png) ![scatter](nowcast-scatter.png)\n\n\
         ![comparison](nowcast-comparison.png) ![patches](nowcast-patches.png)\n\n\
         Patches: rows are the channels {}; columns are the first six training hours.\n",
        CHANNEL_NAMES.join(", ")
    )?;
    Ok(())
}

/// Cuts the 5x5 patch of each channel for the first six hours of the training split.
fn patches(raw: &Dataset) -> Vec<Array2<f64>> {
    let mut images = Vec::new();
    for channel in 0..CHANNEL_NAMES.len() {
        for hour in 0..6 {
            let (sequence, step) = (hour / 5, hour % 5);
            let patch = raw.train.features.slice(s![sequence, step, .., .., channel]);
            images.push(patch.mapv(f64::from));
        }
    }
    images
}

/// Trains 2 epochs, saves a checkpoint, resumes it for a third, and compares the weights with
/// an uninterrupted 3-epoch run.
fn resume_check(ctx: &Context, out: &mut TaskOutput, data: &Dataset) -> anyhow::Result<()> {
    let train_split = data.train.select(&(0..data.train.len().min(300)).collect::<Vec<_>>())?;
    let validation =
        data.validation.select(&(0..data.validation.len().min(100)).collect::<Vec<_>>())?;
    let config = |epochs| TrainConfig {
        epochs,
        batch_size: 256,
        schedule: Schedule::Plateau,
        ..TrainConfig::default()
    };
    let started = Instant::now();

    let mut straight = Model::new(ModelConfig::new(ModelKind::Dropout, 1))?;
    let full =
        train::train(&mut straight, &train_split, &validation, &config(3), None, &mut |_| {})?;
    let mut first = Model::new(ModelConfig::new(ModelKind::Dropout, 1))?;
    let partial =
        train::train(&mut first, &train_split, &validation, &config(2), None, &mut |_| {})?;
    let path: PathBuf = ctx.out_dir.join("nowcast-resume-check.safetensors");
    checkpoint::save(&path, &first, &Normalizer::fit_zscore(&train_split), Some(&partial))?;
    let loaded = checkpoint::load(&path)?;
    let mut resumed_model = loaded.model;
    let resumed = train::train(
        &mut resumed_model,
        &train_split,
        &validation,
        &config(3),
        loaded.state,
        &mut |_| {},
    )?;
    remove_quietly(&path);

    let same =
        resumed.last_weights == full.last_weights && resumed_model.weights() == straight.weights();
    out.checks.push(Check {
        name: "dropout model: 2 epochs + checkpoint + 1 resumed == 3 epochs".into(),
        value: if same { "identical weights".into() } else { "weights differ".into() },
        reference: format!("bit-identical ({:.1} s)", started.elapsed().as_secs_f64()),
        pass: same,
    });
    Ok(())
}

fn remove_quietly(path: &Path) {
    let _ = std::fs::remove_file(path);
}

fn score(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(train: usize, validation: usize, test: usize) -> Dataset {
        synthetic::generate(&SyntheticConfig { seed: 0, train, validation, test })
    }

    fn scale() -> Scale {
        Scale { description: "test data".to_string(), epochs: 1, full: false }
    }

    #[test]
    fn evenly_spaced_keeps_the_requested_share() {
        let split = dataset(459, 1, 1).train;
        for (fraction, kept) in [(0.6, 275), (0.5, 230), (1.0, 459), (1e-9, 1)] {
            let shrunk = evenly_spaced(&split, fraction).unwrap();
            assert_eq!(shrunk.len(), kept, "fraction {fraction}");
        }
    }

    #[test]
    fn too_small_splits_are_rejected_by_name() {
        let error = check_sizes(&dataset(1, 1, 1), &scale()).unwrap_err().to_string();
        assert!(error.contains("the training split has 1 sequences"), "{error}");

        let error = check_sizes(&dataset(2, 0, 1), &scale()).unwrap_err().to_string();
        assert!(error.contains("the validation split has 0 sequences"), "{error}");

        assert!(check_sizes(&dataset(2, 1, 1), &scale()).is_ok());
    }
}
