//! The numpy unpickler against files pickled by numpy.

mod common;

use std::path::Path;

use handgrad_data::pickle::{parse_numpy_pickle, read_numpy_pickle};
use handgrad_data::{DataError, Dtype};

#[test]
fn shared_nowcast_pickles_match_expected() {
    let Some(dir) = common::shared_or_skip("fixtures/nowcast-pickles", "shared_nowcast_pickles")
    else {
        return;
    };
    let expected = common::expected(&dir.join("expected.json"));
    assert_eq!(expected.len(), 10);
    for (name, description) in &expected {
        let array = read_numpy_pickle(&dir.join(name)).unwrap();
        common::check_against(name, &array, description);
    }
}

#[test]
fn generated_pickles_match_expected() {
    let expected = common::expected(&common::fixtures().join("expected.json"));
    let mut checked = 0;
    for (name, description) in expected.iter().filter(|(name, _)| name.ends_with(".pk")) {
        let array = read_numpy_pickle(&common::fixtures().join(name)).unwrap();
        common::check_against(name, &array, description);
        checked += 1;
    }
    assert_eq!(checked, 16);
}

#[test]
fn fortran_pickle_equals_c_pickle() {
    let c_order = read_numpy_pickle(&common::fixtures().join("f64-c-p2.pk")).unwrap();
    for name in ["f64-fortran-p4.pk", "f64-fortran-p5.pk", "f64-numpy1-names-p5.pk"] {
        let fortran = read_numpy_pickle(&common::fixtures().join(name)).unwrap();
        assert_eq!(fortran.data, c_order.data, "{name}");
    }
}

#[test]
fn big_endian_equals_little_endian() {
    let little = read_numpy_pickle(&common::fixtures().join("f64-c-p2.pk")).unwrap();
    let big = read_numpy_pickle(&common::fixtures().join("f64-big-endian-p2.pk")).unwrap();
    assert_eq!(big.data, little.data);

    let big32 = read_numpy_pickle(&common::fixtures().join("f32-big-endian-p4.pk")).unwrap();
    let little32 = read_numpy_pickle(&common::fixtures().join("f32-c-p3.pk")).unwrap();
    assert_eq!(big32.dtype, Dtype::F32);
    assert_eq!(big32.data, little32.data);
}

#[test]
fn into_f32_keeps_float32_values() {
    let array = read_numpy_pickle(&common::fixtures().join("f32-c-p3.pk")).unwrap();
    let as_f64 = array.data.clone();
    let as_f32 = array.into_f32();
    assert_eq!(as_f32.shape(), as_f64.shape());
    for (single, double) in as_f32.iter().zip(as_f64.iter()) {
        assert_eq!(f64::from(*single), *double);
    }
}

fn pickle_error(name: &str) -> (u64, String) {
    match read_numpy_pickle(&common::fixtures().join(name)) {
        Err(DataError::Pickle { offset, message, .. }) => (offset, message),
        other => panic!("{name}: expected a pickle error, got {other:?}"),
    }
}

#[test]
fn dict_is_not_an_array() {
    let (_, message) = pickle_error("dict-p4.pk");
    assert!(message.contains("found dict"), "{message}");
}

#[test]
fn list_is_not_an_array() {
    let (_, message) = pickle_error("list-p2.pk");
    assert!(message.contains("found list"), "{message}");
}

#[test]
fn numpy_scalar_global_rejected() {
    let (offset, message) = pickle_error("scalar-p4.pk");
    assert!(message.contains("global 'numpy._core.multiarray.scalar' is not allowed"), "{message}");
    assert!(offset > 0);
}

#[test]
fn object_array_rejected() {
    let (_, message) = pickle_error("object-array-p4.pk");
    assert!(message.contains("\"O8\"") || message.contains("object"), "{message}");
}

#[test]
fn structured_dtype_rejected() {
    let (_, message) = pickle_error("structured-p4.pk");
    assert!(message.contains("\"V8\""), "{message}");
}

