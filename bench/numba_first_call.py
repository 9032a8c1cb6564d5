"""Cold and warm first-call times of the Numba backend (fresh processes).

    python bench/numba_first_call.py

cold: a fresh process and an empty cache (compiles); warm: a fresh process
that loads the kernels from the cache the cold run wrote.  Each figure is
the first call in its process: the import of ``fastgd.kernels.nb.linear_epoch``,
then one tiny epoch per case (the two-thread kernels, used on large data only, are
forced with their thresholds).  A custom loss is never cached: its first call
compiles in every process.
"""
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, math, time
t0 = time.perf_counter()
import numpy as np
from fastgd.kernels.nb import linear_epoch as le
from fastgd.kernels import ids
out = {"import": time.perf_counter() - t0}
rng = np.random.default_rng(0)
X = rng.standard_normal((64, 5)); y = (rng.random(64) < 0.5).astype(float)

def epoch(X, y, b, loss_param=0.0, loss_id=ids.LOSS_LOGISTIC, theta_dtype=np.float64, K=1):
    n = X.shape[0]; nb = -(-n // b); P = 6 * K
    return le.linear_epoch(X, y, np.empty(0, X.dtype), rng.permutation(n), b, nb, loss_id,
                           loss_param, K, True, 0.0, 0.0, ids.RULE_SGD, np.zeros(4),
                           np.full(nb, 0.1), 0, np.zeros(P, theta_dtype), np.zeros(P, theta_dtype),
                           np.zeros((1, P), theta_dtype), np.zeros(nb))

# each path of a small X has a kernel of its own (linear_epoch._epoch_path)
for name, f in [("float64 BGD epoch (its own kernel)", lambda: epoch(X, y, 64)),
                ("float64 b = 8 epoch (halves)", lambda: epoch(X, y, 8)),
                ("float64 b = 1 epoch (plain SGD)", lambda: epoch(X, y, 1)),
                ("float64 b = 3 epoch (serial)", lambda: epoch(X, y, 3)),
                ("float32 b = 8 epoch", lambda: epoch(X.astype(np.float32), y.astype(np.float32),
                                                      8, theta_dtype=np.float32)),
                ("float64 softmax BGD epoch, K = 3", lambda: epoch(
                    X, rng.integers(0, 3, 64).astype(float), 64, loss_id=ids.LOSS_SOFTMAX, K=3))]:
    t = time.perf_counter(); f(); out[name] = time.perf_counter() - t

# the b = 1 epoch with a reader thread (large shuffled X in real use; forced here)
le.READER_MIN_BYTES = 0
Xr = rng.standard_normal((512, 5)); yr = (rng.random(512) < 0.5).astype(float)
t = time.perf_counter(); epoch(Xr, yr, 1); out["b=1 epoch with reader (first use)"] = time.perf_counter() - t
le.READER_MIN_BYTES = 8 << 20

# mid-sized batches over a large X (_split_batches; forced here): one thread, then with
# the reader
le.SPLIT_MIN_BYTES = 0
Xs = rng.standard_normal((512, 40)); ys = (rng.random(512) < 0.5).astype(float)

def split_epoch():
    n, d, b = 512, 40, 16
    nb = n // b
    return le.linear_epoch(Xs, ys, np.empty(0), rng.permutation(n), b, nb, ids.LOSS_LOGISTIC,
                           0.0, 1, True, 0.0, 0.0, ids.RULE_SGD, np.zeros(4), np.full(nb, 0.1),
                           0, np.zeros(d + 1), np.zeros(d + 1), np.zeros((1, d + 1)),
                           np.zeros(nb))

import numba
numba.set_num_threads(1)
t = time.perf_counter(); split_epoch(); out["b=16 split epoch (first use)"] = time.perf_counter() - t
numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
if numba.config.NUMBA_NUM_THREADS >= 2:
    le.READER_MIN_BYTES = 0
    t = time.perf_counter(); split_epoch()
    out["b=16 split + reader (first use)"] = time.perf_counter() - t
    le.READER_MIN_BYTES = 8 << 20
le.SPLIT_MIN_BYTES = 32 << 20

from numba import njit
@njit
def poisson(p, y):
    mu = math.exp(p)
    return mu - y * p, mu - y
for b, path in ((1, "plain SGD"), (8, "halves"), (64, "BGD")):
    t = time.perf_counter()
    epoch(X, np.round(np.abs(y)), b, loss_param=poisson, loss_id=ids.LOSS_CUSTOM)
    out[f"custom loss, b = {b} ({path}; never cached)"] = time.perf_counter() - t
print("RESULT" + json.dumps(out))
"""


def run(env):
    p = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                       check=True)
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT")][0]
    return json.loads(line[6:])


def main():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = run(env)
        warm = run(env)
    print(f"{'first call':56s} {'cold (s)':>9s} {'warm (s)':>9s}")
    for k in cold:
        print(f"{k:56s} {cold[k]:9.2f} {warm[k]:9.2f}")


if __name__ == "__main__":
    main()
