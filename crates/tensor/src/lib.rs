//! Tensor utilities shared by every handgrad crate.
//!
//! - [`Scalar`]: the floating-point element types (`f32`, `f64`) that layers are generic over.
//! - [`Param`]: a trainable array together with its gradient.
//! - [`matmul`]: the one place that decides which matrix-multiply engine runs.
//! - [`rng::NumpyRng`]: numpy's legacy random generator, reproduced bit for bit.

mod param;
mod scalar;

pub mod gradcheck;
pub mod linalg;
pub mod rng;

pub use linalg::matmul;
pub use param::Param;
pub use scalar::Scalar;

/// Errors raised by tensor utilities.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    /// Two operands have shapes that the operation cannot combine.
    #[error("{op}: shape mismatch, expected {expected}, found {found}")]
    ShapeMismatch { op: &'static str, expected: String, found: String },
    /// An argument lies outside the values the operation accepts.
    #[error("{op}: invalid argument, {reason}")]
    InvalidArgument { op: &'static str, reason: String },
}

/// Result alias for tensor utilities.
pub type Result<T> = std::result::Result<T, TensorError>;
