//! Unit tests: hand-computed values with their derivatives, PyTorch reference values, dropout
//! statistics, initialisation and error handling.

use handgrad_layers::{
    Conv2d, Conv2dConfig, Dropout, Flatten, Gru, Layer, LayerError, Linear, Mode, Relu, Sequential,
};
use ndarray::{array, ArrayD, Axis, IxDyn, Slice};

const EXACT: f64 = 1e-12;

fn assert_all_close(actual: &ArrayD<f64>, expected: &[f64], tolerance: f64) {
    assert_eq!(actual.len(), expected.len(), "element count");
    for (index, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= tolerance, "entry {index}: found {a}, expected {e}");
    }
}

fn pattern(shape: &[usize], scale: f64, rate: f64, offset: f64, f: fn(f64) -> f64) -> ArrayD<f64> {
    let len = shape.iter().product::<usize>();
    let values = (0..len).map(|i| scale * f(rate * i as f64 + offset)).collect();
    ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
}

#[test]
fn linear_hand_values() {
    let weight = array![[1.0, 2.0], [0.0, -1.0], [3.0, 1.0]];
    let mut linear = Linear::<f64>::from_arrays(weight, array![0.5, 0.0, -1.0]).unwrap();
    let x = array![[1.0, 1.0], [2.0, -1.0]].into_dyn();

    // y = x·Wᵀ + b: row 1 is (1·1 + 1·2 + 0.5, −1, 3 + 1 − 1), row 2 is (2 − 2 + 0.5, 1, 6 − 1 − 1).
    let y = linear.forward(&x, Mode::Train).unwrap();
    assert_all_close(&y, &[3.5, -1.0, 3.0, 0.5, 1.0, 4.0], EXACT);

    let g = array![[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]].into_dyn();
    let dx = linear.backward(&g).unwrap();
    // dL/dx = G·W: (1·(1, 2) + 2·(3, 1)), (1·(0, −1) − 1·(3, 1)).
    assert_all_close(&dx, &[7.0, 4.0, -3.0, -2.0], EXACT);
    // dL/dW = Gᵀ·x: row o is Σ_n G[n, o]·x[n].
    assert_all_close(&linear.weight().grad, &[1.0, 1.0, 2.0, -1.0, 0.0, 3.0], EXACT);
    // dL/db = column sums of G.
    assert_all_close(&linear.bias().grad, &[1.0, 1.0, 1.0], EXACT);
}

#[test]
fn linear_flattens_leading_axes() {
    let mut linear = Linear::<f64>::new(3, 2, 4).unwrap();
    let x = pattern(&[2, 4, 3], 1.0, 0.3, 0.0, f64::sin);
    let y = linear.forward(&x, Mode::Eval).unwrap();
    let rows = linear.forward(&x.clone().into_shape_with_order(vec![8, 3]).unwrap(), Mode::Eval);
    assert_eq!(y.shape(), &[2, 4, 2]);
    assert_eq!(y.into_shape_with_order(vec![8, 2]).unwrap(), rows.unwrap());
}

#[test]
fn relu_derivative_is_zero_at_zero() {
    let mut relu = Relu::new();
    let y = relu.forward(&array![-2.0, 0.0, 1e-300, 3.0].into_dyn(), Mode::Train).unwrap();
    assert_all_close(&y, &[0.0, 0.0, 1e-300, 3.0], 0.0);
    // dy/dx = 0 for x < 0, 0 at x = 0 by convention, 1 for x > 0.
    let dx = relu.backward(&array![1.0, 1.0, 1.0, 1.0].into_dyn()).unwrap();
    assert_all_close(&dx, &[0.0, 0.0, 1.0, 1.0], 0.0);
}

#[test]
fn relu_propagates_nan_like_pytorch() {
    let mut relu = Relu::new();
    let y = relu.forward(&array![f64::NAN, -1.0].into_dyn(), Mode::Train).unwrap();
    assert!(y[0].is_nan());
    assert_eq!(y[1], 0.0);
    // PyTorch 2.15 passes the gradient at a NaN input, since NaN <= 0 is false.
    let dx = relu.backward(&array![3.0, 3.0].into_dyn()).unwrap();
    assert_eq!(dx, array![3.0, 0.0].into_dyn());
}

