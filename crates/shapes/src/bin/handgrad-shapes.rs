//! `handgrad-shapes FILE [--path NODE,NODE,...]...`: prints the shape, parameter, MAC and
//! receptive-field table of an architecture description, and sums over named node paths.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use handgrad_shapes::{analyze_file, ShapeError};

const USAGE: &str = "usage: handgrad-shapes FILE [--path NODE,NODE,...]...\n\
\n\
Prints each node's output shape, weights, biases, MACs and receptive field, then the totals.\n\
Each --path adds a line with the sums over the listed nodes.";

fn main() -> ExitCode {
    let mut file: Option<PathBuf> = None;
    let mut paths: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--path" => match args.next() {
                Some(list) => paths.push(list),
                None => return usage_error("--path needs a comma-separated list of node names"),
            },
            _ if file.is_none() && !arg.starts_with('-') => file = Some(PathBuf::from(arg)),
            _ => return usage_error(&format!("unexpected argument `{arg}`")),
        }
    }
    let Some(file) = file else { return usage_error("missing the description FILE") };

    match report(&file, &paths) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn report(file: &std::path::Path, paths: &[String]) -> Result<String, ShapeError> {
    let summary = analyze_file(file)?;
    let mut text = summary.render_table();
    for path in paths {
        let names: Vec<&str> = path.split(',').map(str::trim).collect();
        let totals = summary.path_total(&names)?;
        text.push_str(&format!(
            "Path {}: params {} (weights {}, biases {}), MACs {}\n",
            names.join(" + "),
            totals.params,
            totals.weights,
            totals.biases,
            totals.macs
        ));
    }
    Ok(text)
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}\n\n{USAGE}");
    ExitCode::from(2)
}
