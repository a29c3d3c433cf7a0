//! Checkpoints: a model, its feature normaliser and its training state in one safetensors file.
//!
//! Tensors (all `F32`, little-endian, C order):
//!
//! - `"{i}.{param}"`: the kept weights (the best epoch), named as PyTorch's `nn.Sequential`
//!   names them, such as `"0.weight"` or `"0.weight_ih_l0"`. The dictionary that
//!   `safetensors.torch.load_file` returns, filtered to these names, loads into the equivalent
//!   PyTorch module with `load_state_dict`.
//! - `"last.{i}.{param}"`: the weights after the last epoch, from which training resumes.
//! - `"optimizer.exp_avg.{i}.{param}"` and `"optimizer.exp_avg_sq.{i}.{param}"`: Adam's first
//!   and second moments, as PyTorch's `Adam.state_dict()` calls them.
//!
//! String metadata (the safetensors header's `__metadata__`):
//!
//! | key | value |
//! |---|---|
//! | `format` | [`FORMAT`] |
//! | `model` | [`ModelConfig`] as JSON |
//! | `normalizer` | the feature [`Normalizer`] as JSON |
//! | `train` | [`TrainConfig`] as JSON (absent for an untrained model) |
//! | `report` | [`TrainReport`] as JSON: per-epoch losses, learning rates, best epoch |
//! | `epoch` | epochs trained, decimal |
//! | `optimizer_step` | Adam's step count, decimal |
//!
//! Files are written atomically: a temporary file beside the target is synced, then renamed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use handgrad_optim::AdamState;
use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::data::CHANNELS;
use crate::models::{Model, ModelConfig, ModelError};
use crate::normalize::{Method, Normalizer};
use crate::train::{TrainConfig, TrainReport, TrainState};

/// Value of the `format` metadata key; files with another value are rejected.
pub const FORMAT: &str = "handgrad-nowcast-checkpoint/1";

/// Errors raised while saving or loading a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// The file-system error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the file failed.
    #[error("checkpoint {path}: {source}")]
    Write {
        /// The checkpoint file.
        path: PathBuf,
        /// The atomic writer's error.
        #[source]
        source: handgrad_data::DataError,
    },
    /// The file is not a valid safetensors file (truncated or corrupt).
    #[error("checkpoint {path}: not a valid safetensors file ({reason}); the file may be truncated or corrupt")]
    Format {
        /// The checkpoint file.
        path: PathBuf,
        /// The safetensors parser's message.
        reason: String,
    },
    /// A metadata entry is missing or invalid.
    #[error("checkpoint {path}: metadata `{key}`: {reason}")]
    Metadata {
        /// The checkpoint file.
        path: PathBuf,
        /// Metadata key.
        key: &'static str,
        /// Reason the value is invalid.
        reason: String,
    },
    /// A tensor is missing or does not match the model described by the metadata.
    #[error("checkpoint {path}: tensor `{name}`: expected {expected}, found {found}")]
    Tensor {
        /// The checkpoint file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Shape and type the model expects.
        expected: String,
        /// Shape and type in the file, or `no such tensor`.
        found: String,
    },
    /// The model described by the metadata cannot be built.
    #[error("checkpoint {path}: {source}")]
    Model {
        /// The checkpoint file.
        path: PathBuf,
        /// Error from building the model.
        #[source]
        source: ModelError,
    },
}

/// Result alias for checkpoints.
pub type Result<T> = std::result::Result<T, CheckpointError>;

/// Contents of a checkpoint file.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model with the kept (best-epoch) weights.
    pub model: Model,
    /// The normaliser fitted on the training features; apply it before predicting.
    pub normalizer: Normalizer,
    /// The state to resume training from; `None` for a model saved without training.
    pub state: Option<TrainState>,
}

/// Saves `model`, `normalizer` and the optional training `state` to `path` atomically.
///
/// # Errors
///
/// [`CheckpointError::Write`] when the file cannot be written; the target is then unchanged.
pub fn save(
    path: &Path,
    model: &Model,
    normalizer: &Normalizer,
    state: Option<&TrainState>,
) -> Result<()> {
    let bytes = to_bytes(path, model, normalizer, state)?;
    handgrad_data::atomic::write_atomic(path, &bytes)
        .map_err(|source| CheckpointError::Write { path: path.to_path_buf(), source })
}

