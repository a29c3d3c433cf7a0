//! The `nowcast` binary end to end. `generate` writes a tiny synthetic set, and `train` fits the
//! per-hour models and the best model on it for one epoch. `evaluate` scores the checkpoints
//! and rejects missing or damaged ones with a message naming the file. Bad flags, empty
//! splits, unusable destinations and bad `predict` inputs fail with exit code 1 and a message
//! naming the flag or file, before any training.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use ndarray::{ArrayD, IxDyn};

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

/// Checks that `output` failed with exit code 1, without a panic, and returns its standard error.
fn failure(output: &Output) -> String {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stdout:\n{}\nstderr:\n{message}", stdout(output));
    assert!(!message.contains("panicked"), "{message}");
    message
}

/// Replaces the files of `month` in `dir` by arrays of 0 sequences.
fn empty_month(dir: &Path, month: u32) {
    let features = ArrayD::<f32>::zeros(IxDyn(&[0, 5, 5, 5, 3]));
    let labels = ArrayD::<f32>::zeros(IxDyn(&[0, 5]));
    let features_path = dir.join(format!("features-m{month}.npy"));
    handgrad_data::npy::write_npy_f32(&features_path, &features.view()).unwrap();
    let labels_path = dir.join(format!("labels-m{month}.npy"));
    handgrad_data::npy::write_npy_f32(&labels_path, &labels.view()).unwrap();
}

#[test]
fn empty_splits_are_rejected_by_name() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    generate(&data);
    let checkpoint = dir.path().join("ff.safetensors");
    train("ff", &data, &checkpoint);

    empty_month(&data, 10);
    let data_arg = data.to_str().unwrap();
    let output = nowcast(&[
        "evaluate",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--data-dir",
        data_arg,
    ]);
    let message = failure(&output);
    assert!(message.contains("test split"), "{message}");
    assert!(message.contains("has 0 sequences"), "{message}");
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));

    for month in [6, 7, 8] {
        empty_month(&data, month);
    }
    let target = dir.path().join("empty.safetensors");
    let output = nowcast(&[
        "train",
        "--model",
        "ff",
        "--data-dir",
        data_arg,
        "--epochs",
        "1",
        "--checkpoint",
        target.to_str().unwrap(),
    ]);
    let message = failure(&output);
    assert!(message.contains("training split"), "{message}");
    assert!(message.contains("(months 6-8) has 0 sequences"), "{message}");
    assert!(!target.exists(), "a checkpoint was written for an empty split");
}

#[test]
fn absurd_scale_is_rejected() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("data");
    let output = nowcast(&["generate", "--out", out.to_str().unwrap(), "--scale", "100"]);
    let message = failure(&output);
    assert!(message.contains("--scale"), "{message}");
    assert!(message.contains("found 100"), "{message}");
}

#[test]
fn closed_stdout_exits_quietly() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nowcast"))
        .args(["generate", "--out", out.to_str().unwrap(), "--scale", TINY_SCALE])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closing the reading end before the binary prints makes its write fail with EPIPE.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let message = stderr(&output);
    assert!(!message.contains("panicked"), "{message}");
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.is_empty(), "a closed pipe needs no message: {message}");
}

#[test]
fn training_flags_are_checked_by_name() {
    let dir = TempDir::new().unwrap();
    let target = dir.path().join("x.safetensors");
    let base = ["train", "--model", "ff", "--scale", TINY_SCALE, "--checkpoint"];
    let cases = [
        (
            ["--learning-rate", "-0.01"],
            "--learning-rate must be a positive finite number, found -0.01",
        ),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--epochs", "0"], "--epochs must be at least 1"),
    ];
    for (flag, expected) in cases {
        let mut args = base.to_vec();
        args.push(target.to_str().unwrap());
        args.extend(flag);
        let output = nowcast(&args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{flag:?}: {message}");
        assert!(message.contains(expected), "{flag:?}: {message}");
    }
}

#[test]
fn checkpoint_destination_is_checked_before_training() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, b"x").unwrap();
    let cases = [
        (dir.path().join("nodir/sub/x.safetensors"), "does not exist"),
        (file.join("x.safetensors"), "is a file, not a folder"),
        (dir.path().to_path_buf(), "found a folder"),
    ];
    for (target, expected) in cases {
        let target_arg = target.to_str().unwrap();
        let output = nowcast(&[
            "train",
            "--model",
            "ff",
            "--scale",
            TINY_SCALE,
            "--epochs",
            "1",
            "--checkpoint",
            target_arg,
        ]);
        let message = failure(&output);
        assert!(message.contains(&format!("--checkpoint {target_arg}")), "{message}");
        assert!(message.contains(expected), "{message}");
        assert!(!stdout(&output).contains("kept epoch"), "trained before failing: {message}");
    }
}

#[test]
fn predict_rejects_bad_inputs_and_destinations() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    generate(&data);
    let checkpoint = dir.path().join("ff.safetensors");
    train("ff", &data, &checkpoint);
    let predict = |input: &Path, out: &Path| {
        nowcast(&[
            "predict",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let features = data.join("features-m10.npy");
    let out = dir.path().join("predictions.npy");

    let missing_folder = dir.path().join("nodir").join("p.npy");
    let message = failure(&predict(&features, &missing_folder));
    assert!(message.contains("--out"), "{message}");
    assert!(message.contains("does not exist"), "{message}");

    let pickle = dir.path().join("features.pk");
    std::fs::write(&pickle, b"not read").unwrap();
    let message = failure(&predict(&pickle, &out));
    assert!(message.contains("reads features from a .npy file"), "{message}");

    let labels = data.join("labels-m10.npy");
    let message = failure(&predict(&labels, &out));
    assert!(message.contains(labels.to_str().unwrap()), "{message}");
    assert!(message.contains("found shape [112, 5]"), "{message}");

    let mut values = ArrayD::<f32>::from_elem(IxDyn(&[2, 5, 5, 5, 3]), 250.0);
    values.as_slice_mut().unwrap()[7] = f32::NAN;
    let nan = dir.path().join("nan.npy");
    handgrad_data::npy::write_npy_f32(&nan, &values.view()).unwrap();
    let message = failure(&predict(&nan, &out));
    assert!(message.contains(nan.to_str().unwrap()), "{message}");
    assert!(message.contains("value NaN at flat index 7"), "{message}");
    assert!(!out.exists(), "predictions written despite the errors");
}
