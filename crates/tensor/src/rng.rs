//! A random generator that reproduces numpy's legacy `np.random.RandomState` bit for bit.
//!
//! Reference implementations of the assignments seed numpy with `np.random.seed(s)` and draw
//! weights, minibatches and permutations from it. [`NumpyRng`] draws the same numbers in the same
//! order, so a Rust run can be compared with a Python run value by value.
//!
//! # Algorithm
//!
//! - Generator: MT19937 (Matsumoto and Nishimura, 1998). An integer seed fills the 624-word state
//!   with `init_genrand`: `key[0] = seed`, `key[i] = 1812433253 * (key[i-1] ^ (key[i-1] >> 30)) + i`
//!   (mod 2^32). This is numpy's legacy seeding for integer seeds; numpy seeds arrays and seeds
//!   above 2^32 - 1 differently, and those are not supported here.
//! - [`NumpyRng::random_sample`]: 53 bits from two words,
//!   `((a >> 5) * 2^26 + (b >> 6)) / 2^53`, in [0, 1).
//! - [`NumpyRng::standard_normal`]: the polar Box-Muller method. Draw `x1, x2` uniform in
//!   (-1, 1) until `0 < r2 = x1^2 + x2^2 < 1`, let `f = sqrt(-2 ln(r2) / r2)`, return `f * x2` and
//!   cache `f * x1` for the next call. Reseeding drops the cached value.
//! - [`NumpyRng::randint`]: masked rejection. With `rng = high - 1` and `mask` the smallest
//!   `2^k - 1 >= rng`, draw `word & mask` until it is `<= rng`. The word is one 32-bit output
//!   when `rng <= 2^32 - 1`, else two outputs joined as `(first << 32) | second`.
//! - [`NumpyRng::permutation`]: Fisher-Yates from the end. For `i = n-1` down to 1, swap entry `i`
//!   with entry `j` drawn uniformly from `0..=i` by the same masked rejection.
//!
//! The normal draws call the platform's `ln`, as numpy's C code calls its `log`. On Linux with
//! glibc both use the same function, which the reference tests compare bit for bit.

use ndarray::{ArrayD, IxDyn};

use crate::{Result, TensorError};

/// Number of 32-bit words in the MT19937 state.
const STATE_LEN: usize = 624;

/// Offset of the word mixed into each twisted word.
const SHIFT: usize = 397;

const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// Bit-exact replica of numpy's legacy `RandomState` seeded with an integer.
///
/// # Example
///
/// ```
/// use handgrad_tensor::rng::NumpyRng;
///
/// // np.random.seed(0); np.random.random_sample()
/// let mut rng = NumpyRng::new(0);
/// assert_eq!(rng.random_sample(), 0.5488135039273248);
/// ```
#[derive(Clone)]
pub struct NumpyRng {
    key: [u32; STATE_LEN],
    pos: usize,
    cached_gauss: Option<f64>,
}

impl std::fmt::Debug for NumpyRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The 624 state words would drown everything else.
        f.debug_struct("NumpyRng")
            .field("pos", &self.pos)
            .field("cached_gauss", &self.cached_gauss)
            .finish_non_exhaustive()
    }
}

impl NumpyRng {
    /// Creates a generator in the state of `np.random.RandomState(seed)`.
    pub fn new(seed: u32) -> Self {
        let mut rng = Self { key: [0; STATE_LEN], pos: STATE_LEN, cached_gauss: None };
        rng.seed(seed);
        rng
    }

    /// Resets the generator to the state of `np.random.seed(seed)`, dropping any cached normal.
    pub fn seed(&mut self, seed: u32) {
        let mut value = seed;
        for (i, word) in self.key.iter_mut().enumerate() {
            *word = value;
            let next_index = i as u32 + 1;
            value = 1_812_433_253u32.wrapping_mul(value ^ (value >> 30)).wrapping_add(next_index);
        }
        self.pos = STATE_LEN;
        self.cached_gauss = None;
    }

