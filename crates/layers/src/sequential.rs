//! A chain of layers applied one after another, named like PyTorch's `nn.Sequential`.

use handgrad_tensor::{Param, Scalar};
use ndarray::ArrayD;

use crate::{Layer, Mode, Result};

/// Layers applied in order: `y = f_k(... f_1(f_0(x)))`; backward runs them in reverse, passing
/// each layer's input gradient to the layer before it (the chain rule). Every intermediate
/// array goes to the next layer by value ([`Layer::forward_owned`], [`Layer::backward_owned`]),
/// so ReLU and flatten work in place.
///
/// Parameters are listed in layer order; [`Layer::named_params`] prefixes each with the layer's
/// index, as `nn.Sequential.state_dict()` does: `"0.weight"`, `"0.bias"`, `"2.weight"`, ...
/// Parameterless layers keep their index, so a `Linear, Relu, Linear` chain names `"0.*"` and
/// `"2.*"`.
///
/// # Errors
///
/// Whatever error the failing layer returns; an empty `Sequential` is the identity.
///
/// # Example
///
/// ```
/// use handgrad_layers::{Layer, Linear, Mode, Relu, Sequential};
/// use ndarray::ArrayD;
///
/// let mut net = Sequential::<f64>::new();
/// net.push(Box::new(Linear::new(3, 5, 0)?));
/// net.push(Box::new(Relu::new()));
/// net.push(Box::new(Linear::new(5, 2, 1)?));
///
/// let names: Vec<String> = net.named_params().into_iter().map(|(name, _)| name).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
///
/// let y = net.forward(&ArrayD::zeros(vec![8, 3]), Mode::Eval)?;
/// assert_eq!(y.shape(), &[8, 2]);
/// # Ok::<(), handgrad_layers::LayerError>(())
/// ```
#[derive(Debug, Default)]
pub struct Sequential<F: Scalar> {
    layers: Vec<Box<dyn Layer<F>>>,
}

impl<F: Scalar> Sequential<F> {
    /// Creates an empty chain.
    pub fn new() -> Self {
        Self { layers: Vec::new() }
    }

    /// Appends a layer at the end of the chain.
    pub fn push(&mut self, layer: Box<dyn Layer<F>>) {
        self.layers.push(layer);
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when the chain holds no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layers in order.
    pub fn layers(&self) -> &[Box<dyn Layer<F>>] {
        &self.layers
    }

    /// Mutable access to the layers in order.
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer<F>>] {
        &mut self.layers
    }
}

impl<F: Scalar> Layer<F> for Sequential<F> {
    fn forward(&mut self, input: &ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        let Some((first, rest)) = self.layers.split_first_mut() else {
            return Ok(input.clone());
        };
        let mut x = first.forward(input, mode)?;
        for layer in rest {
            x = layer.forward_owned(x, mode)?;
        }
        Ok(x)
    }

    fn backward(&mut self, grad_output: &ArrayD<F>) -> Result<ArrayD<F>> {
        let Some((last, rest)) = self.layers.split_last_mut() else {
            return Ok(grad_output.clone());
        };
        let mut grad = last.backward(grad_output)?;
        for layer in rest.iter_mut().rev() {
            grad = layer.backward_owned(grad)?;
        }
        Ok(grad)
    }

    fn forward_owned(&mut self, input: ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        let mut x = input;
        for layer in &mut self.layers {
            x = layer.forward_owned(x, mode)?;
        }
        Ok(x)
    }

    fn backward_owned(&mut self, grad_output: ArrayD<F>) -> Result<ArrayD<F>> {
        let mut grad = grad_output;
        for layer in self.layers.iter_mut().rev() {
            grad = layer.backward_owned(grad)?;
        }
        Ok(grad)
    }

    fn backward_params(&mut self, grad_output: &ArrayD<F>) -> Result<()> {
        let Some((first, rest)) = self.layers.split_first_mut() else {
            return Ok(());
        };
        let Some((last, middle)) = rest.split_last_mut() else {
            return first.backward_params(grad_output);
        };
        let mut grad = last.backward(grad_output)?;
        for layer in middle.iter_mut().rev() {
            grad = layer.backward_owned(grad)?;
        }
        first.backward_params(&grad)
    }

    fn params(&self) -> Vec<&Param<F>> {
        self.layers.iter().flat_map(|layer| layer.params()).collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param<F>> {
        self.layers.iter_mut().flat_map(|layer| layer.params_mut()).collect()
    }

    fn named_params(&self) -> Vec<(String, &Param<F>)> {
        let mut named = Vec::new();
        for (index, layer) in self.layers.iter().enumerate() {
            for (name, param) in layer.named_params() {
                named.push((format!("{index}.{name}"), param));
            }
        }
        named
    }

    fn name(&self) -> &str {
        "sequential"
    }
}
