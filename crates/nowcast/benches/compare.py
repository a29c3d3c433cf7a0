"""Runs `batch.rs` and `torch_batch.py` in turn, several rounds, and prints the time ratios.

On a shared machine one pair of runs can be off by half either way. The rounds therefore
alternate between the two programs, and the summary shows every round's ratio next to the
ratio of the fastest batches seen over all rounds.

Usage, from the repository root, with a Python that has PyTorch (it builds the benchmark first
and runs `torch_batch.py` with the same interpreter):

    python crates/nowcast/benches/compare.py [rounds] [threads]

rounds defaults to 5 and threads to 2 (RAYON_NUM_THREADS for handgrad, torch.set_num_threads
for PyTorch).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

MODELS = ("ff", "cnn", "gru")
LINE = re.compile(r"^(\w+)\s+batch 1024: median ([0-9.]+) s, min ([0-9.]+) s")


def timings(command, env):
    """Runs `command` and returns {model: (median, minimum)} in seconds from its output."""
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    found = {}
    for line in output.splitlines():
        match = LINE.match(line)
        if match and match.group(1) in MODELS:
            found[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    missing = [model for model in MODELS if model not in found]
    if missing:
        raise SystemExit(f"{command[0]} printed no timing for {', '.join(missing)}:\n{output}")
    return found


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    threads = sys.argv[2] if len(sys.argv) > 2 else "2"
    env = dict(os.environ, RAYON_NUM_THREADS=threads)
    cargo = ["cargo", "bench", "-q", "-p", "handgrad-nowcast", "--bench", "batch", "--", *MODELS]
    subprocess.run([*cargo[:-4], "--no-run"], env=env, check=True)
    torch = [sys.executable, str(Path(__file__).with_name("torch_batch.py")), threads]

    rows = []
    for round_index in range(1, rounds + 1):
        ours, theirs = timings(cargo, env), timings(torch, env)
        rows.append((ours, theirs))
        cells = "  ".join(
            f"{m} {ours[m][1] * 1e3:6.2f}/{theirs[m][1] * 1e3:6.2f} ms ({ours[m][1] / theirs[m][1]:.2f})"
            for m in MODELS
        )
        print(f"round {round_index}: {cells}", flush=True)

    print("\nminimum per batch, handgrad / PyTorch, ratio (below 1: handgrad is faster)")
    for m in MODELS:
        ours = min(row[0][m][1] for row in rows)
        theirs = min(row[1][m][1] for row in rows)
        ratios = sorted(row[0][m][1] / row[1][m][1] for row in rows)
        median = ratios[len(ratios) // 2]
        print(
            f"{m:<4} {ours * 1e3:6.2f} / {theirs * 1e3:6.2f} ms = {ours / theirs:.2f}; "
            f"per round {ratios[0]:.2f} to {ratios[-1]:.2f}, median {median:.2f}"
        )


if __name__ == "__main__":
    main()
