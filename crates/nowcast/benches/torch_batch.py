"""Seconds per training batch of 1024 rows in PyTorch (CPU), the peer of `batch.rs`.

Each step runs forward, MSE loss, backward and one Adam step on the same architectures as
handgrad-nowcast: the feed-forward net (75-200-200-200-1), the CNN (conv 3->200 3x3,
1800-200-200-1) and the GRU (GRU(75, 200) over 5 steps, 200-200-1 at every step).

Usage: python torch_batch.py [threads]   (default 2, matching RAYON_NUM_THREADS of batch.rs)
"""

import sys
import time

import torch
from torch import nn

BATCH = 1024
WARMUP = 3
REPEATS = 15


class GruHead(nn.Module):
    """GRU over the hours, then Linear(200, 200), ReLU, Linear(200, 1) at every hour."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(75, 200, batch_first=True)
        self.head = nn.Sequential(nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 1))

    def forward(self, x):
        states, _ = self.gru(x)
        return self.head(states)


def models():
    feed_forward = nn.Sequential(
        nn.Linear(75, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
        nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 1),
    )
    cnn = nn.Sequential(
        nn.Conv2d(3, 200, 3), nn.ReLU(), nn.Flatten(), nn.Linear(1800, 200), nn.ReLU(),
        nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 1),
    )
    return [
        ("ff", feed_forward, (BATCH, 75), (BATCH, 1)),
        ("cnn", cnn, (BATCH, 3, 5, 5), (BATCH, 1)),
        ("gru", GruHead(), (BATCH, 5, 75), (BATCH, 5, 1)),
    ]


def step(model, optimizer, x, y):
    optimizer.zero_grad(set_to_none=False)
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{REPEATS} timed batches after {WARMUP} warm-up")
    for name, model, x_shape, y_shape in models():
        x = torch.rand(x_shape) * 2 - 1
        y = torch.rand(y_shape) * 2 - 1
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(WARMUP):
            step(model, optimizer, x, y)
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            step(model, optimizer, x, y)
            times.append(time.perf_counter() - start)
        times.sort()
        print(f"{name:<8} batch {BATCH}: median {times[REPEATS // 2]:.5f} s, min {times[0]:.5f} s")


if __name__ == "__main__":
    main()
