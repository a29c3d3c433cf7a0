//! Throughput of the readers: the gzip-compressed MNIST test images, a pickled `f32`
//! array and a `.npy` file of the same array.
//!
//! Run with `cargo bench -p handgrad-data --bench readers`. The MNIST case uses the
//! shared test set when present and a generated file of the same size otherwise.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use handgrad_data::idx::parse_idx;
use handgrad_data::npy::{parse_npy, write_npy_f32};
use handgrad_data::pickle::{parse_numpy_pickle, write_numpy_pickle_f32};
use handgrad_data::testing::find_shared_from;
use ndarray::{ArrayD, IxDyn};

/// Runs `work` until a second has passed (at least 3 times); returns the median time.
fn median_time(mut work: impl FnMut()) -> Duration {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || start.elapsed() < Duration::from_secs(1) {
        let run = Instant::now();
        work();
        times.push(run.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

fn report(name: &str, bytes: usize, time: Duration) {
    let megabytes = bytes as f64 / 1e6;
    println!(
        "{name:<32} {megabytes:>8.2} MB  {:>9.3} ms  {:>8.1} MB/s",
        time.as_secs_f64() * 1e3,
        megabytes / time.as_secs_f64()
    );
}

fn mnist_images() -> Vec<u8> {
    let start = std::env::current_dir().unwrap();
    let shared =
        find_shared_from(&start).map(|dir| dir.join("data/mnist-t10k/t10k-images-idx3-ubyte.gz"));
    if let Some(bytes) = shared.and_then(|path| std::fs::read(path).ok()) {
        return bytes;
    }
    let mut raw = vec![0, 0, 8, 3];
    for dim in [10_000u32, 28, 28] {
        raw.extend_from_slice(&dim.to_be_bytes());
    }
    raw.extend((0..10_000 * 784).map(|i: usize| ((i * 7919) % 251) as u8));
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&raw).unwrap();
    encoder.finish().unwrap()
}

fn main() {
    let images = mnist_images();
    let time = median_time(|| {
        parse_idx(&images, Path::new("t10k-images.gz")).unwrap();
    });
    report("idx t10k images (gzip input)", images.len(), time);

    let dir = tempfile::tempdir().unwrap();
    let count = 2_000_000;
    let values: Vec<f32> = (0..count).map(|i| (i as f32).sin()).collect();
    let array = ArrayD::from_shape_vec(IxDyn(&[count / 1000, 1000]), values).unwrap();

    write_numpy_pickle_f32(&dir.path().join("a.pk"), &array.view()).unwrap();
    let pickle = std::fs::read(dir.path().join("a.pk")).unwrap();
    let time = median_time(|| {
        parse_numpy_pickle(&pickle, Path::new("a.pk")).unwrap();
    });
    report("pickle f32 (2000, 1000)", pickle.len(), time);

    write_npy_f32(&dir.path().join("a.npy"), &array.view()).unwrap();
    let npy = std::fs::read(dir.path().join("a.npy")).unwrap();
    let time = median_time(|| {
        parse_npy(&npy, Path::new("a.npy")).unwrap();
    });
    report("npy f32 (2000, 1000)", npy.len(), time);
}
