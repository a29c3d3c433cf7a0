//! Placeholder until the T1 and T3 tasks are written.

use crate::context::{Context, TaskOutput};

/// Placeholder.
pub fn run_t1(_ctx: &Context) -> anyhow::Result<TaskOutput> {
    anyhow::bail!("not written yet")
}

/// Placeholder.
pub fn run_t3(_ctx: &Context) -> anyhow::Result<TaskOutput> {
    anyhow::bail!("not written yet")
}