#[test]
fn conv2d_hand_values() {
    let config =
        Conv2dConfig { in_channels: 1, out_channels: 1, kernel_size: 2, stride: 1, padding: 0 };
    let mut conv = Conv2d::<f64>::new(config, 0).unwrap();
    let mut params = conv.params_mut();
    params[0].value = array![[[[1.0, 0.0], [0.0, -1.0]]]].into_dyn();
    params[1].value = array![0.5].into_dyn();
    let x = array![[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]].into_dyn();

    // y[i, j] = x[i, j] − x[i + 1, j + 1] + 0.5 = −4 + 0.5 at every position.
    let y = conv.forward(&x, Mode::Train).unwrap();
    assert_eq!(y.shape(), &[1, 1, 2, 2]);
    assert_all_close(&y, &[-3.5; 4], EXACT);

    let dx = conv.backward(&ArrayD::ones(vec![1, 1, 2, 2])).unwrap();
    // dL/dx[p, q] = Σ_{i,j} W[p − i, q − j]: +1 over the top-left 2x2, −1 over the bottom-right.
    assert_all_close(&dx, &[1.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, -1.0], EXACT);
    // dL/dW[u, v] = Σ_{i,j} x[i + u, j + v], the sum of the 2x2 block starting at (u, v).
    assert_all_close(&conv.params()[0].grad, &[12.0, 16.0, 24.0, 28.0], EXACT);
    // dL/db = number of output positions.
    assert_all_close(&conv.params()[1].grad, &[4.0], EXACT);
}

#[test]
fn conv2d_output_shapes() {
    let cases = [
        // (kernel, stride, padding, input, expected output side)
        (3, 1, 0, 5, 3),
        (3, 1, 1, 5, 5),
        (3, 2, 1, 5, 3),
        (2, 2, 0, 5, 2),
        (5, 1, 0, 5, 1),
    ];
    for (kernel_size, stride, padding, side, expected) in cases {
        let config = Conv2dConfig { in_channels: 2, out_channels: 3, kernel_size, stride, padding };
        let mut conv = Conv2d::<f32>::new(config, 1).unwrap();
        let y = conv.forward(&ArrayD::zeros(vec![1, 2, side, side]), Mode::Eval).unwrap();
        assert_eq!(y.shape(), &[1, 3, expected, expected], "{config:?}");
    }
}

#[test]
fn gru_hand_values() {
    // D = H = 1, one step from h₀ = 0, all weights and biases 0 except W_in = 1.
    let mut gru = Gru::<f64>::new(1, 1, 0).unwrap();
    for param in gru.params_mut() {
        param.value.fill(0.0);
    }
    gru.params_mut()[0].value = array![[0.0], [0.0], [1.0]].into_dyn();
    let x = array![[[0.5]]].into_dyn();

    // r = z = σ(0) = 0.5, n = tanh(0.5 + r·0), h = (1 − z)·n.
    let n = 0.5f64.tanh();
    let y = gru.forward(&x, Mode::Train).unwrap();
    assert_all_close(&y, &[0.5 * n], EXACT);

    // dh/dx = (1 − z)·(1 − n²)·W_in; dh/dW_iz = x·z(1 − z)·(h₀ − n); dh/dW_ir = 0 as W_hn h₀ + b_hn = 0.
    let dx = gru.backward(&array![[[1.0]]].into_dyn()).unwrap();
    assert_all_close(&dx, &[0.5 * (1.0 - n * n)], EXACT);
    let grad_weight_ih = &gru.params()[0].grad;
    assert_all_close(grad_weight_ih, &[0.0, 0.5 * 0.25 * -n, 0.5 * 0.5 * (1.0 - n * n)], EXACT);
}

