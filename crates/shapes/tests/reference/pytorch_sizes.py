"""Print PyTorch output sizes and parameter counts for the cases in tests/ops.rs.

Run: python pytorch_sizes.py   (prints Rust tuples to paste into tests/ops.rs)
"""
import torch
from torch import nn

# (kind, n, k, s, p, d, ceil_mode)
POOL_CASES = [
    ("max", 5, 2, 2, 1, 1, True),
    ("max", 6, 3, 2, 0, 1, True),
    ("max", 6, 3, 2, 0, 1, False),
    ("max", 7, 3, 2, 1, 1, True),
    ("max", 10, 3, 3, 1, 1, True),
    ("max", 11, 2, 2, 1, 2, True),
    ("avg", 9, 4, 3, 2, 1, True),
    ("avg", 8, 2, 2, 1, 1, True),
    ("avg", 13, 3, 2, 1, 1, False),
    ("max", 112, 3, 2, 1, 1, False),
    ("max", 2, 2, 2, 0, 2, True),
    ("avg", 2, 3, 2, 0, 1, True),
    ("avg", 3, 5, 4, 0, 1, True),
    ("max", 2, 2, 1, 0, 2, True),
]

# (n, c_in, c_out, k, s, p, d, groups, bias); p may be "same"
CONV_CASES = [
    (10, 3, 4, 3, 1, 0, 1, 1, True),
    (10, 4, 8, 4, 1, "same", 1, 2, False),
    (11, 6, 6, 3, 2, 1, 2, 3, True),
    (9, 2, 5, 2, 3, 2, 1, 1, True),
    (8, 4, 4, 5, 1, "same", 2, 4, True),
]


def pools():
    for kind, n, k, s, p, d, ceil in POOL_CASES:
        x = torch.zeros(1, 1, n, n)
        if kind == "max":
            layer = nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil)
        else:
            layer = nn.AvgPool2d(k, s, p, ceil_mode=ceil)
        try:
            out = layer(x).shape[-1]
        except RuntimeError:
            out = 0  # PyTorch rejects the layer: output size too small
        print(f'    ("{kind}", {n}, {k}, {s}, {p}, {d}, {str(ceil).lower()}, {out}),')


def convs():
    for n, cin, cout, k, s, p, d, g, bias in CONV_CASES:
        layer = nn.Conv2d(cin, cout, k, s, p, dilation=d, groups=g, bias=bias)
        out = layer(torch.zeros(1, cin, n, n)).shape[-1]
        params = sum(t.numel() for t in layer.parameters())
        pad = '"same"' if p == "same" else f'"{p}"'
        print(f"    ({n}, {cin}, {cout}, {k}, {s}, {pad}, {d}, {g}, {str(bias).lower()}, {out}, {params}),")


def gru():
    for d, h in [(75, 32), (3, 5)]:
        params = sum(t.numel() for t in nn.GRU(d, h, batch_first=True).parameters())
        print(f"    ({d}, {h}, {params}),")


if __name__ == "__main__":
    print(f"// torch {torch.__version__}")
    for section in (pools, convs, gru):
        print(f"// {section.__name__}")
        section()