#[test]
fn foreign_global_names_offset() {
    // Protocol 2: PROTO, then GLOBAL 'os system'.
    let bytes = b"\x80\x02cos\nsystem\nq\x00.";
    let error = parse_numpy_pickle(bytes, Path::new("evil.pk")).unwrap_err();
    let DataError::Pickle { offset, message, .. } = &error else {
        panic!("expected a pickle error, got {error:?}");
    };
    assert_eq!(*offset, 2);
    assert!(message.contains("'os.system'"), "{message}");
    assert!(error.to_string().starts_with("evil.pk: "), "{error}");
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = std::fs::read(common::fixtures().join("f32-c-p3.pk")).unwrap();
    for length in 0..bytes.len() {
        let result = parse_numpy_pickle(&bytes[..length], Path::new("cut.pk"));
        assert!(matches!(result, Err(DataError::Pickle { .. })), "length {length}: {result:?}");
    }
}

#[test]
fn payload_length_mismatch_rejected() {
    // `_frombuffer` with a 16-byte buffer claiming shape (3,) of float64.
    let bytes = b"\x80\x05\x8c\x12numpy.core.numeric\x8c\x0b_frombuffer\x93(\
        C\x10AAAAAAAAAAAAAAAA\x8c\x05numpy\x8c\x05dtype\x93\x8c\x02f8\x89\x88\x87R\
        K\x03\x85\x8c\x01CtR.";
    let error = parse_numpy_pickle(bytes, Path::new("short.pk")).unwrap_err();
    assert!(error.to_string().contains("needs 24"), "{error}");
}

#[test]
fn written_pickle_reads_back() {
    use handgrad_data::pickle::{write_numpy_pickle_f32, write_numpy_pickle_f64};
    use ndarray::{ArrayD, IxDyn};

    let dir = tempfile::tempdir().unwrap();
    let values: Vec<f64> = (0..24).map(|i| f64::from(i) * 0.37 - 3.0).collect();
    let array = ArrayD::from_shape_vec(IxDyn(&[2, 3, 4]), values).unwrap();
    let transposed = array.t();

    write_numpy_pickle_f64(&dir.path().join("a.pk"), &transposed).unwrap();
    let read = read_numpy_pickle(&dir.path().join("a.pk")).unwrap();
    assert_eq!(read.dtype, Dtype::F64);
    assert_eq!(read.shape, vec![4, 3, 2]);
    assert_eq!(read.data, transposed.to_owned());

    let single = array.mapv(|v| v as f32);
    write_numpy_pickle_f32(&dir.path().join("b.pk"), &single.view()).unwrap();
    let read = read_numpy_pickle(&dir.path().join("b.pk")).unwrap();
    assert_eq!(read.dtype, Dtype::F32);
    assert_eq!(read.into_f32(), single);

    let scalar = ArrayD::from_elem(IxDyn(&[]), 1.5f64);
    write_numpy_pickle_f64(&dir.path().join("c.pk"), &scalar.view()).unwrap();
    assert_eq!(read_numpy_pickle(&dir.path().join("c.pk")).unwrap().data, scalar);
}

#[test]
fn deeply_nested_tuples_are_an_error_not_a_stack_overflow() {
    // PROTO 4, EMPTY_TUPLE, then a million TUPLE1 opcodes each wrapping the tuple below.
    let mut bytes = b"\x80\x04)".to_vec();
    bytes.resize(bytes.len() + 1_000_000, 0x85);
    bytes.push(b'.');
    let error = parse_numpy_pickle(&bytes, Path::new("deep.pk")).unwrap_err();

    let DataError::Pickle { offset, message, .. } = &error else {
        panic!("expected a pickle error, got {error:?}");
    };
    // The empty tuple at byte 2 is one deep; the TUPLE1 at byte 33 makes 32, the next fails.
    assert_eq!(*offset, 34, "{message}");
    assert!(message.contains("nested at most 32 deep"), "{message}");
}

#[test]
fn protocol_0_text_opcode_names_the_protocol() {
    // `pickle.dumps(..., protocol=0)` writes strings with the text opcode UNICODE ('V').
    let error = parse_numpy_pickle(b"Vlatin1\np0\n.", Path::new("old.pk")).unwrap_err();
    let DataError::Pickle { offset, message, .. } = &error else {
        panic!("expected a pickle error, got {error:?}");
    };

    assert_eq!(*offset, 0);
    assert!(message.contains("protocol 0"), "{message}");
    assert!(message.contains("protocol 2 or later"), "{message}");
}
