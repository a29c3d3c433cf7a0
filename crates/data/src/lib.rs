//! Data loading for handgrad: MNIST, numpy pickles and `.npy` files, read with checks.
//!
//! - [`idx`]: the IDX format of the MNIST files, raw or gzip-compressed.
//! - [`mnist`]: [`mnist::Mnist::load`] splits MNIST into train, validation and test sets,
//!   and [`mnist::fetch`] downloads the four files and verifies their SHA-256 sums.
//! - [`pickle`]: a restricted unpickler that accepts numpy arrays and nothing else.
//! - [`npy`]: the `.npy` format, read and (for `f32` and `f64`) written.
//! - [`atomic`]: atomic file writes (temporary file, `fsync`, rename) for every crate.
//! - [`report`]: one-line messages of error chains, for binaries to print.
//! - [`testing`]: test support that locates the shared fixture folder.
//!
//! Every reader returns a [`DataError`] naming the file, the byte offset, what was expected
//! and what was found; none of them panics on malformed input.

mod array;
mod error;

pub mod atomic;
pub mod idx;
pub mod mnist;
pub mod npy;
pub mod pickle;
pub mod report;
pub mod testing;

pub use array::{Dtype, NumpyArray};
pub use error::{DataError, Result};