/// Values printed by `tests/reference/gru_reference.py` (PyTorch `nn.GRU`, float64).
mod torch_gru {
    // torch 2.15.0+cu132, float64
    pub const OUTPUT: [f64; 12] = [
        -0.23220930504302928,
        -0.551963562861689,
        -0.3838601896813521,
        -0.6269491504091536,
        -0.17805957189454977,
        -0.5690899510748297,
        0.375259390063482,
        -0.042177008306179556,
        0.6446634584801467,
        -0.02144834212167672,
        0.6691138294202781,
        -0.032119856908281966,
    ];
    pub const GRAD_INPUT: [f64; 18] = [
        -0.06909760060082104,
        -0.0684111360538507,
        -0.05846554517313876,
        -0.08933506908632684,
        -0.08502912266161917,
        -0.06921488337430777,
        -0.04645022612824412,
        -0.061027650287295385,
        -0.06734526827361076,
        0.2912328355926432,
        0.23543295442233592,
        0.14776832733688264,
        -0.026784331826188005,
        0.006932510512354813,
        0.0397110700749274,
        -0.2747525387160209,
        -0.20905406033656915,
        -0.11506109560749363,
    ];
    pub const WEIGHT_IH_L0: [f64; 18] = [
        0.01799573868881163,
        0.009271003212073567,
        5.798986235422399e-05,
        0.02819440878205129,
        0.023237133014507076,
        0.017056022282939693,
        0.07844445130658537,
        0.022906628333297343,
        -0.033837622844566186,
        0.16179075156697603,
        0.15144803003324964,
        0.1331289632993037,
        0.13326874164893124,
        0.14951980193910847,
        0.15789607142300735,
        -0.0924121271058244,
        -0.0493456803050543,
        -0.003680334197595629,
    ];
    pub const WEIGHT_HH_L0: [f64; 12] = [
        -0.02130370164246047,
        -0.007387036493337992,
        -0.029373479076981384,
        0.0014768450073598368,
        -0.0047141593531814085,
        -0.046446152942944685,
        -0.010118594339621114,
        -0.020666946514035795,
        0.020122384036761493,
        -0.07564457692140154,
        0.10514635464289268,
        -0.035963306102462816,
    ];
    pub const BIAS_IH_L0: [f64; 6] = [
        0.0020977573812070672,
        -0.04947374591732509,
        0.440475929371273,
        0.15444724129199186,
        0.16663282344950872,
        0.7216380645937115,
    ];
    pub const BIAS_HH_L0: [f64; 6] = [
        0.002097757381207068,
        -0.0494737459173251,
        0.44047592937127295,
        0.15444724129199183,
        0.10873150539240407,
        0.4440597520135026,
    ];
}

#[test]
fn gru_matches_pytorch() {
    let (n, t, d, h) = (2, 3, 3, 2);
    let mut gru = Gru::<f64>::new(d, h, 0).unwrap();
    let mut params = gru.params_mut();
    params[0].value = pattern(&[3 * h, d], 0.6, 0.37, 0.1, f64::sin);
    params[1].value = pattern(&[3 * h, h], 0.6, 0.53, 0.7, f64::sin);
    params[2].value = pattern(&[3 * h], 0.3, 0.91, 0.2, f64::sin);
    params[3].value = pattern(&[3 * h], 0.3, 0.67, 1.3, f64::sin);
    let x = pattern(&[n, t, d], 1.0, 0.23, 0.1, f64::cos);
    let upstream = pattern(&[n, t, h], 1.0, 0.71, 0.0, f64::sin);

    let y = gru.forward(&x, Mode::Train).unwrap();
    assert_all_close(&y, &torch_gru::OUTPUT, 1e-12);
    let dx = gru.backward(&upstream).unwrap();
    assert_all_close(&dx, &torch_gru::GRAD_INPUT, 1e-12);

    let expected = [
        &torch_gru::WEIGHT_IH_L0[..],
        &torch_gru::WEIGHT_HH_L0[..],
        &torch_gru::BIAS_IH_L0[..],
        &torch_gru::BIAS_HH_L0[..],
    ];
    for (param, expected) in gru.params().into_iter().zip(expected) {
        assert_all_close(&param.grad, expected, 1e-12);
    }
}

#[test]
fn gru_eval_matches_train() {
    let mut gru = Gru::<f64>::new(3, 4, 9).unwrap();
    let x = pattern(&[3, 5, 3], 1.0, 0.4, 0.2, f64::sin);
    let train = gru.forward(&x, Mode::Train).unwrap();
    let eval = gru.forward(&x, Mode::Eval).unwrap();
    assert_eq!(train, eval);
}

#[test]
fn f32_layers_track_f64() {
    let x64 = pattern(&[4, 5, 6], 1.0, 0.37, 0.0, f64::sin);
    let x32 = x64.mapv(|v| v as f32);
    let mut gru64 = Gru::<f64>::new(6, 7, 3).unwrap();
    let mut gru32 = Gru::<f32>::new(6, 7, 3).unwrap();
    let y64 = gru64.forward(&x64, Mode::Eval).unwrap();
    let y32 = gru32.forward(&x32, Mode::Eval).unwrap();
    assert_all_close(&y32.mapv(f64::from), y64.as_slice().unwrap(), 1e-5);
}

