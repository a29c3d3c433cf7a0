//! The graph a description turns into: shapes, operations with their settings, named nodes,
//! and the checks every graph passes before analysis (unique names, inputs defined earlier,
//! input counts, argument ranges).

use std::collections::HashMap;
use std::fmt;

use crate::error::{ErrorKind, Result, Site};

/// Shape of one sample's activation; the batch dimension is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A feature map, channels x height x width.
    Map { channels: usize, height: usize, width: usize },
    /// A feature vector.
    Vector { features: usize },
    /// A sequence of feature vectors, steps x features, as a batch-first GRU reads it.
    Sequence { steps: usize, features: usize },
}

impl Shape {
    /// Creates a feature map of `channels x height x width`.
    pub fn map(channels: usize, height: usize, width: usize) -> Self {
        Self::Map { channels, height, width }
    }

    /// Creates a feature vector of `features` entries.
    pub fn vector(features: usize) -> Self {
        Self::Vector { features }
    }

    /// Creates a sequence of `steps` vectors of `features` entries.
    pub fn sequence(steps: usize, features: usize) -> Self {
        Self::Sequence { steps, features }
    }

    /// Number of scalars in one sample, or `None` when it overflows `u64`.
    pub fn elements(&self) -> Option<u64> {
        match *self {
            Self::Map { channels, height, width } => {
                (channels as u64).checked_mul(height as u64)?.checked_mul(width as u64)
            }
            Self::Vector { features } => Some(features as u64),
            Self::Sequence { steps, features } => (steps as u64).checked_mul(features as u64),
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Map { channels, height, width } => write!(f, "{channels} x {height} x {width}"),
            Self::Vector { features } => write!(f, "{features}"),
            Self::Sequence { steps, features } => write!(f, "{steps} steps x {features}"),
        }
    }
}

/// A setting with a height and a width component, such as a kernel size or a stride.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pair {
    /// Component along the height axis.
    pub height: usize,
    /// Component along the width axis.
    pub width: usize,
}

impl Pair {
    /// Creates a pair with the same value along both axes.
    pub fn square(value: usize) -> Self {
        Self { height: value, width: value }
    }

    /// Creates a pair with separate values along height and width.
    pub fn new(height: usize, width: usize) -> Self {
        Self { height, width }
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.height == self.width {
            write!(f, "{}", self.height)
        } else {
            write!(f, "{}x{}", self.height, self.width)
        }
    }
}

/// Zero padding of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// The same number of zeros on both sides of each axis.
    Explicit(Pair),
    /// PyTorch's `padding="same"`: total padding `dilation * (kernel - 1)` per axis, the
    /// extra zero of an odd total on the bottom or right. Requires stride 1.
    Same,
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Explicit(pair) => write!(f, "{pair}"),
            Self::Same => write!(f, "same"),
        }
    }
}

/// Settings of a 2-D convolution (`torch.nn.Conv2d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    /// Number of filters.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: Pair,
    /// Step between window positions.
    pub stride: Pair,
    /// Zero padding.
    pub padding: Padding,
    /// Spacing between kernel taps; 1 is an ordinary convolution.
    pub dilation: Pair,
    /// Channel groups; input and output channels must both be multiples of it.
    pub groups: usize,
    /// Whether each filter has a bias.
    pub bias: bool,
}

impl Conv2dSpec {
    /// A square convolution with stride, padding, no dilation, one group and a bias.
    pub fn new(out_channels: usize, kernel: usize, stride: usize, padding: usize) -> Self {
        Self {
            out_channels,
            kernel: Pair::square(kernel),
            stride: Pair::square(stride),
            padding: Padding::Explicit(Pair::square(padding)),
            dilation: Pair::square(1),
            groups: 1,
            bias: true,
        }
    }
}

/// Settings of a max or average pooling window (`MaxPool2d`, `AvgPool2d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolSpec {
    /// Window height and width.
    pub kernel: Pair,
    /// Step between windows; PyTorch defaults it to the kernel size.
    pub stride: Pair,
    /// Implicit padding on each side; at most half the effective window, as PyTorch requires.
    pub padding: Pair,
    /// Spacing between window taps (max pooling only; average pooling has 1).
    pub dilation: Pair,
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
}

impl PoolSpec {
    /// A square window with stride and padding, no dilation, floor rounding.
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Self {
        Self {
            kernel: Pair::square(kernel),
            stride: Pair::square(stride),
            padding: Pair::square(padding),
            dilation: Pair::square(1),
            ceil_mode: false,
        }
    }
}

