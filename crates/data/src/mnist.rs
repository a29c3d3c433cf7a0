//! MNIST: loading the IDX files into train, validation and test splits, and downloading
//! them with checksum verification.
//!
//! [`Mnist::load`] looks in one folder for the four standard files, each raw or with a
//! `.gz` suffix:
//!
//! | file | contents |
//! |---|---|
//! | `train-images-idx3-ubyte` | 60,000 images, 28 x 28 bytes |
//! | `train-labels-idx1-ubyte` | 60,000 labels, 0 to 9 |
//! | `t10k-images-idx3-ubyte` | 10,000 test images |
//! | `t10k-labels-idx1-ubyte` | 10,000 test labels |
//!
//! With all four present the split is [`MnistSource::Full`]; with only the `t10k` pair it is
//! [`MnistSource::TestOnly`], which carves all three sets out of the 10,000 test images.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ndarray::{s, Array2};
use sha2::{Digest, Sha256};

use crate::atomic::write_atomic_with;
use crate::idx::read_idx;
use crate::{DataError, Result};

/// Image height and width in pixels.
pub const IMAGE_SIDE: usize = 28;

/// Pixels per image, the row length of the image matrices.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// Training images held out for validation in [`MnistSource::Full`] (the first ones).
pub const FULL_VALIDATION: usize = 5_000;

/// Sizes of the train, validation and test sets in [`MnistSource::TestOnly`].
pub const TEST_ONLY_SPLIT: [usize; 3] = [8_000, 1_000, 1_000];

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The set of files a [`Mnist`] was built from, which decides how it was split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MnistSource {
    /// All four files: training images 0..5,000 validate, 5,000..60,000 train, and the
    /// 10,000 `t10k` images test.
    Full,
    /// Only the `t10k` files: in file order, 8,000 train, 1,000 validate, 1,000 test.
    TestOnly,
}

/// MNIST split into train, validation and test sets.
///
/// Image matrices have one row per image, 784 pixels in row-major order, values 0 to 255.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// Training images, shape (N, 784).
    pub train_images: Array2<u8>,
    /// Training labels, 0 to 9, one per row of `train_images`.
    pub train_labels: Vec<u8>,
    /// Validation images, shape (N, 784).
    pub validation_images: Array2<u8>,
    /// Validation labels.
    pub validation_labels: Vec<u8>,
    /// Test images, shape (N, 784).
    pub test_images: Array2<u8>,
    /// Test labels.
    pub test_labels: Vec<u8>,
    /// The files found, which decide how the sets were split.
    pub source: MnistSource,
}

impl Mnist {
    /// Loads MNIST from `dir`, choosing [`MnistSource::Full`] when the training files are
    /// present and [`MnistSource::TestOnly`] otherwise.
    ///
    /// # Errors
    ///
    /// - [`DataError::MissingFiles`] listing the names looked for when the folder or the
    ///   `t10k` files are missing, or when only one of the two training files is present.
    /// - [`DataError::Idx`], [`DataError::Gzip`] or [`DataError::Io`] from reading a file.
    /// - [`DataError::Mnist`] when images are not 28 x 28, image and label counts differ,
    ///   a label exceeds 9, or a file has too few images for the split.
    pub fn load(dir: &Path) -> Result<Mnist> {
        let found = |stem| find_file(dir, stem);
        let missing = |stems: &[&str]| DataError::MissingFiles {
            dir: dir.to_path_buf(),
            looked_for: stems.iter().map(|s| format!("{s}[.gz]")).collect::<Vec<_>>().join(", "),
        };

        let (Some(test_images), Some(test_labels)) = (found(TEST_IMAGES), found(TEST_LABELS))
        else {
            return Err(missing(&[TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]));
        };
        let (test_images, test_labels) = read_pair(&test_images, &test_labels)?;

        match (found(TRAIN_IMAGES), found(TRAIN_LABELS)) {
            (Some(images), Some(labels)) => {
                let (images, labels) = read_pair(&images, &labels)?;
                split_full(images, labels, test_images, test_labels, dir)
            }
            (None, None) => split_test_only(test_images, test_labels, dir),
            _ => Err(missing(&[TRAIN_IMAGES, TRAIN_LABELS])),
        }
    }
}

/// Returns `dir/stem`, else `dir/stem.gz`, if either is a file.
fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    let raw = dir.join(stem);
    let gzip = dir.join(format!("{stem}.gz"));
    [raw, gzip].into_iter().find(|path| path.is_file())
}

