//! Seconds per training batch of 1024 rows (forward, MSE, backward, one Adam step) for the
//! feed-forward, CNN and GRU models, for comparison with `torch_batch.py`.
//!
//! Run with `cargo bench -p handgrad-nowcast --bench batch`; set `RAYON_NUM_THREADS` to the
//! thread count of the comparison. Prints one line per model: median, minimum and the seconds
//! of each phase. Arguments such as `ff gru` run only the models with those names.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use handgrad_layers::Mode;
use handgrad_nowcast::models::{Model, ModelConfig, ModelKind};
use handgrad_optim::{Adam, AdamConfig, Optimizer};
use ndarray::{ArrayD, Ix2, Ix5, IxDyn};

const BATCH: usize = 1024;
const WARMUP: usize = 3;
const REPEATS: usize = 15;

/// Deterministic inputs in [-1, 1) of `shape`.
fn inputs(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut state = seed;
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    })
}

/// Seconds of forward, loss, backward and optimiser step of one batch.
fn step(model: &mut Model, adam: &mut Adam<f32>, x: &ArrayD<f32>, y: &ArrayD<f32>) -> [f64; 4] {
    let t0 = Instant::now();
    let prediction = model.forward(x, Mode::Train).expect("forward");
    let t1 = Instant::now();
    let (_, grad) = handgrad_losses::mse(&prediction.view(), &y.view()).expect("loss");
    let t2 = Instant::now();
    model.backward(&grad).expect("backward");
    let t3 = Instant::now();
    adam.step(&mut model.params_mut()).expect("step");
    let t4 = Instant::now();
    [t1 - t0, t2 - t1, t3 - t2, t4 - t3].map(|d| d.as_secs_f64())
}

/// Returns an input and a target of `BATCH` rows: hours for the per-hour models, sequences of
/// five hours for the sequence models, laid out by the model itself.
fn batch(model: &Model, kind: ModelKind) -> (ArrayD<f32>, ArrayD<f32>) {
    if kind.is_sequence() {
        let features = inputs(&[BATCH, 5, 5, 5, 3], 1);
        let features = features.into_dimensionality::<Ix5>().expect("rank 5");
        let labels = inputs(&[BATCH, 5], 2).into_dimensionality::<Ix2>().expect("rank 2");
        let x = model.prepare_inputs(&features.view()).expect("features of the model's shape");
        return (x, model.prepare_targets(&labels.view()));
    }
    let x_shape = if kind == ModelKind::Cnn { vec![BATCH, 3, 5, 5] } else { vec![BATCH, 75] };
    (inputs(&x_shape, 1), inputs(&[BATCH, 1], 2))
}

fn bench(kind: ModelKind) {
    let mut model = Model::new(ModelConfig::new(kind, 0)).expect("model");
    let (x, y) = batch(&model, kind);
    let config =
        AdamConfig { learning_rate: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
    let mut adam = Adam::new(config).expect("adam");
    for _ in 0..WARMUP {
        step(&mut model, &mut adam, &x, &y);
    }
    // Training runs each batch inside the rayon pool (see `train::train`), and so does this.
    let mut phases: Vec<[f64; 4]> =
        (0..REPEATS).map(|_| rayon::scope(|_| step(&mut model, &mut adam, &x, &y))).collect();
    phases.sort_by(|a, b| a.iter().sum::<f64>().total_cmp(&b.iter().sum::<f64>()));
    let median = phases[REPEATS / 2];
    println!(
        "{:<8} batch {BATCH}: median {:.5} s, min {:.5} s (forward {:.5}, loss {:.5}, backward {:.5}, adam {:.5})",
        kind.name(),
        median.iter().sum::<f64>(),
        phases[0].iter().sum::<f64>(),
        median[0],
        median[1],
        median[2],
        median[3]
    );
}

fn main() {
    let threads = rayon::current_num_threads();
    println!("handgrad, {threads} rayon threads, {REPEATS} timed batches after {WARMUP} warm-up");
    // `cargo bench` passes `--bench` to the binary, so flags are not model names.
    let selected: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    for kind in [ModelKind::FeedForward, ModelKind::Cnn, ModelKind::Gru, ModelKind::Best] {
        if selected.is_empty() || selected.iter().any(|name| name == kind.name()) {
            bench(kind);
        }
    }
}
