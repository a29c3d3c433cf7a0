//! The `.npy` reader against numpy-written files, and the writers in a round trip.

mod common;

use std::path::Path;

use handgrad_data::npy::{parse_npy, read_npy, write_npy_f32, write_npy_f64};
use handgrad_data::{DataError, Dtype};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

#[test]
fn numpy_written_files_match_expected() {
    let expected = common::expected(&common::fixtures().join("expected.json"));
    let mut checked = 0;
    for (name, description) in expected.iter().filter(|(name, _)| name.ends_with(".npy")) {
        let array = read_npy(&common::fixtures().join(name)).unwrap();
        common::check_against(name, &array, description);
        checked += 1;
    }
    assert_eq!(checked, 9);
}

#[test]
fn versions_and_orders_agree() {
    let reference = read_npy(&common::fixtures().join("f64-c.npy")).unwrap();
    for name in ["f64-v2.npy", "f64-v3.npy", "f64-fortran.npy"] {
        let array = read_npy(&common::fixtures().join(name)).unwrap();
        assert_eq!(array.data, reference.data, "{name}");
    }
    let big = read_npy(&common::fixtures().join("f32-big-endian.npy")).unwrap();
    let little = read_npy(&common::fixtures().join("f32-c.npy")).unwrap();
    assert_eq!(big.dtype, Dtype::F32);
    assert_eq!(big.data, little.data);
}

#[test]
fn written_file_matches_numpy_bytes() {
    // numpy's own writer produced f64-c.npy; ours must produce the same bytes.
    let original = std::fs::read(common::fixtures().join("f64-c.npy")).unwrap();
    let array = read_npy(&common::fixtures().join("f64-c.npy")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.npy");
    write_npy_f64(&path, &array.data.view()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), original);
}

#[test]
fn wrong_magic_names_offset_zero() {
    let error = parse_npy(b"NUMPY\x01\x00\x00\x00", Path::new("bad.npy")).unwrap_err();
    assert!(matches!(error, DataError::Npy { offset: 0, .. }), "{error}");
}

#[test]
fn unknown_version_rejected() {
    let mut bytes = std::fs::read(common::fixtures().join("f64-c.npy")).unwrap();
    bytes[6] = 4;
    let error = parse_npy(&bytes, Path::new("v4.npy")).unwrap_err();
    assert!(matches!(error, DataError::Npy { offset: 6, .. }), "{error}");
    assert!(error.to_string().contains("found 4.0"), "{error}");
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = std::fs::read(common::fixtures().join("f32-c.npy")).unwrap();
    for length in 0..bytes.len() {
        let result = parse_npy(&bytes[..length], Path::new("cut.npy"));
        assert!(matches!(result, Err(DataError::Npy { .. })), "length {length}: {result:?}");
    }
}

fn shape_and_values() -> impl Strategy<Value = (Vec<usize>, Vec<f64>)> {
    prop::collection::vec(0usize..5, 0..4).prop_flat_map(|shape| {
        let count = shape.iter().product::<usize>();
        (Just(shape), prop::collection::vec(any::<f64>(), count))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_f64((shape, values) in shape_and_values()) {
        let array = ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        write_npy_f64(&path, &array.view()).unwrap();
        let read = read_npy(&path).unwrap();

        prop_assert_eq!(read.dtype, Dtype::F64);
        prop_assert_eq!(&read.shape, &shape);
        // Compare bit patterns so NaN payloads count as equal.
        let bits = |a: &ArrayD<f64>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&read.data), bits(&array));
    }

    #[test]
    fn round_trip_f32((shape, values) in shape_and_values()) {
        let array = ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap().mapv(|v| v as f32);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        write_npy_f32(&path, &array.view()).unwrap();
        let read = read_npy(&path).unwrap();

        prop_assert_eq!(read.dtype, Dtype::F32);
        prop_assert_eq!(&read.shape, &shape);
        // The f32 -> f64 -> f32 path may quiet a signalling NaN, so NaNs compare as one.
        let bits = |a: &ArrayD<f32>| {
            a.iter().map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() }).collect::<Vec<_>>()
        };
        prop_assert_eq!(bits(&read.into_f32()), bits(&array));
    }
}
