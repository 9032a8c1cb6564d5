"""A diverging fit stops at the same update with the same last finite parameters on every
compiled path as on the reference: each path (b = 1 row loops, the two halves on one or two
threads, the feature split, the reader thread, streamed and chunked BGD) checks the batch
loss and the parameters itself."""
import contextlib

import numpy as np
import pytest

import fastgd
from fastgd.optim import SGD, Adam
from fastgd.testing import compiled_backends

BACKENDS = [b for b in compiled_backends() if b in ("cython", "numba")]


def _jump_at(t0, big):
    """A step size that is tiny until iteration t0 and ``big`` from there on."""
    return lambda t: np.where(np.asarray(t) < t0, 1e-3, big)


# The paths forced below, whatever the (small) size of X:
#   "pair"          the two row halves of each batch on two threads
#   "split"         the two feature halves on two threads (Cython), or with a reader
#                   thread beside the trainer (numba, whose split always has one here)
#   "split-1"       the feature halves on one thread (Cython only: numba has no such path)
#   "reader"        a one-thread shuffled epoch with a reader thread loading rows ahead
#                   (numba: at b = 1 only); it needs 2 x 112 positions in the order
@contextlib.contextmanager
def _path(backend, path):
    """Force ``path`` (None: leave the thresholds alone); restore the thresholds after."""
    if path is None:
        yield
        return
    if backend == "cython":
        from fastgd.kernels.cy import linear_epoch as cy

        old = (cy._set_pair_min_work(0 if path in ("pair", "split") else 1 << 40),
               cy._set_split_min_d(32 if path in ("split", "split-1") else 1 << 40),
               cy._set_reader_min_bytes(0 if path == "reader" else 1 << 40))
        try:
            yield
        finally:
            cy._set_pair_min_work(old[0])
            cy._set_split_min_d(old[1])
            cy._set_reader_min_bytes(old[2])
        return
    from fastgd.kernels.nb import linear_epoch as nb

    names = ("PAIR_MIN_WORK", "SPLIT_MIN_BYTES", "READER_MIN_BYTES")
    old = [getattr(nb, name) for name in names]
    nb.PAIR_MIN_WORK = 0 if path == "pair" else 1 << 40
    nb.SPLIT_MIN_BYTES = 0 if path == "split" else 1 << 40
    nb.READER_MIN_BYTES = 0 if path in ("reader", "split") else 1 << 40
    try:
        yield
    finally:
        for name, value in zip(names, old):
            setattr(nb, name, value)


