"""Print PyTorch reference trajectories for the handgrad-optim tests as a Rust module.

Usage: python torch_reference.py > torch_values.rs

Every value is printed with repr(), which round-trips exactly through Rust's f64 parser.
"""

import math

import numpy as np
import torch

PARAMS = [[0.5, -1.5, 2.0], [[0.1, -0.2], [3.0, -0.7]]]
STEPS = 12
TARGET = 0.3


def gradient(p):
    """Gradient of sum(p^4 / 4 - 0.3 p): p*p*p - 0.3, in the same operation order as the tests."""
    return p * p * p - TARGET


def trajectory(make_optimizer, dtype, lr_change=None):
    """Return the flattened parameters after each step."""
    params = [torch.tensor(v, dtype=dtype) for v in PARAMS]
    optimizer = make_optimizer(params)
    rows = []
    for step in range(STEPS):
        if lr_change is not None and step == lr_change[0]:
            optimizer.param_groups[0]["lr"] = lr_change[1]
        for p in params:
            p.grad = gradient(p.detach())
        optimizer.step()
        rows.append([float(x) for p in params for x in p.detach().flatten().tolist()])
    return rows


def plateau_sequence(metrics, initial_lr, **kwargs):
    """Return the learning rate after each ReduceLROnPlateau step."""
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=initial_lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", **kwargs)
    lrs = []
    for metric in metrics:
        scheduler.step(metric)
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


def rust_float(x, suffix):
    if math.isnan(x):
        return f"f{suffix}::NAN"
    if math.isinf(x):
        return ("-" if x < 0 else "") + f"f{suffix}::INFINITY"
    # str() of a numpy scalar is the shortest text that parses back to the same value in its
    # own precision, so f32 values carry no excess digits.
    text = str(np.float32(x)) if suffix == "32" else repr(float(x))
    return text if ("." in text or "e" in text) else text + ".0"


def emit_matrix(name, rows, suffix="64"):
    print(f"pub const {name}: [[f{suffix}; {len(rows[0])}]; {len(rows)}] = [")
    for row in rows:
        print("    [" + ", ".join(rust_float(x, suffix) for x in row) + "],")
    print("];")


def emit_vector(name, values):
    print(f"pub const {name}: [f64; {len(values)}] = [")
    for x in values:
        print(f"    {rust_float(x, '64')},")
    print("];")


def main():
    print(f"//! PyTorch {torch.__version__} reference values, printed by torch_reference.py.")
    print("//! Regenerate with `python torch_reference.py > torch_values.rs`.")
    print()

    adam_default = lambda ps: torch.optim.Adam(ps, foreach=False)
    adam_tuned = lambda ps: torch.optim.Adam(
        ps, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, foreach=False
    )
    emit_matrix("ADAM_DEFAULT_F64", trajectory(adam_default, torch.float64))
    emit_matrix("ADAM_TUNED_F64", trajectory(adam_tuned, torch.float64, lr_change=(6, 0.005)))
    emit_matrix("ADAM_TUNED_F32", trajectory(adam_tuned, torch.float32, lr_change=(6, 0.005)), "32")

    sgd = lambda ps: torch.optim.SGD(ps, lr=0.02, momentum=0.9, weight_decay=0.01, foreach=False)
    emit_matrix("SGD_MOMENTUM_F64", trajectory(sgd, torch.float64))

    plateau_metrics = [1.0, 0.9, 0.9, 0.89995, 0.95, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7,
                       float("nan"), 0.7, 0.7, 0.1, 0.1, 0.1, 0.1]
    emit_vector("PLATEAU_METRICS", plateau_metrics)
    emit_vector("PLATEAU_PATIENCE_2_COOLDOWN_1",
                plateau_sequence(plateau_metrics, 0.1, factor=0.5, patience=2, cooldown=1,
                                 min_lr=0.01))
    emit_vector("PLATEAU_PATIENCE_0",
                plateau_sequence(plateau_metrics, 0.1, factor=0.3, patience=0, threshold=0.05))
    long_metrics = [1.0 / (1 + 0.1 * i) if i < 10 else 0.5 for i in range(40)]
    emit_vector("PLATEAU_LONG_METRICS", long_metrics)
    emit_vector("PLATEAU_DEFAULTS", plateau_sequence(long_metrics, 1e-3))
    emit_vector("PLATEAU_EPS_SKIP",
                plateau_sequence(long_metrics, 1e-7, factor=0.5, patience=1, eps=1e-7))


if __name__ == "__main__":
    main()
