"""Custom per-sample models: a user's ``@njit`` function compiled into the epoch loop.

The model is a function ``fn(params, x, y, grad_out) -> loss``:

- ``params`` (P,) the flat parameters (dtype A: float64, or float32 for
  float32 data without float64 accumulation);
- ``x`` (d,) one row of X (a view, dtype of X); ``y`` a float64 scalar;
- ``grad_out`` (P,) dtype A, **zeroed before each call**: ``fn`` writes (or
  adds) d loss / d params of this one sample into it;
- returns the sample's loss (a float).

Public ``@njit`` kernels (never cached: each is specialised on ``fn``):

``custom_model_batch_gradient(fn, X, y, sw, rows, theta, grad, scale, gbuf) -> float``
    ``grad = scale * sum_{i in rows} s_i grad_i``; returns ``scale * sum s_i loss_i``.
``custom_model_epoch(fn, X, y, sw, order, batch_size, n_batches, rule_id, hyper,
lrs, step0, theta, grad, state, batch_loss, gbuf) -> int n_done``
    the same contract as ``linear_epoch`` (batch gradient with
    ``scale = 1/|B|``, no penalty, stops before the update of the first batch
    whose loss is not finite).  ``gbuf`` (P,) dtype A is the per-sample
    gradient workspace.
``custom_model_predict(predict, theta, X, out)``
    ``out[i] = predict(theta, X[i])``.

Large batches use the same deterministic chunked reduction as the linear
kernels (fixed chunks of ``CHUNK_ROWS`` rows, partials added in order): the
result does not depend on the number of threads.
"""

import numba
import numpy as np
from numba import prange
from numba.extending import overload

from ._util import ZERO, cast_like, is_finite
from .config import (CHUNK_ROWS, PARALLEL_MIN_WORK, guarded, kernel, on_calling_thread,
                     returns_number, user_function)
from .updates import _apply_update
from .. import checks


@kernel(cache=False)
def _model_rows(fn, X, y, sw, rows, lo, hi, theta, g, gb, scale):
    P = g.shape[0]
    for t in range(P):
        g[t] = 0
    has_sw = sw.shape[0] > 0
    lsum = 0.0
    for r in range(lo, hi):
        i = rows[r]
        for t in range(P):
            gb[t] = 0
        # y as float64 whatever the data's dtype, as documented and as the reference gives
        # it (Numba's float() keeps a float32, which compiled fn a second time, unchecked)
        l = fn(theta, X[i], np.float64(y[i]), gb)
        c = scale * sw[i] if has_sw else scale
        lsum += c * float(l)
        cc = cast_like(theta, c)
        for t in range(P):
            g[t] += cc * gb[t]
    return lsum


@kernel(parallel=True, cache=False)
def _model_chunks_parallel(fn, X, y, sw, rows, lo, hi, theta, scale, parts, lparts, gbs):
    nch = (hi - lo + CHUNK_ROWS - 1) // CHUNK_ROWS
    for c in prange(nch):
        a = lo + c * CHUNK_ROWS
        b = min(a + CHUNK_ROWS, hi)
        lparts[c] = _model_rows(fn, X, y, sw, rows, a, b, theta, parts[c], gbs[c], scale)


@kernel(cache=False)
def _model_batch(fn, X, y, sw, rows, lo, hi, theta, grad, scale, gbuf, parts, lparts, gbs):
    n = hi - lo
    if n <= CHUNK_ROWS:
        return _model_rows(fn, X, y, sw, rows, lo, hi, theta, grad, gbuf, scale)
    nch = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    P = grad.shape[0]
    if n * max(X.shape[1], P) >= PARALLEL_MIN_WORK:
        _model_chunks_parallel(fn, X, y, sw, rows, lo, hi, theta, scale, parts, lparts, gbs)
    else:
        for c in range(nch):
            a = lo + c * CHUNK_ROWS
            b = min(a + CHUNK_ROWS, hi)
            lparts[c] = _model_rows(fn, X, y, sw, rows, a, b, theta, parts[c], gbs[c], scale)
    for t in range(P):
        grad[t] = parts[0, t]
    loss = lparts[0]
    for c in range(1, nch):
        pc = parts[c]
        for t in range(P):
            grad[t] += pc[t]
        loss += lparts[c]
    return loss


@kernel(cache=False)
def _model_workspace(n_rows, theta):
    nch = (n_rows + CHUNK_ROWS - 1) // CHUNK_ROWS
    k = nch if nch > 1 else 0
    parts = np.empty((k, theta.shape[0]), dtype=theta.dtype)
    gbs = np.empty((k, theta.shape[0]), dtype=theta.dtype)
    lparts = np.empty(max(nch, 1))
    return parts, lparts, gbs


@kernel(cache=False)
def _custom_model_batch_gradient(fn, X, y, sw, rows, theta, grad, scale, gbuf):
    n = rows.shape[0]
    parts, lparts, gbs = _model_workspace(n, theta)
    return _model_batch(fn, X, y, sw, rows, ZERO, n, theta, grad, scale, gbuf, parts, lparts, gbs)


