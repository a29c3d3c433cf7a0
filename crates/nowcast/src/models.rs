//! The nowcasting models: feed-forward, dropout, CNN, GRU and a narrower GRU.
//!
//! Every model is a stack of `handgrad-layers` layers whose backward passes are derived by hand.
//! A model takes the features of a [`Split`](crate::data::Split), shaped
//! (sequences, 5 hours, 5 rows, 5 columns, 3 channels), and predicts the rainfall label of each
//! hour, shaped (sequences, 5):
//!
//! | kind | sees | layers | parameters |
//! |---|---|---|---|
//! | [`ModelKind::FeedForward`] | one hour, 75 values | 75-200-200-200-1, ReLU | 95,801 |
//! | [`ModelKind::Dropout`] | one hour | as above, dropout 0.2 after each hidden ReLU | 95,801 |
//! | [`ModelKind::Cnn`] | one hour, 3x5x5 | conv 3->200 3x3, ReLU, 1,800-200-200-1 | 406,201 |
//! | [`ModelKind::Gru`] | 5 hours | GRU(75, 200), 200-200-1 at every hour | 206,601 |
//! | [`ModelKind::Best`] | 5 hours | GRU(75, 100), 100-100-1 at every hour | 63,301 |
//!
//! Parameters are named as PyTorch's `nn.Sequential` names them (`"0.weight"`,
//! `"2.weight_ih_l0"`), so a checkpoint maps onto the equivalent PyTorch module.

use handgrad_layers::{
    Conv2d, Conv2dConfig, Dropout, Flatten, Gru, Layer, LayerError, Linear, Mode, Relu,
};
use handgrad_shapes::{Conv2dSpec, Graph, GraphBuilder, Shape};
use handgrad_tensor::Param;
use ndarray::{s, Array2, ArrayD, ArrayView2, ArrayView5, Axis, IxDyn};
use serde::{Deserialize, Serialize};

use crate::data::{CHANNELS, FEATURES_PER_HOUR, GRID, HOURS};

/// Rows per forward pass when predicting, which bounds the memory of evaluation.
const PREDICT_BATCH: usize = 4096;

/// Largest `hidden` and `conv_channels` a configuration may ask for.
pub const MAX_WIDTH: usize = 65_536;

/// Most parameters a model may have, 2^28 (1 GiB of `f32` weights).
pub const MAX_PARAMETERS: usize = 1 << 28;

/// Errors raised when building or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A layer rejected its input or configuration.
    #[error("model layer {index}: {source}")]
    Layer {
        /// Position of the layer in the model.
        index: usize,
        /// The layer's error.
        #[source]
        source: LayerError,
    },
    /// The configuration cannot describe a model.
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// The input does not have the shape the model takes.
    #[error("{model} model: expected input of shape {expected}, found {found:?}")]
    Input {
        /// Model name.
        model: &'static str,
        /// The expected shape.
        expected: String,
        /// The shape found.
        found: Vec<usize>,
    },
    /// The architecture could not be described by the shape calculator.
    #[error("architecture of the {model} model: {reason}")]
    Architecture {
        /// Model name.
        model: &'static str,
        /// The shape calculator's message.
        reason: String,
    },
}

/// Result alias for models.
pub type Result<T> = std::result::Result<T, ModelError>;

/// The five model families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Three hidden layers of 200 units on one hour.
    FeedForward,
    /// The feed-forward net with dropout after each hidden ReLU.
    Dropout,
    /// A 3x3 convolution over the 5x5 grid, then two hidden layers.
    Cnn,
    /// A GRU over the five hours, predicting every hour.
    Gru,
    /// The GRU with half the width, 100, trained with its own recipe
    /// ([`TrainConfig::recipe`](crate::train::TrainConfig::recipe)): batches of 32 sequences
    /// under the keypoint schedule.
    ///
    /// NOTE: on a tenth of the synthetic set for 10 epochs its validation MSE was 0.661 and
    /// 0.670 (seeds 0, 1) against 0.736 and 0.733 for the GRU with the GRU's recipe. Most of
    /// the gain is the recipe: the GRU with batches of 64 under the keypoint schedule reached
    /// 0.689 and 0.677. It was not tested on the real data set. `docs/nowcast-models.md` lists
    /// the measurements and the designs that did worse.
    Best,
}

