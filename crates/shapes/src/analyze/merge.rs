//! Merges of branches: `concat` along channels or features, and element-wise `add`.

use crate::error::{ErrorKind, Result, ShapeError};
use crate::field::ReceptiveField;
use crate::graph::{Node, Shape};
use crate::summary::Row;

use super::{overflow, Counts};

fn mismatch(
    node: &Node,
    what: &str,
    first: &Row,
    expected: String,
    input: &Row,
    found: String,
) -> ShapeError {
    ErrorKind::Mismatch {
        site: node.site(),
        op: node.op.name().to_string(),
        what: what.to_string(),
        first: first.name.clone(),
        expected,
        input: input.name.clone(),
        found,
    }
    .into()
}

/// Concatenates along channels (maps) or features (vectors, sequences); every other
/// dimension must agree.
pub(super) fn concat(node: &Node, inputs: &[&Row]) -> Result<Counts> {
    let first = inputs[0];
    let sum =
        |a: usize, b: usize| a.checked_add(b).ok_or_else(|| overflow(node, "the channel count"));
    let mut shape = first.shape;
    for input in &inputs[1..] {
        shape = match (shape, input.shape) {
            (
                Shape::Map { channels, height, width },
                Shape::Map { channels: more, height: h, width: w },
            ) => {
                if (h, w) != (height, width) {
                    let expected = format!("{height} x {width}");
                    return Err(mismatch(
                        node,
                        "height and width",
                        first,
                        expected,
                        input,
                        format!("{h} x {w}"),
                    ));
                }
                Shape::map(sum(channels, more)?, height, width)
            }
            (Shape::Vector { features }, Shape::Vector { features: more }) => {
                Shape::vector(sum(features, more)?)
            }
            (Shape::Sequence { steps, features }, Shape::Sequence { steps: t, features: more }) => {
                if t != steps {
                    return Err(mismatch(
                        node,
                        "steps",
                        first,
                        steps.to_string(),
                        input,
                        t.to_string(),
                    ));
                }
                Shape::sequence(steps, sum(features, more)?)
            }
            (_, found) => {
                return Err(mismatch(
                    node,
                    "kinds of shape",
                    first,
                    first.shape.to_string(),
                    input,
                    found.to_string(),
                ))
            }
        };
    }
    Ok(Counts::free(shape, merged_field(inputs)))
}

fn merged_field(inputs: &[&Row]) -> Option<ReceptiveField> {
    let fields: Option<Vec<ReceptiveField>> =
        inputs.iter().map(|row| row.receptive_field).collect();
    ReceptiveField::merge(&fields?)
}

/// Element-wise sum: every input must have the first input's shape, channels included.
pub(super) fn add(node: &Node, inputs: &[&Row]) -> Result<Counts> {
    let first = inputs[0];
    for input in &inputs[1..] {
        if input.shape == first.shape {
            continue;
        }
        let what = match (first.shape, input.shape) {
            (Shape::Map { channels: a, .. }, Shape::Map { channels: b, .. }) if a != b => {
                "channels"
            }
            (Shape::Map { .. }, Shape::Map { .. }) => "height and width",
            _ => "shapes",
        };
        return Err(mismatch(
            node,
            what,
            first,
            first.shape.to_string(),
            input,
            input.shape.to_string(),
        ));
    }
    Ok(Counts::free(first.shape, merged_field(inputs)))
}
