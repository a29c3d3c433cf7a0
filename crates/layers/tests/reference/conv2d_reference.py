"""Prints PyTorch nn.Conv2d reference values for `conv2d_stride_two_padding_one_matches_pytorch`.

Run with a Python that has torch: `python conv2d_reference.py`. The layer has stride 2 and
padding 1 on a non-square input with an even height and odd width, so the last window of each
row and column is cut differently. Weights, input and the upstream gradient come from
closed-form sin/cos patterns so the Rust test rebuilds them without a file. The loss is
L = sum(y * G), so the printed gradients are dL/d(input) and dL/d(parameter).
"""

import math

import torch

N, C, O, K, H, W = 2, 2, 3, 3, 6, 5


def pattern(shape, scale, rate, offset, fn=math.sin):
    count = math.prod(shape)
    values = [scale * fn(rate * i + offset) for i in range(count)]
    return torch.tensor(values, dtype=torch.float64).reshape(shape)


def main():
    conv = torch.nn.Conv2d(C, O, K, stride=2, padding=1).double()
    with torch.no_grad():
        conv.weight.copy_(pattern((O, C, K, K), 0.5, 0.31, 0.2))
        conv.bias.copy_(pattern((O,), 0.3, 0.77, 0.4))

    x = pattern((N, C, H, W), 1.0, 0.19, 0.3, math.cos).requires_grad_(True)
    y = conv(x)
    upstream = pattern(tuple(y.shape), 1.0, 0.43, 0.0)
    (y * upstream).sum().backward()

    print(f"// torch {torch.__version__}, float64, output shape {tuple(y.shape)}")
    named = [("OUTPUT", y), ("GRAD_INPUT", x.grad)]
    named += [(name.upper(), p.grad) for name, p in conv.named_parameters()]
    for name, tensor in named:
        values = ", ".join(repr(v) for v in tensor.detach().reshape(-1).tolist())
        print(f"pub const {name}: [f64; {tensor.numel()}] = [{values}];")


if __name__ == "__main__":
    main()
