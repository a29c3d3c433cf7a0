//! The by-value and parameters-only passes (`forward_owned`, `backward_owned`,
//! `backward_params`) against `forward` and `backward`, and layers reused across batches of
//! different sizes, which exercises the buffers they keep between calls.

use handgrad_layers::{Conv2d, Conv2dConfig, Flatten, Gru, Layer, Linear, Mode, Relu, Sequential};
use ndarray::{ArrayD, IxDyn};

/// Deterministic values in [−1, 1] with some exact zeros, so that ReLU meets every case.
fn pattern(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let len = shape.iter().product::<usize>();
    let values = (0..len)
        .map(|i| {
            let phase = (i as u64 * 7 + seed * 13) % 11;
            if phase == 0 {
                0.0
            } else {
                ((i as f64) * 0.73 + seed as f64).sin()
            }
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
}

fn grads(layer: &dyn Layer<f64>) -> Vec<ArrayD<f64>> {
    layer.params().iter().map(|param| param.grad.clone()).collect()
}

/// A fresh layer and an input shape for it.
type Case = (&'static str, fn() -> Box<dyn Layer<f64>>, Vec<usize>);

fn cases() -> Vec<Case> {
    fn conv() -> Box<dyn Layer<f64>> {
        let config =
            Conv2dConfig { in_channels: 2, out_channels: 3, kernel_size: 3, stride: 1, padding: 1 };
        Box::new(Conv2d::new(config, 2).unwrap())
    }
    fn head() -> Box<dyn Layer<f64>> {
        let mut net = Sequential::new();
        net.push(Box::new(Linear::new(4, 5, 0).unwrap()));
        net.push(Box::new(Relu::new()));
        net.push(Box::new(Linear::new(5, 2, 1).unwrap()));
        Box::new(net)
    }
    fn cnn() -> Box<dyn Layer<f64>> {
        let mut net = Sequential::new();
        net.push(conv());
        net.push(Box::new(Relu::new()));
        net.push(Box::new(Flatten::new()));
        net.push(Box::new(Linear::new(3 * 4 * 4, 2, 3).unwrap()));
        Box::new(net)
    }
    vec![
        ("linear", || Box::new(Linear::new(4, 3, 0).unwrap()), vec![3, 2, 4]),
        ("relu", || Box::new(Relu::new()), vec![4, 5]),
        ("flatten", || Box::new(Flatten::new()), vec![2, 3, 2]),
        ("conv2d", conv, vec![2, 2, 4, 4]),
        ("gru", || Box::new(Gru::new(3, 4, 1).unwrap()), vec![2, 3, 3]),
        ("sequential", head, vec![6, 4]),
        ("cnn", cnn, vec![2, 2, 4, 4]),
    ]
}

#[test]
fn owned_passes_match_borrowed() {
    for (name, make, shape) in cases() {
        let input = pattern(&shape, 1);
        let (mut borrowed, mut owned) = (make(), make());

        let y = borrowed.forward(&input, Mode::Train).unwrap();
        let y_owned = owned.forward_owned(input.clone(), Mode::Train).unwrap();
        assert_eq!(y, y_owned, "{name}: output");

        let upstream = pattern(y.shape(), 2);
        let dx = borrowed.backward(&upstream).unwrap();
        let dx_owned = owned.backward_owned(upstream).unwrap();
        assert_eq!(dx, dx_owned, "{name}: input gradient");
        assert_eq!(grads(borrowed.as_ref()), grads(owned.as_ref()), "{name}: parameter gradients");
    }
}

#[test]
fn backward_params_matches_backward() {
    for (name, make, shape) in cases() {
        let input = pattern(&shape, 3);
        let (mut full, mut params_only) = (make(), make());

        let y = full.forward(&input, Mode::Train).unwrap();
        params_only.forward(&input, Mode::Train).unwrap();
        let upstream = pattern(y.shape(), 4);
        full.backward(&upstream).unwrap();
        params_only.backward_params(&upstream).unwrap();
        assert_eq!(grads(full.as_ref()), grads(params_only.as_ref()), "{name}");
        assert!(params_only.backward_params(&upstream).is_err(), "{name}: second backward");
    }
}

/// Batches of 3, 3, 1 and 3 rows through one layer give the results of fresh layers.
#[test]
fn layers_reused_across_batch_sizes() {
    for (name, make, shape) in cases() {
        let mut reused = make();
        for (batch, seed) in [(3, 5), (3, 6), (1, 7), (3, 8)] {
            let mut batch_shape = shape.clone();
            batch_shape[0] = batch;
            let input = pattern(&batch_shape, seed);
            let mut fresh = make();

            let y = reused.forward_owned(input.clone(), Mode::Train).unwrap();
            assert_eq!(y, fresh.forward(&input, Mode::Train).unwrap(), "{name}: batch {batch}");
            let upstream = pattern(y.shape(), seed + 10);
            let dx = reused.backward_owned(upstream.clone()).unwrap();
            assert_eq!(dx, fresh.backward(&upstream).unwrap(), "{name}: batch {batch}");
            assert_eq!(grads(reused.as_ref()), grads(fresh.as_ref()), "{name}: batch {batch}");
        }
    }
}

/// An evaluation pass discards the training cache, so `backward` after it is an error.
#[test]
fn eval_forward_ends_pending_backward() {
    for (name, make, shape) in cases() {
        let input = pattern(&shape, 8);
        let mut layer = make();
        let y = layer.forward(&input, Mode::Train).unwrap();
        let y_eval = layer.forward_owned(input.clone(), Mode::Eval).unwrap();
        assert_eq!(y, y_eval, "{name}: evaluation output");
        assert!(layer.backward(&pattern(y.shape(), 9)).is_err(), "{name}");
    }
}

/// A transposed (not standard-layout) array takes the by-value path's fallback.
#[test]
fn owned_passes_accept_transposed_arrays() {
    let input = pattern(&[4, 3], 10);
    let upstream = pattern(&[4, 3], 11);
    let transposed = |x: &ArrayD<f64>| x.t().as_standard_layout().into_owned().reversed_axes();
    assert!(!transposed(&input).is_standard_layout());

    for (name, make) in [
        ("relu", (|| Box::new(Relu::new())) as fn() -> Box<dyn Layer<f64>>),
        ("flatten", || Box::new(Flatten::new())),
        ("linear", || Box::new(Linear::new(3, 3, 0).unwrap())),
    ] {
        let (mut borrowed, mut owned) = (make(), make());
        let y = borrowed.forward(&input, Mode::Train).unwrap();
        assert_eq!(y, owned.forward_owned(transposed(&input), Mode::Train).unwrap(), "{name}");
        let dx = borrowed.backward(&upstream).unwrap();
        assert_eq!(dx, owned.backward_owned(transposed(&upstream)).unwrap(), "{name}");
    }
}
