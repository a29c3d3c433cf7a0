//! `cargo xtask`: reproduces the assignment and runs repository tools.
//!
//! - `cargo xtask reproduce [--quick] [--only TASK...] [--data-dir DIR]` runs every task, prints a
//!   table of checks and writes `target/reproduce/report.md` with its pictures.
//! - `cargo xtask shapes FILE` prints the summary table of an architecture description.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod context;
mod plot;
mod reproduce;
mod tasks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "handgrad repository tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the assignment's tasks, checks their numbers and writes a report with pictures.
    Reproduce(reproduce::ReproduceArgs),
    /// Prints shapes, parameters, multiply-accumulates and receptive fields of a description file.
    Shapes {
        /// Architecture description, such as architectures/assignment.txt.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Reproduce(args) => reproduce::run(&args),
        Command::Shapes { file } => tasks::shapes::shapes_command(&file).map(|table| {
            print!("{table}");
            true
        }),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {}", handgrad_data::report::describe(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The workspace root, one folder above this crate.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}