impl ModelKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [ModelKind; 5] = [
        ModelKind::FeedForward,
        ModelKind::Dropout,
        ModelKind::Cnn,
        ModelKind::Gru,
        ModelKind::Best,
    ];

    /// Short name used on the command line and in reports: `ff`, `dropout`, `cnn`, `gru`, `best`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::FeedForward => "ff",
            ModelKind::Dropout => "dropout",
            ModelKind::Cnn => "cnn",
            ModelKind::Gru => "gru",
            ModelKind::Best => "best",
        }
    }

    /// Parses a short name as [`ModelKind::name`] writes it.
    pub fn from_name(name: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// True for models that read all five hours of a sequence at once.
    pub fn is_sequence(self) -> bool {
        matches!(self, ModelKind::Gru | ModelKind::Best)
    }
}

/// Hyperparameters of a model; stored as JSON in checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Model family.
    pub kind: ModelKind,
    /// Width of the hidden layers and of the GRU state.
    pub hidden: usize,
    /// Convolution output channels (CNN only; ignored by the others).
    pub conv_channels: usize,
    /// Dropout probability of the dropout model.
    pub dropout: f64,
    /// Seed of the initial weights and of the dropout masks.
    pub seed: u64,
}

impl ModelConfig {
    /// Returns the configuration that the table in the module docs describes.
    pub fn new(kind: ModelKind, seed: u64) -> ModelConfig {
        let hidden = if kind == ModelKind::Best { 100 } else { 200 };
        ModelConfig { kind, hidden, conv_channels: 200, dropout: 0.2, seed }
    }

    fn validate(&self) -> Result<()> {
        if self.hidden == 0 || self.conv_channels == 0 {
            return Err(ModelError::Config(format!(
                "hidden ({}) and conv_channels ({}) must be positive",
                self.hidden, self.conv_channels
            )));
        }
        if self.hidden > MAX_WIDTH || self.conv_channels > MAX_WIDTH {
            return Err(ModelError::Config(format!(
                "hidden ({}) and conv_channels ({}) must be at most {MAX_WIDTH}",
                self.hidden, self.conv_channels
            )));
        }
        match self.parameter_total() {
            Some(total) if total <= MAX_PARAMETERS => {}
            total => {
                let found = total
                    .map_or_else(|| "more than usize can represent".to_string(), |n| n.to_string());
                return Err(ModelError::Config(format!(
                    "the model would have {found} parameters; at most {MAX_PARAMETERS} are allowed"
                )));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ModelError::Config(format!(
                "dropout must be in [0, 1), found {}",
                self.dropout
            )));
        }
        Ok(())
    }
}

impl ModelConfig {
    /// Parameters of the model this configuration describes, or `None` on overflow. Computed
    /// before building, so that an absurd width fails without allocating.
    fn parameter_total(&self) -> Option<usize> {
        let linear =
            |inputs: usize, outputs: usize| inputs.checked_mul(outputs)?.checked_add(outputs);
        let h = self.hidden;
        let head = linear(h, h)?.checked_add(linear(h, 1)?)?;
        let body = match self.kind {
            ModelKind::FeedForward | ModelKind::Dropout => {
                linear(FEATURES_PER_HOUR, h)?.checked_add(linear(h, h)?)?
            }
            ModelKind::Cnn => {
                let c = self.conv_channels;
                let conv = linear(CHANNELS * 9, c)?;
                conv.checked_add(linear(c.checked_mul(conv_cells())?, h)?)?
            }
            // PyTorch's GRU: three gates, each with input and hidden weights and two biases.
            ModelKind::Gru | ModelKind::Best => {
                let gate = FEATURES_PER_HOUR.checked_add(h)?.checked_add(2)?.checked_mul(h)?;
                gate.checked_mul(3)?
            }
        };
        body.checked_add(head)
    }
}

/// A model: its configuration and its layers, run in order.
#[derive(Debug)]
pub struct Model {
    config: ModelConfig,
    layers: Vec<Box<dyn Layer<f32>>>,
    /// Indices of the dropout layers, rebuilt with a new seed by [`Model::reseed_dropout`].
    dropout_layers: Vec<usize>,
}

