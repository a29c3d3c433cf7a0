//! Checks shared by the optimisers: hyperparameter ranges and parameter shapes.

use handgrad_tensor::{Param, Scalar};
use ndarray::ArrayD;

use crate::{OptimError, Result};

/// Rejects `value` unless it is finite and at least 0.
pub(crate) fn non_negative(component: &'static str, name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        return Ok(());
    }
    Err(OptimError::InvalidHyperparameter {
        component,
        name,
        value,
        expected: "a finite number >= 0",
    })
}

/// Rejects `value` unless it is finite and greater than 0.
pub(crate) fn positive(component: &'static str, name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        return Ok(());
    }
    Err(OptimError::InvalidHyperparameter {
        component,
        name,
        value,
        expected: "a finite number > 0",
    })
}

/// Rejects `value` unless it lies in [0, 1).
pub(crate) fn unit_interval(component: &'static str, name: &'static str, value: f64) -> Result<()> {
    if (0.0..1.0).contains(&value) {
        return Ok(());
    }
    Err(OptimError::InvalidHyperparameter {
        component,
        name,
        value,
        expected: "a number in [0, 1)",
    })
}

/// Checks that every gradient has its value's shape and, when `expected` is non-empty (after a
/// first step), that the parameters match it in number and shape.
pub(crate) fn params_match_shapes<F: Scalar>(
    component: &'static str,
    params: &[&mut Param<F>],
    expected: &[&[usize]],
) -> Result<()> {
    if !expected.is_empty() && expected.len() != params.len() {
        return Err(OptimError::ParamCount {
            component,
            expected: expected.len(),
            found: params.len(),
        });
    }
    for (index, param) in params.iter().enumerate() {
        if param.grad.shape() != param.value.shape() {
            return Err(OptimError::GradShape {
                component,
                index,
                name: param.name.clone(),
                value: param.value.shape().to_vec(),
                grad: param.grad.shape().to_vec(),
            });
        }
        if let Some(&shape) = expected.get(index).filter(|&&s| s != param.value.shape()) {
            return Err(OptimError::ParamShape {
                component,
                index,
                name: param.name.clone(),
                expected: shape.to_vec(),
                found: param.value.shape().to_vec(),
            });
        }
    }
    Ok(())
}

/// Checks that two lists of state arrays have the same length and pairwise the same shapes.
pub(crate) fn states_agree<F: Scalar>(
    component: &'static str,
    first: &[ArrayD<F>],
    second: &[ArrayD<F>],
) -> Result<()> {
    if first.len() != second.len() {
        return Err(OptimError::InvalidState {
            component,
            reason: format!("{} first moments but {} second moments", first.len(), second.len()),
        });
    }
    for (index, (a, b)) in first.iter().zip(second).enumerate() {
        if a.shape() != b.shape() {
            return Err(OptimError::InvalidState {
                component,
                reason: format!(
                    "parameter {index}: first moment shape {:?} differs from second moment shape {:?}",
                    a.shape(),
                    b.shape()
                ),
            });
        }
    }
    Ok(())
}
