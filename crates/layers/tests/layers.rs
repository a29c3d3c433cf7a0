//! Unit tests: hand-computed values with their derivatives, PyTorch reference values, dropout
//! statistics, initialisation and error handling.

use handgrad_layers::{
    Conv2d, Conv2dConfig, Dropout, Flatten, Gru, Layer, LayerError, Linear, Mode, Relu, Sequential,
};
use ndarray::{array, ArrayD, IxDyn};

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
