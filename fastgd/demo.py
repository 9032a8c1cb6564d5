"""The main job: softmax regression on the handwritten digits by BGD, SGD and MBGD.

Same data, same epochs, three batch sizes; one table.  Runs offline in seconds.
"""
import time

import numpy as np

from .api import fit
from .datasets import load_digits
from .models import MLP

EPOCHS = 30


def split(X, y, test_fraction=0.25, seed=0):
    """A seeded shuffle split: (X_train, y_train, X_test, y_test)."""
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]


def rows(backend="auto", epochs=EPOCHS, seed=0):
    X, y = load_digits()
    X_train, y_train, X_test, y_test = split(X, y, seed=seed)
    # Standardise with the training split's statistics (constant border pixels stay 0).
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    n = len(y_train)
    runs = [
        # (method, batch_size, step size, model)
        ("BGD", None, 0.5, None),
        ("MBGD", 32, 0.05, None),
        ("SGD", 1, 0.005, None),
        ("MBGD + MLP(64)", 32, 0.1, MLP(hidden=(64,), activation="relu")),
    ]
    out = []
    for method, batch_size, lr, model in runs:
        t0 = time.perf_counter()
        res = fit(X_train, y_train, loss="softmax", model=model, batch_size=batch_size, epochs=epochs,
                  lr=lr, seed=seed, backend=backend)
        wall = time.perf_counter() - t0
        out.append({"method": method, "batch_size": batch_size or n,
                    "iterations_per_epoch": res.iterations_per_epoch, "epochs": res.epochs,
                    "wall_s": wall, "train_loss": res.history["loss"][-1],
                    "test_accuracy": res.score(X_test, y_test), "backend": res.backend})
    return out


def main(backend="auto", epochs=EPOCHS):
    results = rows(backend=backend, epochs=epochs)
    print(f"fastgd demo: softmax regression on the UCI digits (1,797 8x8 images, 75/25 split), "
          f"{epochs} epochs each")
    header = f"{'method':<16}{'batch':>6}{'iter/epoch':>12}{'epochs':>8}{'wall [s]':>10}" \
             f"{'train loss':>12}{'test acc':>10}  backend"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['method']:<16}{r['batch_size']:>6}{r['iterations_per_epoch']:>12}{r['epochs']:>8}"
              f"{r['wall_s']:>10.3f}{r['train_loss']:>12.4f}{r['test_accuracy']:>10.3f}  {r['backend']}")
    return results