#[test]
fn f32_gru_gradients_track_f64() {
    // 37 hidden units fill two 16-lane f32 vectors and leave a remainder.
    let x64 = pattern(&[4, 5, 6], 1.0, 0.37, 0.0, f64::sin);
    let grad64 = pattern(&[4, 5, 37], 0.5, 0.23, 0.4, f64::cos);
    let mut gru64 = Gru::<f64>::new(6, 37, 3).unwrap();
    let mut gru32 = Gru::<f32>::new(6, 37, 3).unwrap();
    gru64.forward(&x64, Mode::Train).unwrap();
    gru32.forward(&x64.mapv(|v| v as f32), Mode::Train).unwrap();

    let dx64 = gru64.backward(&grad64).unwrap();
    let dx32 = gru32.backward(&grad64.mapv(|v| v as f32)).unwrap();
    assert_all_close(&dx32.mapv(f64::from), dx64.as_slice().unwrap(), 1e-4);
    for (p32, p64) in gru32.params().iter().zip(gru64.params()) {
        let expected = p64.grad.as_slice().unwrap();
        assert_all_close(&p32.grad.mapv(f64::from), expected, 1e-4);
    }
}

#[test]
fn dropout_statistics() {
    let p = 0.3;
    let mut dropout = Dropout::new(p, 42).unwrap();
    let x = ArrayD::<f64>::ones(vec![100, 1000]);
    let y = dropout.forward(&x, Mode::Train).unwrap();

    let kept_value = 1.0 / (1.0 - p);
    assert!(y.iter().all(|&v| v == 0.0 || (v - kept_value).abs() < 1e-12));
    let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
    // Binomial standard deviation sqrt(p(1 − p)/n) ≈ 0.00145 for n = 1e5; allow 5 of them.
    assert!((dropped - p).abs() < 5.0 * (p * (1.0 - p) / 1e5f64).sqrt(), "dropped {dropped}");
    let mean = y.mean().unwrap();
    assert!((mean - 1.0).abs() < 0.011, "mean {mean}");

    // The gradient passes exactly where the input did, with the same scale.
    let dx = dropout.backward(&ArrayD::<f64>::ones(vec![100, 1000])).unwrap();
    assert_eq!(dx, y);
}

#[test]
fn dropout_is_reproducible_from_its_seed() {
    let x = ArrayD::<f32>::ones(vec![8, 64]);
    let run = |seed| {
        let mut dropout = Dropout::new(0.5, seed).unwrap();
        let first = dropout.forward(&x, Mode::Train).unwrap();
        let second = dropout.forward(&x, Mode::Train).unwrap();
        (first, second)
    };
    let (first, second) = run(7);
    assert_eq!(run(7), (first.clone(), second.clone()));
    assert_ne!(first, second, "each forward draws a new mask");
    assert_ne!(run(8).0, first, "another seed gives another mask");
}

#[test]
fn dropout_eval_and_zero_p_are_identity() {
    let x = pattern(&[3, 7], 1.0, 0.9, 0.0, f64::sin);
    let mut dropout = Dropout::new(0.6, 1).unwrap();
    assert_eq!(dropout.forward(&x, Mode::Eval).unwrap(), x);
    let mut keep_all = Dropout::new(0.0, 1).unwrap();
    assert_eq!(keep_all.forward(&x, Mode::Train).unwrap(), x);
}

#[test]
fn initialisation_follows_pytorch_bounds() {
    let linear = Linear::<f64>::new(75, 200, 1).unwrap();
    let config =
        Conv2dConfig { in_channels: 3, out_channels: 200, kernel_size: 3, stride: 1, padding: 0 };
    let conv = Conv2d::<f64>::new(config, 1).unwrap();
    let gru = Gru::<f64>::new(75, 200, 1).unwrap();
    let cases: [(&dyn Layer<f64>, f64); 3] =
        [(&linear, 1.0 / 75f64.sqrt()), (&conv, 1.0 / 27f64.sqrt()), (&gru, 1.0 / 200f64.sqrt())];
    for (layer, bound) in cases {
        for param in layer.params() {
            let max = param.value.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(max < bound, "{} {}: |value| {max} >= {bound}", layer.name(), param.name);
            // Hundreds of uniform draws reach close to the bound.
            assert!(max > 0.9 * bound, "{} {}: max {max} of {bound}", layer.name(), param.name);
        }
    }
}

#[test]
fn initialisation_is_seeded() {
    let a = Linear::<f64>::new(5, 4, 3).unwrap();
    let b = Linear::<f64>::new(5, 4, 3).unwrap();
    let c = Linear::<f64>::new(5, 4, 4).unwrap();
    let single = Linear::<f32>::new(5, 4, 3).unwrap();
    assert_eq!(a.weight().value, b.weight().value);
    assert_ne!(a.weight().value, c.weight().value);
    assert_eq!(single.weight().value, a.weight().value.mapv(|v| v as f32));
}