/// Element-wise functions without parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `max(0, x)`.
    Relu,
    /// `x` for positive inputs, a small slope times `x` otherwise.
    LeakyRelu,
    /// Exponential linear unit.
    Elu,
    /// Gaussian error linear unit.
    Gelu,
    /// Logistic function `1 / (1 + e^-x)`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Softmax over the features (or channels) of each position.
    Softmax,
}

impl Activation {
    /// Name used in descriptions and tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Relu => "relu",
            Self::LeakyRelu => "leaky_relu",
            Self::Elu => "elu",
            Self::Gelu => "gelu",
            Self::Sigmoid => "sigmoid",
            Self::Tanh => "tanh",
            Self::Softmax => "softmax",
        }
    }
}

/// One operation with its settings. Formulas for each are in `docs/shapes-ops.md`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// A graph input of the given shape.
    Input(Shape),
    /// 2-D convolution.
    Conv2d(Conv2dSpec),
    /// Max pooling.
    MaxPool(PoolSpec),
    /// Average pooling.
    AvgPool(PoolSpec),
    /// Average over all positions of each channel: C x H x W to C x 1 x 1.
    GlobalAvgPool,
    /// `AdaptiveAvgPool2d` to the given output height and width.
    AdaptiveAvgPool(Pair),
    /// Fully connected layer; applied to every step of a sequence.
    Linear { out_features: usize, bias: bool },
    /// Flattens a map or a sequence into a vector.
    Flatten,
    /// Batch normalisation with a learned scale and shift per channel.
    BatchNorm,
    /// Element-wise activation.
    Activation(Activation),
    /// Dropout with drop probability `p`.
    Dropout { p: f64 },
    /// Concatenation along channels (maps) or features (vectors, sequences).
    Concat,
    /// Element-wise sum of equally shaped inputs.
    Add,
    /// Single-layer GRU returning the hidden state of every step. `input_size` and `steps`,
    /// when given, are checked against the input shape.
    Gru { hidden_size: usize, input_size: Option<usize>, steps: Option<usize>, bias: bool },
    /// The last step of a sequence, as a vector.
    LastStep,
}

impl Op {
    /// Short operation name as written in descriptions.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Input(_) => "input",
            Self::Conv2d(_) => "conv2d",
            Self::MaxPool(_) => "maxpool",
            Self::AvgPool(_) => "avgpool",
            Self::GlobalAvgPool => "gap",
            Self::AdaptiveAvgPool(_) => "adaptive_avgpool",
            Self::Linear { .. } => "linear",
            Self::Flatten => "flatten",
            Self::BatchNorm => "batchnorm",
            Self::Activation(activation) => activation.name(),
            Self::Dropout { .. } => "dropout",
            Self::Concat => "concat",
            Self::Add => "add",
            Self::Gru { .. } => "gru",
            Self::LastStep => "last",
        }
    }

    /// Whether the operation merges two or more inputs.
    pub fn is_merge(&self) -> bool {
        matches!(self, Self::Concat | Self::Add)
    }
}

/// A named operation applied to named inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Unique name.
    pub name: String,
    /// Operation of the node.
    pub op: Op,
    /// Names of the nodes it reads, all defined before it.
    pub inputs: Vec<String>,
    /// Line of the description text, absent for built graphs.
    pub line: Option<usize>,
}

impl Node {
    pub(crate) fn site(&self) -> Site {
        Site::new(self.line, &self.name)
    }
}

/// A checked architecture: nodes in order, names unique, every input defined earlier,
/// input counts and argument ranges valid. Built by [`parse`](crate::parse) or
/// [`GraphBuilder`](crate::GraphBuilder).
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    nodes: Vec<Node>,
}

impl Graph {
    /// Checks `nodes` and wraps them into a graph.
    ///
    /// # Errors
    /// [`ErrorKind::Empty.into()`], `DuplicateName`, `UndefinedInput`, `ForwardReference`,
    /// `InputCount`, `MissingInput` and `InvalidArgument` for settings out of range.
    pub fn new(nodes: Vec<Node>) -> Result<Self> {
        if nodes.is_empty() {
            return Err(ErrorKind::Empty.into());
        }

        let mut positions: HashMap<&str, usize> = HashMap::new();
        for (index, node) in nodes.iter().enumerate() {
            if let Some(&first) = positions.get(node.name.as_str()) {
                return Err(ErrorKind::DuplicateName {
                    site: node.site(),
                    first: nodes[first].site(),
                }
                .into());
            }
            positions.insert(&node.name, index);
        }

        for (index, node) in nodes.iter().enumerate() {
            check_inputs(node, index, &nodes, &positions)?;
            check_settings(node)?;
        }
        Ok(Self { nodes })
    }