    /// Returns the next raw 32-bit output of MT19937.
    pub fn next_u32(&mut self) -> u32 {
        if self.pos == STATE_LEN {
            self.twist();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;

        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Returns two outputs joined as `(first << 32) | second`, numpy's 64-bit word for MT19937.
    fn next_u64(&mut self) -> u64 {
        let high = u64::from(self.next_u32());
        let low = u64::from(self.next_u32());
        (high << 32) | low
    }

    /// Regenerates all 624 state words.
    fn twist(&mut self) {
        for i in 0..STATE_LEN {
            let y = (self.key[i] & UPPER_MASK) | (self.key[(i + 1) % STATE_LEN] & LOWER_MASK);
            let odd_term = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.key[i] = self.key[(i + SHIFT) % STATE_LEN] ^ (y >> 1) ^ odd_term;
        }
        self.pos = 0;
    }

    /// Returns a uniform double in [0, 1) built from 53 random bits, as `np.random.random_sample()`.
    pub fn random_sample(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// Returns `low + (high - low) * random_sample()`, as `np.random.uniform(low, high)`.
    ///
    /// The result lies in [low, high) for `low < high`, up to rounding of the product.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.random_sample()
    }

    /// Returns one standard normal draw, as `np.random.standard_normal()`.
    ///
    /// Draws come in pairs from the polar Box-Muller method. The second of a pair is cached and
    /// returned by the next call, so the sequence matches numpy's whatever the call sizes.
    pub fn standard_normal(&mut self) -> f64 {
        if let Some(cached) = self.cached_gauss.take() {
            return cached;
        }
        loop {
            let x1 = 2.0 * self.random_sample() - 1.0;
            let x2 = 2.0 * self.random_sample() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.cached_gauss = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// Returns an array of standard normal draws filled in C order, as `np.random.randn(*shape)`.
    ///
    /// An empty `shape` gives a zero-dimensional array holding one draw.
    ///
    /// # Panics
    ///
    /// Panics when the product of `shape` exceeds `isize::MAX`, as every ndarray constructor
    /// does; numpy raises `ValueError` there.
    pub fn randn(&mut self, shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || self.standard_normal())
    }

    /// Returns one integer uniform in [0, high), as `np.random.randint(0, high)`.
    ///
    /// # Panics
    ///
    /// Panics when `high` is 0, where numpy raises `ValueError`; [`Self::try_randint`] returns an
    /// error instead.
    pub fn randint(&mut self, high: u64) -> u64 {
        match self.try_randint(high) {
            Ok(value) => value,
            Err(error) => panic!("{error}"),
        }
    }

    /// Returns one integer uniform in [0, high), as `np.random.randint(0, high)`.
    ///
    /// # Errors
    ///
    /// [`TensorError::InvalidArgument`] when `high` is 0, because the range is empty.
    pub fn try_randint(&mut self, high: u64) -> Result<u64> {
        if high == 0 {
            return Err(TensorError::InvalidArgument {
                op: "randint",
                reason: "high must be at least 1, found 0".to_string(),
            });
        }
        Ok(self.bounded(high - 1))
    }

    /// Returns an integer uniform in [0, max] by masked rejection, as numpy's legacy bounded
    /// integers do.
    fn bounded(&mut self, max: u64) -> u64 {
        if max == 0 {
            // numpy returns without drawing for a one-value range.
            return 0;
        }
        let mask = u64::MAX >> max.leading_zeros();
        if max <= u64::from(u32::MAX) {
            loop {
                let value = u64::from(self.next_u32()) & mask;
                if value <= max {
                    return value;
                }
            }
        }
        loop {
            let value = self.next_u64() & mask;
            if value <= max {
                return value;
            }
        }
    }

    /// Returns `size` indices drawn uniformly from [0, n) with replacement, as
    /// `np.random.choice(n, size, replace=True)`.
    ///
    /// # Panics
    ///
    /// Panics when `n` is 0 and `size` is not, where numpy raises `ValueError`;
    /// [`Self::try_choice`] returns an error instead.
    pub fn choice(&mut self, n: usize, size: usize) -> Vec<usize> {
        match self.try_choice(n, size) {
            Ok(indices) => indices,
            Err(error) => panic!("{error}"),
        }
    }

    /// Returns `size` indices drawn uniformly from [0, n) with replacement, as
    /// `np.random.choice(n, size, replace=True)`.
    ///
    /// # Errors
    ///
    /// [`TensorError::InvalidArgument`] when `n` is 0 and `size` is not, because there is
    /// nothing to draw from.
    pub fn try_choice(&mut self, n: usize, size: usize) -> Result<Vec<usize>> {
        if n == 0 && size > 0 {
            return Err(TensorError::InvalidArgument {
                op: "choice",
                reason: format!("cannot draw {size} samples from an empty population"),
            });
        }
        // usize fits in u64 on every supported target, and each draw is below n.
        let max = (n as u64).saturating_sub(1);
        Ok((0..size).map(|_| self.bounded(max) as usize).collect())
    }

    /// Returns a random permutation of `0..n`, as `np.random.permutation(n)`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut values: Vec<usize> = (0..n).collect();
        self.shuffle(&mut values);
        values
    }

    /// Shuffles `values` in place, as `np.random.shuffle` does for a one-dimensional array.
    pub fn shuffle<T>(&mut self, values: &mut [T]) {
        for i in (1..values.len()).rev() {
            let j = self.bounded(i as u64) as usize;
            values.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn randint_of_zero_is_error() {
        let mut rng = NumpyRng::new(0);
        assert!(rng.try_randint(0).is_err());
    }

    #[test]
    fn choice_from_empty_population_is_error() {
        let mut rng = NumpyRng::new(0);
        assert!(rng.try_choice(0, 3).is_err());
        assert_eq!(rng.try_choice(0, 0).unwrap(), Vec::<usize>::new());
    }

    #[test]
    fn one_value_range_draws_nothing() {
        let mut a = NumpyRng::new(5);
        let mut b = NumpyRng::new(5);
        assert_eq!(a.randint(1), 0);
        assert_eq!(a.next_u32(), b.next_u32());
    }

    #[test]
    fn clone_continues_identically() {
        let mut a = NumpyRng::new(9);
        a.standard_normal();
        let mut b = a.clone();
        assert_eq!(a.standard_normal(), b.standard_normal());
        assert_eq!(a.next_u32(), b.next_u32());
    }
}
