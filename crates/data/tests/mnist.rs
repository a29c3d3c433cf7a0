//! MNIST loading: the real test set when the shared folder is present, and small
//! generated IDX files for the split rules and every error.

mod common;

use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use handgrad_data::idx::read_idx;
use handgrad_data::mnist::{mnist_files, sha256_of_file, Mnist, MnistSource};
use handgrad_data::DataError;

/// Label counts of the 10,000 t10k images, digits 0 to 9.
const T10K_LABEL_COUNTS: [usize; 10] = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for dim in dims {
        bytes.extend_from_slice(&dim.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Writes `count` images whose first pixel is the image index modulo 256, and labels
/// `index % 10`.
fn write_pair(dir: &Path, prefix: &str, count: usize, compressed: bool) {
    let mut pixels = vec![0u8; count * 784];
    for index in 0..count {
        pixels[index * 784] = (index % 256) as u8;
    }
    let labels: Vec<u8> = (0..count).map(|index| (index % 10) as u8).collect();
    let images = idx_bytes(&[count as u32, 28, 28], &pixels);
    let labels = idx_bytes(&[count as u32], &labels);
    let (images, labels, suffix) =
        if compressed { (gzip(&images), gzip(&labels), ".gz") } else { (images, labels, "") };
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte{suffix}")), images).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte{suffix}")), labels).unwrap();
}

#[test]
fn shared_t10k_checksums_match_constants() {
    let Some(dir) = common::shared_or_skip("data/mnist-t10k", "shared_t10k_checksums") else {
        return;
    };
    for file in mnist_files().iter().filter(|file| file.name.starts_with("t10k")) {
        let path = dir.join(&file.name);
        assert_eq!(sha256_of_file(&path).unwrap(), file.sha256, "{}", file.name);
        assert_eq!(Some(std::fs::metadata(&path).unwrap().len()), file.size, "{}", file.name);
    }
}

#[test]
fn shared_t10k_loads_test_only() {
    let Some(dir) = common::shared_or_skip("data/mnist-t10k", "shared_t10k_loads") else {
        return;
    };
    let mnist = Mnist::load(&dir).unwrap();

    assert_eq!(mnist.source, MnistSource::TestOnly);
    assert_eq!(mnist.train_images.dim(), (8000, 784));
    assert_eq!(mnist.validation_images.dim(), (1000, 784));
    assert_eq!(mnist.test_images.dim(), (1000, 784));
    assert_eq!(mnist.train_labels.len(), 8000);
    assert_eq!(mnist.validation_labels.len(), 1000);
    assert_eq!(mnist.test_labels.len(), 1000);
    // The first three t10k labels are 7, 2, 1.
    assert_eq!(mnist.train_labels[..3], [7, 2, 1]);

    let mut counts = [0usize; 10];
    for labels in [&mnist.train_labels, &mnist.validation_labels, &mnist.test_labels] {
        for &label in labels.iter() {
            counts[usize::from(label)] += 1;
        }
    }
    assert_eq!(counts, T10K_LABEL_COUNTS);
}

#[test]
fn shared_t10k_idx_dims() {
    let Some(dir) = common::shared_or_skip("data/mnist-t10k", "shared_t10k_idx_dims") else {
        return;
    };
    let images = read_idx(&dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(images.dims, vec![10000, 28, 28]);
    assert_eq!(images.data.len(), 10000 * 784);
    assert!(images.data.contains(&255));
}

#[test]
fn full_split_takes_first_5000_for_validation() {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), "train", 5003, true);
    write_pair(dir.path(), "t10k", 7, false);
    let mnist = Mnist::load(dir.path()).unwrap();

    assert_eq!(mnist.source, MnistSource::Full);
    assert_eq!(mnist.validation_images.nrows(), 5000);
    assert_eq!(mnist.train_images.nrows(), 3);
    assert_eq!(mnist.test_images.nrows(), 7);
    assert_eq!(mnist.validation_images[[1, 0]], 1);
    // Training image 0 is file image 5000: 5000 % 256 = 136, label 5000 % 10 = 0.
    assert_eq!(mnist.train_images[[0, 0]], 136);
    assert_eq!(mnist.train_labels, vec![0, 1, 2]);
}

#[test]
fn test_only_split_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), "t10k", 10_000, false);
    let mnist = Mnist::load(dir.path()).unwrap();

    assert_eq!(mnist.source, MnistSource::TestOnly);
    assert_eq!(mnist.validation_images[[0, 0]], (8000 % 256) as u8);
    assert_eq!(mnist.test_images[[0, 0]], (9000 % 256) as u8);
    assert_eq!(mnist.test_labels.len(), 1000);
}

#[test]
fn missing_folder_lists_files() {
    let error = Mnist::load(Path::new("/nonexistent/mnist")).unwrap_err();
    let DataError::MissingFiles { looked_for, .. } = &error else {
        panic!("expected MissingFiles, got {error:?}");
    };
    assert!(looked_for.contains("t10k-images-idx3-ubyte[.gz]"), "{looked_for}");
    assert!(looked_for.contains("train-labels-idx1-ubyte[.gz]"), "{looked_for}");
}

#[test]
fn half_training_pair_is_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), "t10k", 10_000, true);
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), idx_bytes(&[0, 28, 28], &[]))
        .unwrap();
    let error = Mnist::load(dir.path()).unwrap_err();
    assert!(matches!(error, DataError::MissingFiles { .. }), "{error}");
}

fn mnist_error(dir: &Path) -> String {
    match Mnist::load(dir) {
        Err(DataError::Mnist { message, .. }) => message,
        other => panic!("expected an MNIST error, got {other:?}"),
    }
}

#[test]
fn count_mismatch_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), idx_bytes(&[2, 28, 28], &[0; 1568]))
        .unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx_bytes(&[3], &[1, 2, 3])).unwrap();
    let message = mnist_error(dir.path());
    assert!(message.contains("expected 2 labels"), "{message}");
}

#[test]
fn label_above_nine_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), idx_bytes(&[2, 28, 28], &[0; 1568]))
        .unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx_bytes(&[2], &[3, 10])).unwrap();
    let message = mnist_error(dir.path());
    assert!(message.contains("found 10 at index 1"), "{message}");
}

#[test]
fn wrong_image_size_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), idx_bytes(&[2, 32, 32], &[0; 2048]))
        .unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx_bytes(&[2], &[3, 1])).unwrap();
    let message = mnist_error(dir.path());
    assert!(message.contains("[2, 32, 32]"), "{message}");
}

#[test]
fn wrong_test_only_count_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), "t10k", 12, false);
    let message = mnist_error(dir.path());
    assert!(message.contains("expected 10000 test images"), "{message}");
}
