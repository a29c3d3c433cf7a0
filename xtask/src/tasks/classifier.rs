//! Placeholder until the classifier tasks are written.

use crate::context::{Context, TaskOutput};

/// Placeholder.
pub fn run_toy(_ctx: &Context) -> anyhow::Result<TaskOutput> {
    anyhow::bail!("not written yet")
}

/// Placeholder.
pub fn run_mnist(_ctx: &Context) -> anyhow::Result<TaskOutput> {
    anyhow::bail!("not written yet")
}
