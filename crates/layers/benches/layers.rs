//! Forward + backward timings of the nowcasting layer shapes in f32, batch 1024.
//!
//! Run with `cargo bench -p handgrad-layers --bench layers`; `torch_layers.py` beside this file
//! times the same shapes with PyTorch for comparison. Prints one line per case with the median
//! and minimum over the timed repetitions; an argument such as `gru` runs only the matching cases.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use handgrad_layers::{Conv2d, Conv2dConfig, Gru, Layer, Linear, Mode, Relu, Sequential};
use ndarray::{ArrayD, IxDyn};

const BATCH: usize = 1024;
const WARMUP: usize = 3;
const REPEATS: usize = 20;

fn filled(shape: &[usize]) -> ArrayD<f32> {
    let len = shape.iter().product::<usize>();
    let values = (0..len).map(|i| ((i as f32) * 0.618).sin()).collect();
    ArrayD::from_shape_vec(IxDyn(shape), values).expect("len matches shape")
}

/// Returns the median and minimum time of one forward (training mode) plus backward.
fn time(layer: &mut dyn Layer<f32>, input: &ArrayD<f32>) -> (Duration, Duration) {
    let output = layer.forward(input, Mode::Train).expect("valid input");
    let upstream = filled(output.shape());
    let mut samples = Vec::with_capacity(REPEATS);
    for repeat in 0..WARMUP + REPEATS {
        let start = Instant::now();
        layer.forward(input, Mode::Train).expect("valid input");
        layer.backward(&upstream).expect("cache from forward");
        if repeat >= WARMUP {
            samples.push(start.elapsed());
        }
    }
    samples.sort();
    (samples[REPEATS / 2], samples[0])
}

fn mlp() -> Sequential<f32> {
    let mut net = Sequential::new();
    let sizes = [75, 200, 200, 200, 1];
    for (index, pair) in sizes.windows(2).enumerate() {
        net.push(Box::new(Linear::new(pair[0], pair[1], index as u64).expect("positive sizes")));
        if index + 2 < sizes.len() {
            net.push(Box::new(Relu::new()));
        }
    }
    net
}

/// A case name, the layer and its input shape.
type Case = (&'static str, Box<dyn Layer<f32>>, Vec<usize>);

fn main() {
    let conv_config =
        Conv2dConfig { in_channels: 3, out_channels: 200, kernel_size: 3, stride: 1, padding: 0 };
    let mut cases: Vec<Case> = vec![
        ("linear 75-200-200-200-1 + relu", Box::new(mlp()), vec![BATCH, 75]),
        (
            "conv2d 3->200 3x3 on 5x5",
            Box::new(Conv2d::new(conv_config, 0).unwrap()),
            vec![BATCH, 3, 5, 5],
        ),
        ("gru 75->200, 5 steps", Box::new(Gru::new(75, 200, 0).unwrap()), vec![BATCH, 5, 75]),
    ];
    // Cargo passes `--bench`; any other argument keeps only the cases whose name contains it.
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with("--")).unwrap_or_default();
    println!("threads: {}", rayon::current_num_threads());
    for (name, layer, shape) in cases.iter_mut().filter(|case| case.0.contains(&filter)) {
        let (median, min) = time(layer.as_mut(), &filled(shape));
        println!("{name:34} forward+backward median {median:>10.3?}  min {min:>10.3?}");
    }
}
