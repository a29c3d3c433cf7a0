//! The registry of reproduce tasks.

use crate::context::{Context, TaskOutput};

/// A task's entry: its name for `--only`, a one-line title, and the function that runs it.
pub type TaskFn = fn(&Context) -> anyhow::Result<TaskOutput>;

/// Every task, in the order `reproduce` runs them.
pub const ALL: &[(&str, &str, TaskFn)] = &[];