fn read_pair(images_path: &Path, labels_path: &Path) -> Result<(Array2<u8>, Vec<u8>)> {
    let images = read_idx(images_path)?;
    if images.dims.len() != 3 || images.dims[1..] != [IMAGE_SIDE, IMAGE_SIDE] {
        return Err(DataError::Mnist {
            path: images_path.to_path_buf(),
            message: format!("expected images of shape (N, 28, 28), found {:?}", images.dims),
        });
    }
    let labels = read_idx(labels_path)?;
    if labels.dims.len() != 1 {
        return Err(DataError::Mnist {
            path: labels_path.to_path_buf(),
            message: format!("expected labels of shape (N,), found {:?}", labels.dims),
        });
    }
    if labels.dims[0] != images.dims[0] {
        return Err(DataError::Mnist {
            path: labels_path.to_path_buf(),
            message: format!(
                "expected {} labels to match {}, found {}",
                images.dims[0],
                images_path.display(),
                labels.dims[0]
            ),
        });
    }
    if let Some(index) = labels.data.iter().position(|&label| label > 9) {
        return Err(DataError::Mnist {
            path: labels_path.to_path_buf(),
            message: format!(
                "expected labels 0 to 9, found {} at index {index}",
                labels.data[index]
            ),
        });
    }

    let rows = images.dims[0];
    let matrix = Array2::from_shape_vec((rows, IMAGE_PIXELS), images.data).map_err(|e| {
        DataError::Mnist { path: images_path.to_path_buf(), message: e.to_string() }
    })?;
    Ok((matrix, labels.data))
}

fn split_full(
    images: Array2<u8>,
    labels: Vec<u8>,
    test_images: Array2<u8>,
    test_labels: Vec<u8>,
    dir: &Path,
) -> Result<Mnist> {
    if images.nrows() <= FULL_VALIDATION {
        return Err(DataError::Mnist {
            path: dir.join(TRAIN_IMAGES),
            message: format!(
                "expected more than {FULL_VALIDATION} training images to hold {FULL_VALIDATION} \
                 out for validation, found {}",
                images.nrows()
            ),
        });
    }
    Ok(Mnist {
        train_images: images.slice(s![FULL_VALIDATION.., ..]).to_owned(),
        train_labels: labels[FULL_VALIDATION..].to_vec(),
        validation_images: images.slice(s![..FULL_VALIDATION, ..]).to_owned(),
        validation_labels: labels[..FULL_VALIDATION].to_vec(),
        test_images,
        test_labels,
        source: MnistSource::Full,
    })
}

fn split_test_only(images: Array2<u8>, labels: Vec<u8>, dir: &Path) -> Result<Mnist> {
    let [train, validation, test] = TEST_ONLY_SPLIT;
    let total = train + validation + test;
    if images.nrows() != total {
        return Err(DataError::Mnist {
            path: dir.join(TEST_IMAGES),
            message: format!(
                "expected {total} test images to split {train}/{validation}/{test}, found {}",
                images.nrows()
            ),
        });
    }
    let rows = |start: usize, end: usize| images.slice(s![start..end, ..]).to_owned();
    let middle = train + validation;
    Ok(Mnist {
        train_images: rows(0, train),
        train_labels: labels[..train].to_vec(),
        validation_images: rows(train, middle),
        validation_labels: labels[train..middle].to_vec(),
        test_images: rows(middle, total),
        test_labels: labels[middle..].to_vec(),
        source: MnistSource::TestOnly,
    })
}

/// A file to download: its name on the mirror and in the cache, and its published digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name, appended to each mirror's base URL.
    pub name: String,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// Size in bytes, when known; used for the progress total.
    pub size: Option<u64>,
}

/// Lists the four gzip files with the SHA-256 sums and sizes published with the data set.
pub fn mnist_files() -> Vec<RemoteFile> {
    let file = |name: &str, sha256: &str, size: u64| RemoteFile {
        name: format!("{name}.gz"),
        sha256: sha256.to_string(),
        size: Some(size),
    };
    vec![
        file(
            TRAIN_IMAGES,
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            9_912_422,
        ),
        file(
            TRAIN_LABELS,
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            28_881,
        ),
        file(
            TEST_IMAGES,
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            1_648_877,
        ),
        file(
            TEST_LABELS,
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            4_542,
        ),
    ]
}

/// Public mirrors of the MNIST gzip files, tried in order.
pub const MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Mirrors, files and timeouts for [`fetch_with`].
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Base URLs tried in order for each file; a file's URL is the base, `/`, and its name.
    pub mirrors: Vec<String>,
    /// The files to make present in the cache folder.
    pub files: Vec<RemoteFile>,
    /// Limit for opening a connection.
    pub connect_timeout: Duration,
    /// Limit for one whole request, body included.
    pub request_timeout: Duration,
}

impl Default for FetchConfig {
    /// Uses the public [`MIRRORS`], the four [`mnist_files`], 15 s to connect and 300 s a file.
    fn default() -> Self {
        FetchConfig {
            mirrors: MIRRORS.iter().map(|m| m.to_string()).collect(),
            files: mnist_files(),
            connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(300),
        }
    }
}

