//! The error type shared by every reader and writer of this crate.

use std::io;
use std::path::PathBuf;

/// Errors raised while reading, writing or downloading data files.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An operating-system call on a file or folder failed.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// The operation, such as "read" or "replace".
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// An IDX file does not follow the format.
    #[error("{path}: invalid IDX data at byte {offset}: expected {expected}, found {found}")]
    Idx {
        /// The file being read.
        path: PathBuf,
        /// Byte offset in the uncompressed IDX data.
        offset: u64,
        /// The value the format requires at that offset.
        expected: String,
        /// The value found in the file.
        found: String,
    },

    /// A gzip stream is corrupt or truncated.
    #[error("{path}: corrupt gzip stream after {offset} decompressed bytes: {source}")]
    Gzip {
        /// The file being read.
        path: PathBuf,
        /// Number of bytes decompressed before the failure.
        offset: u64,
        /// The decoder's error.
        source: io::Error,
    },

    /// A pickle is malformed or is not a numpy array.
    #[error("{path}: cannot read numpy pickle at byte {offset}: {message}")]
    Pickle {
        /// The file being read.
        path: PathBuf,
        /// Byte offset of the opcode that failed.
        offset: u64,
        /// The failure, with the expected and the found value.
        message: String,
    },

    /// A `.npy` file does not follow the format.
    #[error("{path}: invalid .npy data at byte {offset}: expected {expected}, found {found}")]
    Npy {
        /// The file being read.
        path: PathBuf,
        /// Byte offset of the problem.
        offset: u64,
        /// The value the format requires at that offset.
        expected: String,
        /// The value found in the file.
        found: String,
    },

    /// The MNIST files are readable but their contents do not fit together.
    #[error("{path}: invalid MNIST data: {message}")]
    Mnist {
        /// The file (or folder) at fault.
        path: PathBuf,
        /// The problem found.
        message: String,
    },

    /// Required files are missing from a folder.
    #[error("MNIST files not found in {dir}: looked for {looked_for}")]
    MissingFiles {
        /// The folder searched.
        dir: PathBuf,
        /// The file names searched for, comma-separated.
        looked_for: String,
    },

    /// No mirror could be reached, or a transfer failed or timed out.
    #[error("network error: {message}")]
    Network {
        /// Every URL tried and how each failed.
        message: String,
    },

    /// A downloaded file has the wrong SHA-256 sum or size.
    #[error("checksum mismatch for {url}: expected {expected}, found {found}")]
    Checksum {
        /// The URL the file came from.
        url: String,
        /// The published SHA-256 sum (or size).
        expected: String,
        /// The sum (or size) of the received bytes.
        found: String,
    },
}

impl DataError {
    /// Wraps an I/O error with the action and the path it concerns.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        DataError::Io { action, path: path.into(), source }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, DataError>;
