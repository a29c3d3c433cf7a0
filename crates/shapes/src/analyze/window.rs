//! Sliding windows along one axis: PyTorch's output-length rule for convolutions and pools,
//! and the receptive field after a window layer.

use crate::error::{ErrorKind, Result};
use crate::field::{AxisField, ReceptiveField};
use crate::graph::{Node, Padding};

use super::overflow;

/// Window geometry along one axis.
pub(super) struct Window {
    axis: &'static str,
    input: usize,
    kernel: usize,
    stride: usize,
    pad_left: usize,
    pad_total: u128,
    dilation: usize,
    ceil_mode: bool,
}

impl Window {
    pub(super) fn new(axis: &'static str, input: usize, kernel: usize, stride: usize) -> Self {
        Self {
            axis,
            input,
            kernel,
            stride,
            pad_left: 0,
            pad_total: 0,
            dilation: 1,
            ceil_mode: false,
        }
    }

    /// Pads `left` zeros before and `total - left` after.
    pub(super) fn padded(self, left: usize, total: u128) -> Self {
        Self { pad_left: left, pad_total: total, ..self }
    }

    pub(super) fn dilated(self, dilation: usize) -> Self {
        Self { dilation, ..self }
    }

    pub(super) fn rounding_up(self, ceil_mode: bool) -> Self {
        Self { ceil_mode, ..self }
    }
}

/// Output length of a sliding window, PyTorch's rule:
/// `out = floor((n + pad_total - d (k - 1) - 1 + (s - 1 if ceil mode)) / s) + 1`, and in ceil
/// mode one less when the last window would start beyond the input and its left padding,
/// `(out - 1) s >= n + pad_left`. So a ceil-mode window may overhang the padded input by
/// less than one stride.
pub(super) fn window_output(node: &Node, window: &Window) -> Result<usize> {
    let too_large = || overflow(node, "the window extent");
    let (n, s) = (window.input as i128, window.stride as i128);
    let pad_total = i128::try_from(window.pad_total).map_err(|_| too_large())?;
    let span =
        (window.dilation as i128).checked_mul(window.kernel as i128 - 1).ok_or_else(too_large)?;
    let free = n + pad_total - span - 1;
    let rounding = if window.ceil_mode { s - 1 } else { 0 };

    let mut out = (free + rounding).div_euclid(s) + 1;
    if window.ceil_mode && out > 0 && (out - 1) * s >= n + window.pad_left as i128 {
        out -= 1;
    }

    if out <= 0 {
        let mode = if window.ceil_mode { format!(" + ({s} - 1)") } else { String::new() };
        return Err(ErrorKind::NonPositiveSize {
            site: node.site(),
            op: node.op.name().to_string(),
            dimension: window.axis.to_string(),
            value: out,
            formula: format!(
                "floor(({n} + {pad_total} - {d}*({k} - 1) - 1{mode}) / {s}) + 1; the window spans \
                 {extent} pixels but the padded input has {padded}",
                d = window.dilation,
                k = window.kernel,
                extent = span + 1,
                padded = n + pad_total,
            ),
        }
        .into());
    }
    usize::try_from(out).map_err(|_| overflow(node, "the output size"))
}

/// Left and total padding of a convolution along one axis.
pub(super) fn conv_padding(
    padding: Padding,
    kernel: usize,
    dilation: usize,
    explicit: usize,
) -> (usize, u128) {
    match padding {
        Padding::Explicit(_) => (explicit, 2 * explicit as u128),
        Padding::Same => {
            let total = dilation as u128 * (kernel as u128 - 1);
            // The smaller half, at most `total / 2`, fits in usize whenever a result exists.
            ((total / 2).min(usize::MAX as u128) as usize, total)
        }
    }
}

pub(super) fn field_through(
    node: &Node,
    field: Option<ReceptiveField>,
    windows: &[Window; 2],
) -> Result<Option<ReceptiveField>> {
    let Some(field) = field else { return Ok(None) };
    let step = |axis: AxisField, w: &Window| {
        axis.through(w.kernel, w.stride, w.pad_left, w.dilation)
            .ok_or_else(|| overflow(node, "the receptive field"))
    };
    Ok(Some(ReceptiveField {
        height: step(field.height, &windows[0])?,
        width: step(field.width, &windows[1])?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Op;

    fn site_node() -> Node {
        Node { name: "n".into(), op: Op::Flatten, inputs: vec![], line: Some(1) }
    }

    #[test]
    fn ceil_mode_drops_window_starting_in_right_padding() {
        // n = 5, k = 2, s = 2, p = 1: ceil((5 + 2 - 1 - 1) / 2) + 1 = ceil(5 / 2) + 1 = 4,
        // but window 3 starts at 3 * 2 = 6 >= n + p = 6, so PyTorch keeps 3.
        let window = Window::new("height", 5, 2, 2).padded(1, 2).rounding_up(true);
        assert_eq!(window_output(&site_node(), &window).unwrap(), 3);
    }

    #[test]
    fn ceil_mode_rounds_up() {
        // n = 6, k = 3, s = 2, p = 0: floor(3 / 2) + 1 = 2, ceil(3 / 2) + 1 = 3.
        let mut window = Window::new("height", 6, 3, 2);
        assert_eq!(window_output(&site_node(), &window).unwrap(), 2);
        window.ceil_mode = true;
        assert_eq!(window_output(&site_node(), &window).unwrap(), 3);
    }

    #[test]
    fn window_larger_than_input_is_an_error() {
        let window = Window::new("width", 3, 5, 1);
        let error = window_output(&site_node(), &window).unwrap_err();
        assert!(matches!(error.kind(), ErrorKind::NonPositiveSize { .. }), "{error}");
        assert!(error.to_string().contains("line 1, node `n`"), "{error}");
    }
}
