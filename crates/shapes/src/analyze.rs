//! Shape inference and counting: for each node, its output shape, weights, biases, MACs and
//! receptive field. The formulas are documented per operation in `docs/shapes-ops.md`.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{ErrorKind, Result, ShapeError};
use crate::field::{AxisField, ReceptiveField};
use crate::graph::{Conv2dSpec, Graph, Node, Op, Padding, Pair, PoolSpec, Shape};
use crate::summary::{Row, Summary};

mod merge;
mod window;

use merge::{add, concat};
use window::{conv_padding, field_through, window_output, Window};

/// Computes every node's output shape, parameters, MACs and receptive field, and the totals.
///
/// # Errors
/// - `WrongInputKind`: a map where a vector is needed, say.
/// - `NonPositiveSize`: an output dimension would be zero or less.
/// - `Mismatch`: inputs of `concat` or `add` that do not fit together.
/// - `InvalidArgument`: groups that do not divide the channels, or GRU sizes that contradict
///   the input.
/// - `Overflow`: a count beyond 64 bits.
///
/// Each error names the node and its line.
///
/// # Example
/// ```
/// let graph = handgrad_shapes::parse("x = input(c=3, h=100, w=100)\nA = conv2d(out=5, k=3)")?;
/// let summary = handgrad_shapes::analyze(&graph)?;
/// assert_eq!(summary.row("A").unwrap().shape, handgrad_shapes::Shape::map(5, 98, 98));
/// assert_eq!(summary.params, 5 * 3 * 3 * 3 + 5);
/// # Ok::<(), handgrad_shapes::ShapeError>(())
/// ```
pub fn analyze(graph: &Graph) -> Result<Summary> {
    let mut rows: Vec<Row> = Vec::with_capacity(graph.nodes().len());
    let mut index_of: HashMap<&str, usize> = HashMap::new();

    for node in graph.nodes() {
        let mut inputs: Vec<&Row> = Vec::with_capacity(node.inputs.len());
        for name in &node.inputs {
            // `Graph::new` has checked that every input is defined earlier.
            let index = index_of.get(name.as_str()).copied().ok_or_else(|| -> ShapeError {
                ErrorKind::UndefinedInput { site: node.site(), input: name.clone() }.into()
            })?;
            inputs.push(&rows[index]);
        }
        let row = analyze_node(node, &inputs)?;
        index_of.insert(&node.name, rows.len());
        rows.push(row);
    }
    Summary::from_rows(rows)
}

/// Reads, parses and analyses a description file; every error carries the file's path.
///
/// # Errors
/// [`ErrorKind::Io`] when the file cannot be read, else the [`parse`](crate::parse) or
/// [`analyze`] error inside [`ErrorKind::InFile`].
pub fn analyze_file(path: &Path) -> Result<Summary> {
    let graph = crate::parse::parse_file(path)?;
    analyze(&graph).map_err(|error| ErrorKind::InFile { path: path.to_path_buf(), error }.into())
}

/// Shape, counts and receptive field of one node.
pub(super) struct Counts {
    pub(super) shape: Shape,
    pub(super) weights: u64,
    pub(super) biases: u64,
    pub(super) macs: u64,
    pub(super) field: Option<ReceptiveField>,
}

impl Counts {
    /// Creates the counts of a node without parameters or MACs.
    pub(super) fn free(shape: Shape, field: Option<ReceptiveField>) -> Self {
        Self { shape, weights: 0, biases: 0, macs: 0, field }
    }
}

