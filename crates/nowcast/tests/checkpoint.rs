//! Checkpoints: round trips, resumption through a file, damaged files and atomic saving.

use std::fs;
use std::path::Path;

use handgrad_data::testing::file_names;
use handgrad_nowcast::checkpoint::{self, CheckpointError};
use handgrad_nowcast::data::Split;
use handgrad_nowcast::models::{Model, ModelConfig, ModelKind};
use handgrad_nowcast::normalize::Normalizer;
use handgrad_nowcast::train::{self, Schedule, TrainConfig, TrainState};
use ndarray::{Array2, Array5};

fn split(n: usize, seed: u64) -> Split {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let features = Array5::from_shape_fn((n, 5, 5, 5, 3), |_| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        250.0 + ((state >> 40) as f32 / (1u64 << 24) as f32) * 40.0 - 20.0
    });
    let labels = Array2::from_shape_fn((n, 5), |(i, h)| {
        ((features[[i, h, 2, 2, 0]] - 250.0) / 5.0).max(0.0)
    });
    Split::new(features, labels).unwrap()
}

fn small(kind: ModelKind) -> Model {
    Model::new(ModelConfig { hidden: 8, conv_channels: 4, ..ModelConfig::new(kind, 1) }).unwrap()
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        learning_rate: 0.01,
        schedule: Schedule::Plateau,
        seed: 2,
    }
}

/// Normalised train and validation splits with the normaliser fitted on the first.
fn data() -> (Split, Split, Normalizer) {
    let (mut train_split, mut validation) = (split(40, 1), split(10, 2));
    let normalizer = Normalizer::fit_zscore(&train_split);
    normalizer.apply(&mut train_split);
    normalizer.apply(&mut validation);
    (train_split, validation, normalizer)
}

fn trained(kind: ModelKind, epochs: usize) -> (Model, TrainState, Normalizer) {
    let (train_split, validation, normalizer) = data();
    let mut model = small(kind);
    let state =
        train::train(&mut model, &train_split, &validation, &config(epochs), None, &mut |_| {})
            .unwrap();
    (model, state, normalizer)
}

fn saved(dir: &Path, kind: ModelKind) -> std::path::PathBuf {
    let (model, state, normalizer) = trained(kind, 2);
    let path = dir.join("model.safetensors");
    checkpoint::save(&path, &model, &normalizer, Some(&state)).unwrap();
    path
}

#[test]
fn round_trip_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ModelKind::ALL {
        let (mut model, state, normalizer) = trained(kind, 2);
        let path = dir.path().join(format!("{}.safetensors", kind.name()));
        checkpoint::save(&path, &model, &normalizer, Some(&state)).unwrap();

        let mut loaded = checkpoint::load(&path).unwrap();
        assert_eq!(loaded.model.config(), model.config());
        assert_eq!(loaded.model.weights(), model.weights());
        assert_eq!(loaded.normalizer, normalizer);
        let loaded_state = loaded.state.unwrap();
        assert_eq!(loaded_state.config, state.config);
        assert_eq!(loaded_state.report, state.report);
        assert_eq!(loaded_state.last_weights, state.last_weights);
        assert_eq!(loaded_state.optimizer.step, state.optimizer.step);
        assert_eq!(loaded_state.optimizer.exp_avg, state.optimizer.exp_avg);
        assert_eq!(loaded_state.optimizer.exp_avg_sq, state.optimizer.exp_avg_sq);

        let features = split(3, 9).features;
        assert_eq!(
            loaded.model.predict(&features.view()).unwrap(),
            model.predict(&features.view()).unwrap()
        );
    }
}

#[test]
fn untrained_model_has_no_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.safetensors");
    let (_, _, normalizer) = data();
    checkpoint::save(&path, &small(ModelKind::Cnn), &normalizer, None).unwrap();
    assert!(checkpoint::load(&path).unwrap().state.is_none());
}

#[test]
fn resume_from_file_equals_uninterrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path(), ModelKind::Dropout);
    let (train_split, validation, _) = data();

    let loaded = checkpoint::load(&path).unwrap();
    let mut resumed_model = loaded.model;
    let resumed = train::train(
        &mut resumed_model,
        &train_split,
        &validation,
        &config(3),
        loaded.state,
        &mut |_| {},
    )
    .unwrap();
    let (straight, full, _) = trained(ModelKind::Dropout, 3);

    assert_eq!(resumed.report.history.len(), 3);
    assert_eq!(resumed.last_weights, full.last_weights);
    assert_eq!(resumed_model.weights(), straight.weights());
    assert_eq!(resumed.report.best_epoch, full.report.best_epoch);
}

