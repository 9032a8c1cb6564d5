"""W1 on a machine with more than two cores: the epoch with 1-4 reader threads.

A shuffled b = 32 (or b = 1) epoch is one serial chain of updates on one core; on two
cores its rows' arrival there is the limit (docs/w1-b32.md).  This script measures, in
one process and in interleaved rounds, what more reader threads give where the cores are
there, next to the BGD epoch on two threads and on all of them, NumPy's ``X.sum()`` and
the shuffled-read floor.  The process pins itself to one logical CPU per physical core
(at most --cores), so that no two of its threads share a core.

    OMP_WAIT_POLICY=PASSIVE python bench/readers.py [--cores 8] [--rounds 15] [--numba]

(--numba: also the Numba backend, its MAX_READERS raised to --max-readers.)

The figures behind docs/benchmarks-log.md (W1, "Twelfth session": reader threads).  Needs
threadpoolctl (scikit-learn's, in the dev extra).
"""
import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from fastgd.kernels.cy import linear_epoch as cy
from fastgd.testing import W1, make_data, prepared_run

from machine import cpu_name


def one_cpu_per_core(limit):
    """Logical CPUs of this process's affinity, one per physical core, at most ``limit``."""
    seen, cpus = set(), []
    for cpu in sorted(os.sched_getaffinity(0)):
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as f:
                core = f.read().strip()
        except OSError:
            core = str(cpu)
        if core not in seen:
            seen.add(core)
            cpus.append(cpu)
    return cpus[:limit]


class Runner:
    """One configuration's epochs: ``threads`` threads, ``readers`` at most (0: none)."""

    def __init__(self, name, X, y, batch_size, threads, readers, backend="cython"):
        self.name, self.threads, self.readers, self.backend = name, threads, readers, backend
        self.run = prepared_run(W1.at(n=len(X), batch_size=batch_size), backend, X, y)
        self.driver, self.kernel = [], []
        self.epoch()  # warm-up: JIT, caches, thread pools

    def _timed_epoch(self):
        t = time.perf_counter()
        self.run.train(1)
        self.driver.append(time.perf_counter() - t)
        self.kernel.append(self.run.history["time"][-1])

    def epoch(self):
        if self.backend == "numba":
            import numba
            from fastgd.kernels.nb import linear_epoch as nb
            old_min, old_threads = nb.READER_MIN_BYTES, numba.get_num_threads()
            nb.READER_MIN_BYTES = 1 << 60 if self.readers == 0 else 8 << 20
            numba.set_num_threads(self.threads)
            try:
                self._timed_epoch()
            finally:
                nb.READER_MIN_BYTES = old_min
                numba.set_num_threads(old_threads)
            return
        old_min = cy._set_reader_min_bytes(1 << 60 if self.readers == 0 else 8 << 20)
        old_max = cy._set_max_readers(max(1, self.readers))
        try:
            with threadpool_limits(limits=self.threads, user_api="openmp"):
                self._timed_epoch()
        finally:
            cy._set_reader_min_bytes(old_min)
            cy._set_max_readers(old_max)


class Timed:
    def __init__(self, name, fn):
        self.name, self.fn, self.driver, self.kernel = name, fn, [], []
        fn()

    def epoch(self):
        t = time.perf_counter()
        self.fn()
        self.driver.append(time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cores", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--max-readers", type=int, default=4)
    ap.add_argument("--numba", action="store_true")
    ap.add_argument("--n", type=int, default=W1.n, help="rows of X (W1: 100,000)")
    a = ap.parse_args()
    cpus = one_cpu_per_core(a.cores)
    os.sched_setaffinity(0, cpus)
    T = len(cpus)
    print(f"{cpu_name()}; {os.cpu_count()} logical CPUs, pinned to {T} cores: {cpus}; "
          f"X {a.n} x {W1.d} float64")
    case = W1.at(n=a.n)
    X, y, _ = make_data(case)
    X = np.ascontiguousarray(X)
    order = np.random.default_rng(0).permutation(len(X))

    items = [Timed("X.sum() (NumPy, one thread)", X.sum),
             Timed("shuffled-read floor, 1 thread", lambda: cy._read_rows(X, order, 1))]
    if T >= 2:
        items.append(Timed("shuffled-read floor, 2 threads", lambda: cy._read_rows(X, order, 2)))
    for t in sorted({min(2, T), T}):
        items.append(Runner(f"BGD, {t} threads", X, y, None, t, 0))
    backends = ["cython"]
    if a.numba:
        import numba
        from fastgd.kernels.nb import linear_epoch as nb
        nb.MAX_READERS = a.max_readers
        numba.set_num_threads(min(T, numba.config.NUMBA_NUM_THREADS))
        backends.append("numba")
    for backend in backends:
        name = "" if backend == "cython" else "numba "
        for b in (32, 1):
            for r in range(0, min(a.max_readers, T - 1) + 1):
                items.append(Runner(f"{name}b = {b}, {r} reader{'s' if r != 1 else ''}", X, y,
                                    b, r + 1, r, backend))
    for _ in range(a.rounds):
        for it in items:
            it.epoch()

    ms = lambda v: f"{1e3 * v:7.2f}"  # noqa: E731
    print(f"\n{'epoch':34s} {'min':>7s} {'median':>7s}  compiled min (ms)")
    for it in items:
        k = ms(min(it.kernel)) if it.kernel else ""
        print(f"{it.name:34s} {ms(min(it.driver))} {ms(float(np.median(it.driver)))}  {k}")
    by = {it.name: min(it.driver) for it in items}
    bgd2 = by[f"BGD, {min(2, T)} threads"]
    print(f"\nratios (driver minima) to the BGD epoch on {min(2, T)} threads "
          f"and on {T} threads:")
    for it in items:
        if "b = " in it.name:
            print(f"  {it.name:22s} {by[it.name] / bgd2:5.2f}  {by[it.name] / by[f'BGD, {T} threads']:5.2f}")


if __name__ == "__main__":
    main()