@kernel(cache=False)
def _custom_model_epoch(fn, X, y, sw, order, batch_size, n_batches, rule_id, hyper, lrs, step0,
                        theta, grad, state, batch_loss, gbuf):
    m = order.shape[0]
    parts, lparts, gbs = _model_workspace(min(batch_size, m), theta)
    for k in range(n_batches):
        lo = k * batch_size
        hi = min(lo + batch_size, m)
        loss = _model_batch(fn, X, y, sw, order, lo, hi, theta, grad, 1.0 / (hi - lo), gbuf,
                            parts, lparts, gbs)
        batch_loss[k] = loss
        if not is_finite(loss):
            return k
        _apply_update(rule_id, hyper, theta, grad, state, lrs[k], step0 + k + 1)
    return n_batches


def _row_type(X):
    """Numba's type of ``X[i]``, the ``x`` the kernels pass."""
    return numba.typeof(X).copy(ndim=1, layout="C" if X.flags.c_contiguous else "A")


def _compiling_model(fn, theta, X, gbuf):
    """``user_function`` for a model's ``fn``, with the types the kernels call it with."""
    def signature():
        types = (numba.typeof(theta), _row_type(X), numba.float64, numba.typeof(gbuf))
        return "fn(params: {}, x: {}, y: {}, grad_out: {}) -> a number".format(*types), types
    return user_function("fn", fn, signature, returns_number)


# Public entry points: plain functions for Python callers (serialised while the
# threading layer is not thread-safe, see config.guarded), and the same
# kernels, inlined by type, for callers in @njit code.

def custom_model_batch_gradient(fn, X, y, sw, rows, theta, grad, scale, gbuf):
    """grad = scale * sum_{i in rows} s_i grad_i; returns scale * sum s_i loss_i."""
    checks.njit_function("fn", fn, checks.MODEL_SIGNATURE)
    rows = checks.custom_gradient(fn, X, y, sw, rows, theta, grad, gbuf, scale)
    y, sw = checks.data_arrays(X, y, sw)
    with on_calling_thread(True), _compiling_model(fn, theta, X, gbuf):
        return guarded(_custom_model_batch_gradient, fn, X, y, sw, rows, theta, grad,
                       float(scale), gbuf)


@overload(custom_model_batch_gradient)
def _ol_custom_model_batch_gradient(fn, X, y, sw, rows, theta, grad, scale, gbuf):
    def impl(fn, X, y, sw, rows, theta, grad, scale, gbuf):
        return _custom_model_batch_gradient(fn, X, y, sw, rows, theta, grad, scale, gbuf)
    return impl


def custom_model_epoch(fn, X, y, sw, order, batch_size, n_batches, rule_id, hyper, lrs, step0,
                       theta, grad, state, batch_loss, gbuf):
    """A whole epoch of a custom model; returns the number of batches applied."""
    checks.njit_function("fn", fn, checks.MODEL_SIGNATURE)
    order = checks.custom_epoch(fn, X, y, sw, order, batch_size, n_batches, rule_id, hyper, lrs,
                                step0, theta, grad, state, batch_loss, gbuf)
    y, sw = checks.data_arrays(X, y, sw)
    hyper = checks.real_array("hyper", hyper, np.float64)
    lrs = checks.real_array("lrs", lrs, np.float64)
    with on_calling_thread(True), _compiling_model(fn, theta, X, gbuf):
        return guarded(_custom_model_epoch, fn, X, y, sw, order, int(batch_size),
                       int(n_batches), int(rule_id), hyper, lrs, int(step0), theta, grad, state,
                       batch_loss, gbuf)


@overload(custom_model_epoch)
def _ol_custom_model_epoch(fn, X, y, sw, order, batch_size, n_batches, rule_id, hyper, lrs,
                           step0, theta, grad, state, batch_loss, gbuf):
    def impl(fn, X, y, sw, order, batch_size, n_batches, rule_id, hyper, lrs, step0, theta,
             grad, state, batch_loss, gbuf):
        return _custom_model_epoch(fn, X, y, sw, order, batch_size, n_batches, rule_id, hyper,
                                   lrs, step0, theta, grad, state, batch_loss, gbuf)
    return impl


@kernel(cache=False)
def _custom_model_predict(predict, theta, X, out):
    for i in range(X.shape[0]):
        out[i] = predict(theta, X[i])


def custom_model_predict(predict, theta, X, out):
    """out[i] = predict(theta, X[i]) for every row (checked from Python, the kernel
    itself in ``@njit`` code)."""
    checks.njit_function("predict", predict, checks.PREDICT_SIGNATURE)
    checks.predict_arrays(theta, X, out)
    def signature():
        types = (numba.typeof(theta), _row_type(X))
        return "predict(params: {}, x: {}) -> a number".format(*types), types
    with user_function("predict", predict, signature, returns_number):
        _custom_model_predict(predict, theta, X, out)


@overload(custom_model_predict)
def _ol_custom_model_predict(predict, theta, X, out):
    def impl(predict, theta, X, out):
        _custom_model_predict(predict, theta, X, out)
    return impl
