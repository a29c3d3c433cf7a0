//! Sigmoid and tanh for the GRU gates: the standard library's functions for any [`Scalar`], and
//! branch-free `f32` versions that the compiler can vectorise.
//!
//! The C library's `expf` and `tanhf` are calls the compiler cannot vectorise, and in f32 GRU
//! training they took about a fifth of a batch. [`VectorF32`] evaluates `exp` with a polynomial
//! and builds 2^n from its bits, so a loop over a row of gates runs several lanes at once.

use handgrad_tensor::Scalar;

/// The gate activations, chosen per element type at compile time.
pub(crate) trait Activations<F> {
    /// Returns σ(x) = 1 / (1 + e^{−x}).
    fn sigmoid(x: F) -> F;

    /// Returns the hyperbolic tangent of `x`.
    fn tanh(x: F) -> F;
}

/// The standard library's `exp` and `tanh`, exact to the last bit or so in every type.
#[derive(Debug)]
pub(crate) struct Library;

impl<F: Scalar> Activations<F> for Library {
    fn sigmoid(x: F) -> F {
        F::one() / (F::one() + (-x).exp())
    }

    fn tanh(x: F) -> F {
        x.tanh()
    }
}

/// Branch-free f32 formulas, within 1e-6 relative of the exact values (tested below).
///
/// Meant for `F = f32`. For any other type the argument is rounded to f32 and the result is
/// only f32-accurate, so callers pick [`Library`] there.
#[derive(Debug)]
pub(crate) struct VectorF32;

impl<F: Scalar> Activations<F> for VectorF32 {
    #[inline(always)]
    fn sigmoid(x: F) -> F {
        from_f32(sigmoid_f32(to_f32(x)))
    }

    #[inline(always)]
    fn tanh(x: F) -> F {
        from_f32(tanh_f32(to_f32(x)))
    }
}

/// Converts to f32, which for `F = f32` the compiler reduces to nothing.
#[inline(always)]
fn to_f32<F: Scalar>(x: F) -> f32 {
    x.to_f32().unwrap_or(f32::NAN)
}

#[inline(always)]
fn from_f32<F: Scalar>(x: f32) -> F {
    F::from_f32(x).unwrap_or_else(F::nan)
}

/// Returns σ(x) = 1 / (1 + e^{−x}) through [`exp_f32`].
///
/// Below x = −88, where e^{−x} is clamped, the result stays under 6.1e-39 instead of
/// following e^x down.
#[inline(always)]
pub(crate) fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// Returns tanh x: the Taylor series to x⁹ for |x| < 1/4, else 1 − 2 / (e^{2|x|} + 1) with the
/// sign of x.
///
/// The series' truncation error is under 1e-8 relative, and the `exp` formula loses at most a
/// factor 4 to cancellation at |x| = 1/4. Both branches are computed and one is selected, so
/// the function has no jump.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    let square = x * x;
    let series = -17.0 / 315.0 + square * (62.0 / 2835.0);
    let series = 2.0 / 15.0 + square * series;
    let series = -1.0 / 3.0 + square * series;
    let series = x + x * square * series;

    let magnitude = x.abs();
    let value = 1.0 - 2.0 / (exp_f32(2.0 * magnitude) + 1.0);
    let value = value.copysign(x);
    if magnitude < 0.25 {
        series
    } else {
        value
    }
}

/// Returns e^x in f32, within about 2 ulp for x in [−87, 88].
///
/// x is written as n·ln 2 + r with integer n and |r| ≤ ln 2 / 2. The Taylor polynomial of e^r
/// to r⁷ has a truncation error under 1e-8 relative there, and 2^n is built from its exponent
/// bits. Arguments are clamped to [−87, 88] first, so that 2^n stays a normal f32: e^x
/// returns e^{88} ≈ 1.65e38 instead of infinity above 88, and e^{−87} ≈ 1.6e-38 instead of a
/// subnormal or zero below −87. NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    // Adding 1.5·2^23 rounds to an integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    // ln 2 split so that n · LN2_HIGH is exact for |n| < 2^9 (Cody and Waite's reduction).
    const LN2_HIGH: f32 = 0.693_145_75;
    const LN2_LOW: f32 = 1.428_606_8e-6;

    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HIGH) - n * LN2_LOW;

    let p = 1.0 / 5040.0;
    let p = 1.0 / 720.0 + r * p;
    let p = 1.0 / 120.0 + r * p;
    let p = 1.0 / 24.0 + r * p;
    let p = 1.0 / 6.0 + r * p;
    let p = 0.5 + r * p;
    let p = 1.0 + r * p;
    let p = 1.0 + r * p;

    let exponent = shifted.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    p * f32::from_bits(exponent << 23)
}

#[cfg(test)]
mod tests {
    use super::{exp_f32, sigmoid_f32, tanh_f32};

    /// Points on [−bound, bound] every `step`, plus a grid of step 1e-5 on [−0.3, 0.3].
    fn grid(bound: f32, step: f32) -> impl Iterator<Item = f32> {
        let count = (bound / step) as i32;
        let coarse = (-count..=count).map(move |i| i as f32 * step);
        let fine = (-30_000..=30_000).map(|i| i as f32 * 1e-5);
        coarse.chain(fine)
    }

    fn assert_relative(name: &str, x: f32, value: f32, exact: f64, tolerance: f64) {
        let error = (f64::from(value) - exact).abs();
        assert!(error <= tolerance * exact.abs(), "{name}({x}) = {value}, exact {exact}");
    }

    #[test]
    fn exp_within_three_ulp() {
        for x in grid(87.0, 1e-3) {
            // One ulp is at most 2^-23 relative, so this allows at least 3 ulp.
            assert_relative("exp", x, exp_f32(x), f64::from(x).exp(), 3.0 * 2f64.powi(-23));
        }
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(f32::INFINITY) > 1e38);
        assert!(exp_f32(f32::NEG_INFINITY) < 1e-37);
    }

    /// The f32 `tanh` against the f64 library function, on a grid over [−12, 12] refined near 0,
    /// where the series and the `exp` formula meet, and on special values.
    #[test]
    fn tanh_within_a_millionth_relative() {
        let tiny = [1e-30_f32, -1e-30, 1e-10, f32::MIN_POSITIVE, 0.25, -0.25, 0.249_999_98];
        for x in grid(12.0, 1e-4).chain(tiny) {
            assert_relative("tanh", x, tanh_f32(x), f64::from(x).tanh(), 1e-6);
        }
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(0.0), 0.0);
    }

    #[test]
    fn sigmoid_within_a_millionth_relative() {
        for x in grid(80.0, 1e-3) {
            let exact = 1.0 / (1.0 + (-f64::from(x)).exp());
            assert_relative("sigmoid", x, sigmoid_f32(x), exact, 1e-6);
        }
        assert_eq!(sigmoid_f32(f32::INFINITY), 1.0);
        assert!(sigmoid_f32(f32::NEG_INFINITY) < 1e-37);
        assert!(sigmoid_f32(f32::NAN).is_nan());
    }
}