impl Model {
    /// Builds a model with freshly initialised weights.
    ///
    /// # Errors
    ///
    /// [`ModelError::Config`] for a zero width, a width above [`MAX_WIDTH`], more than
    /// [`MAX_PARAMETERS`] parameters, or a dropout outside [0, 1).
    pub fn new(config: ModelConfig) -> Result<Model> {
        config.validate()?;
        let mut model = Model { config, layers: Vec::new(), dropout_layers: Vec::new() };
        let (hidden, seed) = (model.config.hidden, model.config.seed);
        match model.config.kind {
            ModelKind::FeedForward | ModelKind::Dropout => model.build_feed_forward()?,
            ModelKind::Cnn => model.build_cnn()?,
            ModelKind::Gru | ModelKind::Best => {
                model.push(|_| Gru::new(FEATURES_PER_HOUR, hidden, layer_seed(seed, 0)))?;
                model.push_head(hidden)?;
            }
        }
        Ok(model)
    }

    fn build_feed_forward(&mut self) -> Result<()> {
        let hidden = self.config.hidden;
        let mut width = FEATURES_PER_HOUR;
        for _ in 0..3 {
            self.push_linear(width, hidden)?;
            self.push(|_| Ok(Relu::<f32>::new()))?;
            if self.config.kind == ModelKind::Dropout {
                self.push_dropout()?;
            }
            width = hidden;
        }
        self.push_linear(hidden, 1)
    }

    fn build_cnn(&mut self) -> Result<()> {
        let channels = self.config.conv_channels;
        self.push_conv(channels)?;
        self.push(|_| Ok(Relu::<f32>::new()))?;
        self.push(|_| Ok(Flatten::new()))?;
        self.push_linear(channels * conv_cells(), self.config.hidden)?;
        self.push(|_| Ok(Relu::<f32>::new()))?;
        self.push_head(self.config.hidden)
    }

    /// Appends Linear(width, width), ReLU, Linear(width, 1).
    fn push_head(&mut self, width: usize) -> Result<()> {
        self.push_linear(width, width)?;
        self.push(|_| Ok(Relu::<f32>::new()))?;
        self.push_linear(width, 1)
    }

    fn push_linear(&mut self, inputs: usize, outputs: usize) -> Result<()> {
        let seed = self.config.seed;
        self.push(|index| Linear::new(inputs, outputs, layer_seed(seed, index)))
    }

    fn push_conv(&mut self, channels: usize) -> Result<()> {
        let seed = self.config.seed;
        let config = Conv2dConfig {
            in_channels: CHANNELS,
            out_channels: channels,
            kernel_size: 3,
            stride: 1,
            padding: 0,
        };
        self.push(|index| Conv2d::new(config, layer_seed(seed, index)))
    }

    fn push_dropout(&mut self) -> Result<()> {
        let (p, seed) = (self.config.dropout, self.config.seed);
        self.dropout_layers.push(self.layers.len());
        self.push(|index| Dropout::new(p, layer_seed(seed, index)))
    }

