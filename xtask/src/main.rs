//! `cargo xtask`: reproduces the assignment and runs repository tools.

mod context;
mod plot;
mod tasks;

fn main() -> anyhow::Result<()> {
    let _ = tasks::ALL;
    Ok(())
}
