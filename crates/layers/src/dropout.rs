//! Inverted dropout with a seeded, reproducible mask.

use handgrad_tensor::Scalar;
use ndarray::{ArrayD, Zip};
use ndarray_rand::rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::init::seeded_rng;
use crate::{check_grad_shape, config_error, no_cache_error, Layer, Mode, Result};

const NAME: &str = "dropout";

/// Inverted dropout: in [`Mode::Train`], `y = x ⊙ m / (1 − p)` with `m_i = 1[u_i ≥ p]` and u_i
/// drawn from U[0, 1); in [`Mode::Eval`], `y = x`.
///
/// Each element is kept with probability 1 − p, and dividing by 1 − p keeps `E[y] = x`, so
/// evaluation needs no rescaling. The u_i come from a ChaCha8 generator seeded once in
/// [`Dropout::new`] and advanced by every training-mode forward, so a run is reproducible from
/// its seed. Shapes: any input, output of the same shape.
///
/// Backward: dL/dx = dL/dy ⊙ m / (1 − p) with the mask of the last training-mode forward.
///
/// # Errors
///
/// [`LayerError::Config`](crate::LayerError::Config) when p is outside [0, 1),
/// [`LayerError::Shape`](crate::LayerError::Shape) for a gradient not shaped like the output,
/// [`LayerError::NoForwardCache`](crate::LayerError::NoForwardCache) for `backward` without a
/// training-mode `forward`.
///
/// # Example
///
/// ```
/// use handgrad_layers::{Dropout, Layer, Mode};
/// use ndarray::ArrayD;
///
/// let mut dropout = Dropout::new(0.5, 7)?;
/// let x = ArrayD::<f32>::ones(vec![2, 1000]);
///
/// let train = dropout.forward(&x, Mode::Train)?;
/// assert!(train.iter().all(|&v| v == 0.0 || v == 2.0)); // dropped, or scaled by 1 / (1 - p)
///
/// let eval = dropout.forward(&x, Mode::Eval)?;
/// assert_eq!(eval, x);
/// # Ok::<(), handgrad_layers::LayerError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dropout {
    p: f64,
    rng: ChaCha8Rng,
    /// Keep mask (C order) and shape of the last training-mode forward.
    cache: Option<(Vec<bool>, Vec<usize>)>,
}

impl Dropout {
    /// Creates a dropout layer that zeroes each element with probability `p`.
    ///
    /// # Errors
    ///
    /// [`LayerError::Config`](crate::LayerError::Config) when `p` is not in [0, 1) (p = 1 would
    /// divide by zero; NaN is rejected too).
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(config_error(NAME, format!("p must be in [0, 1), found {p}")));
        }
        Ok(Self { p, rng: seeded_rng(seed), cache: None })
    }

    /// The drop probability p.
    pub fn p(&self) -> f64 {
        self.p
    }

    fn sample_mask(&mut self, len: usize) -> Vec<bool> {
        if self.p == 0.0 {
            return vec![true; len];
        }
        (0..len).map(|_| self.rng.random::<f64>() >= self.p).collect()
    }

    fn apply_mask<F: Scalar>(&self, values: &ArrayD<F>, mask: &[bool]) -> ArrayD<F> {
        let scale = F::from_f64_lossy(1.0 / (1.0 - self.p));
        let mask = ndarray::ArrayView::from_shape(values.raw_dim(), mask)
            .expect("mask has one entry per element");
        let values = values.as_standard_layout();
        Zip::from(&values)
            .and(&mask)
            .par_map_collect(|&v, &keep| if keep { v * scale } else { F::zero() })
    }
}

impl<F: Scalar> Layer<F> for Dropout {
    fn forward(&mut self, input: &ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        if mode == Mode::Eval {
            self.cache = None;
            return Ok(input.clone());
        }

        let mask = self.sample_mask(input.len());
        let output = self.apply_mask(input, &mask);
        self.cache = Some((mask, input.shape().to_vec()));
        Ok(output)
    }

    fn backward(&mut self, grad_output: &ArrayD<F>) -> Result<ArrayD<F>> {
        let (mask, shape) = self.cache.as_ref().ok_or_else(|| no_cache_error(NAME))?;
        check_grad_shape(NAME, grad_output, shape)?;

        let grad_input = self.apply_mask(grad_output, mask);
        self.cache = None;
        Ok(grad_input)
    }

    fn name(&self) -> &str {
        NAME
    }
}
