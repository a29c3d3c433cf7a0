//! Error handling, checkpoint round trips and schedule shapes of the optimisers.

use handgrad_optim::{
    Adam, AdamConfig, AdamState, KeypointSchedule, OptimError, Optimizer, PlateauConfig,
    PlateauState, ReduceLrOnPlateau, Sgd, SgdConfig, SgdState, StepDecay,
};
use handgrad_tensor::Param;
use ndarray::{arr1, ArrayD, IxDyn};
use proptest::prelude::*;

fn param(name: &str, shape: &[usize], fill: f64) -> Param<f64> {
    let mut p = Param::new(name, ArrayD::from_elem(IxDyn(shape), fill));
    p.grad = ArrayD::from_elem(IxDyn(shape), 0.5);
    p
}

fn optimizers() -> Vec<Box<dyn Optimizer<f64>>> {
    let sgd = SgdConfig { learning_rate: 0.1, momentum: 0.0, weight_decay: 0.0 };
    vec![
        Box::new(Adam::new(AdamConfig::default()).unwrap()),
        Box::new(Sgd::new(sgd).unwrap()),
        Box::new(Sgd::new(SgdConfig { momentum: 0.9, ..sgd }).unwrap()),
    ]
}

#[test]
fn step_rejects_changed_parameter_count() {
    for mut optimizer in optimizers() {
        let (mut a, mut b) = (param("a", &[2], 1.0), param("b", &[3], 1.0));
        optimizer.step(&mut [&mut a, &mut b]).unwrap();
        let error = optimizer.step(&mut [&mut a]).unwrap_err();
        assert!(matches!(error, OptimError::ParamCount { expected: 2, found: 1, .. }), "{error}");
    }
}

#[test]
fn step_rejects_changed_shape() {
    for mut optimizer in optimizers() {
        let (mut a, mut b) = (param("a", &[2], 1.0), param("b", &[3], 1.0));
        optimizer.step(&mut [&mut a, &mut b]).unwrap();
        let mut wide = param("b", &[1, 3], 1.0);
        let error = optimizer.step(&mut [&mut a, &mut wide]).unwrap_err();
        assert!(matches!(error, OptimError::ParamShape { index: 1, .. }), "{error}");
        assert_eq!(wide.value, ArrayD::from_elem(IxDyn(&[1, 3]), 1.0));
    }
}

#[test]
fn step_rejects_gradient_of_wrong_shape() {
    for mut optimizer in optimizers() {
        let mut a = param("a", &[2], 1.0);
        a.grad = ArrayD::zeros(IxDyn(&[3]));
        let error = optimizer.step(&mut [&mut a]).unwrap_err();
        assert!(matches!(error, OptimError::GradShape { index: 0, .. }), "{error}");
    }
}

#[test]
fn step_rejects_negative_learning_rate() {
    for mut optimizer in optimizers() {
        let mut a = param("a", &[2], 1.0);
        optimizer.set_learning_rate(-0.1);
        assert_eq!(optimizer.learning_rate(), -0.1);
        let error = optimizer.step(&mut [&mut a]).unwrap_err();
        assert!(matches!(error, OptimError::InvalidHyperparameter { .. }), "{error}");
        assert_eq!(a.value, ArrayD::from_elem(IxDyn(&[2]), 1.0));
    }
}

#[test]
fn constructors_reject_invalid_hyperparameters() {
    let sgd = SgdConfig::default();
    assert!(Sgd::<f64>::new(SgdConfig { learning_rate: -1.0, ..sgd }).is_err());
    assert!(Sgd::<f64>::new(SgdConfig { momentum: -0.5, ..sgd }).is_err());
    assert!(Sgd::<f64>::new(SgdConfig { weight_decay: f64::INFINITY, ..sgd }).is_err());

    let plateau = PlateauConfig::default();
    assert!(ReduceLrOnPlateau::new(PlateauConfig { factor: 1.0, ..plateau }).is_err());
    assert!(ReduceLrOnPlateau::new(PlateauConfig { min_lr: -1e-3, ..plateau }).is_err());
    assert!(ReduceLrOnPlateau::new(PlateauConfig { eps: f64::NAN, ..plateau }).is_err());

    assert!(StepDecay::new(0.0).is_err());
    assert!(StepDecay::new(f64::NAN).is_err());
}

