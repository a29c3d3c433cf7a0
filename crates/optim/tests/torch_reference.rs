//! Trajectories of the optimisers and schedules compared with PyTorch.
//!
//! The expected values come from `reference/torch_reference.py`, which runs
//! `torch.optim.Adam(foreach=False)`, `torch.optim.SGD(foreach=False)` and
//! `torch.optim.lr_scheduler.ReduceLROnPlateau` on the same inputs and prints them as the Rust
//! module `reference/torch_values.rs`.

#[path = "reference/torch_values.rs"]
mod torch_values;

use handgrad_optim::{
    Adam, AdamConfig, Optimizer, PlateauConfig, ReduceLrOnPlateau, Sgd, SgdConfig,
};
use handgrad_tensor::{Param, Scalar};
use ndarray::{arr1, arr2};
use torch_values::*;

/// Initial parameters and gradient of the reference script: loss sum(p^4 / 4 - 0.3 p).
fn reference_params<F: Scalar>() -> Vec<Param<F>> {
    let f = F::from_f64_lossy;
    vec![
        Param::new("a", arr1(&[f(0.5), f(-1.5), f(2.0)]).into_dyn()),
        Param::new("b", arr2(&[[f(0.1), f(-0.2)], [f(3.0), f(-0.7)]]).into_dyn()),
    ]
}

fn set_reference_gradients<F: Scalar>(params: &mut [Param<F>]) {
    let target = F::from_f64_lossy(0.3);
    for p in params {
        p.grad = p.value.mapv(|v| v * v * v - target);
    }
}

/// Runs `optimizer` for as many steps as `expected` has rows and compares every entry after
/// every step with relative tolerance `tolerance` (absolute below magnitude 1). The `f64` runs
/// differ from PyTorch by about one ulp where its CPU kernels fuse a multiply-add, hence 1e-12
/// rather than 0. `lr_change` sets a new learning rate before
/// the given step, as the script does.
fn assert_trajectory<F: Scalar, const N: usize>(
    optimizer: &mut dyn Optimizer<F>,
    expected: &[[F; N]],
    tolerance: f64,
    lr_change: Option<(usize, f64)>,
) {
    let mut params = reference_params::<F>();
    for (step, row) in expected.iter().enumerate() {
        if let Some((_, lr)) = lr_change.filter(|&(at, _)| at == step) {
            optimizer.set_learning_rate(lr);
        }
        set_reference_gradients(&mut params);
        let mut refs: Vec<&mut Param<F>> = params.iter_mut().collect();
        optimizer.step(&mut refs).unwrap();

        let actual: Vec<F> = params.iter().flat_map(|p| p.value.iter().copied()).collect();
        for (index, (&a, &e)) in actual.iter().zip(row).enumerate() {
            let (a, e) = (a.to_f64().unwrap(), e.to_f64().unwrap());
            let error = (a - e).abs() / e.abs().max(1.0);
            assert!(error <= tolerance, "step {step} entry {index}: {a} vs torch {e}");
        }
    }
}

#[test]
fn adam_defaults_match_torch() {
    let mut adam = Adam::<f64>::new(AdamConfig::default()).unwrap();
    assert_trajectory(&mut adam, &ADAM_DEFAULT_F64, 1e-12, None);
}

#[test]
fn adam_with_weight_decay_matches_torch() {
    let config =
        AdamConfig { learning_rate: 0.05, beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 0.01 };
    let mut adam = Adam::<f64>::new(config).unwrap();
    assert_trajectory(&mut adam, &ADAM_TUNED_F64, 1e-12, Some((6, 0.005)));
}

#[test]
fn adam_in_f32_matches_torch() {
    let config =
        AdamConfig { learning_rate: 0.05, beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 0.01 };
    let mut adam = Adam::<f32>::new(config).unwrap();
    // PyTorch's vectorised CPU kernels fuse some multiply-adds, so single roundings differ by an
    // ulp (1.2e-7 near 1 in f32) and may accumulate over 12 steps.
    assert_trajectory(&mut adam, &ADAM_TUNED_F32, 1e-6, Some((6, 0.005)));
}

#[test]
fn sgd_with_momentum_matches_torch() {
    let config = SgdConfig { learning_rate: 0.02, momentum: 0.9, weight_decay: 0.01 };
    let mut sgd = Sgd::<f64>::new(config).unwrap();
    assert_trajectory(&mut sgd, &SGD_MOMENTUM_F64, 1e-12, None);
}

fn plateau_lrs(config: PlateauConfig, metrics: &[f64], initial_lr: f64) -> Vec<f64> {
    let mut scheduler = ReduceLrOnPlateau::new(config).unwrap();
    let mut lr = initial_lr;
    metrics
        .iter()
        .map(|&metric| {
            lr = scheduler.step(metric, lr);
            lr
        })
        .collect()
}

#[test]
fn plateau_with_cooldown_matches_torch() {
    let config = PlateauConfig {
        factor: 0.5,
        patience: 2,
        cooldown: 1,
        min_lr: 0.01,
        ..PlateauConfig::default()
    };
    assert_eq!(plateau_lrs(config, &PLATEAU_METRICS, 0.1), PLATEAU_PATIENCE_2_COOLDOWN_1);
}

#[test]
fn plateau_with_zero_patience_matches_torch() {
    let config =
        PlateauConfig { factor: 0.3, patience: 0, threshold: 0.05, ..PlateauConfig::default() };
    assert_eq!(plateau_lrs(config, &PLATEAU_METRICS, 0.1), PLATEAU_PATIENCE_0);
}

#[test]
fn plateau_defaults_match_torch() {
    let lrs = plateau_lrs(PlateauConfig::default(), &PLATEAU_LONG_METRICS, 1e-3);
    assert_eq!(lrs, PLATEAU_DEFAULTS);
}

#[test]
fn plateau_skips_reductions_below_eps_as_torch() {
    let config = PlateauConfig { factor: 0.5, patience: 1, eps: 1e-7, ..PlateauConfig::default() };
    assert_eq!(plateau_lrs(config, &PLATEAU_LONG_METRICS, 1e-7), PLATEAU_EPS_SKIP);
}
