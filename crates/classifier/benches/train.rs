//! Training throughput on MNIST against the numpy peer, `reference/two_layer_net.py bench`.
//!
//! Measures iterations per second of batch 200 with 250 hidden units, for one configuration on
//! one and on two rayon threads and for a grid search with one configuration per rayon thread,
//! then runs the numpy script on the same data with OpenBLAS's default threads, one thread and
//! two threads, and prints the ratios at equal thread counts. Run with `cargo bench -p handgrad-classifier`.
//!
//! Settings: `HANDGRAD_BENCH_ITERS` (default 1000) timed iterations per configuration,
//! `HANDGRAD_PYTHON` (default `/opt/bench/bin/python`) the interpreter with numpy. The numpy run
//! gets the environment without `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE`, so OpenBLAS picks
//! its kernel for this CPU; the script prints the kernel it used.

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use handgrad_classifier::mnist::{MnistFeatures, NUM_CLASSES};
use handgrad_classifier::search::{search, SearchGrid};
use handgrad_classifier::{TrainConfig, TwoLayerNet};
use handgrad_data::mnist::Mnist;
use handgrad_tensor::rng::NumpyRng;

const HIDDEN: usize = 250;
const BATCH: usize = 200;

fn main() {
    let Some(shared) = handgrad_data::testing::shared_dir() else {
        println!("skipping: shared folder with MNIST not found");
        return;
    };
    let mnist_dir = shared.join("data/mnist-t10k");
    let mnist = Mnist::load(&mnist_dir).expect("shared MNIST loads");
    let features = MnistFeatures::from_mnist(&mnist);
    let iters =
        std::env::var("HANDGRAD_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);

    let (single, single_cpu) = on_threads(&features, iters, 1);
    println!("handgrad, 1 thread: {single:.1} iterations/s (batch {BATCH}, hidden {HIDDEN}, {iters} iterations)");
    let (double, _) = on_threads(&features, iters, 2);
    println!("handgrad, 2 threads: {double:.1} iterations/s");

    let threads = rayon::current_num_threads();
    let parallel = parallel_search(&features, iters, threads);
    println!("handgrad, search on {threads} threads: {parallel:.1} iterations/s in total");

    let numpy_default = numpy(&mnist_dir, iters, None);
    let numpy_single = numpy(&mnist_dir, iters, Some(1));
    let numpy_double = numpy(&mnist_dir, iters, Some(2));
    let (Some(numpy_default), Some(numpy_single), Some(numpy_double)) =
        (numpy_default, numpy_single, numpy_double)
    else {
        println!("numpy peer unavailable; no ratio");
        return;
    };
    let (numpy_single, numpy_single_cpu) = numpy_single;
    let (numpy_default, numpy_double) = (numpy_default.0, numpy_double.0);
    println!("ratio, 1 thread against numpy on 1 BLAS thread: {:.2}", single / numpy_single);
    if let (Some(ours), Some(theirs)) = (single_cpu, numpy_single_cpu) {
        println!(
            "ratio of iterations per CPU-second, 1 thread against numpy on 1 BLAS thread: {:.2} \
             ({ours:.1} against {theirs:.1})",
            ours / theirs
        );
    }
    println!("ratio, 2 threads against numpy on 2 BLAS threads: {:.2}", double / numpy_double);
    println!(
        "ratio, 1 thread against numpy on default BLAS threads: {:.2}",
        single / numpy_default
    );
    // numpy runs a search one configuration at a time, each on all BLAS threads.
    println!(
        "ratio, search against numpy on default BLAS threads: {:.2}",
        parallel / numpy_default
    );
}

/// Trains one configuration on a pool of `threads` rayon threads and returns its iterations per
/// second of wall time and, where the system reports it, per second of the process's CPU time.
fn on_threads(features: &MnistFeatures, iters: usize, threads: usize) -> (f64, Option<f64>) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool builds");
    pool.install(|| {
        let mut rng = NumpyRng::new(0);
        let mut net = TwoLayerNet::init(784, HIDDEN, NUM_CLASSES, 1e-4, &mut rng).unwrap();
        let config = TrainConfig {
            learning_rate: 1e-3,
            reg: 0.01,
            num_iters: iters,
            ..TrainConfig::default()
        };
        let (x, y) = (features.train.x.view(), &features.train.y);
        let (x_val, y_val) = (features.validation.x.view(), &features.validation.y);

        let warm = TrainConfig { num_iters: 5, ..config };
        net.train(&x, y, &x_val, y_val, &warm, &mut rng, &mut |_| {}).unwrap();
        let (start, cpu_start) = (Instant::now(), process_cpu_seconds());
        net.train(&x, y, &x_val, y_val, &config, &mut rng, &mut |_| {}).unwrap();
        let (seconds, cpu_end) = (start.elapsed().as_secs_f64(), process_cpu_seconds());
        let cpu = cpu_start.zip(cpu_end).map(|(start, end)| iters as f64 / (end - start));
        (iters as f64 / seconds, cpu)
    })
}

/// Returns the user plus system CPU time of this process, all threads, from `/proc/self/stat`
/// (Linux). The counters tick 100 times a second (`USER_HZ`), so a timed run should last a few
/// seconds.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after it are space-separated, and utime and
    // stime are the 14th and 15th fields of the line.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}

fn parallel_search(features: &MnistFeatures, iters: usize, threads: usize) -> f64 {
    let grid = SearchGrid {
        learning_rates: vec![1e-3; threads],
        learning_rate_decays: vec![0.95],
        regs: vec![0.01],
        hidden_sizes: vec![HIDDEN],
        num_iters: iters,
        ..SearchGrid::reference()
    };
    let data = features.search_data();
    let start = Instant::now();
    let result = search(&grid, &data, &|_| {}).unwrap();
    (result.trials.len() * iters) as f64 / start.elapsed().as_secs_f64()
}

/// Runs the numpy peer, on `threads` BLAS threads or OpenBLAS's default, and returns its
/// iterations per second of wall time and, when it reports it, per CPU-second.
fn numpy(mnist_dir: &Path, iters: usize, threads: Option<usize>) -> Option<(f64, Option<f64>)> {
    let python =
        std::env::var("HANDGRAD_PYTHON").unwrap_or_else(|_| "/opt/bench/bin/python".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/two_layer_net.py");
    let mut command = Command::new(python);
    if let Some(threads) = threads {
        command.env("OPENBLAS_NUM_THREADS", threads.to_string());
    }
    let output = command
        .arg(script)
        .args(["bench", "--iters", &iters.to_string(), "--mnist"])
        .arg(mnist_dir)
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    let wall = number_before(&stdout, "iterations/s")?;
    Some((wall, number_before(&stdout, "iterations per CPU-second")))
}

/// Returns the number just before `unit` on the first line of `text` that contains `unit`.
fn number_before(text: &str, unit: &str) -> Option<f64> {
    let line = text.lines().find(|line| line.contains(unit))?;
    let before = &line[..line.find(unit)?];
    before.split_whitespace().last()?.parse().ok()
}