#[test]
fn sequential_names_nest_like_pytorch() {
    let mut inner = Sequential::<f32>::new();
    inner.push(Box::new(Linear::new(2, 2, 0).unwrap()));
    let mut outer = Sequential::<f32>::new();
    outer.push(Box::new(Relu::new()));
    outer.push(Box::new(inner));
    let names: Vec<String> = outer.named_params().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["1.0.weight", "1.0.bias"]);
}

fn is_shape_error<T: std::fmt::Debug>(result: Result<T, LayerError>) -> bool {
    matches!(result, Err(LayerError::Shape { .. }))
}

fn is_config_error<T: std::fmt::Debug>(result: Result<T, LayerError>) -> bool {
    matches!(result, Err(LayerError::Config { .. }))
}

fn is_no_cache_error<T: std::fmt::Debug>(result: Result<T, LayerError>) -> bool {
    matches!(result, Err(LayerError::NoForwardCache { .. }))
}

#[test]
fn invalid_configurations_are_errors() {
    assert!(is_config_error(Linear::<f32>::new(0, 3, 0)));
    assert!(is_config_error(Linear::<f32>::new(3, 0, 0)));
    assert!(is_config_error(Linear::<f32>::from_arrays(
        ArrayD::zeros(vec![2, 3]).into_dimensionality().unwrap(),
        array![0.0]
    )));
    for p in [-0.1, 1.0, 1.5, f64::NAN] {
        assert!(is_config_error(Dropout::new(p, 0)), "p = {p}");
    }
    let valid =
        Conv2dConfig { in_channels: 1, out_channels: 1, kernel_size: 1, stride: 1, padding: 0 };
    for config in [
        Conv2dConfig { in_channels: 0, ..valid },
        Conv2dConfig { out_channels: 0, ..valid },
        Conv2dConfig { kernel_size: 0, ..valid },
        Conv2dConfig { stride: 0, ..valid },
    ] {
        assert!(is_config_error(Conv2d::<f32>::new(config, 0)), "{config:?}");
    }
    assert!(is_config_error(Gru::<f32>::new(0, 3, 0)));
    assert!(is_config_error(Gru::<f32>::new(3, 0, 0)));
}

#[test]
fn conv2d_kernel_too_large_to_address_is_config_error() {
    // (k · k) alone overflows usize; the weight must not be sized by wrapping arithmetic.
    let config = Conv2dConfig {
        in_channels: 1,
        out_channels: 1,
        kernel_size: usize::MAX,
        stride: 1,
        padding: 0,
    };
    assert!(is_config_error(Conv2d::<f32>::new(config, 0)));
}

#[test]
fn conv2d_padding_overflowing_usize_is_shape_error() {
    let config =
        Conv2dConfig { in_channels: 1, out_channels: 1, kernel_size: 3, stride: 1, padding: 0 };
    for padding in [usize::MAX / 2, usize::MAX / 4] {
        let mut conv = Conv2d::<f32>::new(Conv2dConfig { padding, ..config }, 0).unwrap();
        let result = conv.forward(&ArrayD::zeros(vec![1, 1, 4, 4]), Mode::Train);
        assert!(is_shape_error(result), "padding {padding}");
    }
}

/// A layer, an input shape it accepts and one it rejects.
type ErrorCase = (Box<dyn Layer<f32>>, Vec<usize>, Vec<usize>);

fn error_cases() -> Vec<ErrorCase> {
    let config =
        Conv2dConfig { in_channels: 3, out_channels: 4, kernel_size: 3, stride: 1, padding: 0 };
    vec![
        (Box::new(Linear::new(5, 2, 0).unwrap()), vec![4, 5], vec![4, 4]),
        (Box::new(Linear::new(5, 2, 0).unwrap()), vec![4, 5], vec![5]),
        (Box::new(Conv2d::new(config, 0).unwrap()), vec![2, 3, 5, 5], vec![2, 2, 5, 5]),
        (Box::new(Conv2d::new(config, 0).unwrap()), vec![2, 3, 5, 5], vec![2, 3, 2, 5]),
        (Box::new(Conv2d::new(config, 0).unwrap()), vec![2, 3, 5, 5], vec![3, 5, 5]),
        (Box::new(Gru::new(5, 2, 0).unwrap()), vec![4, 3, 5], vec![4, 3, 6]),
        (Box::new(Gru::new(5, 2, 0).unwrap()), vec![4, 3, 5], vec![4, 0, 5]),
        (Box::new(Gru::new(5, 2, 0).unwrap()), vec![4, 3, 5], vec![4, 5]),
        (Box::new(Flatten::new()), vec![4, 3, 5], vec![4]),
    ]
}

