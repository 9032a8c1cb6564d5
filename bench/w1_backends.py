"""Workload W1 for the Numba backend, Cython and the peers in the same run.

Logistic regression, X 100,000 x 100 float64 standard normal, lr 0.05, plain
SGD, seeded shuffle; time per epoch (best of R repeats, JIT warmed up outside
the timed region).  fastgd's epochs here are the compiled kernels alone, on one fixed
shuffled order (BGD: storage order, as the driver passes it); the pytest suite times
the driver's whole epoch, its shuffle included.  Run:

    OMP_WAIT_POLICY=PASSIVE python bench/w1_backends.py [--quick] [--no-torch]

Prints each timing and the ratios of issue 4 (and numba vs cython).  The
pytest-benchmark suites in bench/ are the official ones; this is the quick
script behind the figures in docs/numba.md.
"""
import argparse
import os
import time
import warnings

import numpy as np
from numba import njit

from fastgd.kernels import ids
from fastgd.kernels.nb import linear_epoch as nb
from machine import cpu_name
from peers import numpy_logistic_epoch, numpy_two_pass_gradient, torch_epoch_fn


@njit(fastmath={"reassoc", "contract", "nsz"}, nogil=True)
def _gather_sum(X, order):
    s = 0.0
    for r in range(order.shape[0]):
        xi = X[order[r]]
        for j in range(X.shape[1]):
            s += xi[j]
    return s


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
    ap.add_argument("--no-cython", action="store_true")
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

    cy = None
    if not a.no_cython:
        try:
            from fastgd.kernels.cy import linear_epoch as cy
        except ImportError:
            cy = None

    storage = np.arange(n)  # BGD's order, as the driver gives it (no shuffle at b = n)

    def epoch_fn(mod, b):
        nb_ = -(-n // b)
        rows = storage if b >= n else order
        theta = np.zeros(P)
        grad = np.zeros(P)
        state = np.zeros((1, P))
        bl = np.empty(nb_)
        lrs = np.full(nb_, lr)
        hyper = np.zeros(4)
        empty = np.empty(0, X.dtype)

        def run():
            theta[:] = 0.0
            k = mod.linear_epoch(X, y, empty, rows, b, nb_, ids.LOSS_LOGISTIC, 0.0, 1, True,
                                 0.0, 0.0, ids.RULE_SGD, hyper, lrs, 0, theta, grad, state, bl)
            assert k == nb_
        return run

    # Warm the JIT (compile or load from cache) outside the timed region.
    t0 = time.perf_counter()
    for b in (1, 32, n):
        epoch_fn(nb, b)()
    warm = time.perf_counter() - t0

    t["X.sum()"] = best(lambda: X.sum(), 3 * R)
    # The floor for any epoch that reads X through a shuffled order (b < n): one
    # pass summing the rows in that order, nothing else (no dependency chain).
    _gather_sum(X, order)
    t["rows summed in shuffled order"] = best(lambda: _gather_sum(X, order), 3 * R)
    for label, mod in (("numba", nb), ("cython", cy)):
        if mod is None:
            continue
        t[f"{label} b=1"] = best(epoch_fn(mod, 1), R)
        t[f"{label} b=32"] = best(epoch_fn(mod, 32), R)
        t[f"{label} BGD"] = best(epoch_fn(mod, n), 3 * R)

    w = np.zeros(d)
    t["numpy X.T@(f(X@w)-y)"] = best(lambda: numpy_two_pass_gradient(X, y, w, 0.0), 3 * R)
    t["numpy loop b=32"] = best(
        lambda: numpy_logistic_epoch(X, y, np.zeros(d), np.zeros(1), lr, 32, order), R)

    try:
        from sklearn.linear_model import SGDClassifier
    except ImportError:
        SGDClassifier = None
    if SGDClassifier is not None:
        def sk(epochs):
            def fit():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    SGDClassifier(loss="log_loss", penalty=None, learning_rate="constant",
                                  eta0=lr, tol=None, max_iter=epochs, random_state=0).fit(X, y)
            return fit
        # its epoch without its set-up (a fit also checks X, labels, builds its dataset):
        # the marginal cost of more epochs, as bench/test_bench_linear.py has it
        one, six = best(sk(1), R), best(sk(6), R)
        t["sklearn 1-epoch fit"] = one
        t["sklearn SGDClassifier b=1"] = (six - one) / 5

    if not a.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            tloop = torch_epoch_fn(torch, X, y, lr, 32)
            tloop()  # warm-up, outside the timed rounds
            t["torch loop b=32"] = best(tloop, 1 if a.quick else 2)

    import numba
    print(f"CPU: {cpu_name()}; numba threads {numba.get_num_threads()} "
          f"({numba.threading_layer()}); JIT warm-up {warm:.2f} s")
    for k, v in t.items():
        print(f"{k:28s} {v * 1e3:9.3f} ms")
    print("---- ratios (issue 4 targets)")

    def ratio(name, num, den, target=None, higher=True):
        if num in t and den in t:
            r = t[num] / t[den]
            verdict = ""
            if target is not None:
                ok = r >= target if higher else r <= target
                verdict = f"  (target {'>=' if higher else '<='} {target})  {'ok' if ok else 'MISS'}"
            print(f"{name:44s} {r:7.2f}{verdict}")
    for lab in ("numba", "cython"):
        ratio(f"b=1: sklearn / {lab}", "sklearn SGDClassifier b=1", f"{lab} b=1", 5)
        ratio(f"b=32: torch loop / {lab}", "torch loop b=32", f"{lab} b=32", 50)
        ratio(f"b=32: numpy loop / {lab}", "numpy loop b=32", f"{lab} b=32", 3)
        ratio(f"b=32: {lab} b=32 / {lab} BGD", f"{lab} b=32", f"{lab} BGD", 2, higher=False)
        ratio(f"BGD: {lab} / X.sum()", f"{lab} BGD", "X.sum()", 1.2, higher=False)
        ratio(f"BGD: numpy two-pass / {lab}", "numpy X.T@(f(X@w)-y)", f"{lab} BGD", 3)
    ratio("b=32: numba / shuffled-rows floor", "numba b=32", "rows summed in shuffled order")
    ratio("b=1: numba / shuffled-rows floor", "numba b=1", "rows summed in shuffled order")
    for case in ("b=1", "b=32", "BGD"):
        ratio(f"{case}: numba / cython (within 1.5x either way)", f"numba {case}",
              f"cython {case}", 1.5, higher=False)
        ratio(f"{case}: cython / numba", f"cython {case}", f"numba {case}", 1.5, higher=False)
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")


if __name__ == "__main__":
    main()
