//! Parser of the text description format (`docs/shapes-format.md`):
//!
//! ```text
//! x = input(c=3, h=100, w=100)   # one node per line, comments after `#`
//! A = conv2d(x, out=5, k=3)      # inputs by name, settings as key=value
//! relu                           # no name: called `relu_3` after its line; input: the line above
//! ```

use std::path::Path;

use crate::error::{ErrorKind, Result, ShapeError, Site};
use crate::graph::{Activation, Conv2dSpec, Graph, Node, Op, Padding, Pair, PoolSpec, Shape};

/// Operation names accepted in descriptions, with their aliases, for error messages.
const KNOWN_OPS: &str = "input, conv2d (conv), maxpool, avgpool, gap (global_avgpool), \
adaptive_avgpool, linear (fc, dense), flatten, batchnorm (bn), relu, leaky_relu, elu, gelu, \
sigmoid, tanh, softmax, dropout, concat (cat), add, gru, last";

/// Parses a description into a checked [`Graph`].
///
/// # Errors
/// Any [`ShapeError`] about syntax, operations, arguments, names or inputs, naming the line.
/// Shapes are not checked here but by [`analyze`](crate::analyze).
///
/// # Example
/// ```
/// let graph = handgrad_shapes::parse("x = input(c=1, h=8, w=8)\nconv2d(out=4, k=3)")?;
/// assert_eq!(graph.nodes().len(), 2);
/// # Ok::<(), handgrad_shapes::ShapeError>(())
/// ```
pub fn parse(text: &str) -> Result<Graph> {
    let mut nodes: Vec<Node> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_number = index + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let previous = nodes.last().map(|node| node.name.clone());
        nodes.push(parse_line(content, line_number, previous)?);
    }
    Graph::new(nodes)
}

/// Reads and parses a description file; errors carry the file's path.
///
/// # Errors
/// [`ErrorKind::Io`] when the file cannot be read, else, inside
/// [`ErrorKind::InFile`], a syntax error naming the line and byte offset of text that is
/// not UTF-8 or the [`parse`] error.
pub fn parse_file(path: &Path) -> Result<Graph> {
    let bytes = std::fs::read(path)
        .map_err(|error| ErrorKind::Io { path: path.to_path_buf(), message: error.to_string() })?;
    let in_file = |error| ErrorKind::InFile { path: path.to_path_buf(), error }.into();
    let text = std::str::from_utf8(&bytes).map_err(|error| in_file(not_utf8(&bytes, &error)))?;
    parse(text).map_err(in_file)
}

/// Names the line and byte offset of the first byte that is not UTF-8.
fn not_utf8(bytes: &[u8], error: &std::str::Utf8Error) -> ShapeError {
    let offset = error.valid_up_to();
    let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
    ErrorKind::Syntax {
        site: Site::new(Some(line), ""),
        expected: "UTF-8 text".to_string(),
        found: format!("byte 0x{:02x} at offset {offset}", bytes[offset]),
    }
    .into()
}

/// One `key=value` setting with the spelling the line used.
struct Setting {
    key: String,
    value: String,
    used: bool,
}

/// The parts of one line before the operation interprets them.
struct Statement {
    site: Site,
    op: String,
    inputs: Vec<String>,
    settings: Vec<Setting>,
}

fn parse_line(content: &str, line: usize, previous: Option<String>) -> Result<Node> {
    let (name, call) = split_name(content, line)?;
    let (op, arguments) = split_call(call, line, name.as_deref().unwrap_or(""))?;
    let op = op.to_ascii_lowercase();
    let name = name.unwrap_or_else(|| format!("{op}_{line}"));
    let site = Site::new(Some(line), &name);

    let mut statement = Statement { site, op, inputs: Vec::new(), settings: Vec::new() };
    for argument in arguments {
        read_argument(&mut statement, argument)?;
    }

    let op = build_op(&mut statement)?;
    reject_unused(&statement)?;

    let mut inputs = std::mem::take(&mut statement.inputs);
    if inputs.is_empty() && !matches!(op, Op::Input(_)) && !op.is_merge() {
        match previous {
            Some(previous) => inputs.push(previous),
            None => {
                return Err(ErrorKind::MissingInput {
                    site: statement.site,
                    op: statement.op.clone(),
                }
                .into())
            }
        }
    }
    Ok(Node { name, op, inputs, line: Some(line) })
}