#[test]
fn wrong_input_shapes_are_errors() {
    for (mut layer, _, bad) in error_cases() {
        let result = layer.forward(&ArrayD::zeros(bad.clone()), Mode::Train);
        assert!(is_shape_error(result), "{} with input {bad:?}", layer.name());
    }
}

#[test]
fn backward_without_forward_is_error() {
    let mut layers = error_cases();
    layers.push((Box::new(Relu::new()), vec![2, 2], vec![]));
    layers.push((Box::new(Dropout::new(0.5, 0).unwrap()), vec![2, 2], vec![]));
    for (mut layer, good, _) in layers {
        assert!(
            is_no_cache_error(layer.backward(&ArrayD::zeros(good.clone()))),
            "{}",
            layer.name()
        );

        // Evaluation keeps no cache, and one backward consumes the cache of one forward.
        let output = layer.forward(&ArrayD::zeros(good.clone()), Mode::Eval).unwrap();
        assert!(is_no_cache_error(layer.backward(&output)), "{} after eval", layer.name());
        let output = layer.forward(&ArrayD::zeros(good), Mode::Train).unwrap();
        layer.backward(&output).unwrap();
        assert!(is_no_cache_error(layer.backward(&output)), "{} twice", layer.name());
    }
}

#[test]
fn wrong_gradient_shapes_are_errors() {
    let mut layers = error_cases();
    layers.push((Box::new(Relu::new()), vec![2, 2], vec![]));
    layers.push((Box::new(Dropout::new(0.5, 0).unwrap()), vec![2, 2], vec![]));
    for (mut layer, good, _) in layers {
        let output = layer.forward(&ArrayD::zeros(good), Mode::Train).unwrap();
        let mut wrong = output.shape().to_vec();
        wrong[0] += 1;
        assert!(is_shape_error(layer.backward(&ArrayD::zeros(wrong))), "{}", layer.name());
        // The rejected gradient leaves the cache in place for a correct one.
        layer.backward(&output).unwrap();
    }
}

#[test]
fn conv2d_stride_two_padding_one_matches_pytorch() {
    let (n, c, o, k, h, w) = (2, 2, 3, 3, 6, 5);
    let config =
        Conv2dConfig { in_channels: c, out_channels: o, kernel_size: k, stride: 2, padding: 1 };
    let mut conv = Conv2d::<f64>::new(config, 0).unwrap();
    let mut params = conv.params_mut();
    params[0].value = pattern(&[o, c, k, k], 0.5, 0.31, 0.2, f64::sin);
    params[1].value = pattern(&[o], 0.3, 0.77, 0.4, f64::sin);
    let x = pattern(&[n, c, h, w], 1.0, 0.19, 0.3, f64::cos);

    let y = conv.forward(&x, Mode::Train).unwrap();
    assert_eq!(y.shape(), &[n, o, 3, 3]);
    assert_all_close(&y, &torch_conv2d::OUTPUT, 1e-12);

    let upstream = pattern(y.shape(), 1.0, 0.43, 0.0, f64::sin);
    let dx = conv.backward(&upstream).unwrap();
    assert_all_close(&dx, &torch_conv2d::GRAD_INPUT, 1e-12);
    assert_all_close(&conv.params()[0].grad, &torch_conv2d::WEIGHT, 1e-12);
    assert_all_close(&conv.params()[1].grad, &torch_conv2d::BIAS, 1e-12);
}

