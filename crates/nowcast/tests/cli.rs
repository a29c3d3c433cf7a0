//! The `nowcast` binary end to end. `generate` writes a tiny synthetic set, and `train` fits the
//! per-hour models and the best model on it for one epoch. `evaluate` scores the checkpoints
//! and rejects missing or damaged ones with a message naming the file.

use std::path::Path;
use std::process::{Command, Output};

use tempfile::TempDir;

/// Size of the synthetic set relative to the real one: 230 / 93 / 112 sequences.
const TINY_SCALE: &str = "0.001";

fn nowcast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nowcast")).args(args).output().expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output, command: &str) {
    assert!(
        output.status.success(),
        "{command} failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Writes the tiny synthetic set into `dir` in the layout of the real files.
fn generate(dir: &Path) {
    let out = dir.to_str().expect("temp paths are UTF-8");
    let output = nowcast(&["generate", "--out", out, "--scale", TINY_SCALE]);
    assert_success(&output, "generate");
}

/// Trains `model` for one epoch on the data in `data` and returns the standard output.
fn train(model: &str, data: &Path, checkpoint: &Path) -> String {
    let output = nowcast(&[
        "train",
        "--model",
        model,
        "--data-dir",
        data.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "256",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    assert_success(&output, &format!("train --model {model}"));
    stdout(&output)
}

/// Parses V from the line "kept epoch E (validation MSE V)" of `train`'s output.
fn kept_validation_mse(train_output: &str) -> f64 {
    let line = train_output
        .lines()
        .find(|line| line.starts_with("kept epoch"))
        .unwrap_or_else(|| panic!("no \"kept epoch\" line in:\n{train_output}"));
    let value = line.rsplit("MSE ").next().unwrap().trim_end_matches(')');
    value.parse().unwrap_or_else(|_| panic!("not a number in {line:?}"))
}

/// Parses MSE, RMSE and MAE from the row of `evaluate`'s table that starts with `predictor`.
fn scores(evaluate_output: &str, predictor: &str) -> [f64; 3] {
    let line = evaluate_output
        .lines()
        .find(|line| line.starts_with(predictor))
        .unwrap_or_else(|| panic!("no {predictor:?} row in:\n{evaluate_output}"));
    let numbers: Vec<f64> = line[predictor.len()..]
        .split_whitespace()
        .take(3)
        .map(|field| field.parse().unwrap_or_else(|_| panic!("not a number in {line:?}")))
        .collect();
    [numbers[0], numbers[1], numbers[2]]
}

/// Generates data, trains `model` for one epoch, evaluates it and checks the numbers.
fn train_and_evaluate(model: &str) {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    generate(&data);
    let checkpoint = dir.path().join(format!("{model}.safetensors"));

    let trained = train(model, &data, &checkpoint);
    assert!(trained.starts_with(&format!("{model} model, ")), "{trained}");
    assert!(trained.contains("230 train / 93 validation sequences"), "{trained}");
    let validation_mse = kept_validation_mse(&trained);
    assert!(validation_mse.is_finite(), "{validation_mse}");
    assert!(validation_mse > 0.0, "{validation_mse}");
    assert!(checkpoint.is_file(), "no checkpoint at {}", checkpoint.display());

    let output = nowcast(&[
        "evaluate",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_success(&output, &format!("evaluate {model}"));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("{model} model on 112 test sequences (560 hours)")),
        "{text}"
    );

    let [mse, rmse, mae] = scores(&text, "model ");
    assert!(mse.is_finite(), "MSE {mse}");
    assert!(mse > 0.0, "MSE {mse}");
    // The table rounds to 4 decimals, so RMSE² matches the MSE to about 1e-3.
    assert!((rmse * rmse - mse).abs() < 1e-3 + 1e-3 * mse, "RMSE {rmse}, MSE {mse}");
    assert!(mae <= rmse + 1e-4, "MAE {mae} above RMSE {rmse}");

    let [majority_mse, _, _] = scores(&text, "majority value");
    assert!(majority_mse.is_finite(), "majority MSE {majority_mse}");
    assert!(majority_mse > 0.0, "majority MSE {majority_mse}");
    assert!(text.contains("model contingency scores:"), "{text}");
}

#[test]
fn ff_trains_and_evaluates() {
    train_and_evaluate("ff");
}

#[test]
fn dropout_trains_and_evaluates() {
    train_and_evaluate("dropout");
}

#[test]
fn cnn_trains_and_evaluates() {
    train_and_evaluate("cnn");
}

#[test]
fn best_trains_with_its_recipe() {
    let dir = TempDir::new().unwrap();
    let checkpoint = dir.path().join("best.safetensors");
    let output = nowcast(&[
        "train",
        "--model",
        "best",
        "--scale",
        TINY_SCALE,
        "--epochs",
        "1",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    assert_success(&output, "train --model best");
    let text = stdout(&output);
    assert!(text.starts_with("best model, 63301 parameters"), "{text}");

    // The keypoint schedule starts at 1e-4, where the GRU's constant recipe would use 0.01.
    let first_epoch = text.lines().find(|line| line.trim_start().starts_with("1 ")).unwrap();
    assert!(first_epoch.contains("1.00e-4"), "{first_epoch}");
    assert!(kept_validation_mse(&text).is_finite(), "{text}");
}

/// Runs `evaluate` on `checkpoint` and returns its standard error after checking that it
/// failed without a panic and named the file.
fn failed_evaluate(checkpoint: &Path) -> String {
    let output =
        nowcast(&["evaluate", "--checkpoint", checkpoint.to_str().unwrap(), "--scale", TINY_SCALE]);
    let message = stderr(&output);
    assert!(!output.status.success(), "evaluate succeeded on {}", checkpoint.display());
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(!message.contains("panicked"), "{message}");
    assert!(message.contains(checkpoint.to_str().unwrap()), "file not named: {message}");
    message
}

#[test]
fn evaluate_rejects_missing_checkpoint() {
    let dir = TempDir::new().unwrap();
    let message = failed_evaluate(&dir.path().join("absent.safetensors"));
    assert!(message.to_lowercase().contains("no such file"), "{message}");
}

#[test]
fn evaluate_rejects_corrupt_checkpoint() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("garbage.safetensors");
    std::fs::write(&path, b"this is not a safetensors file").unwrap();
    let message = failed_evaluate(&path);
    assert!(message.contains("not a valid safetensors file"), "{message}");
}

#[test]
fn evaluate_rejects_truncated_checkpoint() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    generate(&data);
    let path = dir.path().join("ff.safetensors");
    train("ff", &data, &path);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    let message = failed_evaluate(&path);
    assert!(message.contains("truncated or corrupt"), "{message}");
}
