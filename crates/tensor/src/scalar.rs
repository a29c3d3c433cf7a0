use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::{Float, FromPrimitive, ToPrimitive};

/// Floating-point element type of every layer, loss and optimiser.
///
/// Implemented for `f32` (fast training) and `f64` (exact reproduction of reference numbers and
/// gradient checks).
pub trait Scalar:
    Float
    + LinalgScalar
    + ScalarOperand
    + FromPrimitive
    + ToPrimitive
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + 'static
{
    /// Converts an `f64` constant into this type, rounding to nearest.
    fn from_f64_lossy(value: f64) -> Self;
}

impl Scalar for f32 {
    fn from_f64_lossy(value: f64) -> Self {
        value as f32
    }
}

impl Scalar for f64 {
    fn from_f64_lossy(value: f64) -> Self {
        value
    }
}
