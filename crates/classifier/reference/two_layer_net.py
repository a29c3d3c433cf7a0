"""Numpy peer of handgrad-classifier's two-layer network.

The same algorithm as the Rust crate, written with numpy arrays and numpy's legacy global
generator, so the two can be compared value by value and timed on the same machine.

    python two_layer_net.py toy
        Trains the toy network (data from seed 1, network and minibatches from seed 0) and
        prints the loss history's final value, which the Rust tests embed.
    python two_layer_net.py bench --mnist DIR [--iters N] [--hidden H] [--batch B]
        Times N training iterations on MNIST (t10k files in DIR, split 8,000/1,000/1,000 in file
        order as handgrad-data does) and prints iterations per second of wall time and of CPU
        time, and the BLAS kernel.
"""

import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np


class TwoLayerNet:
    """input - fully connected - ReLU - fully connected - softmax, float64."""

    def __init__(self, input_size, hidden_size, output_size, std):
        # W1 is drawn before W2 from the global generator.
        self.params = {
            "W1": std * np.random.randn(input_size, hidden_size),
            "b1": np.zeros(hidden_size),
            "W2": std * np.random.randn(hidden_size, output_size),
            "b2": np.zeros(output_size),
        }

    def scores(self, X):
        p = self.params
        h1 = np.maximum(0.0, X.dot(p["W1"]) + p["b1"])
        return h1.dot(p["W2"]) + p["b2"]

    def loss(self, X, y, reg):
        """Mean cross-entropy plus 0.5 * reg * (|W1|^2 + |W2|^2), and its gradients."""
        p = self.params
        n = X.shape[0]
        z1 = X.dot(p["W1"]) + p["b1"]
        h1 = np.maximum(0.0, z1)
        scores = h1.dot(p["W2"]) + p["b2"]

        shifted = scores - scores.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(shifted).sum(axis=1))
        data_loss = np.mean(log_sum - shifted[np.arange(n), y])
        reg_loss = 0.5 * reg * (np.sum(p["W1"] * p["W1"]) + np.sum(p["W2"] * p["W2"]))

        probs = np.exp(shifted - log_sum[:, None])
        dscores = probs
        dscores[np.arange(n), y] -= 1.0
        dscores /= n

        grads = {}
        grads["W2"] = h1.T.dot(dscores) + reg * p["W2"]
        grads["b2"] = dscores.sum(axis=0)
        dz1 = dscores.dot(p["W2"].T) * (z1 > 0)
        grads["W1"] = X.T.dot(dz1) + reg * p["W1"]
        grads["b1"] = dz1.sum(axis=0)
        return data_loss + reg_loss, grads

    def predict(self, X):
        return np.argmax(self.scores(X), axis=1)

    def train(self, X, y, X_val, y_val, learning_rate, learning_rate_decay, reg, num_iters,
              batch_size):
        num_train = X.shape[0]
        iterations_per_epoch = max(num_train / batch_size, 1)
        loss_history, train_acc_history, val_acc_history = [], [], []
        for it in range(num_iters):
            idx = np.random.choice(num_train, batch_size, replace=True)
            X_batch, y_batch = X[idx], y[idx]
            loss, grads = self.loss(X_batch, y_batch, reg)
            loss_history.append(loss)
            for name in ("W1", "b1", "W2", "b2"):
                self.params[name] -= learning_rate * grads[name]
            if it % iterations_per_epoch == 0:
                train_acc_history.append((self.predict(X_batch) == y_batch).mean())
                val_acc_history.append((self.predict(X_val) == y_val).mean())
                learning_rate *= learning_rate_decay
        return loss_history, train_acc_history, val_acc_history


def toy():
    np.random.seed(1)
    X = 10 * np.random.randn(5, 4)
    y = np.array([0, 1, 2, 2, 1])
    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3, std=1e-1)
    # The minibatches come from the same generator, right after the weights.
    history, _, _ = net.train(X, y, X, y, learning_rate=1e-1, learning_rate_decay=0.95,
                              reg=5e-6, num_iters=100, batch_size=200)
    print(repr(float(history[-1])))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def blas_kernel():
    try:
        import threadpoolctl
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    info = threadpoolctl.threadpool_info()
    return "; ".join(
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
        f"threads={i.get('num_threads')}" for i in info)


def bench(args):
    images = read_idx(os.path.join(args.mnist, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(args.mnist, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    X = images.reshape(len(images), -1).astype(np.float64)
    X_train, y_train = X[:8000], labels[:8000]
    X_val, y_val = X[8000:9000], labels[8000:9000]
    mean_image = X_train.mean(axis=0)
    X_train = X_train - mean_image
    X_val = X_val - mean_image

    np.random.seed(0)
    net = TwoLayerNet(784, args.hidden, 10, std=1e-4)
    net.train(X_train, y_train, X_val, y_val, 1e-3, 0.95, 0.01, 5, args.batch)
    start, cpu_start = time.perf_counter(), time.process_time()
    net.train(X_train, y_train, X_val, y_val, 1e-3, 0.95, 0.01, args.iters, args.batch)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"numpy {np.__version__}: {args.iters / seconds:.1f} iterations/s "
          f"(batch {args.batch}, hidden {args.hidden}, {args.iters} iterations in {seconds:.3f} s)")
    # CPU time of the whole process, all BLAS threads together: steadier than wall time when
    # other programs share the cores.
    print(f"cpu: {args.iters / cpu_seconds:.1f} iterations per CPU-second")
    print(f"blas: {blas_kernel()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("toy", help="print the toy network's final training loss")
    b = sub.add_parser("bench", help="time MNIST training iterations")
    b.add_argument("--mnist", required=True, help="folder with the t10k idx files")
    b.add_argument("--iters", type=int, default=500, help="timed iterations")
    b.add_argument("--hidden", type=int, default=250, help="hidden units")
    b.add_argument("--batch", type=int, default=200, help="minibatch size")
    args = parser.parse_args()
    if args.command == "toy":
        toy()
    else:
        bench(args)


if __name__ == "__main__":
    sys.exit(main())