fn analyze_node(node: &Node, inputs: &[&Row]) -> Result<Row> {
    let counts = match node.op {
        Op::Input(shape) => {
            let field = matches!(shape, Shape::Map { .. }).then(ReceptiveField::input);
            Counts::free(shape, field)
        }
        Op::Conv2d(spec) => conv2d(node, inputs[0], spec)?,
        Op::MaxPool(spec) | Op::AvgPool(spec) => pool(node, inputs[0], spec)?,
        Op::GlobalAvgPool => adaptive_pool(node, inputs[0], Pair::square(1))?,
        Op::AdaptiveAvgPool(size) => adaptive_pool(node, inputs[0], size)?,
        Op::Linear { out_features, bias } => linear(node, inputs[0], out_features, bias)?,
        Op::Flatten => {
            let elements = elements(node, inputs[0].shape)?;
            Counts::free(Shape::vector(elements), None)
        }
        Op::BatchNorm => batchnorm(node, inputs[0])?,
        Op::Activation(_) | Op::Dropout { .. } => {
            Counts::free(inputs[0].shape, inputs[0].receptive_field)
        }
        Op::Concat => concat(node, inputs)?,
        Op::Add => add(node, inputs)?,
        Op::Gru { hidden_size, input_size, steps, bias } => {
            gru(node, inputs[0], GruSizes { hidden_size, input_size, steps, bias })?
        }
        Op::LastStep => match inputs[0].shape {
            Shape::Sequence { features, .. } => Counts::free(Shape::vector(features), None),
            found => return Err(wrong_kind(node, inputs[0], "a sequence", found)),
        },
    };
    Ok(Row {
        name: node.name.clone(),
        op: describe(&node.op),
        inputs: node.inputs.clone(),
        line: node.line,
        shape: counts.shape,
        weights: counts.weights,
        biases: counts.biases,
        macs: counts.macs,
        receptive_field: counts.field,
    })
}

fn wrong_kind(node: &Node, input: &Row, expected: &str, found: Shape) -> ShapeError {
    ErrorKind::WrongInputKind {
        site: node.site(),
        op: node.op.name().to_string(),
        input: input.name.clone(),
        expected: expected.to_string(),
        found,
    }
    .into()
}

pub(super) fn overflow(node: &Node, quantity: &str) -> ShapeError {
    ErrorKind::Overflow { site: node.site(), quantity: quantity.to_string() }.into()
}

/// Multiplies counts, failing on overflow.
fn product(node: &Node, quantity: &str, factors: &[u64]) -> Result<u64> {
    factors
        .iter()
        .try_fold(1u64, |total, &factor| total.checked_mul(factor))
        .ok_or_else(|| overflow(node, quantity))
}

fn elements(node: &Node, shape: Shape) -> Result<usize> {
    shape
        .elements()
        .and_then(|count| usize::try_from(count).ok())
        .ok_or_else(|| overflow(node, "the number of elements"))
}

fn expect_map(node: &Node, input: &Row) -> Result<(usize, usize, usize)> {
    match input.shape {
        Shape::Map { channels, height, width } => Ok((channels, height, width)),
        found => Err(wrong_kind(node, input, "a feature map C x H x W", found)),
    }
}

fn conv2d(node: &Node, input: &Row, spec: Conv2dSpec) -> Result<Counts> {
    let (channels, height, width) = expect_map(node, input)?;
    for (what, count) in [("input channels", channels), ("output channels", spec.out_channels)] {
        if count % spec.groups != 0 {
            return Err(ErrorKind::InvalidArgument {
                site: node.site(),
                argument: "groups".to_string(),
                expected: format!("a divisor of the {what}, {count}"),
                found: spec.groups.to_string(),
            }
            .into());
        }
    }

    let explicit = match spec.padding {
        Padding::Explicit(pair) => pair,
        Padding::Same => Pair::square(0),
    };
    let pad_h =
        conv_padding(spec.padding, spec.kernel.height, spec.dilation.height, explicit.height);
    let pad_w = conv_padding(spec.padding, spec.kernel.width, spec.dilation.width, explicit.width);
    let windows = [
        Window::new("height", height, spec.kernel.height, spec.stride.height)
            .padded(pad_h.0, pad_h.1)
            .dilated(spec.dilation.height),
        Window::new("width", width, spec.kernel.width, spec.stride.width)
            .padded(pad_w.0, pad_w.1)
            .dilated(spec.dilation.width),
    ];
    let out_height = window_output(node, &windows[0])?;
    let out_width = window_output(node, &windows[1])?;

    let (out, kh, kw) =
        (spec.out_channels as u64, spec.kernel.height as u64, spec.kernel.width as u64);
    let fan_in =
        product(node, "the weight count", &[channels as u64 / spec.groups as u64, kh, kw])?;
    let weights = product(node, "the weight count", &[out, fan_in])?;
    let outputs = product(node, "the output size", &[out, out_height as u64, out_width as u64])?;
    let macs = product(node, "the MAC count", &[outputs, fan_in])?;
    let biases = if spec.bias { out } else { 0 };

    Ok(Counts {
        shape: Shape::map(spec.out_channels, out_height, out_width),
        weights,
        biases,
        macs,
        field: field_through(node, input.receptive_field, &windows)?,
    })
}