def _assert_takes(backend, path, shape, batch_size):
    """The epoch's path is the one forced (checked with the predicates the entries use)."""
    n, d = shape
    order = np.random.default_rng(0).permutation(n)
    nbatch = -(-n // batch_size)
    if backend == "cython":
        from fastgd.kernels.cy import linear_epoch as cy

        if cy.omp_max_threads() < 2:
            pytest.skip("needs two OpenMP threads")
        threads = cy.epoch_threads(n, d, 1, True, batch_size, nbatch)
        assert threads == (2 if path in ("pair", "split") else 1), (path, threads)
        assert (cy.batch_split(d) > 0) == (path in ("split", "split-1"))
        assert path != "reader" or n >= 2 * 112  # the reader's window, fgd_reader.h
        return
    from fastgd.kernels.nb import linear_epoch as nb

    if nb.numba.get_num_threads() < 2:
        pytest.skip("needs two numba threads")
    X = np.zeros(shape)
    taken = {"pair": nb._pairs(n, d, 1, batch_size, nbatch, n, 8),
             "split": nb._split_reads(X, order, batch_size, 1),
             "reader": nb._reads(X, order, batch_size, 0, 1)}
    assert taken[path], (path, taken)


# (id, fit arguments, path forced, rows x features)
PATHS = [
    ("b1-l2", dict(loss="squared", batch_size=1, penalty="l2", alpha=0.01), None, (200, 40)),
    ("b1-hinge", dict(loss="hinge", batch_size=1), None, (200, 40)),
    ("b1-elasticnet", dict(loss="squared_hinge", batch_size=1, penalty="elasticnet", alpha=0.01),
     None, (200, 40)),
    ("b1-momentum", dict(loss="modified_huber", batch_size=1, optimizer="momentum"), None,
     (200, 40)),
    ("b1-adam", dict(loss="squared", batch_size=1, optimizer="adam"), None, (200, 40)),
    ("b1-softmax", dict(loss="softmax", batch_size=1), None, (200, 40)),
    ("b1-softmax-adam", dict(loss="softmax", batch_size=1, optimizer="adam"), None, (200, 40)),
    ("b5-softmax", dict(loss="softmax", batch_size=5), None, (200, 40)),
    ("pair", dict(loss="squared", batch_size=16), "pair", (200, 12)),
    ("pair-hinge", dict(loss="squared_hinge", batch_size=16), "pair", (200, 12)),
    ("split", dict(loss="squared_hinge", batch_size=16), "split", (400, 40)),
    ("split-1-thread", dict(loss="squared", batch_size=16), "split-1", (200, 40)),
    ("reader-b1", dict(loss="squared", batch_size=1), "reader", (400, 40)),
    ("reader-b3", dict(loss="squared_hinge", batch_size=3), "reader", (400, 40)),
    ("bgd-streamed", dict(loss="squared", batch_size=None), None, (200, 40)),
    ("bgd-chunked", dict(loss="squared_hinge", batch_size=None), None, (1500, 100)),
]
# paths a backend does not have
_NOT_ON = {("numba", "split-1-thread"), ("numba", "reader-b3")}


def _fit(backend, kw, shape):
    n, d = shape
    rng = np.random.default_rng(0)
    X = 10 * rng.standard_normal((n, d))  # every gradient has a component far above 1
    y = X @ rng.standard_normal(d) / 10 + 0.5
    kw = dict(kw)
    if kw["loss"] == "softmax":
        y = rng.integers(0, 3, n)
    elif kw["loss"] != "squared":
        y = (y > 0.5).astype(int)
    ipe = -(-n // (kw["batch_size"] or n))
    t0 = ipe + ipe // 2 + 1 if ipe > 1 else 2  # mid-epoch 1 (BGD: epoch 2)
    opt = kw.pop("optimizer", "sgd")
    kw["optimizer"] = {"sgd": SGD(lr=1.0), "momentum": SGD(lr=1.0, momentum=0.9),
                       "adam": Adam(lr=1.0, eps=1e-300)}[opt]
    with pytest.raises(fastgd.DivergenceError) as info, np.errstate(all="ignore"):
        fastgd.fit(X, y, epochs=4, seed=0, schedule=_jump_at(t0, 1e308), backend=backend, **kw)
    return info.value


@pytest.mark.parametrize("backend,name,kw,path,shape",
                         [pytest.param(b, *p, id=f"{b}-{p[0]}") for b in BACKENDS for p in PATHS
                          if (b, p[0]) not in _NOT_ON])
def test_divergence_on_every_path_matches_the_reference(backend, name, kw, path, shape):
    if name == "bgd-chunked" and backend == "cython":
        from fastgd.kernels.cy import linear_epoch as cy

        assert cy.chunk_layout(*shape)[0] > 1
    want = _fit("numpy", kw, shape)
    with _path(backend, path):
        if path is not None:
            _assert_takes(backend, path, shape, kw["batch_size"])
        got = _fit(backend, kw, shape)
    assert (got.epoch, got.iteration, got.result.n_iter) == \
        (want.epoch, want.iteration, want.result.n_iter)
    assert str(got).split(":")[0] == str(want).split(":")[0]
    np.testing.assert_allclose(got.result.params[0][0], want.result.params[0][0], rtol=1e-9,
                               atol=1e-9 * np.abs(want.result.params[0][0]).max())


@pytest.mark.parametrize("batch_size,lr", [(1, 0.25), (32, 2.8), (None, 5.0)],
                         ids=["b1", "b32", "bgd"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_float32_fit_diverges_where_its_float32_loss_overflows(backend, batch_size, lr):
    # numba computes a float32 fit's losses in float64: until its batch loss was rounded to
    # float32, such a fit ran on for as many epochs again (BGD: epoch 52 against 26), its
    # loss history far beyond float32's range. Each sample's loss is rounded to float32 too
    # (the test below); sums in other orders may still overflow one update apart.
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 10)).astype(np.float32)
    y = (X @ rng.standard_normal(10)).astype(np.float32)
    runs = {}
    for b in ("numpy", backend):
        with pytest.raises(fastgd.DivergenceError) as info, np.errstate(all="ignore"):
            fastgd.fit(X, y, batch_size=batch_size, lr=lr, epochs=300, seed=0, backend=b)
        runs[b] = info.value.result
    got, want = runs[backend], runs["numpy"]
    assert abs(got.n_iter - want.n_iter) <= 1, (got.n_iter, want.n_iter)
    assert max(got.history["loss"]) <= np.finfo(np.float32).max


@pytest.mark.parametrize("batch_size,lr", [(None, 2.2), (None, 1.9), (32, 1.9)],
                         ids=["bgd-2.2", "bgd-1.9", "b32"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_float32_fit_stops_where_one_samples_float32_loss_overflows(backend, batch_size, lr):
    """The reference's batch loss is inf as soon as one sample's float32 loss is, while
    their mean may still be finite: numba, forming the losses in float64, had rounded only
    the mean and stopped epochs later (BGD epoch 120 against 117 here; review)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 5)).astype(np.float32)
    y = X @ rng.standard_normal(5)
    where = {}
    for b in ("numpy", backend):
        with pytest.raises(fastgd.DivergenceError) as info, np.errstate(all="ignore"):
            fastgd.fit(X, y, loss="squared", batch_size=batch_size, lr=lr, epochs=3000, seed=3,
                       backend=b)
        where[b] = (info.value.epoch, info.value.iteration)
    assert where[backend] == where["numpy"]