/// Runs `layer` on the whole batch `x` and then on each sample alone, and checks that the
/// outputs and input gradients agree and that the parameter gradients of the batch are the sums
/// of the samples'.
fn assert_batch_matches_single_samples(layer: &mut dyn Layer<f64>, x: &ArrayD<f64>) {
    let y = layer.forward(x, Mode::Train).unwrap();
    let upstream = pattern(y.shape(), 1.0, 0.29, 0.5, f64::cos);
    let dx = layer.backward(&upstream).unwrap();
    let grads: Vec<ArrayD<f64>> = layer.params().iter().map(|p| p.grad.clone()).collect();

    let mut sums: Vec<ArrayD<f64>> = grads.iter().map(|g| ArrayD::zeros(g.raw_dim())).collect();
    for sample in 0..x.shape()[0] {
        let single =
            |a: &ArrayD<f64>| a.slice_axis(Axis(0), Slice::from(sample..sample + 1)).to_owned();
        let y_single = layer.forward(&single(x), Mode::Train).unwrap();
        assert_all_close(&y_single, single(&y).as_slice().unwrap(), 1e-12);
        let dx_single = layer.backward(&single(&upstream)).unwrap();
        assert_all_close(&dx_single, single(&dx).as_slice().unwrap(), 1e-12);
        for (sum, param) in sums.iter_mut().zip(layer.params()) {
            *sum += &param.grad;
        }
    }
    for (grad, sum) in grads.iter().zip(&sums) {
        assert_all_close(grad, sum.as_slice().unwrap(), 1e-10);
    }
}

/// A batch that the convolution splits into several blocks of samples, the last one partial,
/// behaves as its samples one at a time.
#[test]
fn conv2d_batch_matches_samples() {
    // A 4x4 output has 16 pixels, so a block holds 32 samples and 75 samples make 3 blocks.
    let (n, c, o, k, side) = (75, 2, 5, 3, 4);
    let config =
        Conv2dConfig { in_channels: c, out_channels: o, kernel_size: k, stride: 1, padding: 1 };
    let mut conv = Conv2d::<f64>::new(config, 3).unwrap();
    let x = pattern(&[n, c, side, side], 1.0, 0.37, 0.1, f64::sin);
    assert_batch_matches_single_samples(&mut conv, &x);
}

/// The same for the GRU, whose products and gate loops are split among threads by rows.
#[test]
fn gru_batch_matches_samples() {
    let mut gru = Gru::<f64>::new(4, 6, 5).unwrap();
    let x = pattern(&[150, 3, 4], 1.0, 0.23, 0.7, f64::sin);
    assert_batch_matches_single_samples(&mut gru, &x);
}