/// Serialises a checkpoint to the bytes [`save`] writes; `path` only labels errors.
///
/// # Errors
///
/// [`CheckpointError::Metadata`] when a part cannot be encoded.
pub fn to_bytes(
    path: &Path,
    model: &Model,
    normalizer: &Normalizer,
    state: Option<&TrainState>,
) -> Result<Vec<u8>> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let names: Vec<String> = model.named_params().into_iter().map(|(name, _)| name).collect();
    for (name, param) in model.named_params() {
        tensors.push(encode(name, &param.value));
    }

    let mut metadata = HashMap::new();
    metadata.insert("format".to_string(), FORMAT.to_string());
    metadata.insert("model".to_string(), to_json(path, "model", model.config())?);
    metadata.insert(
        "normalizer".to_string(),
        to_json(path, "normalizer", &NormalizerJson::from(normalizer))?,
    );
    let mut epoch = 0;
    if let Some(state) = state {
        epoch = state.report.history.len();
        metadata.insert("train".to_string(), to_json(path, "train", &state.config)?);
        metadata.insert("report".to_string(), to_json(path, "report", &state.report)?);
        metadata.insert("optimizer_step".to_string(), state.optimizer.step.to_string());
        for (name, value) in names.iter().zip(&state.last_weights) {
            tensors.push(encode(format!("last.{name}"), value));
        }
        for (name, value) in names.iter().zip(&state.optimizer.exp_avg) {
            tensors.push(encode(format!("optimizer.exp_avg.{name}"), value));
        }
        for (name, value) in names.iter().zip(&state.optimizer.exp_avg_sq) {
            tensors.push(encode(format!("optimizer.exp_avg_sq.{name}"), value));
        }
    }
    metadata.insert("epoch".to_string(), epoch.to_string());

    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
                .expect("byte length matches shape");
            (name.clone(), view)
        })
        .collect::<Vec<_>>();
    safetensors::tensor::serialize(views, Some(metadata)).map_err(|error| {
        CheckpointError::Metadata {
            path: path.to_path_buf(),
            key: "format",
            reason: error.to_string(),
        }
    })
}

/// Loads a checkpoint written by [`save`].
///
/// # Errors
///
/// [`CheckpointError::Io`] when the file cannot be read, [`CheckpointError::Format`] for a
/// truncated or corrupt file, [`CheckpointError::Metadata`] for a missing or invalid metadata
/// entry, and [`CheckpointError::Tensor`] for a missing tensor or one whose shape differs from
/// the model the metadata describes.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path)
        .map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })?;
    from_bytes(path, &bytes)
}

/// Parses checkpoint bytes; `path` only labels errors.
///
/// # Errors
///
/// As [`load`], apart from reading.
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let file = Parsed::new(path, bytes)?;
    let format = file.metadata("format")?;
    if format != FORMAT {
        return Err(
            file.metadata_error("format", format!("expected \"{FORMAT}\", found \"{format}\""))
        );
    }
    let config: ModelConfig = file.json("model")?;
    let normalizer = file.json::<NormalizerJson>("normalizer")?.into_normalizer(&file)?;
    let mut model = Model::new(config)
        .map_err(|source| CheckpointError::Model { path: path.to_path_buf(), source })?;
    let names: Vec<String> = model.named_params().into_iter().map(|(name, _)| name).collect();
    let best = file.tensors(&model, &names, "")?;
    model
        .set_weights(&best)
        .map_err(|source| CheckpointError::Model { path: path.to_path_buf(), source })?;

    let state =
        if file.has_metadata("train") { Some(file.train_state(&model, &names)?) } else { None };
    Ok(Checkpoint { model, normalizer, state })
}

/// A parsed safetensors file and its metadata.
struct Parsed<'a> {
    path: &'a Path,
    tensors: SafeTensors<'a>,
    metadata: HashMap<String, String>,
}

impl<'a> Parsed<'a> {
    fn new(path: &'a Path, bytes: &'a [u8]) -> Result<Parsed<'a>> {
        let format_error = |error: safetensors::SafeTensorError| CheckpointError::Format {
            path: path.to_path_buf(),
            reason: error.to_string(),
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(format_error)?;
        let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
        let tensors = SafeTensors::deserialize(bytes).map_err(format_error)?;
        Ok(Parsed { path, tensors, metadata })
    }

    fn has_metadata(&self, key: &str) -> bool {
        self.metadata.contains_key(key)
    }