fn syntax(line: usize, node: &str, expected: &str, found: &str) -> ShapeError {
    ErrorKind::Syntax {
        site: Site::new(Some(line), node),
        expected: expected.to_string(),
        found: format!("`{found}`"),
    }
    .into()
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Splits `name = call` when an `=` comes before any `(`.
fn split_name(content: &str, line: usize) -> Result<(Option<String>, &str)> {
    let equals = content.find('=');
    let paren = content.find('(');
    let Some(equals) = equals.filter(|&e| paren.is_none_or(|p| e < p)) else {
        return Ok((None, content));
    };

    let name = content[..equals].trim();
    if !is_identifier(name) {
        let expected = "a node name (a letter or `_`, then letters, digits, `_` or `.`)";
        return Err(syntax(line, "", expected, name));
    }
    Ok((Some(name.to_string()), content[equals + 1..].trim()))
}

/// Splits `op(arg, arg)` or a bare `op` into the operation and its arguments.
fn split_call<'a>(call: &'a str, line: usize, node: &str) -> Result<(&'a str, Vec<&'a str>)> {
    let Some(open) = call.find('(') else {
        if !is_identifier(call) {
            return Err(syntax(line, node, "an operation such as `conv2d(...)`", call));
        }
        return Ok((call, Vec::new()));
    };

    let op = call[..open].trim();
    if !is_identifier(op) {
        return Err(syntax(line, node, "an operation name before `(`", op));
    }
    let rest = &call[open + 1..];
    let Some(close) = rest.find(')') else {
        return Err(syntax(line, node, "`)` closing the argument list", call));
    };
    let trailing = rest[close + 1..].trim();
    if !trailing.is_empty() {
        return Err(syntax(line, node, "the end of the line after `)`", trailing));
    }

    let inner = rest[..close].trim();
    if inner.is_empty() {
        return Ok((op, Vec::new()));
    }
    Ok((op, inner.split(',').map(str::trim).collect()))
}

fn read_argument(statement: &mut Statement, argument: &str) -> Result<()> {
    let line = statement.site.line.unwrap_or(0);
    let node = statement.site.node.clone();
    if argument.is_empty() {
        return Err(syntax(line, &node, "an argument between commas", argument));
    }

    let Some((key, value)) = argument.split_once('=') else {
        if !is_identifier(argument) {
            return Err(syntax(line, &node, "an input name or `key=value`", argument));
        }
        statement.inputs.push(argument.to_string());
        return Ok(());
    };

    let (key, value) = (key.trim(), value.trim());
    if !is_identifier(key) || value.is_empty() {
        return Err(syntax(line, &node, "`key=value`", argument));
    }
    statement.settings.push(Setting {
        key: key.to_ascii_lowercase(),
        value: value.to_string(),
        used: false,
    });
    Ok(())
}

fn reject_unused(statement: &Statement) -> Result<()> {
    let Some(setting) = statement.settings.iter().find(|setting| !setting.used) else {
        return Ok(());
    };
    Err(ErrorKind::UnknownArgument {
        site: statement.site.clone(),
        op: statement.op.clone(),
        argument: setting.key.clone(),
        allowed: allowed_arguments(&statement.op).to_string(),
    }
    .into())
}

fn allowed_arguments(op: &str) -> &'static str {
    match op {
        "input" => "shape (CxHxW, TxF or F), or c, h, w, or steps and features",
        "conv2d" | "conv" => "out, k, s, p (a size or `same`), d, groups, bias",
        "maxpool" => "k, s, p, d, ceil",
        "avgpool" => "k, s, p, ceil",
        "adaptive_avgpool" => "out",
        "linear" | "fc" | "dense" => "out, bias",
        "dropout" => "p",
        "gru" => "hidden, input, steps, bias",
        _ => "no arguments besides its inputs",
    }
}

impl Statement {
    /// Takes the setting spelled as any of `keys`, marking it read.
    fn take(&mut self, keys: &[&str]) -> Result<Option<String>> {
        let mut found: Option<String> = None;
        for setting in self.settings.iter_mut().filter(|s| keys.contains(&s.key.as_str())) {
            if found.is_some() {
                return Err(ErrorKind::DuplicateArgument {
                    site: self.site.clone(),
                    argument: setting.key.clone(),
                }
                .into());
            }
            setting.used = true;
            found = Some(setting.value.clone());
        }
        Ok(found)
    }