/// Values printed by `tests/reference/conv2d_reference.py` (PyTorch `nn.Conv2d`, float64).
mod torch_conv2d {
    // torch 2.15.0+cu132, float64, output shape (2, 3, 3, 3)
    pub const OUTPUT: [f64; 54] = [
        -0.3443193614520028,
        -0.7312588062986108,
        -0.5636313653126791,
        -0.33590675733716213,
        -0.37478734473020237,
        -0.0664430668184913,
        0.48858532242819586,
        0.7858540978480073,
        0.5848543850553278,
        -0.01035480353681284,
        -0.2935120852362152,
        -0.16895328318716468,
        0.023625387377480656,
        0.1242703707394261,
        0.3019617039244182,
        0.6059444257312314,
        0.7427221474413023,
        0.5126140470575817,
        0.30373081059107554,
        0.2586932766416378,
        0.2810893260235949,
        0.3471574532791935,
        0.5395792654740239,
        0.5023160094128508,
        0.411035318915821,
        0.3224308823974078,
        0.17238399167811633,
        0.43730608794594295,
        0.3758485824865305,
        0.1292494397343205,
        -0.28029243957422767,
        -0.5721761541944448,
        -0.3524179714577398,
        -0.0599583201306739,
        0.1126065483566263,
        0.26994179797853296,
        0.7486483020115291,
        0.7425739278451292,
        0.46954095211918545,
        -0.06415676745236432,
        -0.18904323794165012,
        0.048617781412244404,
        0.26412314419598776,
        0.45867879642974657,
        0.4684888824983171,
        0.6800196710912441,
        0.7322102780102748,
        0.562277805336837,
        0.1576250889520897,
        0.2589854312235996,
        0.40179637791889655,
        0.4381057943373501,
        0.5623496900648925,
        0.4199804385490449,
    ];
    pub const GRAD_INPUT: [f64; 120] = [
        -0.20694415985438638,
        -0.25162425563084706,
        -0.08516667571688118,
        0.0041357708959209386,
        0.052116977373760844,
        0.2475262355568977,
        0.6555953423403128,
        0.3961317029022618,
        0.8850964638973644,
        0.4726140650401893,
        0.1799117705355404,
        0.466968094992159,
        0.2749502973865858,
        0.5897732052609659,
        0.31992903583912063,
        0.4630482929700389,
        0.8482092322022164,
        0.3691760124701853,
        0.5885368819178896,
        0.20808840890385377,
        0.30665877442195344,
        0.5104374698462888,
        0.23755560973454404,
        0.3227411625577384,
        0.12520105136171497,
        -0.05213627380278338,
        -0.14061855302552756,
        -0.07285697715311898,
        -0.18692923925611737,
        -0.0803127199112783,
        0.28037193517868286,
        0.38443490952911075,
        0.13605639610212336,
        0.07910617735369957,
        -0.033030727016623455,
        -0.09037757567931187,
        -0.37522238682773323,
        -0.2780057243497692,
        -0.706181520374265,
        -0.41501778761568375,
        -0.19610399519206662,
        -0.5165464859913814,
        -0.32347290299137027,
        -0.6984208298374968,
        -0.39194758434205806,
        -0.4764681845472344,
        -0.9455314905333756,
        -0.4511687335107333,
        -0.8103442369484084,
        -0.34372566762366946,
        -0.38906095667810786,
        -0.670726537939754,
        -0.3153385839702305,
        -0.46620016039828804,
        -0.18420298808172664,
        -0.09619127536652652,
        -0.12339566548084419,
        -0.052371879535248765,
        -0.011174131289192556,
        0.0009827858792462595,
        -0.3210698770779582,
        -0.6014729238034517,
        -0.30298936720299136,
        -0.4981906960984758,
        -0.2297440375284132,
        -0.19275142053699762,
        -0.18888072886509355,
        0.007769414248453704,
        0.21833818952762607,
        0.20687568343075902,
        -0.11466955540770755,
        -0.054830674760929794,
        0.02128264073630779,
        0.20452522453845942,
        0.15335993839158613,
        0.36831640710983404,
        0.8466144473094768,
        0.4626983147815421,
        0.9532824704501297,
        0.4728374340275867,
        0.2575152220040968,
        0.5710834746640697,
        0.31478509525171056,
        0.6115471144889489,
        0.31474251817980564,
        0.019861411043905795,
        0.0347993809691486,
        -0.014387075114372053,
        -0.05034435928086682,
        -0.04601612807783388,
        0.39447472957983715,
        0.7514978979495491,
        0.3855839131355158,
        0.6581912716789668,
        0.30649041175176206,
        0.3317930684310435,
        0.49935121719421255,
        0.1578948138247056,
        0.11559605513173785,
        -0.044751112795144335,
        0.17159466063669412,
        0.15087686502514858,
        0.0054569269399183575,
        -0.17076494198036576,
        -0.16167434126296623,
        -0.23924927140595237,
        -0.6413518567644625,
        -0.39018767389021886,
        -0.8767282352089252,
        -0.47008519161709245,
        -0.29936980455848894,
        -0.6678756402264292,
        -0.38255945639809535,
        -0.752836331980129,
        -0.3960970816017337,
        -0.12417931578389207,
        -0.2690825376862576,
        -0.1254268264903805,
        -0.2284000326383697,
        -0.10383806295644887,
    ];
    pub const WEIGHT: [f64; 54] = [
        0.43302460241144025,
        -0.5863399469278228,
        -1.1893743293081918,
        -2.4235613153444002,
        -5.279519470769342,
        -4.434157088643064,
        -4.3787048214202615,
        -6.794677318168569,
        -4.269951394489944,
        2.4250394348640514,
        2.600502850154883,
        0.9660663994886689,
        -0.01297972013376647,
        -1.8859428688424345,
        -2.5566524009931837,
        -3.5713798560711805,
        -6.570103802517689,
        -4.884610634141062,
        -2.8509251501307187,
        -3.352740114668018,
        -1.5302840084665983,
        -1.7543904868611708,
        -0.6413605699632393,
        0.7428834171840205,
        2.8046830752313987,
        5.385842114206228,
        3.980769110495102,
        -3.786893967626073,
        -5.347153900332778,
        -3.191116206586008,
        -4.054075886492328,
        -4.43415739983739,
        -1.7823534800986394,
        0.04888629305393505,
        1.9404734325546344,
        2.2580999753716933,
        3.8218987874600874,
        5.590207668045439,
        3.473278984073449,
        5.041938412046301,
        6.236731585002789,
        3.3254250591195813,
        0.19279639185952968,
        -1.2435363770736363,
        -1.6712314517685958,
        3.22679036399151,
        5.3799698040379145,
        3.79658231002878,
        6.063570810874759,
        8.503794633233706,
        5.216763456922832,
        3.4984184765871364,
        3.67400328748929,
        1.5144616839180822,
    ];
    pub const BIAS: [f64; 3] = [7.359890201329115, -7.164786904569848, 3.3333471789302838];
}
