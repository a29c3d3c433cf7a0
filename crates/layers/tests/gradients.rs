//! Property tests: every hand-derived backward pass against central differences, in f64.
//!
//! Each case draws a layer configuration, an input and an upstream gradient G, defines the
//! scalar loss L = Σ y ⊙ G, and compares dL/dx and every dL/dθ from `backward` with
//! `numerical_gradient` of L.

use handgrad_layers::{
    Conv2d, Conv2dConfig, Dropout, Flatten, Gru, Layer, Linear, Mode, Relu, Sequential,
};
use handgrad_tensor::gradcheck::{numerical_gradient, relative_error};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

/// Step of the central differences; its truncation error is O(h²) ≈ 1e-10.
const STEP: f64 = 1e-5;
/// An analytic entry a passes against a numerical entry n when |a − n| <= ABS_TOL + REL_TOL·|n|.
const ABS_TOL: f64 = 1e-8;
const REL_TOL: f64 = 1e-6;
/// Closest distance to a ReLU kink at which a pre-activation is checked: 100 steps.
const KINK_MARGIN: f64 = 100.0 * STEP;

/// Runs L = Σ forward(x) ⊙ G on a fresh layer whose parameters are set to `params`.
fn loss<L: Layer<f64>>(
    make: &impl Fn() -> L,
    params: &[ArrayD<f64>],
    input: &ArrayD<f64>,
    upstream: &ArrayD<f64>,
) -> f64 {
    let mut layer = make();
    for (param, value) in layer.params_mut().into_iter().zip(params) {
        param.value.assign(value);
    }
    let output = layer.forward(input, Mode::Train).expect("valid input");
    (&output * upstream).sum()
}

fn assert_close(what: &str, analytic: &ArrayD<f64>, numeric: &ArrayD<f64>) {
    assert_eq!(analytic.shape(), numeric.shape(), "{what}: shapes differ");
    for (index, (&a, &n)) in analytic.iter().zip(numeric.iter()).enumerate() {
        assert!(
            (a - n).abs() <= ABS_TOL + REL_TOL * n.abs(),
            "{what}[{index}]: analytic {a}, numerical {n} (largest relative error {})",
            relative_error(analytic, numeric)
        );
    }
}

/// Checks dL/dx and every dL/dθ of the layer built by `make` at `input`.
///
/// `make` must build the same layer every time, including any random state, so that each
/// perturbed evaluation sees the same function.
fn check_gradients<L: Layer<f64>>(make: impl Fn() -> L, input: &ArrayD<f64>, seed: u64) {
    let mut layer = make();
    let output = layer.forward(input, Mode::Train).expect("valid input");
    let upstream = pattern(output.shape(), seed);
    let grad_input = layer.backward(&upstream).expect("cache from forward");
    let params: Vec<ArrayD<f64>> = layer.params().iter().map(|p| p.value.clone()).collect();

    let numeric_input = numerical_gradient(|x| loss(&make, &params, x, &upstream), input, STEP);
    assert_close("dL/dx", &grad_input, &numeric_input);

    for (k, param) in layer.params().into_iter().enumerate() {
        let numeric = numerical_gradient(
            |value| {
                let mut perturbed = params.clone();
                perturbed[k] = value.clone();
                loss(&make, &perturbed, input, &upstream)
            },
            &params[k],
            STEP,
        );
        assert_close(&format!("dL/d{}", param.name), &param.grad, &numeric);
    }
}

/// Deterministic values in [-1, 1] that differ between entries, used for G.
fn pattern(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let len = shape.iter().product::<usize>();
    let values = (0..len).map(|i| ((i as f64 + 1.0) * 0.7 + seed as f64 * 0.31).sin()).collect();
    ArrayD::from_shape_vec(IxDyn(shape), values).expect("len matches shape")
}

