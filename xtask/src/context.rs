//! The settings every reproduce task receives and the results it returns.

use std::path::PathBuf;

/// Settings shared by all tasks of one `reproduce` run.
#[derive(Debug, Clone)]
pub struct Context {
    /// Folder for the report and its pictures, such as `target/reproduce`.
    pub out_dir: PathBuf,
    /// Folder with data files given by `--data-dir` or `HANDGRAD_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// Folder where downloads are cached.
    pub cache_dir: PathBuf,
    /// Shrinks long work so that CI finishes in minutes.
    pub quick: bool,
    /// Share of every nowcasting split to use, when given by `--nowcast-scale`.
    pub nowcast_scale: Option<f64>,
}

/// One checked number: printed as a table row and written to the report.
#[derive(Debug, Clone)]
pub struct Check {
    /// Name of the measured quantity, such as `"dz/dw0"`.
    pub name: String,
    /// The value this run computed, formatted.
    pub value: String,
    /// The value it is checked against, with its tolerance, formatted.
    pub reference: String,
    /// Whether the value agrees with the reference.
    pub pass: bool,
}

impl Check {
    /// Compares `value` with `reference` to an absolute tolerance.
    pub fn close(name: &str, value: f64, reference: f64, tolerance: f64) -> Self {
        Self {
            name: name.to_string(),
            value: format!("{value:.10}"),
            reference: format!("{reference:.10} ± {tolerance:e}"),
            pass: (value - reference).abs() <= tolerance,
        }
    }

    /// Checks that `value` (an error or a loss, say) is below `limit`.
    pub fn below(name: &str, value: f64, limit: f64) -> Self {
        Self {
            name: name.to_string(),
            value: format!("{value:.3e}"),
            reference: format!("< {limit:e}"),
            pass: value < limit,
        }
    }
}

/// Checks, report section and skip reason produced by one task.
#[derive(Debug, Clone, Default)]
pub struct TaskOutput {
    /// Checked numbers, in the order they are printed.
    pub checks: Vec<Check>,
    /// The task's section of the report, Markdown, linking pictures by file name.
    pub markdown: String,
    /// Set when the task could not run (missing data with no network, say) and why.
    pub skipped: Option<String>,
}
