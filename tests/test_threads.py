"""Several fits at once in threads (kernels release the GIL) give the sequential results."""
import importlib
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fastgd.kernels import ids
from fastgd.testing import Case, compiled_backends, make_data, run


CASES = [Case(loss="logistic", batch_size=8, n=400, d=12, epochs=3),
         Case(loss="softmax", batch_size=None, n=3000, d=12, epochs=3),  # large batch: parallel path
         Case(loss="squared", batch_size=1, n=300, d=12, epochs=2, optimizer=("adam", {}))]


@pytest.mark.parametrize("backend", [b for b in compiled_backends() if b != "cuda"])
def test_concurrent_fits_equal_sequential_fits(backend):
    data = [make_data(c) for c in CASES]
    sequential = [run(c, backend, *d).params[0][0] for c, d in zip(CASES, data)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(lambda c=c, d=d: run(c, backend, *d).params[0][0]) for c, d in zip(CASES * 2, data * 2)]
        results = [f.result() for f in futures]
    for got, want in zip(results, sequential * 2):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", [b for b in compiled_backends() if b in ("cython", "numba")])
def test_an_epoch_runs_without_the_gil(backend):
    """While one thread runs an epoch kernel, Python runs in another.  (The tests around
    compare results only: they pass with kernels that hold the GIL, run one after another.)
    A kernel that held the GIL would leave the other thread no tick at all in the middle
    half of its call."""
    folder = {"cython": "cy", "numba": "nb"}[backend]
    mod = importlib.import_module(f"fastgd.kernels.{folder}.linear_epoch")
    rng = np.random.default_rng(0)
    n, d = 4000, 200
    X = rng.standard_normal((n, d))
    y = (X[:, 0] > 0).astype(np.float64)

    def epoch(m):  # m updates at b = 1 of plain SGD on rows drawn with replacement
        order, P = rng.integers(0, n, size=m), d + 1
        args = (X, y, np.empty(0), order, 1, m, ids.LOSS_LOGISTIC, 0.0, 1, True, 0.0, 0.0,
                ids.RULE_SGD, np.zeros(4), np.full(m, 1e-3), 0, np.zeros(P), np.zeros(P),
                np.zeros((1, P)), np.empty(m))
        return lambda: mod.linear_epoch(*args)

    epoch(10)()  # numba compiles with the GIL held: not in the measured call
    call, span, ticks = epoch(1_000_000), [], []

    def worker():
        t0 = time.perf_counter()
        try:
            span.append(call())
        except Exception as exc:  # noqa: BLE001 - raised again below, in the test's thread
            span.append(exc)
        span.extend((t0, time.perf_counter()))

    thread = threading.Thread(target=worker)
    thread.start()
    while thread.is_alive():
        ticks.append(time.perf_counter())
    thread.join()
    done, t0, t1 = span
    if isinstance(done, Exception):
        raise done
    assert done == 1_000_000
    quarter = (t1 - t0) / 4
    middle = [t for t in ticks if t0 + quarter < t < t1 - quarter]
    assert len(middle) > 100, (len(middle), t1 - t0)


READER_CASES = [Case(loss="logistic", batch_size=1, n=400, d=12, epochs=2),
                Case(loss="hinge", batch_size=3, n=400, d=12, epochs=2),
                Case(loss="squared", batch_size=1, n=300, d=12, epochs=2, optimizer=("adam", {}))]


@pytest.fixture
def readers_always(monkeypatch, backend):
    """One-thread shuffled epochs get their reader thread whatever the size of X."""
    if backend == "numba":
        from fastgd.kernels.nb import linear_epoch as nb_le

        monkeypatch.setattr(nb_le, "READER_MIN_BYTES", 0)
        yield
        return
    from fastgd.kernels.cy import linear_epoch as cy_le

    old = cy_le._set_reader_min_bytes(0)
    yield
    cy_le._set_reader_min_bytes(old)


@pytest.mark.parametrize("backend", [b for b in compiled_backends() if b in ("cython", "numba")])
def test_concurrent_fits_with_reader_threads_equal_sequential_fits(backend, readers_always):
    """Fits in threads whose epochs each run a trainer and a reader thread (up to six
    threads on the cores) give the sequential results."""
    data = [make_data(c) for c in READER_CASES]
    sequential = [run(c, backend, *d).params[0][0] for c, d in zip(READER_CASES, data)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(lambda c=c, d=d: run(c, backend, *d).params[0][0])
                   for c, d in zip(READER_CASES * 2, data * 2)]
        results = [f.result() for f in futures]
    for got, want in zip(results, sequential * 2):
        np.testing.assert_array_equal(got, want)


FORK_SCRIPT = r"""
import os, signal, sys
import numpy as np
import fastgd

rng = np.random.default_rng(0)
X = rng.standard_normal((4000, 40)); y = (X[:, 0] > 0).astype(int)
kw = dict(loss="logistic", backend="cython", epochs=2, seed=3)
cases = [dict(batch_size=None), dict(batch_size=32), dict(batch_size=1)]
parent = [fastgd.fit(X, y, **kw, **c).params[0][0] for c in cases]   # OpenMP teams made here
fastgd.kernels.cy.linear_epoch._set_pair_min_work(0)                 # b = 32 on two threads
parent.append(fastgd.fit(X, y, **kw, batch_size=32).params[0][0])
pid = os.fork()
if pid == 0:
    signal.alarm(60)
    child = [fastgd.fit(X, y, **kw, **c).params[0][0] for c in cases]
    child.append(fastgd.fit(X, y, **kw, batch_size=32).params[0][0])
    same = all(np.array_equal(a, b) for a, b in zip(parent, child))
    os._exit(0 if same else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_trains_after_the_parent_used_openmp_threads():
    """libgomp's threads do not survive fork(): the child trains on one thread, to the
    same bits, instead of waiting for ever in its first parallel region."""
    import os
    import subprocess
    import sys

    pytest.importorskip("fastgd.kernels.cy.linear_epoch")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run([sys.executable, "-c", FORK_SCRIPT], env=env, timeout=120,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr



def test_numba_fits_are_not_serialised_before_a_parallel_launch():
    """The launch lock is for Numba's workqueue layer only.  The layer used to be asked
    for before any parallel launch, which b = 1 and small batches never make, so every
    numba call in such a process took the lock: two b = 1 fits in threads ran one after
    the other.  (A fresh process: in this one, earlier tests have launched threads.)"""
    pytest.importorskip("numba")
    script = textwrap.dedent("""
        import numpy as np, numba, fastgd
        from fastgd.kernels.nb import config

        class NoLock:
            def __enter__(self):
                raise AssertionError("a numba call was serialised")

            def __exit__(self, *exc):
                return False

        config._LAUNCH_LOCK = NoLock()
        X = np.random.default_rng(0).standard_normal((60, 4))
        try:
            fastgd.sgd(X, (X[:, 0] > 0).astype(int), loss="logistic", epochs=1, backend="numba")
        except AssertionError:
            print("serialised", numba.threading_layer())
        else:
            print("free", numba.threading_layer())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    verdict, layer = out.stdout.split()
    assert verdict == ("free" if layer in ("omp", "tbb") else "serialised"), out.stdout
