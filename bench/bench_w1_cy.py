"""Workload W1 for the Cython backend, with its peers in the same run.

Logistic regression, X 100,000 x 100 float64 standard normal, lr 0.05, plain
SGD, seeded shuffle; time per epoch (best of R repeats).  Run:

    OMP_WAIT_POLICY=PASSIVE python bench/bench_w1_cy.py [--quick] [--no-torch]

Prints each timing and the ratios the issue asks for.  The pytest-benchmark
suite in bench/ is the official one; this is the quick script.
"""
import argparse
import os
import time
import warnings

import numpy as np

from fastgd.kernels import ids
from fastgd.kernels.cy import linear_epoch as cy


def best(f, r):
    ts = []
    for _ in range(r):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--dtype", default="float64")
    a = ap.parse_args()
    R = 3 if a.quick else 7
    n, d = a.n, a.d
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(a.dtype)
    y = (X @ (rng.standard_normal(d) / 10) + 0.5 * rng.standard_normal(n) > 0).astype(a.dtype)
    order = np.random.default_rng(1).permutation(n)
    lr = 0.05
    P = d + 1
    t = {}

    def cy_epoch(b):
        nb = -(-n // b)
        theta = np.zeros(P)
        grad = np.zeros(P)
        state = np.zeros((1, P))
        bl = np.empty(nb)
        lrs = np.full(nb, lr)
        hyper = np.zeros(4)
        empty = np.empty(0, X.dtype)

        def run():
            cy.linear_epoch(X, y, empty, order, b, nb, ids.LOSS_LOGISTIC, 0.0, 1, True, 0.0,
                            0.0, ids.RULE_SGD, hyper, lrs, 0, theta, grad, state, bl)
        return run

    t["X.sum"] = best(lambda: X.sum(), 3 * R)
    if X.dtype == np.float64:
        # memory floors: read every row once, in row order / in the shuffled order
        t["floor: rows in order"] = best(lambda: cy._read_rows(X, np.arange(n)), 3 * R)
        t["floor: rows shuffled"] = best(lambda: cy._read_rows(X, order), 3 * R)
    t["cy b=1"] = best(cy_epoch(1), R)
    t["cy b=32"] = best(cy_epoch(32), R)
    t["cy b=n"] = best(cy_epoch(n), 3 * R)

    w = np.zeros(d)

    def np_grad():
        p = X @ w
        return X.T @ (1.0 / (1.0 + np.exp(-p)) - y) / n
    t["numpy X.T@(f(X@w)-y)"] = best(np_grad, 3 * R)

    def np_loop(b=32):
        w = np.zeros(d)
        b0 = 0.0
        for k in range(0, n, b):
            r = order[k:k + b]
            Xb = X[r]
            g = 1.0 / (1.0 + np.exp(-(Xb @ w + b0))) - y[r]
            w -= lr * (Xb.T @ g) / len(r)
            b0 -= lr * g.mean()
    t["numpy loop b=32"] = best(np_loop, R)

    try:
        from sklearn.linear_model import SGDClassifier
    except ImportError:
        SGDClassifier = None
    if SGDClassifier is not None:
        def sk():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                SGDClassifier(loss="log_loss", penalty=None, learning_rate="constant",
                              eta0=lr, tol=None, max_iter=1, random_state=0).fit(X, y)
        t["sklearn SGDClassifier b=1"] = best(sk, R)

    if not a.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            Xt = torch.from_numpy(X)
            yt = torch.from_numpy(y)
            perm = torch.from_numpy(order)
            tdt = torch.float64 if a.dtype == "float64" else torch.float32

            def tloop(b=32):
                m = torch.nn.Linear(d, 1, dtype=tdt)
                opt = torch.optim.SGD(m.parameters(), lr=lr)
                lf = torch.nn.BCEWithLogitsLoss()
                for k in range(0, n, b):
                    r = perm[k:k + b]
                    opt.zero_grad()
                    lf(m(Xt[r])[:, 0], yt[r]).backward()
                    opt.step()
            t["torch loop b=32"] = best(tloop, 1 if a.quick else 2)

    for k, v in t.items():
        print(f"{k:28s} {v * 1e3:9.3f} ms")
    print("---- ratios (issue 3 targets)")

    def ratio(name, num, den, target, higher=True):
        if num in t and den in t:
            r = t[num] / t[den]
            ok = r >= target if higher else r <= target
            print(f"{name:44s} {r:7.2f}  (target {'>=' if higher else '<='} {target})"
                  f"  {'ok' if ok else 'MISS'}")
    ratio("b=1: sklearn / cy", "sklearn SGDClassifier b=1", "cy b=1", 5)
    ratio("b=32: torch loop / cy", "torch loop b=32", "cy b=32", 50)
    ratio("b=32: numpy loop / cy", "numpy loop b=32", "cy b=32", 3)
    ratio("b=32: cy b=32 / cy BGD", "cy b=32", "cy b=n", 2, higher=False)
    ratio("BGD: cy / X.sum()", "cy b=n", "X.sum", 1.2, higher=False)
    ratio("BGD: numpy two-pass gradient / cy", "numpy X.T@(f(X@w)-y)", "cy b=n", 3)
    print("---- context")
    ratio("b=1: cy / shuffled-read floor", "cy b=1", "floor: rows shuffled", 1.0, higher=False)
    ratio("b=32: cy / shuffled-read floor", "cy b=32", "floor: rows shuffled", 1.0, higher=False)
    ratio("sklearn b=1 / shuffled-read floor", "sklearn SGDClassifier b=1",
          "floor: rows shuffled", 5, higher=True)
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}, "
          f"omp_max_threads={cy.omp_max_threads()}")


if __name__ == "__main__":
    main()
