//! The result of an analysis: one row per node, totals, sums over chosen nodes, and a
//! printed table in the manner of torchinfo.

use std::fmt::Write as _;

use crate::error::{ErrorKind, Result, ShapeError};
use crate::field::{format_axes, format_start, ReceptiveField};
use crate::graph::Shape;

/// Analysis result for one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Node name.
    pub name: String,
    /// Operation with its main settings, such as `conv2d 3x3 s1 p0`.
    pub op: String,
    /// Names of the nodes it reads.
    pub inputs: Vec<String>,
    /// Line in the description text, absent for built graphs.
    pub line: Option<usize>,
    /// Output shape of one sample.
    pub shape: Shape,
    /// Learned multiplicative parameters: kernels, matrices, batch-norm scales.
    pub weights: u64,
    /// Learned additive parameters: biases, batch-norm shifts.
    pub biases: u64,
    /// Multiply-accumulates for one sample (conventions in `docs/shapes-ops.md`).
    pub macs: u64,
    /// Receptive field in the coordinates of the input the node descends from; `None` for
    /// vectors and sequences.
    pub receptive_field: Option<ReceptiveField>,
}

impl Row {
    /// Weights plus biases.
    pub fn params(&self) -> u64 {
        self.weights.saturating_add(self.biases)
    }
}

/// Sums over a set of nodes, from [`Summary::path_total`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathTotals {
    /// Summed weights.
    pub weights: u64,
    /// Summed biases.
    pub biases: u64,
    /// Summed weights and biases.
    pub params: u64,
    /// Summed multiply-accumulates.
    pub macs: u64,
}

/// Per-node rows and totals of an analysed graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// One row per node, in definition order.
    pub rows: Vec<Row>,
    /// Total weights.
    pub weights: u64,
    /// Total biases.
    pub biases: u64,
    /// Total parameters, weights plus biases.
    pub params: u64,
    /// Total multiply-accumulates for one sample.
    pub macs: u64,
}

impl Summary {
    pub(crate) fn from_rows(rows: Vec<Row>) -> Result<Self> {
        let names: Vec<&str> = rows.iter().map(|row| row.name.as_str()).collect();
        let totals = sum_rows(&rows, &names)?;
        Ok(Self {
            weights: totals.weights,
            biases: totals.biases,
            params: totals.params,
            macs: totals.macs,
            rows,
        })
    }

    /// Returns the row of the node called `name`.
    pub fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|row| row.name == name)
    }

    /// Sums weights, biases, parameters and MACs over the named nodes; a name given twice
    /// counts twice.
    ///
    /// # Errors
    /// [`ErrorKind::UnknownNode.into()`] for a name without a row, [`ErrorKind::Overflow.into()`] when
    /// a sum exceeds `u64`.
    pub fn path_total(&self, names: &[&str]) -> Result<PathTotals> {
        for name in names {
            if self.row(name).is_none() {
                return Err(ErrorKind::UnknownNode { name: (*name).to_string() }.into());
            }
        }
        sum_rows(&self.rows, names)
    }

    /// Formats the summary as a table: node, operation, output shape, weights, biases, MACs
    /// and receptive field size, jump and start, then the totals.
    pub fn render_table(&self) -> String {
        let header =
            ["node", "op", "output", "weights", "biases", "MACs", "RF size", "jump", "start"];
        let mut cells: Vec<[String; 9]> = vec![header.map(String::from)];
        for row in &self.rows {
            cells.push(row_cells(row));
        }

        let mut widths = [0usize; 9];
        for line in &cells {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let total_width = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);

        let mut out = String::new();
        let rule = |c: char| c.to_string().repeat(total_width);
        let _ = writeln!(out, "{}", rule('='));
        for (index, line) in cells.iter().enumerate() {
            let _ = writeln!(out, "{}", format_line(line, &widths));
            if index == 0 {
                let _ = writeln!(out, "{}", rule('-'));
            }
        }
        let _ = writeln!(out, "{}", rule('='));
        self.write_totals(&mut out);
        let _ = writeln!(out, "{}", rule('='));
        out
    }

    fn write_totals(&self, out: &mut String) {
        let mib = self.params as f64 * 4.0 / (1024.0 * 1024.0);
        let _ = writeln!(out, "Total params: {}", group_digits(self.params));
        let _ = writeln!(out, "  weights: {}", group_digits(self.weights));
        let _ = writeln!(out, "  biases: {}", group_digits(self.biases));
        let _ = writeln!(
            out,
            "Total MACs: {} ({:.3} G)",
            group_digits(self.macs),
            self.macs as f64 / 1e9
        );
        let _ = writeln!(out, "Parameter memory as f32: {mib:.2} MiB");
    }
}

fn sum_rows(rows: &[Row], names: &[&str]) -> Result<PathTotals> {
    let overflow = || -> ShapeError {
        ErrorKind::Overflow {
            site: crate::error::Site::new(None, names.first().copied().unwrap_or("")),
            quantity: "the summed counts".to_string(),
        }
        .into()
    };
    let mut totals = PathTotals::default();
    for name in names {
        let Some(row) = rows.iter().find(|row| row.name == *name) else { continue };
        totals.weights = totals.weights.checked_add(row.weights).ok_or_else(overflow)?;
        totals.biases = totals.biases.checked_add(row.biases).ok_or_else(overflow)?;
        totals.macs = totals.macs.checked_add(row.macs).ok_or_else(overflow)?;
    }
    totals.params = totals.weights.checked_add(totals.biases).ok_or_else(overflow)?;
    Ok(totals)
}

fn row_cells(row: &Row) -> [String; 9] {
    let (size, jump, start) = match row.receptive_field {
        Some(field) => (
            format_axes(field.height.size, field.width.size),
            format_axes(field.height.jump, field.width.jump),
            format_axes(format_start(field.height.start), format_start(field.width.start)),
        ),
        None => ("-".to_string(), "-".to_string(), "-".to_string()),
    };
    let op = if row.inputs.len() > 1 {
        format!("{}({})", row.op, row.inputs.join(", "))
    } else {
        row.op.clone()
    };
    [
        row.name.clone(),
        op,
        row.shape.to_string(),
        group_digits(row.weights),
        group_digits(row.biases),
        group_digits(row.macs),
        size,
        jump,
        start,
    ]
}

/// Left-aligns the text columns (node, op, output) and right-aligns the numbers.
fn format_line(cells: &[String; 9], widths: &[usize; 9]) -> String {
    let mut line = String::new();
    for (index, (cell, &width)) in cells.iter().zip(widths).enumerate() {
        if index > 0 {
            line.push_str("  ");
        }
        if index < 3 {
            let _ = write!(line, "{cell:<width$}");
        } else {
            let _ = write!(line, "{cell:>width$}");
        }
    }
    line.trim_end().to_string()
}

/// Writes `1234567` as `1,234,567`.
pub fn group_digits(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::group_digits;

    #[test]
    fn digits_grouped_by_thousands() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(61_100_840), "61,100,840");
    }
}
