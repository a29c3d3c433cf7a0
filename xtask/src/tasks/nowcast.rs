//! Placeholder until the nowcast tasks are written.

use crate::context::{Context, TaskOutput};

/// Placeholder.
pub fn run(_ctx: &Context) -> anyhow::Result<TaskOutput> {
    anyhow::bail!("not written yet")
}