    fn push<L, B>(&mut self, build: B) -> Result<()>
    where
        L: Layer<f32> + 'static,
        B: FnOnce(usize) -> handgrad_layers::Result<L>,
    {
        let index = self.layers.len();
        let layer = build(index).map_err(|source| ModelError::Layer { index, source })?;
        self.layers.push(Box::new(layer));
        Ok(())
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Replaces the dropout layers with ones drawing masks from `seed`.
    ///
    /// Training calls this at the start of every epoch with a seed derived from the epoch, so
    /// that a run resumed from a checkpoint draws the same masks as an uninterrupted one.
    pub fn reseed_dropout(&mut self, seed: u64) -> Result<()> {
        let p = self.config.dropout;
        for &index in &self.dropout_layers {
            let layer = Dropout::new(p, layer_seed(seed, index))
                .map_err(|source| ModelError::Layer { index, source })?;
            self.layers[index] = Box::new(layer);
        }
        Ok(())
    }

    /// Converts features (N, 5, 5, 5, 3) into the layout the first layer takes.
    ///
    /// Per-hour models get one row per (sequence, hour), sequence-major: (N * 5, 75) for the
    /// feed-forward models, (N * 5, 3, 5, 5) for the CNN. The GRU and the best model get
    /// (N, 5, 75). Flattened hours keep the row, column, channel order of the file.
    pub fn prepare_inputs(&self, features: &ArrayView5<'_, f32>) -> Result<ArrayD<f32>> {
        let shape = features.shape();
        if shape[1..] != [HOURS, GRID, GRID, CHANNELS] {
            return Err(ModelError::Input {
                model: self.config.kind.name(),
                expected: format!("(N, {HOURS}, {GRID}, {GRID}, {CHANNELS})"),
                found: shape.to_vec(),
            });
        }
        let n = shape[0];
        let channels_first = features.permuted_axes([0, 1, 4, 2, 3]);
        let (layout, target_shape): (ArrayD<f32>, Vec<usize>) = match self.config.kind {
            ModelKind::FeedForward | ModelKind::Dropout => {
                (features.to_owned().into_dyn(), vec![n * HOURS, FEATURES_PER_HOUR])
            }
            ModelKind::Cnn => {
                (channels_first.to_owned().into_dyn(), vec![n * HOURS, CHANNELS, GRID, GRID])
            }
            ModelKind::Gru | ModelKind::Best => {
                (features.to_owned().into_dyn(), vec![n, HOURS, FEATURES_PER_HOUR])
            }
        };
        let standard = layout.as_standard_layout().into_owned();
        Ok(standard.into_shape_with_order(IxDyn(&target_shape)).expect("sizes agree"))
    }

    /// Converts labels (N, 5) into the layout of the model's output: (N * 5, 1) or (N, 5, 1).
    pub fn prepare_targets(&self, labels: &ArrayView2<'_, f32>) -> ArrayD<f32> {
        let n = labels.nrows();
        let shape =
            if self.config.kind.is_sequence() { vec![n, HOURS, 1] } else { vec![n * HOURS, 1] };
        let standard = labels.as_standard_layout().into_owned();
        standard.into_shape_with_order(IxDyn(&shape)).expect("sizes agree")
    }

    /// Runs every layer on `input`; in [`Mode::Train`] the layers keep what `backward` needs.
    pub fn forward(&mut self, input: &ArrayD<f32>, mode: Mode) -> Result<ArrayD<f32>> {
        let mut activation = self.layers[0]
            .forward(input, mode)
            .map_err(|source| ModelError::Layer { index: 0, source })?;
        for index in 1..self.layers.len() {
            // Each activation is read once, so the next layer may keep or overwrite it.
            activation = self.layers[index]
                .forward_owned(activation, mode)
                .map_err(|source| ModelError::Layer { index, source })?;
        }
        Ok(activation)
    }

    /// Back-propagates dL/d(output) and leaves every parameter's gradient in its `grad`.
    pub fn backward(&mut self, grad_output: &ArrayD<f32>) -> Result<()> {
        let Some((first, rest)) = self.layers.split_first_mut() else {
            return Ok(());
        };
        let mut grad = grad_output.clone();
        for (offset, layer) in rest.iter_mut().enumerate().rev() {
            let index = offset + 1;
            grad =
                layer.backward_owned(grad).map_err(|source| ModelError::Layer { index, source })?;
        }
        // Nothing reads the gradient of the model's input, so the first layer skips it.
        first.backward_params(&grad).map_err(|source| ModelError::Layer { index: 0, source })
    }

    /// Predicts the labels (N, 5) of features (N, 5, 5, 5, 3) in evaluation mode.
    pub fn predict(&mut self, features: &ArrayView5<'_, f32>) -> Result<Array2<f32>> {
        let n = features.shape()[0];
        let mut predictions = Array2::zeros((n, HOURS));
        let sequences_per_pass = (PREDICT_BATCH / HOURS).max(1);
        for start in (0..n).step_by(sequences_per_pass) {
            let end = (start + sequences_per_pass).min(n);
            let chunk = features.slice(s![start..end, .., .., .., ..]);
            let input = self.prepare_inputs(&chunk)?;
            let output = self.forward(&input, Mode::Eval)?;
            let output = output.into_shape_with_order((end - start, HOURS)).map_err(|_| {
                ModelError::Config("the last layer must produce one value per hour".to_string())
            })?;
            predictions.slice_mut(s![start..end, ..]).assign(&output);
        }
        Ok(predictions)
    }

    /// The trainable parameters, layer by layer.
    pub fn params(&self) -> Vec<&Param<f32>> {
        self.layers.iter().flat_map(|layer| layer.params()).collect()
    }

    /// Mutable access to the parameters, in the order of [`Model::params`].
    pub fn params_mut(&mut self) -> Vec<&mut Param<f32>> {
        self.layers.iter_mut().flat_map(|layer| layer.params_mut()).collect()
    }

    /// The parameters with PyTorch `nn.Sequential` names such as `"0.weight"`.
    pub fn named_params(&self) -> Vec<(String, &Param<f32>)> {
        let mut named = Vec::new();
        for (index, layer) in self.layers.iter().enumerate() {
            for param in layer.params() {
                named.push((format!("{index}.{}", param.name), param));
            }
        }
        named
    }

    /// Total number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.params().iter().map(|param| param.len()).sum()
    }

