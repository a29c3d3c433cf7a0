//! Arbitrary and truncated bytes fed to every reader return errors, never panics.

mod common;

use std::path::Path;

use handgrad_data::idx::parse_idx;
use handgrad_data::npy::parse_npy;
use handgrad_data::pickle::parse_numpy_pickle;
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::fixtures().join(name)).unwrap()
}

/// Generates a valid file with some bytes overwritten, then cut at some length.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let length = valid.len();
    (prop::collection::vec((0..length, any::<u8>()), 0..6), 0..=length).prop_map(
        move |(edits, keep)| {
            let mut bytes = valid.clone();
            for (position, value) in edits {
                bytes[position] = value;
            }
            bytes.truncate(keep);
            bytes
        },
    )
}

fn idx_sample() -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, 2, 0, 0, 0, 3, 0, 0, 0, 4];
    bytes.extend(0u8..12);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn idx_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_idx(&bytes, Path::new("fuzz.idx"));
    }

    #[test]
    fn idx_mutated(bytes in mutated(idx_sample())) {
        let _ = parse_idx(&bytes, Path::new("fuzz.idx"));
    }

    #[test]
    fn pickle_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        prop_assert!(parse_numpy_pickle(&bytes, Path::new("fuzz.pk")).is_err());
    }

    #[test]
    fn pickle_mutated_protocol2(bytes in mutated(fixture("f64-c-p2.pk"))) {
        let _ = parse_numpy_pickle(&bytes, Path::new("fuzz.pk"));
    }

    #[test]
    fn pickle_mutated_protocol5(bytes in mutated(fixture("f64-fortran-p5.pk"))) {
        let _ = parse_numpy_pickle(&bytes, Path::new("fuzz.pk"));
    }

    #[test]
    fn npy_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        prop_assert!(parse_npy(&bytes, Path::new("fuzz.npy")).is_err());
    }

    #[test]
    fn npy_mutated(bytes in mutated(fixture("f32-big-endian.npy"))) {
        let _ = parse_npy(&bytes, Path::new("fuzz.npy"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn idx_gzip_mutated(bytes in mutated(gzip_sample())) {
        let _ = parse_idx(&bytes, Path::new("fuzz.idx.gz"));
    }
}

fn gzip_sample() -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&idx_sample()).unwrap();
    encoder.finish().unwrap()
}
