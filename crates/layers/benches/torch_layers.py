"""Times the shapes of benches/layers.rs with PyTorch on the CPU, forward + backward, float32.

Run with `python torch_layers.py [threads]`; threads defaults to torch's own choice.
"""

import statistics
import sys
import time

import torch

BATCH, WARMUP, REPEATS = 1024, 3, 20


def timed(module, x):
    x = x.requires_grad_(True)
    out = module(x)
    out = out[0] if isinstance(out, tuple) else out
    upstream = torch.sin(torch.arange(out.numel(), dtype=torch.float32) * 0.618).reshape(out.shape)
    samples = []
    for repeat in range(WARMUP + REPEATS):
        start = time.perf_counter()
        out = module(x)
        out = out[0] if isinstance(out, tuple) else out
        out.backward(upstream)
        if repeat >= WARMUP:
            samples.append(time.perf_counter() - start)
    return statistics.median(samples), min(samples)


def main():
    if len(sys.argv) > 1:
        torch.set_num_threads(int(sys.argv[1]))
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(75, 200), torch.nn.ReLU(),
        torch.nn.Linear(200, 200), torch.nn.ReLU(),
        torch.nn.Linear(200, 200), torch.nn.ReLU(),
        torch.nn.Linear(200, 1),
    )
    cases = [
        ("linear 75-200-200-200-1 + relu", mlp, (BATCH, 75)),
        ("conv2d 3->200 3x3 on 5x5", torch.nn.Conv2d(3, 200, 3), (BATCH, 3, 5, 5)),
        ("gru 75->200, 5 steps", torch.nn.GRU(75, 200, batch_first=True), (BATCH, 5, 75)),
    ]
    print(f"torch {torch.__version__}, threads: {torch.get_num_threads()}")
    for name, module, shape in cases:
        x = torch.sin(torch.arange(torch.Size(shape).numel(), dtype=torch.float32) * 0.618)
        median, minimum = timed(module, x.reshape(shape))
        print(f"{name:34} forward+backward median {median * 1e3:8.3f}ms  min {minimum * 1e3:8.3f}ms")


if __name__ == "__main__":
    main()