    /// Copies of the parameter values, in the order of [`Model::params`].
    pub fn weights(&self) -> Vec<ArrayD<f32>> {
        self.params().iter().map(|param| param.value.clone()).collect()
    }

    /// Overwrites the parameter values with `weights`, in the order of [`Model::params`].
    ///
    /// # Errors
    ///
    /// [`ModelError::Config`] when the count or a shape differs.
    pub fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        let mut params = self.params_mut();
        if params.len() != weights.len() {
            return Err(ModelError::Config(format!(
                "expected {} parameter arrays, found {}",
                params.len(),
                weights.len()
            )));
        }
        for (index, (param, value)) in params.iter_mut().zip(weights).enumerate() {
            if param.value.shape() != value.shape() {
                return Err(ModelError::Config(format!(
                    "parameter {index} ({}): expected shape {:?}, found {:?}",
                    param.name,
                    param.value.shape(),
                    value.shape()
                )));
            }
            param.value.assign(value);
        }
        Ok(())
    }

    /// Describes the model with the shape calculator, from the same configuration as its layers.
    ///
    /// Per-hour models are described on one hour and the sequence models on the five-hour
    /// sequence.
    ///
    /// # Errors
    ///
    /// [`ModelError::Architecture`] when the shape calculator rejects the graph.
    pub fn architecture(&self) -> Result<Graph> {
        let config = &self.config;
        let hidden = config.hidden;
        let hour_map = Shape::map(CHANNELS, GRID, GRID);
        let mut graph = match config.kind {
            ModelKind::FeedForward | ModelKind::Dropout => {
                let mut graph = GraphBuilder::new(Shape::vector(FEATURES_PER_HOUR));
                for _ in 0..3 {
                    graph.linear(hidden);
                    graph.relu();
                    if config.kind == ModelKind::Dropout {
                        graph.dropout(config.dropout);
                    }
                }
                graph.linear(1);
                return build_graph(&graph, config.kind);
            }
            ModelKind::Cnn => {
                let mut graph = GraphBuilder::new(hour_map);
                graph.conv2d(Conv2dSpec::new(config.conv_channels, 3, 1, 0));
                graph.relu();
                graph.flatten();
                graph.linear(hidden);
                graph.relu();
                graph
            }
            ModelKind::Gru | ModelKind::Best => {
                let mut graph = GraphBuilder::new(Shape::sequence(HOURS, FEATURES_PER_HOUR));
                graph.gru(FEATURES_PER_HOUR, hidden, HOURS);
                graph
            }
        };
        graph.linear(hidden);
        graph.relu();
        graph.linear(1);
        build_graph(&graph, config.kind)
    }
}

fn build_graph(graph: &GraphBuilder, kind: ModelKind) -> Result<Graph> {
    graph
        .build()
        .map_err(|error| ModelError::Architecture { model: kind.name(), reason: error.to_string() })
}

/// Cells of the 3x3 map that a 3x3 convolution without padding leaves of the 5x5 grid.
fn conv_cells() -> usize {
    (GRID - 2) * (GRID - 2)
}

/// Derives a layer's seed from the model seed and the layer's position (SplitMix64 mixing).
pub(crate) fn layer_seed(seed: u64, index: usize) -> u64 {
    let mut z = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Gathers rows `indices` of the first axis of `array`.
pub(crate) fn gather_rows(array: &ArrayD<f32>, indices: &[usize]) -> ArrayD<f32> {
    array.select(Axis(0), indices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_total_matches_built_models() {
        for kind in ModelKind::ALL {
            for (hidden, conv_channels) in [(3, 2), (17, 5)] {
                let config = ModelConfig { hidden, conv_channels, ..ModelConfig::new(kind, 0) };
                let model = Model::new(config.clone()).unwrap();
                assert_eq!(config.parameter_total(), Some(model.parameter_count()), "{kind:?}");
            }
        }
    }
}