/// Runs `steps` Adam steps on a quadratic, starting from `adam`'s current state.
fn run_adam(adam: &mut Adam<f64>, x: &mut Param<f64>, steps: usize) {
    for _ in 0..steps {
        x.grad = x.value.mapv(|v| 2.0 * (v - 3.0));
        adam.step(&mut [&mut *x]).unwrap();
    }
}

#[test]
fn adam_resumes_from_saved_state() {
    let config = AdamConfig { learning_rate: 0.05, ..AdamConfig::default() };
    let mut straight = Adam::new(config).unwrap();
    let mut x = Param::new("x", arr1(&[0.0, 1.0]).into_dyn());
    run_adam(&mut straight, &mut x, 10);

    let mut resumed_x = x.clone();
    let mut resumed = Adam::new(config).unwrap();
    resumed.load_state(straight.state()).unwrap();
    assert_eq!(resumed.state().step, 10);

    run_adam(&mut straight, &mut x, 5);
    run_adam(&mut resumed, &mut resumed_x, 5);
    assert_eq!(x.value, resumed_x.value);

    let mut fresh_x = resumed_x.clone();
    let mut fresh = Adam::new(config).unwrap();
    run_adam(&mut fresh, &mut fresh_x, 5);
    assert_ne!(fresh_x.value, x.value, "restarting without state must differ");
}

#[test]
fn adam_rejects_inconsistent_state() {
    let mut adam = Adam::<f64>::new(AdamConfig::default()).unwrap();
    let moments = vec![ArrayD::zeros(IxDyn(&[2]))];
    let mismatched = AdamState {
        step: 1,
        exp_avg: moments.clone(),
        exp_avg_sq: vec![ArrayD::zeros(IxDyn(&[3]))],
    };
    let no_steps = AdamState { step: 0, exp_avg: moments.clone(), exp_avg_sq: moments };
    let no_moments = AdamState { step: 4, exp_avg: Vec::new(), exp_avg_sq: Vec::new() };
    for state in [mismatched, no_steps, no_moments] {
        let error = adam.load_state(state).unwrap_err();
        assert!(matches!(error, OptimError::InvalidState { .. }), "{error}");
    }
}

#[test]
fn adam_checks_parameters_against_loaded_state() {
    let mut adam = Adam::<f64>::new(AdamConfig::default()).unwrap();
    let moments = vec![ArrayD::zeros(IxDyn(&[2]))];
    adam.load_state(AdamState { step: 3, exp_avg: moments.clone(), exp_avg_sq: moments }).unwrap();
    let mut a = param("a", &[4], 1.0);
    let error = adam.step(&mut [&mut a]).unwrap_err();
    assert!(matches!(error, OptimError::ParamShape { .. }), "{error}");
}

#[test]
fn sgd_resumes_from_saved_state() {
    let config = SgdConfig { learning_rate: 0.1, momentum: 0.9, weight_decay: 0.01 };
    let mut straight = Sgd::new(config).unwrap();
    let mut a = param("a", &[3], 1.0);
    straight.step(&mut [&mut a]).unwrap();

    let mut resumed = Sgd::new(config).unwrap();
    resumed.load_state(straight.state()).unwrap();
    let mut resumed_a = a.clone();
    straight.step(&mut [&mut a]).unwrap();
    resumed.step(&mut [&mut resumed_a]).unwrap();
    assert_eq!(a.value, resumed_a.value);
}

#[test]
fn sgd_rejects_buffers_without_momentum() {
    let mut sgd = Sgd::<f64>::new(SgdConfig::default()).unwrap();
    let state = SgdState { momentum_buffers: vec![ArrayD::zeros(IxDyn(&[2]))] };
    assert!(matches!(sgd.load_state(state), Err(OptimError::InvalidState { .. })));
}