    fn invalid(&self, argument: &str, expected: &str, found: &str) -> ShapeError {
        ErrorKind::InvalidArgument {
            site: self.site.clone(),
            argument: argument.to_string(),
            expected: expected.to_string(),
            found: format!("`{found}`"),
        }
        .into()
    }

    fn required(&mut self, keys: &[&str]) -> Result<String> {
        self.take(keys)?.ok_or_else(|| {
            ErrorKind::MissingArgument {
                site: self.site.clone(),
                op: self.op.clone(),
                argument: keys[0].to_string(),
            }
            .into()
        })
    }

    fn integer(&self, key: &str, value: &str) -> Result<usize> {
        value.parse::<usize>().map_err(|_| self.invalid(key, "a non-negative integer", value))
    }

    /// Reads `n` or `HxW`.
    fn pair(&self, key: &str, value: &str) -> Result<Pair> {
        let parts: Vec<&str> = value.split('x').collect();
        let parse = |text: &str| {
            text.trim()
                .parse::<usize>()
                .map_err(|_| self.invalid(key, "an integer `n` or a pair `HxW`", value))
        };
        match parts.as_slice() {
            [single] => Ok(Pair::square(parse(single)?)),
            [height, width] => Ok(Pair::new(parse(height)?, parse(width)?)),
            _ => Err(self.invalid(key, "an integer `n` or a pair `HxW`", value)),
        }
    }

    fn boolean(&self, key: &str, value: &str) -> Result<bool> {
        match value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(self.invalid(key, "`true` or `false`", value)),
        }
    }

    fn integer_or(&mut self, keys: &[&str], default: usize) -> Result<usize> {
        match self.take(keys)? {
            Some(value) => self.integer(keys[0], &value),
            None => Ok(default),
        }
    }

    fn optional_integer(&mut self, keys: &[&str]) -> Result<Option<usize>> {
        match self.take(keys)? {
            Some(value) => self.integer(keys[0], &value).map(Some),
            None => Ok(None),
        }
    }

    fn pair_or(&mut self, keys: &[&str], default: Pair) -> Result<Pair> {
        match self.take(keys)? {
            Some(value) => self.pair(keys[0], &value),
            None => Ok(default),
        }
    }

    fn boolean_or(&mut self, keys: &[&str], default: bool) -> Result<bool> {
        match self.take(keys)? {
            Some(value) => self.boolean(keys[0], &value),
            None => Ok(default),
        }
    }
}

fn build_op(statement: &mut Statement) -> Result<Op> {
    let op = statement.op.clone();
    let activation = |kind| Ok(Op::Activation(kind));
    match op.as_str() {
        "input" => build_input(statement),
        "conv2d" | "conv" => build_conv(statement),
        "maxpool" | "maxpool2d" => Ok(Op::MaxPool(build_pool(statement, true)?)),
        "avgpool" | "avgpool2d" => Ok(Op::AvgPool(build_pool(statement, false)?)),
        "gap" | "global_avgpool" => Ok(Op::GlobalAvgPool),
        "adaptive_avgpool" => {
            let value = statement.required(&["out", "output_size"])?;
            Ok(Op::AdaptiveAvgPool(statement.pair("out", &value)?))
        }
        "linear" | "fc" | "dense" => {
            let value = statement.required(&["out", "out_features"])?;
            let out_features = statement.integer("out", &value)?;
            let bias = statement.boolean_or(&["bias"], true)?;
            Ok(Op::Linear { out_features, bias })
        }
        "flatten" => Ok(Op::Flatten),
        "batchnorm" | "bn" => Ok(Op::BatchNorm),
        "relu" => activation(Activation::Relu),
        "leaky_relu" => activation(Activation::LeakyRelu),
        "elu" => activation(Activation::Elu),
        "gelu" => activation(Activation::Gelu),
        "sigmoid" => activation(Activation::Sigmoid),
        "tanh" => activation(Activation::Tanh),
        "softmax" => activation(Activation::Softmax),
        "dropout" => build_dropout(statement),
        "concat" | "cat" => Ok(Op::Concat),
        "add" => Ok(Op::Add),
        "gru" => build_gru(statement),
        "last" => Ok(Op::LastStep),
        _ => Err(ErrorKind::UnknownOperation {
            site: statement.site.clone(),
            op,
            known: KNOWN_OPS.to_string(),
        }
        .into()),
    }
}

