//! The two-layer network: parameters, scores, loss with gradients, predictions.

use handgrad_tensor::rng::NumpyRng;
use ndarray::{Array1, Array2, ArrayView2, Ix2};

use crate::kernels::{self, Workspace};
use crate::{ClassifierError, Result};

/// A fully connected network `input - FC - ReLU - FC - softmax` in `f64`.
///
/// Fields are public so that callers can inspect or set weights; [`TwoLayerNet::from_params`]
/// checks that they fit together, and every method checks its inputs against them.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoLayerNet {
    /// First-layer weights, (D, H).
    pub w1: Array2<f64>,
    /// First-layer biases, (H).
    pub b1: Array1<f64>,
    /// Second-layer weights, (H, C).
    pub w2: Array2<f64>,
    /// Second-layer biases, (C).
    pub b2: Array1<f64>,
}

/// Gradients of the loss with respect to each parameter, shaped like the parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients {
    /// dL/dW1, (D, H).
    pub w1: Array2<f64>,
    /// dL/db1, (H).
    pub b1: Array1<f64>,
    /// dL/dW2, (H, C).
    pub w2: Array2<f64>,
    /// dL/db2, (C).
    pub b2: Array1<f64>,
}

impl TwoLayerNet {
    /// Creates a network with `W = std * randn` and zero biases, drawing W1 before W2.
    ///
    /// This is the reference initialization: `np.random.randn(input, hidden)` then
    /// `np.random.randn(hidden, classes)` from the same generator, so seeding `rng` as numpy was
    /// seeded gives the same weights bit for bit.
    ///
    /// # Errors
    ///
    /// [`ClassifierError::InvalidConfig`] when a size is 0 or `std` is negative or not finite.
    pub fn init(
        input_size: usize,
        hidden_size: usize,
        num_classes: usize,
        std: f64,
        rng: &mut NumpyRng,
    ) -> Result<Self> {
        for (name, value) in
            [("input_size", input_size), ("hidden_size", hidden_size), ("num_classes", num_classes)]
        {
            if value == 0 {
                return Err(invalid(name, value, "at least 1"));
            }
        }
        if !(std.is_finite() && std >= 0.0) {
            return Err(invalid("std", std, "a finite number >= 0"));
        }

        let w1 = draw(rng, input_size, hidden_size, std);
        let w2 = draw(rng, hidden_size, num_classes, std);
        Ok(Self { w1, b1: Array1::zeros(hidden_size), w2, b2: Array1::zeros(num_classes) })
    }

    /// Creates a network from given parameters.
    ///
    /// # Errors
    ///
    /// [`ClassifierError::ShapeMismatch`] unless `w1` is (D, H), `b1` (H), `w2` (H, C) and
    /// `b2` (C) with D, H, C >= 1.
    pub fn from_params(
        w1: Array2<f64>,
        b1: Array1<f64>,
        w2: Array2<f64>,
        b2: Array1<f64>,
    ) -> Result<Self> {
        const OP: &str = "TwoLayerNet::from_params";
        let (input, hidden) = w1.dim();
        if input == 0 || hidden == 0 {
            return Err(shape(OP, "w1", "(D, H) with D, H >= 1".into(), w1.shape()));
        }
        if b1.len() != hidden {
            return Err(shape(
                OP,
                "b1",
                format!("({hidden}), one bias per column of w1"),
                b1.shape(),
            ));
        }
        if w2.nrows() != hidden || w2.ncols() == 0 {
            return Err(shape(OP, "w2", format!("({hidden}, C) with C >= 1"), w2.shape()));
        }
        if b2.len() != w2.ncols() {
            let expected = format!("({}), one bias per column of w2", w2.ncols());
            return Err(shape(OP, "b2", expected, b2.shape()));
        }
        Ok(Self { w1, b1, w2, b2 })
    }

    /// Number of input features D.
    pub fn input_size(&self) -> usize {
        self.w1.nrows()
    }

    /// Number of hidden units H.
    pub fn hidden_size(&self) -> usize {
        self.w1.ncols()
    }

    /// Number of classes C.
    pub fn num_classes(&self) -> usize {
        self.w2.ncols()
    }

    /// Number of scalar parameters, `D H + H + H C + C`.
    pub fn num_params(&self) -> usize {
        self.w1.len() + self.b1.len() + self.w2.len() + self.b2.len()
    }

    /// Returns the class scores `max(0, X W1 + b1) W2 + b2`, (N, C), for inputs `x` (N, D).
    ///
    /// # Errors
    ///
    /// [`ClassifierError::ShapeMismatch`] when `x` does not have D columns.
    pub fn scores(&self, x: &ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        self.check_features("TwoLayerNet::scores", "x", x)?;
        let mut ws = Workspace::new(self, x.nrows());
        kernels::forward(self, x, &mut ws);
        Ok(ws.scores)
    }

