//! `cargo xtask reproduce`: runs the tasks, prints their checks and writes the report.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _};

use crate::context::{Check, Context, TaskOutput};
use crate::tasks::{self, Task};

/// Options of `cargo xtask reproduce`.
#[derive(Debug, clap::Args)]
pub struct ReproduceArgs {
    /// Shrinks the MNIST search and nowcasting training so the run takes minutes (used by CI).
    #[arg(long)]
    quick: bool,

    /// Runs only these tasks (see --list); all of them by default.
    #[arg(long, num_args = 1..)]
    only: Vec<String>,

    /// Lists the tasks and exits.
    #[arg(long)]
    list: bool,

    /// Folder with MNIST IDX files and nowcasting pickles; downloads MNIST when it is missing.
    #[arg(long, env = "HANDGRAD_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// Folder for downloaded data [default: ~/.cache/handgrad].
    #[arg(long, env = "HANDGRAD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,

    /// Folder for report.md and its pictures [default: target/reproduce].
    #[arg(long)]
    out: Option<PathBuf>,

    /// Share of every nowcasting split to train and score on, above 0 and at most 1 [default:
    /// 0.1; with --quick, 400/150/150 synthetic sequences or 0.01 of the month files]. 1 uses
    /// the full size, about ten times as long as the default.
    #[arg(long, value_parser = parse_fraction, allow_hyphen_values = true)]
    nowcast_scale: Option<f64>,
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| format!("expected a number, found {text:?}"))?;
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(format!("expected a fraction above 0 and at most 1, found {value}"))
    }
}

/// One task's result as the summary needs it.
struct Finished {
    task: &'static Task,
    output: Result<TaskOutput, String>,
    seconds: f64,
}

/// Runs the selected tasks; returns whether every check passed and no task failed.
pub fn run(args: &ReproduceArgs) -> anyhow::Result<bool> {
    if args.list {
        for task in tasks::ALL {
            println!("{:<12} {}", task.name, task.title);
        }
        return Ok(true);
    }
    let selected = select(&args.only)?;
    let context = build_context(args)?;
    std::fs::create_dir_all(&context.out_dir)
        .with_context(|| format!("failed to create {}", context.out_dir.display()))?;

    let mut finished = Vec::new();
    for task in selected {
        println!("==> {} ({})", task.name, task.title);
        let start = Instant::now();
        let output =
            (task.run)(&context).map_err(|error| handgrad_data::report::describe(error.as_ref()));
        let seconds = start.elapsed().as_secs_f64();
        match &output {
            Ok(out) => print_checks(out),
            Err(message) => println!("    task failed: {message}"),
        }
        println!("    {seconds:.1} s");
        finished.push(Finished { task, output, seconds });
    }

    let all_passed = print_summary(&finished);
    let report = render_report(&context, &finished, all_passed);
    let report_path = context.out_dir.join("report.md");
    handgrad_data::atomic::write_atomic(&report_path, report.as_bytes())
        .with_context(|| format!("failed to write {}", report_path.display()))?;
    println!("report: {}", report_path.display());
    Ok(all_passed)
}

fn select(only: &[String]) -> anyhow::Result<Vec<&'static Task>> {
    if only.is_empty() {
        return Ok(tasks::ALL.iter().collect());
    }
    let mut selected = Vec::new();
    for name in only {
        match tasks::ALL.iter().find(|task| task.name == name) {
            Some(task) => selected.push(task),
            None => {
                let names: Vec<&str> = tasks::ALL.iter().map(|task| task.name).collect();
                bail!("unknown task {name:?}; expected one of: {}", names.join(", "));
            }
        }
    }
    Ok(selected)
}

fn build_context(args: &ReproduceArgs) -> anyhow::Result<Context> {
    let out_dir =
        args.out.clone().unwrap_or_else(|| crate::workspace_root().join("target/reproduce"));
    if let Some(dir) = &args.data_dir {
        if !dir.is_dir() {
            bail!("--data-dir {}: expected a folder, found none there", dir.display());
        }
    }
    let cache_dir = match &args.cache_dir {
        Some(dir) => dir.clone(),
        None => default_cache_dir()?,
    };
    Ok(Context {
        out_dir,
        data_dir: args.data_dir.clone(),
        cache_dir,
        quick: args.quick,
        nowcast_scale: args.nowcast_scale,
    })
}