#[test]
fn plateau_resumes_from_saved_state() {
    let config =
        PlateauConfig { factor: 0.5, patience: 1, cooldown: 2, ..PlateauConfig::default() };
    let metrics = [1.0, 1.0, 1.0, 0.5, 0.6, 0.6, 0.6, 0.6];
    let mut straight = ReduceLrOnPlateau::new(config).unwrap();
    let mut lr = 1.0;
    for &m in &metrics[..3] {
        lr = straight.step(m, lr);
    }

    let mut resumed = ReduceLrOnPlateau::new(config).unwrap();
    resumed.load_state(straight.state()).unwrap();
    let mut resumed_lr = lr;
    for &m in &metrics[3..] {
        lr = straight.step(m, lr);
        resumed_lr = resumed.step(m, resumed_lr);
        assert_eq!(lr, resumed_lr);
    }
    let bad = PlateauState { cooldown_counter: 3, ..PlateauState::default() };
    assert!(resumed.load_state(bad).is_err());
}

const KEYPOINTS: [(f64, f64); 5] =
    [(0.0, 1e-4), (3.0, 1e-3), (6.0, 5e-4), (7.0, 1e-3), (9.0, 1e-4)];

#[test]
fn keypoint_schedule_passes_through_points() {
    let schedule = KeypointSchedule::new(KEYPOINTS.to_vec()).unwrap();
    for (epoch, lr) in KEYPOINTS {
        assert_eq!(schedule.at(epoch), lr, "epoch {epoch}");
    }
    // Midpoints: (1e-4 + 1e-3) / 2, (1e-3 + 5e-4) / 2, (5e-4 + 1e-3) / 2, (1e-3 + 1e-4) / 2.
    for (epoch, lr) in [(1.5, 5.5e-4), (4.5, 7.5e-4), (6.5, 7.5e-4), (8.0, 5.5e-4)] {
        assert!((schedule.at(epoch) - lr).abs() < 1e-18, "epoch {epoch}: {}", schedule.at(epoch));
    }
    assert_eq!(schedule.at(-3.0), 1e-4);
    assert_eq!(schedule.at(100.0), 1e-4);
    assert!(schedule.at(f64::NAN).is_nan());
}

#[test]
fn keypoint_schedule_rejects_bad_points() {
    let cases = [
        vec![],
        vec![(0.0, 1e-3), (2.0, 1e-3), (1.0, 1e-3)],
        vec![(0.0, 1e-3), (1.0, 1e-3), (1.0, 2e-3)],
        vec![(0.0, 1e-3), (f64::INFINITY, 1e-3)],
        vec![(0.0, f64::NAN)],
        vec![(0.0, -1e-3)],
    ];
    for points in cases {
        let result = KeypointSchedule::new(points.clone());
        assert!(matches!(result, Err(OptimError::InvalidKeypoints { .. })), "{points:?}");
    }
}

#[test]
fn step_decay_compounds_per_epoch() {
    let decay = StepDecay::new(0.5).unwrap();
    assert_eq!(decay.at(1.0, 0), 1.0);
    assert_eq!(decay.at(1.0, 3), 0.125);
}

proptest! {
    #[test]
    fn keypoint_schedule_stays_between_neighbours(epoch in -5.0f64..15.0) {
        let schedule = KeypointSchedule::new(KEYPOINTS.to_vec()).unwrap();
        let lr = schedule.at(epoch);
        let after = KEYPOINTS.iter().position(|&(e, _)| e > epoch).unwrap_or(KEYPOINTS.len());
        let low = KEYPOINTS[after.saturating_sub(1)].1.min(KEYPOINTS[after.min(4)].1);
        let high = KEYPOINTS[after.saturating_sub(1)].1.max(KEYPOINTS[after.min(4)].1);
        prop_assert!(low <= lr && lr <= high, "lr {} at epoch {} outside [{}, {}]", lr, epoch, low, high);
    }

    #[test]
    fn adam_step_is_bounded_by_learning_rate(
        gradient in prop::collection::vec(-1e3f64..1e3, 1..20),
        lr in 1e-5f64..1.0,
    ) {
        // On the first step m / sqrt(v) = g / |g| after bias correction, so no entry moves by
        // more than lr.
        let count = gradient.len();
        let mut p = Param::new("p", ArrayD::zeros(IxDyn(&[count])));
        p.grad = ArrayD::from_shape_vec(IxDyn(&[count]), gradient).unwrap();
        let mut adam = Adam::new(AdamConfig { learning_rate: lr, ..AdamConfig::default() }).unwrap();
        adam.step(&mut [&mut p]).unwrap();
        for &v in &p.value {
            prop_assert!(v.abs() <= lr * (1.0 + 1e-12));
        }
    }
}
