//! Receptive fields: which input pixels an output position of a feature map depends on.
//!
//! Per axis, a field is described by three numbers that follow a layer with kernel `k`,
//! stride `s`, left padding `p` and dilation `d` (effective kernel `k' = d (k - 1) + 1`):
//!
//! ```text
//! size_out  = size_in + (k' - 1) * jump_in
//! jump_out  = jump_in * s
//! start_out = start_in + ((k' - 1) / 2 - p) * jump_in
//! ```
//!
//! An input starts at size 1, jump 1, start 0: pixel `i` is centred at coordinate `i`.

use std::fmt;

/// Receptive field along one axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisField {
    /// Number of input pixels (padding included) that one output position depends on.
    pub size: u64,
    /// Distance in input pixels between the fields of neighbouring outputs: the product of
    /// all strides so far.
    pub jump: u64,
    /// Input coordinate of the centre of the first output's field; negative when the field
    /// reaches into the padding.
    pub start: f64,
}

impl AxisField {
    /// Returns the field of an input pixel, which is the pixel itself.
    pub fn input() -> Self {
        Self { size: 1, jump: 1, start: 0.0 }
    }

    /// Returns the field after a window of `kernel` taps spaced `dilation` apart, moved by `stride`,
    /// with `pad_left` zeros before the first pixel. `None` when a count overflows `u64`.
    pub fn through(
        self,
        kernel: usize,
        stride: usize,
        pad_left: usize,
        dilation: usize,
    ) -> Option<Self> {
        let span = (dilation as u64).checked_mul((kernel as u64).checked_sub(1)?)?;
        let size = self.size.checked_add(span.checked_mul(self.jump)?)?;
        let jump = self.jump.checked_mul(stride as u64)?;
        let shift = span as f64 / 2.0 - pad_left as f64;
        let start = self.start + shift * self.jump as f64;
        Some(Self { size, jump, start })
    }
}

/// Receptive field of a feature-map node, per axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceptiveField {
    /// Field along the height axis.
    pub height: AxisField,
    /// Field along the width axis.
    pub width: AxisField,
}

impl ReceptiveField {
    /// Returns the field of an input feature map.
    pub fn input() -> Self {
        Self { height: AxisField::input(), width: AxisField::input() }
    }

    /// Returns the field of a merge (`concat`, `add`): per axis, the largest field of the inputs, and
    /// that input's jump and start. Returns `None` for no inputs.
    pub fn merge(fields: &[ReceptiveField]) -> Option<Self> {
        let widest = |axis: fn(&ReceptiveField) -> AxisField| {
            fields
                .iter()
                .map(axis)
                .reduce(|best, next| if next.size > best.size { next } else { best })
        };
        Some(Self { height: widest(|f| f.height)?, width: widest(|f| f.width)? })
    }
}

/// Writes `a` when both axes agree, else `a x b`, each value formatted by `value`.
pub(crate) fn format_axes<T: PartialEq + fmt::Display>(height: T, width: T) -> String {
    if height == width {
        height.to_string()
    } else {
        format!("{height}x{width}")
    }
}

/// Writes a start coordinate without a trailing `.0` and without the sign of `-0.0`.
pub(crate) fn format_start(start: f64) -> String {
    let start = if start == 0.0 { 0.0 } else { start };
    if start.fract() == 0.0 {
        format!("{start:.0}")
    } else {
        format!("{start}")
    }
}
