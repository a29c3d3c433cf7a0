//! T1 (the scalar residual block) and T3 (the softmax cross-entropy gradient).

use std::fmt::Write as _;

use handgrad_layers::residual::{self, ResidualInputs};
use handgrad_losses::gradcheck::{check_softmax_cross_entropy, GradientCheckConfig};

use crate::context::{Check, Context, TaskOutput};

/// The assignment's point: x0 = 1.0, w0 = 0.3, w1 = -0.2, b0 = 0.1, b1 = -0.3.
const T1_POINT: ResidualInputs = ResidualInputs { x0: 1.0, w0: 0.3, b0: 0.1, w1: -0.2, b1: -0.3 };

/// Central-difference step for T1; the block is piecewise linear, so any small step is exact
/// up to rounding away from the ReLU kinks.
const T1_STEP: f64 = 1e-6;

/// Runs the residual block forward and backward at the assignment's point.
pub fn run_t1(_ctx: &Context) -> anyhow::Result<TaskOutput> {
    let values = residual::forward(&T1_POINT);
    let analytic = residual::backward(&T1_POINT, &values);
    let numeric = residual::numerical_gradients(&T1_POINT, T1_STEP)?;

    // Hand arithmetic: a0 = 1(0.3) + 0.1, y1 = 0.4(-0.2) - 0.3, s = y1 + 1.
    let forward_checks = [
        ("a0 = x0 w0 + b0", values.a0, 0.4),
        ("x1 = ReLU(a0)", values.x1, 0.4),
        ("y1 = x1 w1 + b1", values.y1, -0.38),
        ("z = ReLU(y1 + x0)", values.z, 0.62),
    ];
    let mut checks: Vec<Check> = forward_checks
        .iter()
        .map(|(name, value, hand)| Check::close(name, *value, *hand, 1e-12))
        .collect();

    let names = ["dz/dx0", "dz/dw0", "dz/db0", "dz/dw1", "dz/db1"];
    let analytic = analytic.to_array();
    let numeric = numeric.to_array();
    for ((name, a), n) in names.iter().zip(analytic).zip(numeric) {
        checks.push(Check::close(&format!("{name} (vs central difference)"), a, n, 1e-8));
    }

    let mut markdown = String::from(
        "x1 = ReLU(x0 w0 + b0), y1 = x1 w1 + b1, z = ReLU(y1 + x0) at x0 = 1.0, w0 = 0.3, \
         w1 = -0.2, b0 = 0.1, b1 = -0.3. ReLU'(0) is taken as 0. Derivation: \
         `docs/t1-residual-block.md`.\n\n| quantity | hand-derived | central difference |\n|---|---|---|\n",
    );
    for ((name, a), n) in names.iter().zip(analytic).zip(numeric) {
        let _ = writeln!(markdown, "| {name} | {a:.10} | {n:.10} |");
    }
    Ok(TaskOutput { checks, markdown, skipped: None })
}

/// Checks dL/dh = P - y against central differences on seeded logits of growing magnitude.
pub fn run_t3(_ctx: &Context) -> anyhow::Result<TaskOutput> {
    let mut checks = Vec::new();
    let mut markdown = String::from(
        "The proof that dL/dh_i = P(y = i) - y_i is in `docs/t3-softmax-cross-entropy.md`. \
         Below, the analytic gradient (P - Y)/N is compared with central differences (h = 1e-5) \
         on seeded random logits.\n\n\
         | logits in | classes | rows | loss | max relative error | max absolute error |\n\
         |---|---|---|---|---|---|\n",
    );

    // Small logits: the relative error is the usual measure. Larger logits make some
    // probabilities tiny, where the relative error of a near-zero entry is dominated by the
    // rounding of the difference quotient, so the absolute error is checked there instead.
    let cases = [(3.0, 10, 4, true), (30.0, 50, 8, false), (1e3, 50, 8, false)];
    for (scale, classes, batch, relative) in cases {
        let config = GradientCheckConfig { seed: 7, batch, classes, scale, step: 1e-5 };
        let result = check_softmax_cross_entropy(&config)?;
        let label = format!("|h| <= {scale}, C = {classes}");
        if relative {
            checks.push(Check::below(
                &format!("max rel. error, {label}"),
                result.max_relative_error,
                1e-6,
            ));
        } else {
            checks.push(Check::below(
                &format!("max abs. error, {label}"),
                result.max_absolute_error,
                1e-6,
            ));
        }
        checks.push(Check {
            name: format!("loss and gradient finite, {label}"),
            value: format!("{:.6}", result.loss),
            reference: "finite".into(),
            pass: result.loss.is_finite() && result.analytic.iter().all(|g| g.is_finite()),
        });
        let _ = writeln!(
            markdown,
            "| ±{scale} | {classes} | {batch} | {:.6} | {:.3e} | {:.3e} |",
            result.loss, result.max_relative_error, result.max_absolute_error
        );
    }
    Ok(TaskOutput { checks, markdown, skipped: None })
}
