"""Prints PyTorch nn.GRU reference values for tests/gru_reference.rs.

Run with a Python that has torch: `python gru_reference.py`. Weights, input and the upstream
gradient come from closed-form sin/cos patterns so the Rust test rebuilds them without a file.
The loss is L = sum(y * G), so the printed gradients are dL/d(input) and dL/d(parameter).
"""

import math

import torch

N, T, D, H = 2, 3, 3, 2


def pattern(shape, scale, rate, offset, fn=math.sin):
    count = math.prod(shape)
    values = [scale * fn(rate * i + offset) for i in range(count)]
    return torch.tensor(values, dtype=torch.float64).reshape(shape)


def main():
    gru = torch.nn.GRU(D, H, batch_first=True).double()
    with torch.no_grad():
        gru.weight_ih_l0.copy_(pattern((3 * H, D), 0.6, 0.37, 0.1))
        gru.weight_hh_l0.copy_(pattern((3 * H, H), 0.6, 0.53, 0.7))
        gru.bias_ih_l0.copy_(pattern((3 * H,), 0.3, 0.91, 0.2))
        gru.bias_hh_l0.copy_(pattern((3 * H,), 0.3, 0.67, 1.3))

    x = pattern((N, T, D), 1.0, 0.23, 0.1, math.cos).requires_grad_(True)
    upstream = pattern((N, T, H), 1.0, 0.71, 0.0)
    y, _ = gru(x)
    (y * upstream).sum().backward()

    print(f"// torch {torch.__version__}, float64")
    named = [("OUTPUT", y), ("GRAD_INPUT", x.grad)]
    named += [(name.upper(), p.grad) for name, p in gru.named_parameters()]
    for name, tensor in named:
        values = ", ".join(repr(v) for v in tensor.detach().reshape(-1).tolist())
        print(f"pub const {name}: [f64; {tensor.numel()}] = [{values}];")


if __name__ == "__main__":
    main()