/// Strategy for an array of `shape` with entries in [-2, 2].
fn array(shape: Vec<usize>) -> impl Strategy<Value = ArrayD<f64>> {
    let len = shape.iter().product::<usize>();
    prop::collection::vec(-2.0..2.0f64, len)
        .prop_map(move |v| ArrayD::from_shape_vec(IxDyn(&shape), v).expect("len matches shape"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn linear_gradients(
        (shape, input) in (1..4usize, 1..3usize, 1..5usize)
            .prop_flat_map(|(n, extra, features)| {
                let shape = if extra == 1 { vec![n, features] } else { vec![n, extra, features] };
                (Just(shape.clone()), array(shape))
            }),
        out_features in 1..5usize,
        seed in 0..1000u64,
    ) {
        let in_features = shape[shape.len() - 1];
        check_gradients(|| Linear::<f64>::new(in_features, out_features, seed).unwrap(), &input, seed);
    }

    #[test]
    fn relu_gradients(input in (1..4usize, 1..6usize).prop_flat_map(|(n, d)| array(vec![n, d]))) {
        // Central differences straddling the kink at 0 are meaningless, so keep |x| >= 0.05.
        let input = input.mapv(|x| if x.abs() < 0.05 { x.signum() * 0.05 + x } else { x });
        check_gradients(Relu::<f64>::new, &input, 3);
    }

    #[test]
    fn dropout_gradients(
        input in (1..4usize, 1..8usize).prop_flat_map(|(n, d)| array(vec![n, d])),
        p in 0.0..0.9f64,
        seed in 0..1000u64,
    ) {
        check_gradients(|| Dropout::new(p, seed).unwrap(), &input, seed);
    }

    #[test]
    fn flatten_gradients(input in (1..3usize, 1..3usize, 1..4usize, 1..4usize)
        .prop_flat_map(|(n, c, h, w)| array(vec![n, c, h, w])))
    {
        check_gradients(Flatten::new, &input, 5);
    }

    #[test]
    fn conv2d_gradients(
        (config, input) in (1..3usize, 1..4usize, 1..4usize, 1..3usize, 0..4usize)
            .prop_flat_map(|(in_channels, out_channels, kernel_size, stride, padding)| {
                let config = Conv2dConfig { in_channels, out_channels, kernel_size, stride, padding };
                let min = kernel_size.saturating_sub(2 * padding).max(1);
                (Just(config), (1..3usize, min..min + 4, min..min + 4))
            })
            .prop_flat_map(|(config, (n, h, w))| {
                (Just(config), array(vec![n, config.in_channels, h, w]))
            }),
        seed in 0..1000u64,
    ) {
        check_gradients(|| Conv2d::<f64>::new(config, seed).unwrap(), &input, seed);
    }

    #[test]
    fn gru_gradients(
        input in (1..3usize, 1..5usize, 1..4usize).prop_flat_map(|(n, t, d)| array(vec![n, t, d])),
        hidden_size in 1..4usize,
        seed in 0..1000u64,
    ) {
        let input_size = input.shape()[2];
        check_gradients(|| Gru::<f64>::new(input_size, hidden_size, seed).unwrap(), &input, seed);
    }

    #[test]
    fn sequential_gradients(
        input in (1..3usize, 1..3usize).prop_flat_map(|(n, c)| array(vec![n, c, 4, 4])),
        seed in 0..1000u64,
    ) {
        let in_channels = input.shape()[1];
        let config =
            Conv2dConfig { in_channels, out_channels: 2, kernel_size: 3, stride: 1, padding: 1 };
        // Central differences across the ReLU kink are wrong by up to half the jump in slope,
        // and inputs cannot be moved off the kink through the convolution. A step of STEP in a
        // weight or input moves a pre-activation by at most STEP·2 here, so draws with one
        // closer than KINK_MARGIN to 0 are skipped.
        let pre_activations = Conv2d::<f64>::new(config, seed).unwrap().forward(&input, Mode::Eval);
        prop_assume!(pre_activations.unwrap().iter().all(|z| z.abs() > KINK_MARGIN));
        let make = || {
            let mut net = Sequential::<f64>::new();
            net.push(Box::new(Conv2d::new(config, seed).unwrap()));
            net.push(Box::new(Relu::new()));
            net.push(Box::new(Dropout::new(0.25, seed).unwrap()));
            net.push(Box::new(Flatten::new()));
            net.push(Box::new(Linear::new(32, 3, seed + 1).unwrap()));
            net
        };
        check_gradients(make, &input, seed);
    }
}

#[test]
fn sequential_equals_its_parts() {
    let input = pattern(&[5, 3, 4], 11);
    let upstream = pattern(&[5, 3, 2], 12);

    let mut first = Linear::<f64>::new(4, 6, 1).unwrap();
    let mut relu = Relu::new();
    let mut second = Linear::<f64>::new(6, 2, 2).unwrap();
    let hidden = first.forward(&input, Mode::Train).unwrap();
    let activated = relu.forward(&hidden, Mode::Train).unwrap();
    let output = second.forward(&activated, Mode::Train).unwrap();
    let grad_activated = second.backward(&upstream).unwrap();
    let grad_hidden = relu.backward(&grad_activated).unwrap();
    let grad_input = first.backward(&grad_hidden).unwrap();

    let mut net = Sequential::<f64>::new();
    net.push(Box::new(Linear::<f64>::new(4, 6, 1).unwrap()));
    net.push(Box::new(Relu::new()));
    net.push(Box::new(Linear::<f64>::new(6, 2, 2).unwrap()));
    assert_eq!(net.forward(&input, Mode::Train).unwrap(), output);
    assert_eq!(net.backward(&upstream).unwrap(), grad_input);

    let parts: Vec<&ArrayD<f64>> =
        first.params().into_iter().chain(second.params()).map(|p| &p.grad).collect();
    let whole: Vec<&ArrayD<f64>> = net.params().into_iter().map(|p| &p.grad).collect();
    assert_eq!(whole, parts);
    let names: Vec<String> = net.named_params().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
}