fn pool(node: &Node, input: &Row, spec: PoolSpec) -> Result<Counts> {
    let (channels, height, width) = expect_map(node, input)?;
    let (pad_h, pad_w) = (spec.padding.height, spec.padding.width);
    let windows = [
        Window::new("height", height, spec.kernel.height, spec.stride.height)
            .padded(pad_h, 2 * pad_h as u128)
            .dilated(spec.dilation.height)
            .rounding_up(spec.ceil_mode),
        Window::new("width", width, spec.kernel.width, spec.stride.width)
            .padded(pad_w, 2 * pad_w as u128)
            .dilated(spec.dilation.width)
            .rounding_up(spec.ceil_mode),
    ];
    let out_height = window_output(node, &windows[0])?;
    let out_width = window_output(node, &windows[1])?;
    let field = field_through(node, input.receptive_field, &windows)?;
    Ok(Counts::free(Shape::map(channels, out_height, out_width), field))
}

/// `AdaptiveAvgPool2d`: output cell `i` averages input rows `floor(i n / out)` up to
/// `ceil((i + 1) n / out)`, exclusive. When `out` divides `n` this is a pool with
/// kernel = stride = `n / out`; otherwise the windows vary and the field reports the largest
/// window with the spacing of the first two.
fn adaptive_pool(node: &Node, input: &Row, size: Pair) -> Result<Counts> {
    let (channels, height, width) = expect_map(node, input)?;
    let shape = Shape::map(channels, size.height, size.width);
    let Some(field) = input.receptive_field else { return Ok(Counts::free(shape, None)) };

    let axis = |field: AxisField, n: usize, out: usize| -> Result<AxisField> {
        let kernel = largest_adaptive_window(n, out);
        let stride = (n / out).max(1);
        field.through(kernel, stride, 0, 1).ok_or_else(|| overflow(node, "the receptive field"))
    };
    let field = ReceptiveField {
        height: axis(field.height, height, size.height)?,
        width: axis(field.width, width, size.width)?,
    };
    Ok(Counts::free(shape, Some(field)))
}

/// Largest window of an adaptive pool from `n` cells to `out`. Exact up to 65,536 outputs;
/// beyond that it returns the bound `ceil(n / out) + 1`.
fn largest_adaptive_window(n: usize, out: usize) -> usize {
    let (n, out) = (n as u128, out as u128);
    if n % out == 0 {
        return (n / out) as usize;
    }
    if out > 1 << 16 {
        return (n.div_ceil(out) + 1) as usize;
    }
    let window = |i: u128| ((i + 1) * n).div_ceil(out) - i * n / out;
    (0..out).map(window).max().unwrap_or(1) as usize
}

fn linear(node: &Node, input: &Row, out_features: usize, bias: bool) -> Result<Counts> {
    let (steps, features) = match input.shape {
        Shape::Vector { features } => (None, features),
        Shape::Sequence { steps, features } => (Some(steps), features),
        found => {
            return Err(wrong_kind(
                node,
                input,
                "a feature vector or a sequence (flatten a map first)",
                found,
            ))
        }
    };
    let weights = product(node, "the weight count", &[features as u64, out_features as u64])?;
    let macs = product(node, "the MAC count", &[weights, steps.unwrap_or(1) as u64])?;
    let shape = match steps {
        Some(steps) => Shape::sequence(steps, out_features),
        None => Shape::vector(out_features),
    };
    let biases = if bias { out_features as u64 } else { 0 };
    Ok(Counts { shape, weights, biases, macs, field: None })
}