fn default_cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("handgrad"));
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".cache/handgrad")),
        None => bail!("no cache folder: set --cache-dir, HANDGRAD_CACHE_DIR or HOME"),
    }
}

fn print_checks(output: &TaskOutput) {
    if let Some(reason) = &output.skipped {
        println!("    skipped: {reason}");
    }
    for check in &output.checks {
        let verdict = if check.pass { "pass" } else { "FAIL" };
        println!("    {verdict}  {}: {} (reference {})", check.name, check.value, check.reference);
    }
}

fn print_summary(finished: &[Finished]) -> bool {
    println!();
    println!("{:<12} {:<34} {:>22} {:>30} {:>6}", "task", "check", "value", "reference", "result");
    let mut all_passed = true;
    for item in finished {
        match &item.output {
            Ok(output) => {
                for check in &output.checks {
                    all_passed &= check.pass;
                    println!("{}", summary_row(item.task.name, check));
                }
                if let Some(reason) = &output.skipped {
                    println!("{:<12} skipped: {reason}", item.task.name);
                }
            }
            Err(message) => {
                all_passed = false;
                println!("{:<12} task failed: {message}", item.task.name);
            }
        }
    }
    let verdict = if all_passed { "all checks passed" } else { "some checks FAILED" };
    println!("{verdict}");
    all_passed
}

fn summary_row(task: &str, check: &Check) -> String {
    let verdict = if check.pass { "pass" } else { "FAIL" };
    format!(
        "{task:<12} {:<34} {:>22} {:>30} {verdict:>6}",
        truncate(&check.name, 34),
        truncate(&check.value, 22),
        truncate(&check.reference, 30)
    )
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let kept: String = text.chars().take(width - 1).collect();
    format!("{kept}…")
}

fn render_report(context: &Context, finished: &[Finished], all_passed: bool) -> String {
    let mut report = String::from("# handgrad: reproduction report\n\n");
    let mode = if context.quick { "quick (reduced MNIST search and nowcasting)" } else { "full" };
    let _ = writeln!(report, "Mode: {mode}. Result: {}.\n", pass_text(all_passed));
    report.push_str("| task | check | value | reference | result |\n|---|---|---|---|---|\n");
    for item in finished {
        if let Ok(output) = &item.output {
            for check in &output.checks {
                let _ = writeln!(
                    report,
                    "| {} | {} | {} | {} | {} |",
                    item.task.name,
                    check.name,
                    check.value,
                    check.reference,
                    pass_text(check.pass)
                );
            }
        }
    }
    for item in finished {
        let _ = write!(report, "\n## {}: {}\n\n", item.task.name, item.task.title);
        let _ = writeln!(report, "Run time: {:.1} s.\n", item.seconds);
        match &item.output {
            Ok(output) => {
                if let Some(reason) = &output.skipped {
                    let _ = writeln!(report, "Skipped: {reason}\n");
                }
                report.push_str(&output.markdown);
                report.push('\n');
            }
            Err(message) => {
                let _ = writeln!(report, "The task failed: {message}");
            }
        }
    }
    report
}

fn pass_text(pass: bool) -> &'static str {
    if pass {
        "pass"
    } else {
        "FAIL"
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ReproduceArgs,
    }

    #[test]
    fn missing_data_dir_is_rejected() {
        let dir = "/nonexistent/handgrad-data";
        let cli = Cli::try_parse_from(["reproduce", "--data-dir", dir]).unwrap();
        let error = build_context(&cli.args).unwrap_err().to_string();
        assert!(error.contains(&format!("--data-dir {dir}: expected a folder")), "{error}");
    }

    #[test]
    fn nowcast_scale_outside_zero_to_one_is_rejected() {
        for value in ["0", "-1", "2", "nan", "abc"] {
            let parsed = Cli::try_parse_from(["reproduce", "--nowcast-scale", value]);
            assert!(parsed.is_err(), "{value} was accepted");
        }
        let cli = Cli::try_parse_from(["reproduce", "--nowcast-scale", "0.5"]).unwrap();
        assert_eq!(cli.args.nowcast_scale, Some(0.5));
    }
}