fn build_input(statement: &mut Statement) -> Result<Op> {
    if let Some(value) = statement.take(&["shape"])? {
        let expected = "`CxHxW`, `TxF` (steps x features) or `F`";
        let dims: Vec<usize> = value
            .split('x')
            .map(|part| part.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| statement.invalid("shape", expected, &value))?;
        return match dims.as_slice() {
            [features] => Ok(Op::Input(Shape::vector(*features))),
            [steps, features] => Ok(Op::Input(Shape::sequence(*steps, *features))),
            [c, h, w] => Ok(Op::Input(Shape::map(*c, *h, *w))),
            _ => Err(statement.invalid("shape", expected, &value)),
        };
    }

    let features = statement.optional_integer(&["features", "f"])?;
    let steps = statement.optional_integer(&["steps", "t"])?;
    match (steps, features) {
        (Some(steps), Some(features)) => return Ok(Op::Input(Shape::sequence(steps, features))),
        (None, Some(features)) => return Ok(Op::Input(Shape::vector(features))),
        (Some(_), None) => {
            return Err(ErrorKind::MissingArgument {
                site: statement.site.clone(),
                op: statement.op.clone(),
                argument: "features".to_string(),
            }
            .into())
        }
        (None, None) => {}
    }

    let channels = statement.required(&["c", "channels"])?;
    let height = statement.required(&["h", "height"])?;
    let width = statement.required(&["w", "width"])?;
    Ok(Op::Input(Shape::map(
        statement.integer("c", &channels)?,
        statement.integer("h", &height)?,
        statement.integer("w", &width)?,
    )))
}

fn build_conv(statement: &mut Statement) -> Result<Op> {
    let out = statement.required(&["out", "out_channels"])?;
    let out_channels = statement.integer("out", &out)?;
    let kernel = statement.required(&["k", "kernel", "kernel_size"])?;
    let kernel = statement.pair("k", &kernel)?;
    let stride = statement.pair_or(&["s", "stride"], Pair::square(1))?;
    let padding = match statement.take(&["p", "padding"])? {
        Some(value) if value.eq_ignore_ascii_case("same") => Padding::Same,
        Some(value) => Padding::Explicit(statement.pair("p", &value)?),
        None => Padding::Explicit(Pair::square(0)),
    };
    let dilation = statement.pair_or(&["d", "dilation"], Pair::square(1))?;
    let groups = statement.integer_or(&["groups", "g"], 1)?;
    let bias = statement.boolean_or(&["bias"], true)?;
    Ok(Op::Conv2d(Conv2dSpec { out_channels, kernel, stride, padding, dilation, groups, bias }))
}

fn build_pool(statement: &mut Statement, dilation_allowed: bool) -> Result<PoolSpec> {
    let kernel = statement.required(&["k", "kernel", "kernel_size"])?;
    let kernel = statement.pair("k", &kernel)?;
    let stride = statement.pair_or(&["s", "stride"], kernel)?;
    let padding = statement.pair_or(&["p", "padding"], Pair::square(0))?;
    let dilation = if dilation_allowed {
        statement.pair_or(&["d", "dilation"], Pair::square(1))?
    } else {
        Pair::square(1)
    };
    let ceil_mode = statement.boolean_or(&["ceil", "ceil_mode"], false)?;
    Ok(PoolSpec { kernel, stride, padding, dilation, ceil_mode })
}

fn build_dropout(statement: &mut Statement) -> Result<Op> {
    let p = match statement.take(&["p"])? {
        Some(value) => value
            .parse::<f64>()
            .map_err(|_| statement.invalid("p", "a probability in [0, 1]", &value))?,
        None => 0.5,
    };
    Ok(Op::Dropout { p })
}

fn build_gru(statement: &mut Statement) -> Result<Op> {
    let hidden = statement.required(&["hidden", "hidden_size"])?;
    let hidden_size = statement.integer("hidden", &hidden)?;
    let input_size = statement.optional_integer(&["input", "input_size"])?;
    let steps = statement.optional_integer(&["steps"])?;
    let bias = statement.boolean_or(&["bias"], true)?;
    Ok(Op::Gru { hidden_size, input_size, steps, bias })
}