    fn metadata(&self, key: &'static str) -> Result<&str> {
        self.metadata.get(key).map(String::as_str).ok_or_else(|| {
            self.metadata_error(
                key,
                "missing; the file was not written by handgrad-nowcast".to_string(),
            )
        })
    }

    fn json<T: serde::de::DeserializeOwned>(&self, key: &'static str) -> Result<T> {
        let text = self.metadata(key)?;
        serde_json::from_str(text)
            .map_err(|error| self.metadata_error(key, format!("invalid JSON: {error}")))
    }

    fn metadata_error(&self, key: &'static str, reason: String) -> CheckpointError {
        CheckpointError::Metadata { path: self.path.to_path_buf(), key, reason }
    }

    /// Reads one tensor per parameter of `model`, named `prefix` + name, with the model's shapes.
    fn tensors(&self, model: &Model, names: &[String], prefix: &str) -> Result<Vec<ArrayD<f32>>> {
        let params = model.params();
        names
            .iter()
            .zip(params)
            .map(|(name, param)| self.tensor(&format!("{prefix}{name}"), param.value.shape()))
            .collect()
    }

    fn tensor(&self, name: &str, shape: &[usize]) -> Result<ArrayD<f32>> {
        let tensor_error = |expected: String, found: String| CheckpointError::Tensor {
            path: self.path.to_path_buf(),
            name: name.to_string(),
            expected,
            found,
        };
        let view = self.tensors.tensor(name).map_err(|_| {
            tensor_error(format!("an F32 tensor of shape {shape:?}"), "no such tensor".to_string())
        })?;
        if view.dtype() != Dtype::F32 || view.shape() != shape {
            return Err(tensor_error(
                format!("F32 of shape {shape:?}"),
                format!("{:?} of shape {:?}", view.dtype(), view.shape()),
            ));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        // A NaN weight would only surface later as NaN predictions or a diverged resume.
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(tensor_error(
                "finite values".to_string(),
                format!("value {} at flat index {index}", values[index]),
            ));
        }
        Ok(ArrayD::from_shape_vec(IxDyn(shape), values).expect("length checked by safetensors"))
    }

    fn train_state(&self, model: &Model, names: &[String]) -> Result<TrainState> {
        let config: TrainConfig = self.json("train")?;
        let report: TrainReport = self.json("report")?;
        let step_text = self.metadata("optimizer_step")?;
        let step: u64 = step_text.parse().map_err(|_| {
            self.metadata_error(
                "optimizer_step",
                format!("expected an integer, found \"{step_text}\""),
            )
        })?;
        let last_weights = self.tensors(model, names, "last.")?;
        let exp_avg = self.tensors(model, names, "optimizer.exp_avg.")?;
        let exp_avg_sq = self.tensors(model, names, "optimizer.exp_avg_sq.")?;
        let optimizer = AdamState { step, exp_avg, exp_avg_sq };
        Ok(TrainState { config, report, last_weights, optimizer })
    }
}

/// The normaliser as stored in the `normalizer` metadata entry.
#[derive(serde::Serialize, serde::Deserialize)]
struct NormalizerJson {
    method: String,
    offset: [f64; CHANNELS],
    scale: [f64; CHANNELS],
}

impl From<&Normalizer> for NormalizerJson {
    fn from(normalizer: &Normalizer) -> Self {
        NormalizerJson {
            method: normalizer.method().name().to_string(),
            offset: normalizer.offset(),
            scale: normalizer.scale(),
        }
    }
}

impl NormalizerJson {
    fn into_normalizer(self, file: &Parsed<'_>) -> Result<Normalizer> {
        let invalid =
            |error: crate::data::DataError| file.metadata_error("normalizer", error.to_string());
        let method = Method::from_name(&self.method).map_err(invalid)?;
        Normalizer::from_parts(method, self.offset, self.scale).map_err(invalid)
    }
}

fn encode(name: String, value: &ArrayD<f32>) -> (String, Vec<usize>, Vec<u8>) {
    let bytes = value.iter().flat_map(|v| v.to_le_bytes()).collect();
    (name, value.shape().to_vec(), bytes)
}

fn to_json<T: serde::Serialize>(path: &Path, key: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|error| CheckpointError::Metadata {
        path: path.to_path_buf(),
        key,
        reason: error.to_string(),
    })
}
