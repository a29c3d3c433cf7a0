//! PyTorch's default initialisation, drawn from a seeded ChaCha8 generator.
//!
//! `nn.Linear`, `nn.Conv2d` and `nn.GRU` all start from U(-b, b): for Linear and Conv2d
//! b = 1/sqrt(fan_in) for weights and biases alike (Kaiming-uniform with a = sqrt(5) reduces to
//! this bound), for GRU b = 1/sqrt(hidden_size). Values are drawn in f64 and rounded to `F`, so
//! an f32 and an f64 layer built from one seed hold the same numbers up to rounding.

use handgrad_tensor::Scalar;
use ndarray::{ArrayD, IxDyn};
use ndarray_rand::rand::SeedableRng;
use ndarray_rand::rand_distr::Uniform;
use ndarray_rand::RandomExt;
use rand_chacha::ChaCha8Rng;

/// Returns the generator every layer constructor draws its initial values from.
pub(crate) fn seeded_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Draws an array of `shape` from U(-bound, bound); `bound` must be positive and finite.
pub(crate) fn uniform<F: Scalar>(shape: &[usize], bound: f64, rng: &mut ChaCha8Rng) -> ArrayD<F> {
    let distribution = Uniform::new(-bound, bound).expect("bound is positive and finite");
    ArrayD::<f64>::random_using(IxDyn(shape), distribution, rng).mapv(F::from_f64_lossy)
}