/// Batch normalisation learns a scale (counted as weights) and a shift (biases) per channel;
/// its running mean and variance are buffers and are not counted.
fn batchnorm(node: &Node, input: &Row) -> Result<Counts> {
    let channels = match input.shape {
        Shape::Map { channels, .. } => channels,
        Shape::Vector { features } => features,
        found => return Err(wrong_kind(node, input, "a feature map or a feature vector", found)),
    } as u64;
    Ok(Counts {
        weights: channels,
        biases: channels,
        ..Counts::free(input.shape, input.receptive_field)
    })
}

/// Settings of a `gru` node.
struct GruSizes {
    hidden_size: usize,
    input_size: Option<usize>,
    steps: Option<usize>,
    bias: bool,
}

/// Counts a single-layer GRU over every step. Weights are `3H (D + H)` and biases `6H`,
/// because PyTorch keeps both an input and a recurrent bias. MACs are `T * 3H (D + H)` for
/// the two matrix-vector products per step. Gate non-linearities and element-wise products
/// are not counted.
fn gru(node: &Node, input: &Row, sizes: GruSizes) -> Result<Counts> {
    let GruSizes { hidden_size, input_size, steps, bias } = sizes;
    let (found_steps, found_features) = match input.shape {
        Shape::Sequence { steps, features } => (steps, features),
        // A flat vector is read as steps x input_size when both are given and multiply to it.
        Shape::Vector { features } => match (steps, input_size) {
            (Some(t), Some(d)) if (t as u64).checked_mul(d as u64) == Some(features as u64) => {
                (t, d)
            }
            _ => {
                return Err(wrong_kind(
                    node,
                    input,
                    "a sequence, or a vector of steps * input features with both given",
                    input.shape,
                ))
            }
        },
        found => return Err(wrong_kind(node, input, "a sequence steps x features", found)),
    };
    for (argument, given, found) in
        [("input", input_size, found_features), ("steps", steps, found_steps)]
    {
        if given.is_some_and(|given| given != found) {
            return Err(ErrorKind::InvalidArgument {
                site: node.site(),
                argument: argument.to_string(),
                expected: format!(
                    "{found}, as the input `{}` has shape {}",
                    input.name, input.shape
                ),
                found: given.unwrap_or(0).to_string(),
            }
            .into());
        }
    }

    let (d, h, t) = (found_features as u64, hidden_size as u64, found_steps as u64);
    let gates = product(node, "the weight count", &[3, h])?;
    let fan_in = d.checked_add(h).ok_or_else(|| overflow(node, "the weight count"))?;
    let weights = product(node, "the weight count", &[gates, fan_in])?;
    let macs = product(node, "the MAC count", &[weights, t])?;
    let biases = if bias { product(node, "the bias count", &[6, h])? } else { 0 };
    Ok(Counts {
        shape: Shape::sequence(found_steps, hidden_size),
        weights,
        biases,
        macs,
        field: None,
    })
}

/// Short description of an operation for the table's `op` column.
fn describe(op: &Op) -> String {
    match op {
        Op::Conv2d(spec) => {
            let mut text = format!(
                "conv2d {}x{} s{} p{}",
                spec.kernel.height, spec.kernel.width, spec.stride, spec.padding
            );
            if spec.dilation != Pair::square(1) {
                text.push_str(&format!(" d{}", spec.dilation));
            }
            if spec.groups != 1 {
                text.push_str(&format!(" g{}", spec.groups));
            }
            if !spec.bias {
                text.push_str(" nobias");
            }
            text
        }
        Op::MaxPool(spec) | Op::AvgPool(spec) => {
            let mut text = format!(
                "{} {}x{} s{} p{}",
                op.name(),
                spec.kernel.height,
                spec.kernel.width,
                spec.stride,
                spec.padding
            );
            if spec.dilation != Pair::square(1) {
                text.push_str(&format!(" d{}", spec.dilation));
            }
            if spec.ceil_mode {
                text.push_str(" ceil");
            }
            text
        }
        Op::AdaptiveAvgPool(size) => format!("adaptive_avgpool {}x{}", size.height, size.width),
        Op::Dropout { p } => format!("dropout {p}"),
        Op::Gru { hidden_size, .. } => format!("gru {hidden_size}"),
        Op::Linear { bias: false, .. } => "linear nobias".to_string(),
        _ => op.name().to_string(),
    }
}