/// Downloads the MNIST files missing from `cache_dir` and returns `cache_dir`.
///
/// Same as [`fetch_with`] with [`FetchConfig::default`].
///
/// # Errors
///
/// As [`fetch_with`].
pub fn fetch(cache_dir: &Path, progress: &mut dyn FnMut(u64, Option<u64>)) -> Result<PathBuf> {
    fetch_with(cache_dir, &FetchConfig::default(), progress)
}

/// Makes every file of `config` present in `cache_dir` with the right SHA-256, downloading
/// those that are missing or differ, and returns `cache_dir`.
///
/// Each file is written atomically and renamed into place only after its checksum
/// matches. `progress(done, total)` receives the bytes received so far over all files
/// being downloaded and their total size when every size is known. After a failed mirror
/// the count continues from where that file started.
///
/// # Errors
///
/// - [`DataError::Network`] listing every URL tried when no mirror delivered a file
///   (unreachable host, timeout, HTTP error status).
/// - [`DataError::Checksum`] when a mirror delivered a file with the wrong SHA-256 and no
///   other mirror delivered a correct one.
/// - [`DataError::Io`] when the cache folder or a file cannot be written.
pub fn fetch_with(
    cache_dir: &Path,
    config: &FetchConfig,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<PathBuf> {
    fs::create_dir_all(cache_dir).map_err(|e| DataError::io("create", cache_dir, e))?;
    let mut needed = Vec::new();
    for file in &config.files {
        let path = cache_dir.join(&file.name);
        if !path.is_file() || sha256_of_file(&path)? != file.sha256 {
            needed.push(file);
        }
    }

    let total = needed.iter().map(|file| file.size).sum::<Option<u64>>();
    let agent = build_agent(config);
    let mut done = 0u64;
    for file in needed {
        done += download_from_mirrors(&agent, config, file, cache_dir, done, total, progress)
            .map_err(|error| match error {
                DataError::Network { message } => DataError::Network {
                    message: format!(
                        "{message}; to work offline, copy {} into {}",
                        file.name,
                        cache_dir.display()
                    ),
                },
                other => other,
            })?;
    }
    Ok(cache_dir.to_path_buf())
}

fn build_agent(config: &FetchConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(config.connect_timeout))
        .timeout_global(Some(config.request_timeout))
        .build()
        .into()
}

/// Tries each mirror in turn; returns the bytes downloaded.
fn download_from_mirrors(
    agent: &ureq::Agent,
    config: &FetchConfig,
    file: &RemoteFile,
    cache_dir: &Path,
    done: u64,
    total: Option<u64>,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<u64> {
    let destination = cache_dir.join(&file.name);
    let mut failures = Vec::new();
    let mut checksum_error = None;
    for mirror in &config.mirrors {
        let url = format!("{}/{}", mirror.trim_end_matches('/'), file.name);
        let mut report = |received: u64| progress(done + received, total);
        match download(agent, &url, file, &destination, &mut report) {
            Ok(bytes) => return Ok(bytes),
            Err(DataError::Network { message }) => failures.push(message),
            Err(error @ DataError::Checksum { .. }) => {
                failures.push(error.to_string());
                checksum_error = Some(error);
            }
            Err(other) => return Err(other),
        }
    }
    Err(checksum_error.unwrap_or_else(|| DataError::Network {
        message: if failures.is_empty() {
            format!("no mirror configured for {}", file.name)
        } else {
            failures.join("; ")
        },
    }))
}

/// Downloads one URL into `destination`, verifying size and SHA-256 before the rename.
fn download(
    agent: &ureq::Agent,
    url: &str,
    file: &RemoteFile,
    destination: &Path,
    report: &mut dyn FnMut(u64),
) -> Result<u64> {
    let network = |error: &dyn std::fmt::Display| DataError::Network {
        message: format!("GET {url}: {error}"),
    };
    let response = agent.get(url).call().map_err(|e| network(&e))?;
    let mut body = response.into_body().into_reader();

    write_atomic_with(destination, |output| {
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut received = 0u64;
        loop {
            let count = body.read(&mut buffer).map_err(|e| network(&e))?;
            if count == 0 {
                break;
            }
            hasher.update(&buffer[..count]);
            output
                .write_all(&buffer[..count])
                .map_err(|e| DataError::io("write", destination, e))?;
            received += count as u64;
            report(received);
        }

        let digest = hex(&hasher.finalize());
        if digest != file.sha256 {
            return Err(DataError::Checksum {
                url: url.to_string(),
                expected: file.sha256.clone(),
                found: digest,
            });
        }
        Ok(received)
    })
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_of_file(path: &Path) -> Result<String> {
    let mut input = fs::File::open(path).map_err(|e| DataError::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let count = input.read(&mut buffer).map_err(|e| DataError::io("read", path, e))?;
        if count == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buffer[..count]);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