    /// Returns the loss and its gradient for inputs `x` (N, D) with labels `y` (N).
    ///
    /// ```text
    /// L = -(1/N) sum_n ln softmax(scores)[n, y_n] + 0.5 reg (sum W1^2 + sum W2^2)
    /// ```
    ///
    /// The biases are not regularized. The backward pass is derived in
    /// `docs/classifier-two-layer.md`.
    ///
    /// # Errors
    ///
    /// - [`ClassifierError::ShapeMismatch`] when `x` has no rows, does not have D columns, or
    ///   `y` does not have one label per row;
    /// - [`ClassifierError::LabelOutOfRange`] when a label is `>= C`;
    /// - [`ClassifierError::InvalidConfig`] when `reg` is negative or not finite;
    /// - [`ClassifierError::NonFinite`] when `x` contains NaN or an infinity.
    pub fn loss(&self, x: &ArrayView2<'_, f64>, y: &[usize], reg: f64) -> Result<(f64, Gradients)> {
        const OP: &str = "TwoLayerNet::loss";
        self.check_labelled(OP, "x", x, y)?;
        kernels::ensure_finite(OP, "x", x)?;
        check_reg(reg)?;

        let mut ws = Workspace::new(self, x.nrows());
        let mut grads = kernels::zero_gradients(self);
        let loss = kernels::loss_and_gradients(self, x, y, reg, &mut ws, &mut grads)?;
        Ok((loss, grads))
    }

    /// Returns the most likely class of each row of `x` (N, D); the lowest class wins a tie.
    ///
    /// # Errors
    ///
    /// [`ClassifierError::ShapeMismatch`] when `x` does not have D columns.
    pub fn predict(&self, x: &ArrayView2<'_, f64>) -> Result<Vec<usize>> {
        let scores = self.scores(x)?;
        Ok(kernels::argmax_rows(&scores.view()))
    }

    /// Returns the fraction of rows of `x` whose predicted class equals the label in `y`.
    ///
    /// # Errors
    ///
    /// [`ClassifierError::ShapeMismatch`] when `x` has no rows, does not have D columns, or
    /// `y` does not have one label per row.
    pub fn accuracy(&self, x: &ArrayView2<'_, f64>, y: &[usize]) -> Result<f64> {
        self.check_labelled("TwoLayerNet::accuracy", "x", x, y)?;
        let predicted = self.predict(x)?;
        Ok(fraction_equal(&predicted, y))
    }

    /// Checks that `x` has D columns.
    pub(crate) fn check_features(
        &self,
        op: &'static str,
        argument: &'static str,
        x: &ArrayView2<'_, f64>,
    ) -> Result<()> {
        if x.ncols() != self.input_size() {
            let expected = format!("(N, {}), one column per input feature", self.input_size());
            return Err(shape(op, argument, expected, x.shape()));
        }
        Ok(())
    }

    /// Checks that `x` is (N >= 1, D) and `y` holds N labels below C.
    pub(crate) fn check_labelled(
        &self,
        op: &'static str,
        argument: &'static str,
        x: &ArrayView2<'_, f64>,
        y: &[usize],
    ) -> Result<()> {
        self.check_features(op, argument, x)?;
        if x.nrows() == 0 {
            return Err(shape(op, argument, "(N, D) with N >= 1".into(), x.shape()));
        }
        if y.len() != x.nrows() {
            let expected = format!("({}), one label per row of {argument}", x.nrows());
            return Err(shape(op, "labels", expected, &[y.len()]));
        }
        let classes = self.num_classes();
        if let Some((sample, &label)) = y.iter().enumerate().find(|(_, &label)| label >= classes) {
            return Err(ClassifierError::LabelOutOfRange { op, sample, label, classes });
        }
        Ok(())
    }
}

/// Returns the fraction of positions where `a` and `b` agree.
pub(crate) fn fraction_equal(a: &[usize], b: &[usize]) -> f64 {
    let equal = a.iter().zip(b).filter(|(p, q)| p == q).count();
    equal as f64 / a.len().max(1) as f64
}

/// Checks the regularization strength.
pub(crate) fn check_reg(reg: f64) -> Result<()> {
    if reg.is_finite() && reg >= 0.0 {
        Ok(())
    } else {
        Err(invalid("reg", reg, "a finite number >= 0"))
    }
}

/// Draws a (rows, cols) matrix of `std * randn` in C order.
fn draw(rng: &mut NumpyRng, rows: usize, cols: usize, std: f64) -> Array2<f64> {
    let normal = rng.randn(&[rows, cols]).into_dimensionality::<Ix2>();
    normal.expect("randn returns the requested rank") * std
}

/// Builds an [`ClassifierError::InvalidConfig`].
pub(crate) fn invalid(
    name: &'static str,
    value: impl std::fmt::Display,
    expected: &'static str,
) -> ClassifierError {
    ClassifierError::InvalidConfig { name, value: value.to_string(), expected }
}

/// Builds a [`ClassifierError::ShapeMismatch`].
pub(crate) fn shape(
    op: &'static str,
    argument: &'static str,
    expected: String,
    found: &[usize],
) -> ClassifierError {
    ClassifierError::ShapeMismatch { op, argument, expected, found: found.to_vec() }
}