    /// Nodes in definition order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
}

fn check_inputs(
    node: &Node,
    index: usize,
    nodes: &[Node],
    positions: &HashMap<&str, usize>,
) -> Result<()> {
    let (expected, fits) = match node.op {
        Op::Input(_) => ("0", node.inputs.is_empty()),
        Op::Concat | Op::Add => ("2 or more", node.inputs.len() >= 2),
        _ => ("1", node.inputs.len() == 1),
    };
    if !fits {
        return Err(ErrorKind::InputCount {
            site: node.site(),
            op: node.op.name().to_string(),
            expected: expected.to_string(),
            found: node.inputs.len(),
        }
        .into());
    }

    for input in &node.inputs {
        match positions.get(input.as_str()) {
            None => {
                return Err(
                    ErrorKind::UndefinedInput { site: node.site(), input: input.clone() }.into()
                )
            }
            Some(&position) if position >= index => {
                return Err(ErrorKind::ForwardReference {
                    site: node.site(),
                    input: input.clone(),
                    defined_at: nodes[position].site(),
                }
                .into())
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn check_settings(node: &Node) -> Result<()> {
    let positive = |argument: &str, value: usize| -> Result<()> {
        if value == 0 {
            return Err(ErrorKind::InvalidArgument {
                site: node.site(),
                argument: argument.to_string(),
                expected: "a positive integer".to_string(),
                found: "0".to_string(),
            }
            .into());
        }
        Ok(())
    };
    let positive_pair = |argument: &str, pair: Pair| -> Result<()> {
        positive(argument, pair.height)?;
        positive(argument, pair.width)
    };

    match node.op {
        Op::Input(shape) => match shape {
            Shape::Map { channels, height, width } => {
                positive("c", channels)?;
                positive("h", height)?;
                positive("w", width)
            }
            Shape::Vector { features } => positive("features", features),
            Shape::Sequence { steps, features } => {
                positive("steps", steps)?;
                positive("features", features)
            }
        },
        Op::Conv2d(spec) => {
            positive("out", spec.out_channels)?;
            positive_pair("k", spec.kernel)?;
            positive_pair("s", spec.stride)?;
            positive_pair("d", spec.dilation)?;
            positive("groups", spec.groups)?;
            if spec.padding == Padding::Same && spec.stride != Pair::square(1) {
                return Err(ErrorKind::InvalidArgument {
                    site: node.site(),
                    argument: "p".to_string(),
                    expected: "stride 1 with padding \"same\" (as PyTorch requires)".to_string(),
                    found: format!("stride {}", spec.stride),
                }
                .into());
            }
            Ok(())
        }
        Op::MaxPool(spec) | Op::AvgPool(spec) => {
            positive_pair("k", spec.kernel)?;
            positive_pair("s", spec.stride)?;
            positive_pair("d", spec.dilation)?;
            check_pool_padding(node, spec)
        }
        Op::AdaptiveAvgPool(pair) => positive_pair("out", pair),
        Op::Linear { out_features, .. } => positive("out", out_features),
        Op::Dropout { p } if !(0.0..=1.0).contains(&p) => Err(ErrorKind::InvalidArgument {
            site: node.site(),
            argument: "p".to_string(),
            expected: "a probability in [0, 1]".to_string(),
            found: p.to_string(),
        }
        .into()),
        Op::Gru { hidden_size, input_size, steps, .. } => {
            positive("hidden", hidden_size)?;
            positive("input", input_size.unwrap_or(1))?;
            positive("steps", steps.unwrap_or(1))
        }
        _ => Ok(()),
    }
}

/// PyTorch rejects pooling padding above half the effective window, `d * (k - 1) + 1`,
/// rounded down; it would make whole windows of padding.
fn check_pool_padding(node: &Node, spec: PoolSpec) -> Result<()> {
    let axes = [
        (spec.kernel.height, spec.dilation.height, spec.padding.height),
        (spec.kernel.width, spec.dilation.width, spec.padding.width),
    ];
    for (kernel, dilation, padding) in axes {
        let effective = (dilation as u128) * (kernel as u128 - 1) + 1;
        if padding as u128 > effective / 2 {
            return Err(ErrorKind::InvalidArgument {
                site: node.site(),
                argument: "p".to_string(),
                expected: format!(
                    "at most half the effective window, {effective} / 2 = {}",
                    effective / 2
                ),
                found: padding.to_string(),
            }
            .into());
        }
    }
    Ok(())
}
