//! The shape calculator counts the parameters the network holds.

use handgrad_classifier::TwoLayerNet;
use handgrad_shapes::analyze;
use handgrad_tensor::rng::NumpyRng;

#[test]
fn architecture_counts_parameters() {
    let net = TwoLayerNet::init(784, 250, 10, 1e-4, &mut NumpyRng::new(0)).unwrap();
    let summary = analyze(&net.architecture().unwrap()).unwrap();
    // 784 * 250 + 250 + 250 * 10 + 10
    assert_eq!(net.num_params(), 198_760);
    assert_eq!(summary.params, net.num_params() as u64);
}

#[test]
fn architecture_rows_match_layers() {
    let net = TwoLayerNet::init(4, 10, 3, 0.1, &mut NumpyRng::new(0)).unwrap();
    let summary = analyze(&net.architecture().unwrap()).unwrap();
    let fc1 = summary.row("fc1").unwrap();
    assert_eq!(fc1.weights, 40);
    assert_eq!(fc1.biases, 10);
    let fc2 = summary.row("fc2").unwrap();
    assert_eq!(fc2.weights, 30);
    assert_eq!(fc2.biases, 3);
}