#[test]
fn pytorch_names_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path(), ModelKind::Gru);
    let bytes = fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();

    assert_eq!(header["0.weight_ih_l0"]["shape"], serde_json::json!([24, 75]));
    assert_eq!(header["0.weight_ih_l0"]["dtype"], "F32");
    assert_eq!(header["3.bias"]["shape"], serde_json::json!([1]));
    assert!(header.get("last.1.weight").is_some());
    assert!(header.get("optimizer.exp_avg_sq.1.weight").is_some());
    assert_eq!(header["__metadata__"]["format"], checkpoint::FORMAT);
    assert_eq!(header["__metadata__"]["epoch"], "2");
    let model: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["model"].as_str().unwrap()).unwrap();
    assert_eq!(model["kind"], "gru");
}

#[test]
fn truncated_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path(), ModelKind::FeedForward);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let error = checkpoint::load(&path).unwrap_err();
    assert!(matches!(error, CheckpointError::Format { .. }), "{error}");
    assert!(error.to_string().contains("model.safetensors"), "{error}");
}

#[test]
fn corrupt_header_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path(), ModelKind::FeedForward);
    let mut bytes = fs::read(&path).unwrap();
    bytes[8] = b'#';
    fs::write(&path, &bytes).unwrap();
    let error = checkpoint::load(&path).unwrap_err();
    assert!(matches!(error, CheckpointError::Format { .. }), "{error}");
}

#[test]
fn empty_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.safetensors");
    fs::write(&path, b"").unwrap();
    assert!(matches!(checkpoint::load(&path).unwrap_err(), CheckpointError::Format { .. }));
}

#[test]
fn missing_file_is_io_error() {
    let error = checkpoint::load(Path::new("/nonexistent/model.safetensors")).unwrap_err();
    assert!(matches!(error, CheckpointError::Io { .. }), "{error}");
}

/// Rewrites the `model` metadata entry of a checkpoint, keeping every tensor.
fn replace_model_metadata(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let mut model: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["model"].as_str().unwrap()).unwrap();
    edit(&mut model);
    header["__metadata__"]["model"] = serde_json::Value::String(model.to_string());
    let text = header.to_string();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + header_len..]);
    fs::write(path, out).unwrap();
}

#[test]
fn mismatched_shape_names_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path(), ModelKind::FeedForward);
    replace_model_metadata(&path, |model| model["hidden"] = serde_json::json!(9));
    let error = checkpoint::load(&path).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, CheckpointError::Tensor { .. }), "{message}");
    assert!(message.contains("0.weight"), "{message}");
    assert!(message.contains("[9, 75]") && message.contains("[8, 75]"), "{message}");
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path(), ModelKind::FeedForward);
    replace_model_metadata(&path, |model| model["kind"] = serde_json::json!("dropout"));
    // The dropout model numbers its layers differently, so "3.weight" does not exist.
    let error = checkpoint::load(&path).unwrap_err();
    assert!(error.to_string().contains("no such tensor"), "{error}");
}

#[test]
fn invalid_metadata_json_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path(), ModelKind::FeedForward);
    replace_model_metadata(&path, |model| model["kind"] = serde_json::json!("transformer"));
    let error = checkpoint::load(&path).unwrap_err();
    assert!(matches!(error, CheckpointError::Metadata { key: "model", .. }), "{error}");
}

#[test]
fn failed_save_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    // A non-empty folder at the target makes the final rename fail after the data is written.
    let target = dir.path().join("model.safetensors");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("keep"), b"x").unwrap();
    let (model, state, normalizer) = trained(ModelKind::FeedForward, 1);

    let error = checkpoint::save(&target, &model, &normalizer, Some(&state)).unwrap_err();
    assert!(matches!(error, CheckpointError::Write { .. }), "{error}");
    assert_eq!(file_names(dir.path()), ["model.safetensors"]);
    assert_eq!(file_names(&target), ["keep"]);
}

#[test]
fn nan_weight_names_tensor_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.safetensors");
    let (_, _, normalizer) = data();
    let mut model = small(ModelKind::FeedForward);
    let mut weights = model.weights();
    weights[0].as_slice_mut().unwrap()[3] = f32::NAN;
    model.set_weights(&weights).unwrap();
    checkpoint::save(&path, &model, &normalizer, None).unwrap();

    let error = checkpoint::load(&path).unwrap_err();
    assert!(matches!(error, CheckpointError::Tensor { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("`0.weight`"), "{message}");
    assert!(message.contains("value NaN at flat index 3"), "{message}");
}
