"""One epoch of a linear model, batch by batch, compiled with Numba.

Same functions and signatures as ``fastgd.reference.linear_epoch`` (see
docs/kernels.md); all three are callable from Python and from your own
``@njit`` code:

``linear_batch_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs,
fit_intercept, theta, grad, scale) -> float``
    ``grad = scale * sum_{i in rows} sw_i dl_i/dtheta`` (overwritten, intercept
    included); returns ``scale * sum sw_i l_i``.  No penalty.
``add_penalty(theta, grad, n_penalized, alpha, l1_ratio) -> float``
``linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
grad, state, batch_loss) -> int``
    a whole epoch; returns the number of batches applied (fewer than
    ``n_batches`` when batch ``n_done`` had a non-finite loss; theta and state
    are then as they were before that batch).

``loss_param`` is a float (epsilon of the huber/epsilon losses, ignored by the
others) or, with ``loss_id == LOSS_CUSTOM``, a user's ``@njit`` function
``(p, y) -> (loss, dloss)`` on float64 scalars, compiled straight into the
loop.  The built-in path is cached on disk where possible; a custom loss gets
its own, uncached, compilation (first call per process pays the compile).

How the work is done:

- rows are read through ``order``; X is never copied; the row eight positions
  ahead is prefetched (into L2).  A batch holding all n rows once (BGD) is summed in
  storage order (sequential reads); the sum is over the same set of rows.  ``theta`` fixes the
  accumulation dtype (float32 X with float64 theta accumulates in float64).
- per row, a vectorised dot product ``p = x.w + b``; per block of 4 rows, one
  pass adds ``c_0 dloss_0 x_0 + ... + c_3 dloss_3 x_3`` into the gradient
  (``simd.axpy4_rows``: explicit 4-lane vectors for float64, as are the 4-row
  margins of the mid-sized batches, ``simd.dot4_rows``).
- a batch of more than ``CHUNK_ROWS`` rows is cut into fixed chunks of
  ``CHUNK_ROWS`` rows; each chunk's partial gradient is computed (in
  parallel, with ``prange``, when the batch is large) and the partials are
  added in chunk order.  The boundaries never depend on the thread count, so
  the result is bit-identical for any ``numba.set_num_threads``.
- plain SGD (no momentum, no weight decay) at batch size 1 never materialises
  ``grad``: the penalty value is taken in the dot product's pass and the
  update is one fused pass ``w -= lr * (g * x + penalty'(w))``.
"""

from contextlib import nullcontext

import numba
import numpy as np
from numba import prange
from numba.core import types
from numba.extending import overload

from ._util import (TRUE, ZERO, cast_like, compare_and_swap, cycle_count, is_finite, load_acquire,
                    prefetch_item, prefetch_part, prefetch_row, spin_pause, store_release, touch,
                    zero_of)
from .config import (CHUNK_ROWS, PARALLEL_MIN_WORK, guarded, kernel, on_calling_thread,
                     returns_pair, user_function)
from .losses import logistic_poly, logistic_poly_rows, point_loss, softmax_loss_dloss
from .simd import axpy4_rows, dot4_rows
from .updates import _apply_update, plain_sgd_update, sgd_momentum_step
from .. import checks
from ..ids import LOSS_CUSTOM, LOSS_LOGISTIC, LOSS_SOFTMAX, RULE_SGD


#: Epochs of small batches over an X of at least this many bytes first gather
#: each block of about GATHER_BLOCK_BYTES of rows into a contiguous buffer
#: (see _blocks_epoch_kernel).  Results are the same bit for bit either way.
GATHER_MIN_BYTES = 8 << 20
GATHER_BLOCK_BYTES = 512 << 10

#: Rows are read through ``order``; the row this many positions ahead is
#: prefetched (shuffled rows defeat the hardware prefetcher).
PREFETCH_AHEAD = 8

#: Runs of at least this many rows of the logistic loss are done in blocks of this
#: many (_scalar_rows): the block's losses in one vectorised loop.
LOGISTIC_BLOCK = 16
#: Rows from which a softmax call works on W transposed (fewer do not repay the copies:
#: 2 rows of d = 300, K = 10 ran 20 % slower transposed; 4-7 rows run 1.5-2x faster).
SOFTMAX_T_MIN_ROWS = 4

#: Batches of PAIR_MIN_ROWS to CHUNK_ROWS rows are summed as two fixed halves
#: (_halves_batches); with two threads, at least PAIR_MIN_WORK multiply-adds per half
#: and PAIR_EPOCH_FACTOR times that in the epoch, a second thread computes the second
#: half (_pair_epoch_impl).  The same bits either way.  (Thirteenth session, one thread
#: against two: 2,000 x 50 and 2,000 x 100 at b = 32 and 128 0.06-0.10 against 0.11-0.14
#: ms, so small epochs stay on one; 20,000 x 20 at b = 128 0.28 against 0.34 pairs.)
PAIR_MIN_ROWS = 8
PAIR_MIN_WORK = 512
PAIR_EPOCH_FACTOR = 500
# Spin-wait bounds (pause instructions) of the pair: the first thread computes the
# second half itself when the helper's does not come (a descheduled helper); the
# helper leaves when no new batch comes (the epoch ended or its partner stalls).
_WAIT_SPINS = np.int64(4096)  # (an int would type as a literal: _util.ZERO)
_IDLE_SPINS = 1 << 16
# Slots of the pair's int64 sync array, a cache line apart: the batch published by
# the first thread, the last batch whose second half was claimed, the last the
# helper finished.
_PUB, _CLAIM, _DONE = 0, 8, 16
_STOP = 1 << 62

#: Mid-sized batches of fewer than SPLIT_MAX_ROWS rows with K = 1, at least
#: SPLIT_MIN_D features and an X of at least SPLIT_MIN_BYTES (about a last-level
#: cache: beyond it the rows come from memory) run as _split_batches instead: per
#: batch, the margins of all its rows on the features [0, h), then on [h, d), the
#: losses of the whole batch, then the gradient (as the Cython backend's _split_epoch
#: on one thread).  With two threads and a shuffled order, a reader thread loads the
#: rows ahead (_split_read_epoch_impl).  A rule on the shapes, never the thread count:
#: the same bits either way.  (Larger batches keep the pair of threads: the reader
#: follows batch starts and reads 112 rows ahead, so at b = 256 and 512 the split ran
#: 6.9 and 8.4 ms against the pair's 5.6 and 5.4.)
SPLIT_MIN_D = 32
SPLIT_MIN_BYTES = 32 << 20
SPLIT_MAX_ROWS = 128

#: Shuffled plain-SGD epochs at batch size 1 over an X of at least READER_MIN_BYTES
#: run with a reader thread (_read_epoch_impl): the trainer publishes its position
#: every READER_PUBLISH rows and the reader loads the rows READER_LEAD to
#: READER_WINDOW positions ahead of it, so their cache and TLB misses are taken on
#: the other core (as the Cython backend's fgd_reader.h; docs/numba.md).  Nothing
#: the trainer computes changes.
READER_MIN_BYTES = 8 << 20
READER_PUBLISH = 16
READER_LEAD = 16
READER_WINDOW = 112
READER_PREFETCH = 16        # the reader's own prefetch distance (its rows)
#: At most this many reader threads, where numba's thread count leaves the cores for
#: them: each keeps its own misses in flight (reader r of R loads the positions r mod R).
#: On 8 Xeon cores, X of 1,000,000 x 100 float64 in DRAM, b = 32: 100 ms with one
#: reader, 87 with two, 86 with three (bench/readers.py, docs/benchmarks-log.md).
MAX_READERS = 2
# The reader leaves when it sees that it, or the trainer, did not run for this many
# cycles (about 2 ms at 2.6 GHz): another process has a core, and a third thread on
# two cores only takes time from the trainer (fgd_reader.h; shorter gaps were also
# set off by the driver's background shuffle, 1.2 ms on W1).
READER_GAP_CYCLES = 5_000_000
# slots of the reader's int64 progress array, a cache line apart
_POS, _END = 0, 8

# --------------------------------------------------------------------------
# Building blocks (compiled into the public kernels; not cached on their own).

#: The loss_param that the kernels get for softmax, whatever the caller passed (the
#: entries below, Python and njit, pass it; a float or a user's function otherwise).  A
#: type of its own, so that _loss_rows and _rule_b1 pick softmax's rows or the K = 1 rows
#: when a kernel is compiled, not per batch: each kernel holds one of the two (a first
#: float64 BGD fit, cold, 41 s with both, 21-27 s with the K = 1 rows alone).
_SOFTMAX_PARAM = None


def _is_softmax_param(loss_param_type):
    return isinstance(loss_param_type, types.NoneType)


@kernel(inline=True)
def _prefetch_sample(X, y, sw, i):
    """Requests row i of X and its label and weight (a random row's label misses the
    caches as surely as the row)."""
    prefetch_row(X, i)
    prefetch_item(y, i)
    if sw.shape[0] > 0:
        prefetch_item(sw, i)


@kernel(cache=False)
def _scalar_rows(X, y, sw, rows, lo, hi, loss_id, loss_param, fit_intercept, theta, g, scale,
                 ahead):
    """The K = 1 losses.  Blocks of 4 rows: a vectorised dot product per row (each
    row read front to back), the 4 losses, then one pass
    ``g += a0 x0 + a1 x1 + a2 x2 + a3 x3`` over the rows now in L1; then single
    rows.  The row ``ahead`` positions on in ``rows`` is prefetched (also across the
    batch's end: PREFETCH_AHEAD, the next batch's first rows; a half of a batch,
    _halves_batches: the batch size, the same half of the next batch)."""
    d = X.shape[1]
    m = rows.shape[0]
    has_sw = sw.shape[0] > 0
    b0 = theta[d] if fit_intercept else zero_of(theta)
    lsum = 0.0
    r = lo
    if loss_id == LOSS_LOGISTIC and hi - lo >= LOGISTIC_BLOCK:
        # Blocks of LOGISTIC_BLOCK rows (still in L1 for their gradient pass): the
        # margins, then the losses of the block in one vectorised loop, then the
        # gradient four rows a pass (BGD W1: 2.5 -> 2.1 ms).  The arithmetic of the loop
        # below, equal to it up to rounding: with fast-math reassociation LLVM may group
        # the products differently in the two loops (seen without sample weights).
        lw = np.empty((4, LOGISTIC_BLOCK))
        while r + LOGISTIC_BLOCK <= hi:
            for t in range(LOGISTIC_BLOCK):
                if r + t + ahead < m:
                    _prefetch_sample(X, y, sw, rows[r + t + ahead])
                i = rows[r + t]
                xi = X[i]
                a = zero_of(theta)
                for j in range(d):
                    a += xi[j] * theta[j]
                lw[0, t] = float(a + b0)
                lw[1, t] = float(y[i])
            logistic_poly_rows(lw[0], lw[1], lw[2], lw[3], LOGISTIC_BLOCK)
            for t in range(0, LOGISTIC_BLOCK, 4):
                if not (abs(lw[0, t]) <= 700.0 and abs(lw[0, t + 1]) <= 700.0
                        and abs(lw[0, t + 2]) <= 700.0 and abs(lw[0, t + 3]) <= 700.0):
                    for u in range(t, t + 4):
                        lw[2, u], lw[3, u] = point_loss(loss_id, loss_param, lw[0, u], lw[1, u])
                i0 = rows[r + t]
                i1 = rows[r + t + 1]
                i2 = rows[r + t + 2]
                i3 = rows[r + t + 3]
                c0 = scale * sw[i0] if has_sw else scale
                c1 = scale * sw[i1] if has_sw else scale
                c2 = scale * sw[i2] if has_sw else scale
                c3 = scale * sw[i3] if has_sw else scale
                lsum += c0 * _sample_loss(theta, lw[2, t])
                lsum += c1 * _sample_loss(theta, lw[2, t + 1])
                lsum += c2 * _sample_loss(theta, lw[2, t + 2])
                lsum += c3 * _sample_loss(theta, lw[2, t + 3])
                g0 = cast_like(theta, c0 * lw[3, t])
                g1 = cast_like(theta, c1 * lw[3, t + 1])
                g2 = cast_like(theta, c2 * lw[3, t + 2])
                g3 = cast_like(theta, c3 * lw[3, t + 3])
                axpy4_rows(g0, g1, g2, g3, X, i0, i1, i2, i3, 0, d, g)
                if fit_intercept:
                    g[d] += (g0 + g1) + (g2 + g3)
            r += LOGISTIC_BLOCK
    while r + 4 <= hi:
        for q in range(r + ahead, min(r + ahead + 4, m)):
            _prefetch_sample(X, y, sw, rows[q])
        i0 = rows[r]
        i1 = rows[r + 1]
        i2 = rows[r + 2]
        i3 = rows[r + 3]
        x0 = X[i0]
        x1 = X[i1]
        x2 = X[i2]
        x3 = X[i3]
        a = zero_of(theta)
        for j in range(d):
            a += x0[j] * theta[j]
        p0 = float(a + b0)
        a = zero_of(theta)
        for j in range(d):
            a += x1[j] * theta[j]
        p1 = float(a + b0)
        a = zero_of(theta)
        for j in range(d):
            a += x2[j] * theta[j]
        p2 = float(a + b0)
        a = zero_of(theta)
        for j in range(d):
            a += x3[j] * theta[j]
        p3 = float(a + b0)
        if (loss_id == LOSS_LOGISTIC and abs(p0) <= 700.0 and abs(p1) <= 700.0
                and abs(p2) <= 700.0 and abs(p3) <= 700.0):
            # four inline polynomial evaluations instead of eight libm calls
            l0, e0 = logistic_poly(p0, float(y[i0]))
            l1, e1 = logistic_poly(p1, float(y[i1]))
            l2, e2 = logistic_poly(p2, float(y[i2]))
            l3, e3 = logistic_poly(p3, float(y[i3]))
        else:
            l0, e0 = point_loss(loss_id, loss_param, p0, float(y[i0]))
            l1, e1 = point_loss(loss_id, loss_param, p1, float(y[i1]))
            l2, e2 = point_loss(loss_id, loss_param, p2, float(y[i2]))
            l3, e3 = point_loss(loss_id, loss_param, p3, float(y[i3]))
        c0 = scale * sw[i0] if has_sw else scale
        c1 = scale * sw[i1] if has_sw else scale
        c2 = scale * sw[i2] if has_sw else scale
        c3 = scale * sw[i3] if has_sw else scale
        lsum += c0 * _sample_loss(theta, l0)
        lsum += c1 * _sample_loss(theta, l1)
        lsum += c2 * _sample_loss(theta, l2)
        lsum += c3 * _sample_loss(theta, l3)
        g0 = cast_like(theta, c0 * e0)
        g1 = cast_like(theta, c1 * e1)
        g2 = cast_like(theta, c2 * e2)
        g3 = cast_like(theta, c3 * e3)
        axpy4_rows(g0, g1, g2, g3, X, i0, i1, i2, i3, 0, d, g)
        if fit_intercept:
            g[d] += (g0 + g1) + (g2 + g3)
        r += 4
    while r < hi:
        if r + ahead < m:
            _prefetch_sample(X, y, sw, rows[r + ahead])
        i = rows[r]
        xi = X[i]
        acc = zero_of(theta)
        for j in range(d):
            acc += xi[j] * theta[j]
        l, dl = point_loss(loss_id, loss_param, float(acc + b0), float(y[i]))
        c = scale * sw[i] if has_sw else scale
        lsum += c * _sample_loss(theta, l)
        gi = cast_like(theta, c * dl)
        for j in range(d):
            g[j] += xi[j] * gi
        if fit_intercept:
            g[d] += gi
        r += 1
    return lsum


@kernel(cache=False)
def _softmax_rows(X, y, sw, rows, lo, hi, K, fit_intercept, theta, g, scale, pk, dlk, ahead):
    """Adds the softmax rows' c_i dl_i/dtheta to g; returns sum c_i l_i.  From
    SOFTMAX_T_MIN_ROWS rows on, W is copied transposed so that a row's K scores and
    K gradient rows are vectorised loops of length d, four rows at a time (as Cython's
    _rows_grad does; the K-wide inner loops over row-major W below ran about one
    multiply-add a cycle)."""
    d = X.shape[1]
    dk = d * K
    has_sw = sw.shape[0] > 0
    lsum = 0.0
    if hi - lo >= SOFTMAX_T_MIN_ROWS:
        wt = np.empty((K, d), theta.dtype)
        gt = np.zeros((K, d), theta.dtype)
        for j in range(d):
            for k in range(K):
                wt[k, j] = theta[j * K + k]
        # Four rows at a time, as Cython's _rows_grad: a class's scores of the four in one
        # dot4_rows, its gradient row += the four in one axpy4_rows (W's and the
        # gradient's rows loaded, and stored, once for the four).  s4[k, q]: row q's
        # score, then c dl, for class k.
        s4 = np.empty((K, 4), theta.dtype)
        r0 = lo
        while r0 + 4 <= hi:
            i0, i1, i2, i3 = rows[r0], rows[r0 + 1], rows[r0 + 2], rows[r0 + 3]
            for q in range(4):
                if r0 + q + ahead < rows.shape[0]:
                    _prefetch_sample(X, y, sw, rows[r0 + q + ahead])
            for k in range(K):
                s4[k, 0], s4[k, 1], s4[k, 2], s4[k, 3] = dot4_rows(X, i0, i1, i2, i3, 0, d,
                                                                   wt[k])
            for q in range(4):
                i = rows[r0 + q]
                for k in range(K):
                    pk[k] = s4[k, q] + theta[dk + k] if fit_intercept else s4[k, q]
                l = softmax_loss_dloss(pk, y[i], dlk)
                c = scale * sw[i] if has_sw else scale
                lsum += c * _sample_loss(theta, l)
                for k in range(K):
                    ck = cast_like(pk, c * dlk[k])
                    s4[k, q] = ck
                    if fit_intercept:
                        g[dk + k] += ck
            for k in range(K):
                axpy4_rows(s4[k, 0], s4[k, 1], s4[k, 2], s4[k, 3], X, i0, i1, i2, i3, 0, d,
                           gt[k])
            r0 += 4
        for r in range(r0, hi):
            i = rows[r]
            if r + ahead < rows.shape[0]:
                _prefetch_sample(X, y, sw, rows[r + ahead])
            xi = X[i]
            for k in range(K):
                wk = wt[k]
                s = zero_of(theta)
                for j in range(d):
                    s += xi[j] * wk[j]
                pk[k] = s + theta[dk + k] if fit_intercept else s
            l = softmax_loss_dloss(pk, y[i], dlk)
            c = scale * sw[i] if has_sw else scale
            lsum += c * _sample_loss(theta, l)
            for k in range(K):
                ck = cast_like(pk, c * dlk[k])
                gk = gt[k]
                for j in range(d):
                    gk[j] += xi[j] * ck
                if fit_intercept:
                    g[dk + k] += ck
        for j in range(d):
            for k in range(K):
                g[j * K + k] += gt[k, j]
        return lsum
    for r in range(lo, hi):
        i = rows[r]
        if r + ahead < rows.shape[0]:
            _prefetch_sample(X, y, sw, rows[r + ahead])
        xi = X[i]
        for k in range(K):
            pk[k] = theta[dk + k] if fit_intercept else 0
        for j in range(d):
            xij = xi[j]
            for k in range(K):
                pk[k] += xij * theta[j * K + k]
        l = softmax_loss_dloss(pk, y[i], dlk)
        c = scale * sw[i] if has_sw else scale
        lsum += c * _sample_loss(theta, l)
        for k in range(K):
            pk[k] = cast_like(pk, c * dlk[k])  # pk now holds c * dloss
        for j in range(d):
            xij = xi[j]
            for k in range(K):
                g[j * K + k] += xij * pk[k]
        if fit_intercept:
            for k in range(K):
                g[dk + k] += pk[k]
    return lsum


@kernel(cache=False)
def _rows_gradient(X, y, sw, rows, lo, hi, loss_id, loss_param, K, fit_intercept, theta, g,
                   scale, pk, dlk, ahead):
    """g = scale * sum over rows[lo:hi] of s_i dl_i/dtheta; returns scale * sum s_i l_i.

    ``pk`` (K,) accumulation-dtype and ``dlk`` (K,) float64 are scratch (softmax).
    The summation order depends only on lo and hi (never on threads).  The row
    ``ahead`` positions on in ``rows`` is prefetched (PREFETCH_AHEAD, or a batch ahead in
    the halves).  Always an int64: a default left out, or the constant itself, is a type
    of its own (omitted, Literal[int]), which compiled this function and the two it calls
    a second time in the whole kernel (5 s for each dtype).
    """
    for t in range(g.shape[0]):
        g[t] = 0
    return _loss_rows(X, y, sw, rows, lo, hi, loss_id, loss_param, K, fit_intercept, theta, g,
                      scale, pk, dlk, ahead)


def _loss_rows(X, y, sw, rows, lo, hi, loss_id, loss_param, K, fit_intercept, theta, g, scale,
               pk, dlk, ahead):
    """_softmax_rows for softmax (_SOFTMAX_PARAM), else _scalar_rows: the one its caller
    compiles is picked by loss_param's type."""


@overload(_loss_rows, inline="always")
def _ol_loss_rows(X, y, sw, rows, lo, hi, loss_id, loss_param, K, fit_intercept, theta, g,
                  scale, pk, dlk, ahead):
    if _is_softmax_param(loss_param):
        def impl(X, y, sw, rows, lo, hi, loss_id, loss_param, K, fit_intercept, theta, g,
                 scale, pk, dlk, ahead):
            return _softmax_rows(X, y, sw, rows, lo, hi, K, fit_intercept, theta, g, scale, pk,
                                 dlk, ahead)
    else:
        def impl(X, y, sw, rows, lo, hi, loss_id, loss_param, K, fit_intercept, theta, g,
                 scale, pk, dlk, ahead):
            return _scalar_rows(X, y, sw, rows, lo, hi, loss_id, loss_param, fit_intercept,
                                theta, g, scale, ahead)
    return impl


@kernel(parallel=True, cache=False)
def _chunks_parallel(X, y, sw, rows, lo, hi, loss_id, loss_param, K, fit_intercept, theta,
                     scale, parts, lparts, pks, dlks):
    nch = (hi - lo + CHUNK_ROWS - 1) // CHUNK_ROWS
    for c in prange(nch):
        a = lo + c * CHUNK_ROWS
        b = min(a + CHUNK_ROWS, hi)
        lparts[c] = _rows_gradient(X, y, sw, rows, a, b, loss_id, loss_param, K, fit_intercept,
                                   theta, parts[c], scale, pks[c], dlks[c],
                                   np.int64(PREFETCH_AHEAD))


@kernel(cache=False)
def _batch_gradient(X, y, sw, rows, lo, hi, loss_id, loss_param, K, fit_intercept, theta, grad,
                    scale, parts, lparts, pks, dlks, par):
    """Deterministic chunked reduction of the gradient over rows[lo:hi].

    ``par``: chunks may run in a ``prange`` (False inside a parallel region)."""
    n = hi - lo
    if n <= CHUNK_ROWS:
        return _rows_gradient(X, y, sw, rows, lo, hi, loss_id, loss_param, K, fit_intercept,
                              theta, grad, scale, pks[0], dlks[0],
                              np.int64(PREFETCH_AHEAD))
    nch = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    if par and n * X.shape[1] * K >= PARALLEL_MIN_WORK:
        _chunks_parallel(X, y, sw, rows, lo, hi, loss_id, loss_param, K, fit_intercept, theta,
                         scale, parts, lparts, pks, dlks)
    else:
        for c in range(nch):
            a = lo + c * CHUNK_ROWS
            b = min(a + CHUNK_ROWS, hi)
            lparts[c] = _rows_gradient(X, y, sw, rows, a, b, loss_id, loss_param, K,
                                       fit_intercept, theta, parts[c], scale, pks[c], dlks[c],
                                       np.int64(PREFETCH_AHEAD))
    # Fixed-order sum of the partials.
    P = grad.shape[0]
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
def _is_permutation(order, n):
    """True when ``order`` holds each of 0..n-1 exactly once."""
    if order.shape[0] != n:
        return False
    seen = np.zeros(n, dtype=np.bool_)
    for r in range(n):
        i = order[r]
        if i < 0 or i >= n or seen[i]:
            return False
        seen[i] = True
    return True


@kernel(cache=False)
def _is_sorted(order):
    ok = True
    for r in range(1, order.shape[0]):  # no early exit: one vectorised pass
        ok &= order[r - 1] <= order[r]
    return ok


@kernel(cache=False)
def _workspace(n_rows, theta, K):
    nch = (n_rows + CHUNK_ROWS - 1) // CHUNK_ROWS
    parts = np.empty((nch if nch > 1 else 0, theta.shape[0]), dtype=theta.dtype)
    lparts = np.empty(max(nch, 1))
    pks = np.empty((max(nch, 1), K), dtype=theta.dtype)
    dlks = np.empty((max(nch, 1), K))
    return parts, lparts, pks, dlks


@kernel(cache=False, reassoc=False)
def _penalized_step(theta, xi, g0, lra, a2, a1):
    """theta -= lr (g0 x + a2 w + a1 sign(w)): plain SGD's step with the penalty.
    Compiled without "reassoc": with it LLVM may regroup the formula (factoring w), and
    did so in one copy of _plain_sgd_b1 and not in another, so a kernel loaded from the
    cache and the same kernel compiled in the process differed in the last bits
    (docs/decisions.md, "Reproducibility")."""
    for j in range(xi.shape[0]):
        w = theta[j]
        sg = (w > 0) - (w < 0)
        theta[j] = w - lra * (xi[j] * g0 + (a2 * w + a1 * sg))


@kernel(cache=False)
def _plain_sgd_b1(X, y, sw, rows, base, k0, k1, loss_id, loss_param, fit_intercept, alpha,
                  l1_ratio, lrs, theta, batch_loss, progress):
    """Plain SGD at batch size 1 (scalar losses), samples k0..k1-1 (sample k is
    row rows[k - base] of X): grad never materialised.  Returns k1, or the first
    k whose loss is not finite.

    Without a penalty, row k-1's update is applied in row k's pass over theta, and
    row k's margin is formed from the updated weights in the same loop: theta is
    read and written once per row (the same arithmetic as a dot and then an
    update; docs/numba.md).  When row k's loss is not finite theta is w_{k-1}.
    ``progress``: a reader's progress array (the position is published there every
    READER_PUBLISH rows), or an empty one."""
    d = X.shape[1]
    m = rows.shape[0]
    has_sw = sw.shape[0] > 0
    r = l1_ratio
    a2 = cast_like(theta, alpha * (1.0 - r))
    a1 = cast_like(theta, alpha * r)
    s_prev = zero_of(theta)
    i_prev = -1                 # the row whose update is pending, or -1
    publish = progress.shape[0] > 0
    for k in range(k0, k1):
        if publish and k % READER_PUBLISH == 0:
            store_release(progress, _POS, k - base)
        i = rows[k - base]
        # the row PREFETCH_AHEAD ahead is requested in two halves, spread over this
        # row's work
        i_ahead = rows[k - base + PREFETCH_AHEAD] if k - base + PREFETCH_AHEAD < m else -1
        if i_ahead >= 0:
            prefetch_part(X, i_ahead, 0, d // 2)
        xi = X[i]
        acc = zero_of(theta)
        pen = 0.0
        if i_prev >= 0:
            xp = X[i_prev]
            for j in range(d):
                w = theta[j] - s_prev * xp[j]
                theta[j] = w
                acc += xi[j] * w
            i_prev = -1
        elif alpha != 0.0:
            ww = zero_of(theta)
            wa = zero_of(theta)
            for j in range(d):
                w = theta[j]
                acc += xi[j] * w
                ww += w * w
                wa += abs(w)
            pen = alpha * (0.5 * (1.0 - r) * ww + r * wa)
        else:
            for j in range(d):
                acc += xi[j] * theta[j]
        if i_ahead >= 0:
            prefetch_part(X, i_ahead, d // 2, d)
        b0 = theta[d] if fit_intercept else zero_of(theta)
        l, dl = point_loss(loss_id, loss_param, float(acc + b0), float(y[i]))
        c = sw[i] if has_sw else 1.0
        loss = _batch_loss_value(theta, c * _sample_loss(theta, l) + pen)
        batch_loss[k] = loss
        if not is_finite(loss):
            return k
        gi = c * dl
        lr = lrs[k]
        if alpha == 0.0:
            s_prev = cast_like(theta, lr * gi)
            i_prev = i
        else:
            _penalized_step(theta, xi, cast_like(theta, gi), cast_like(theta, lr), a2, a1)
        if fit_intercept:
            theta[d] -= cast_like(theta, lr * gi)
    if i_prev >= 0:
        xp = X[i_prev]
        for j in range(d):
            theta[j] -= s_prev * xp[j]
    return k1


@kernel(cache=False)
def _sgd_b1(X, y, sw, rows, base, k0, k1, loss_id, loss_param, fit_intercept, hyper, lrs, step0,
            theta, buf, batch_loss, progress):
    """SGD with momentum or weight decay at batch size 1, no penalty (_rule_b1's
    arguments; ``buf``: the momentum buffer): per row its margin, its loss, and
    sgd_update's step (sgd_momentum_step) on g = sw dl x + wd w in one pass, with no
    gradient vector: the bits of _rule_b1, whose apply_update dispatch and gradient
    vector made it 145 against 100 ns a row (100 features, X in the L3).  (Taking
    row k-1's step in row k's margin loop, as _plain_sgd_b1 does, was faster still, 84
    ns, but then a gathered block's last step is taken in a loop of its own, which
    LLVM contracted into FMAs differently: gathered and direct epochs differed in the
    last bit.)"""
    d = X.shape[1]
    m = rows.shape[0]
    has_sw = sw.shape[0] > 0
    publish = progress.shape[0] > 0
    mom = hyper[0]
    damp1 = 1.0 - hyper[1]
    nesterov = hyper[2] != 0.0
    wd = hyper[3]
    has_mom = mom != 0.0
    has_wd = wd != 0.0
    for k in range(k0, k1):
        if publish and k % READER_PUBLISH == 0:
            store_release(progress, _POS, k - base)
        i = rows[k - base]
        i_ahead = rows[k - base + PREFETCH_AHEAD] if k - base + PREFETCH_AHEAD < m else -1
        if i_ahead >= 0:
            prefetch_part(X, i_ahead, 0, d // 2)
        xi = X[i]
        acc = zero_of(theta)
        for j in range(d):
            acc += xi[j] * theta[j]
        if i_ahead >= 0:
            prefetch_part(X, i_ahead, d // 2, d)
        b0 = theta[d] if fit_intercept else zero_of(theta)
        l, dl = point_loss(loss_id, loss_param, float(acc + b0), float(y[i]))
        c = 1.0 * sw[i] if has_sw else 1.0
        loss = _batch_loss_value(theta, c * _sample_loss(theta, l))
        batch_loss[k] = loss
        if not is_finite(loss):
            return k
        gi = cast_like(theta, c * dl)
        lr = lrs[k]
        first = step0 + k + 1 == 1
        for j in range(d):
            g = xi[j] * gi
            if has_wd:
                g = g + wd * theta[j]
            if has_mom:
                theta[j], buf[j] = sgd_momentum_step(theta[j], g, buf[j], lr, mom, damp1,
                                                     nesterov, first)
            else:
                theta[j] = theta[j] - lr * g
        if fit_intercept:
            g = gi + wd * theta[d] if has_wd else gi
            if has_mom:
                theta[d], buf[d] = sgd_momentum_step(theta[d], g, buf[d], lr, mom, damp1,
                                                     nesterov, first)
            else:
                theta[d] = theta[d] - lr * g
    return k1


@kernel(inline=True)
def _b1_row(X, rows, base, k, m, progress):
    """Sample k of a b = 1 loop: publishes the position for the readers every
    READER_PUBLISH samples (``progress`` empty: none), requests the row PREFETCH_AHEAD
    positions on, and returns the row's index."""
    if progress.shape[0] > 0 and k % READER_PUBLISH == 0:
        store_release(progress, _POS, k - base)
    if k - base + PREFETCH_AHEAD < m:
        prefetch_row(X, rows[k - base + PREFETCH_AHEAD])
    return rows[k - base]


@kernel(cache=False)
def _transposed(src, dst, r, c):
    """dst = src with its first r c elements, an (r, c) row-major block, transposed to
    (c, r), and the rest (the intercepts) copied: W (d, K) to (K, d) with (r, c) =
    (d, K), and back with (K, d)."""
    for i in range(r):
        for j in range(c):
            dst[j * r + i] = src[i * c + j]
    for i in range(r * c, src.shape[0]):
        dst[i] = src[i]


@kernel(cache=False)
def _softmax_b1(X, y, sw, rows, base, k0, k1, fit_intercept, alpha, l1_ratio, rule_id, hyper,
                lrs, step0, theta, grad, state, batch_loss, progress):
    """Batch size 1, softmax, any update rule (_rule_b1's arguments).  W (d, K) and the
    state's rows are copied transposed, (K, d), for the call, so that a row's K scores
    are K vectorised dots of length d and its gradient K scaled copies of the row;
    through _softmax_rows a single row takes the K-wide loops over row-major W (100k x
    100, K = 5: 100 ms an epoch).  Every rule is elementwise, so _end_batch steps the
    transposed parameters as it would W; the penalty's value sums them in another order
    (the loss, not theta, may differ in its last bit).  Back in W's layout at the end,
    also when a loss is not finite (theta then as before that row)."""
    d = X.shape[1]
    m = rows.shape[0]
    P = theta.shape[0]
    K = P // (d + 1) if fit_intercept else P // d
    dk = d * K
    has_sw = sw.shape[0] > 0
    tt = np.empty(P, theta.dtype)
    st = np.empty(state.shape, theta.dtype)
    _transposed(theta, tt, d, K)
    for s in range(state.shape[0]):
        _transposed(state[s], st[s], d, K)
    pk = np.empty(K, theta.dtype)
    dlk = np.empty(K)
    done = k1
    for k in range(k0, k1):
        i = _b1_row(X, rows, base, k, m, progress)
        xi = X[i]
        for q in range(K):
            wq = tt[q * d:(q + 1) * d]
            acc = zero_of(theta)
            for j in range(d):
                acc += xi[j] * wq[j]
            pk[q] = acc + tt[dk + q] if fit_intercept else acc
        l = softmax_loss_dloss(pk, y[i], dlk)
        c = sw[i] if has_sw else 1.0
        for q in range(K):
            gq = cast_like(theta, c * dlk[q])
            for j in range(d):
                grad[q * d + j] = xi[j] * gq
            if fit_intercept:
                grad[dk + q] = gq
        if not _end_batch(k, c * _sample_loss(theta, l), tt, grad, st, dk, alpha, l1_ratio,
                          rule_id, hyper, lrs, step0, batch_loss):
            done = k
            break
    _transposed(tt, theta, K, d)
    for s in range(state.shape[0]):
        _transposed(st[s], state[s], K, d)
    return done


def _rule_b1(X, y, sw, rows, base, k0, k1, loss_id, loss_param, fit_intercept, alpha, l1_ratio,
             rule_id, hyper, lrs, step0, theta, grad, state, batch_loss, progress):
    """Batch size 1 with any update rule, samples k0..k1-1 (sample k is row rows[k - base]
    of X): _softmax_b1 for softmax (_SOFTMAX_PARAM, picked by type as in _loss_rows), else
    _scalar_rule_b1.  Returns k1, or the first k whose loss is not finite (not applied).
    ``progress``: as _plain_sgd_b1's."""


@overload(_rule_b1, inline="always")
def _ol_rule_b1(X, y, sw, rows, base, k0, k1, loss_id, loss_param, fit_intercept, alpha,
                l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss, progress):
    if _is_softmax_param(loss_param):
        def impl(X, y, sw, rows, base, k0, k1, loss_id, loss_param, fit_intercept, alpha,
                 l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss, progress):
            return _softmax_b1(X, y, sw, rows, base, k0, k1, fit_intercept, alpha, l1_ratio,
                               rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
                               progress)
    else:
        def impl(X, y, sw, rows, base, k0, k1, loss_id, loss_param, fit_intercept, alpha,
                 l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss, progress):
            return _scalar_rule_b1(X, y, sw, rows, base, k0, k1, loss_id, loss_param,
                                   fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0,
                                   theta, grad, state, batch_loss, progress)
    return impl


@kernel(cache=False)
def _scalar_rule_b1(X, y, sw, rows, base, k0, k1, loss_id, loss_param, fit_intercept, alpha,
                    l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
                    progress):
    """_rule_b1 for the scalar losses: per row its margin, its loss, grad = sw dl x
    written in place (the bits of _scalar_rows on one row, whose caller zeroes grad
    first) and _end_batch (penalty, update).  Without _run_batches' per-batch machinery
    (workspace slices, the zeroing, the 4-row block logic): at b = 1 over 100 features, X
    in the L3, momentum 240 -> 145 ns a row (93 since in _sgd_b1, where SGD without a
    penalty goes), Adam 450 -> 333, Adagrad 356 -> 236."""
    if rule_id == RULE_SGD and alpha == 0.0:
        return _sgd_b1(X, y, sw, rows, base, k0, k1, loss_id, loss_param, fit_intercept, hyper,
                       lrs, step0, theta, state[0], batch_loss, progress)
    d = X.shape[1]
    m = rows.shape[0]
    has_sw = sw.shape[0] > 0
    for k in range(k0, k1):
        i = _b1_row(X, rows, base, k, m, progress)
        xi = X[i]
        acc = zero_of(theta)
        for j in range(d):
            acc += xi[j] * theta[j]
        b0 = theta[d] if fit_intercept else zero_of(theta)
        l, dl = point_loss(loss_id, loss_param, float(acc + b0), float(y[i]))
        l = _sample_loss(theta, l)
        c = 1.0 * sw[i] if has_sw else 1.0
        gi = cast_like(theta, c * dl)
        for j in range(d):
            grad[j] = xi[j] * gi
        if fit_intercept:
            grad[d] = gi
        if not _end_batch(k, c * l, theta, grad, state, d, alpha, l1_ratio, rule_id, hyper,
                          lrs, step0, batch_loss):
            return k
    return k1


# --------------------------------------------------------------------------
# The public kernels' bodies (their checked Python entries and @overloads are below).

@kernel
def _add_penalty(theta, grad, n_penalized, alpha, l1_ratio):
    if alpha == 0.0:
        return 0.0
    r = l1_ratio
    ww = zero_of(theta)
    wa = zero_of(theta)
    for j in range(n_penalized):
        w = theta[j]
        sg = (w > 0) - (w < 0)
        grad[j] += alpha * ((1.0 - r) * w + r * sg)
        ww += w * w
        wa += abs(w)
    return alpha * (0.5 * (1.0 - r) * ww + r * wa)


@kernel(cache=False, inline=True)
def _sample_loss(theta, l):
    """A sample's loss (formed in float64) as the reference's fit has it, in theta's dtype
    and back: a float32 fit's is inf where it overflows float32, though the batch's mean
    may not (the reference's batch loss is then inf: the fit stops there); float64 passes
    unchanged."""
    return np.float64(cast_like(theta, l))


@kernel(cache=False, inline=True)
def _batch_loss_value(theta, loss):
    """The batch loss in the accumulation dtype: a float32 fit's losses are formed in
    float64 here, and where the reference's float32 loss overflows this must be inf too
    (else a diverging float32 fit runs on; docs/decisions.md)."""
    return float(cast_like(theta, loss))


@kernel(cache=False, inline=True)
def _is_plain_sgd(rule_id, hyper):
    """SGD without momentum or weight decay: the update is theta -= lr * grad."""
    return rule_id == RULE_SGD and hyper[0] == 0.0 and hyper[3] == 0.0


@kernel(cache=False, inline=True)
def _end_batch(k, loss, theta, grad, state, n_penalized, alpha, l1_ratio, rule_id, hyper, lrs,
               step0, batch_loss):
    """The end of batch k: the penalty (called only when alpha != 0), the batch loss, and
    the update unless the loss is not finite (returns False then).  Inlined into the
    batch loops with plain SGD's step: a call between Numba functions passes every
    array as seven values, and two of them (apply_update, sgd_update) had cost more
    than the update itself (2.5 ns a row at W1's b = 32)."""
    if alpha != 0.0:
        loss += _add_penalty(theta, grad, n_penalized, alpha, l1_ratio)
    loss = _batch_loss_value(theta, loss)
    batch_loss[k] = loss
    if not is_finite(loss):
        return False
    if _is_plain_sgd(rule_id, hyper):
        plain_sgd_update(theta, grad, lrs[k])
    else:
        _apply_update(rule_id, hyper, theta, grad, state, lrs[k], step0 + k + 1)
    return True


def _linear_batch_gradient_impl(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept,
                                theta, grad, scale):
    n = rows.shape[0]
    parts, lparts, pks, dlks = _workspace(n, theta, n_outputs)
    return _batch_gradient(X, y, sw, rows, ZERO, n, loss_id, loss_param, n_outputs, fit_intercept,
                           theta, grad, scale, parts, lparts, pks, dlks, TRUE)


@kernel(cache=False)
def _team_scratch(threads):
    """A two-thread epoch's progress array (_POS, _END), its per-thread sink and its done
    slots.  The kernels with a ``prange`` take every array they need from functions like
    this one: under ``parallel=True`` each ``np.zeros`` in their own body becomes a
    parallel loop of its own, one more start of the thread team, about 70 us each with
    OMP_WAIT_POLICY=PASSIVE (an empty W1 b = 32 epoch, no batches, which paid four of
    them, took 237-305 us, and takes 50-58 with the arrays from here)."""
    return np.zeros(16, dtype=np.int64), np.zeros(threads), np.zeros(2, dtype=np.int64)


@kernel(cache=False)
def _halves_workspace(theta, K, n_parts):
    """_halves_batches' arrays: hparts (n_parts, P), hl, sync, hp, hd (docs there).
    hp and hd have K + 16 columns, of which each thread uses the first K of its row: the
    two rows' K elements then never share a cache line (both threads write theirs at
    every softmax row; packed K apart, 100k x 100, K = 5, b = 64: 21.0-22.5 against
    17.3-20.5 ms an epoch, b = 128: 16.8-18.5 against 15.1-16.8)."""
    hparts = np.zeros((n_parts, theta.shape[0]), dtype=theta.dtype)
    hl = np.zeros(1)
    sync = np.full(24, -1, dtype=np.int64)
    hp = np.zeros((2, K + 16), dtype=theta.dtype)
    hd = np.zeros((2, K + 16))
    return hparts, hl, sync, hp, hd


@kernel(cache=False)
def _halves_batches(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param, K,
                    fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                    state, batch_loss, hparts, hl, sync, hp, hd, wait_spins, progress):
    """Batches k0..k1-1 (position p of the epoch is row rows[p - base]), each the sum of
    the gradients of its first ceil(nb / 2) rows and of the rest, in that order.

    The second half goes to whichever thread claims it first (compare-and-swap on
    ``sync[_CLAIM]``): this one, or a helper running _halves_helper on the same
    arrays.  A claimed half is awaited at most ``wait_spins`` pauses, then computed
    here as well; the same function on the same theta, so the same bits whoever
    computes it.  Alone (no helper), every claim succeeds.  ``hparts`` (2, P):
    this thread's and the helper's second-half gradients; ``hl`` (1,): the helper's
    loss; ``hp``, ``hd`` (2, K + 16): softmax scratch of each thread (its first K).  ``progress``: a
    reader's progress array (each batch's first position is published there), or an
    empty one.  Returns k1, or the first batch whose loss is not finite (not
    applied)."""
    n_penalized = X.shape[1] * K
    P = grad.shape[0]
    publish = progress.shape[0] > 0
    for k in range(k0, k1):
        lo = k * batch_size
        hi = min(lo + batch_size, m)
        h = (hi - lo + 1) // 2
        scale = 1.0 / (hi - lo)
        if publish:
            store_release(progress, _POS, lo - base)
        store_release(sync, _PUB, k)  # theta is ready for batch k
        loss = _rows_gradient(X, y, sw, rows, lo - base, lo - base + h, loss_id, loss_param, K,
                              fit_intercept, theta, grad, scale, hp[0, :K], hd[0, :K], batch_size)
        src = 0
        if compare_and_swap(sync, _CLAIM, k - 1, k):
            l1 = _rows_gradient(X, y, sw, rows, lo - base + h, hi - base, loss_id, loss_param,
                                K, fit_intercept, theta, hparts[0], scale, hp[0, :K],
                                hd[0, :K], batch_size)
        else:
            spins = 0
            while load_acquire(sync, _DONE) != k and spins < wait_spins:
                spin_pause()
                spins += 1
            if load_acquire(sync, _DONE) == k:
                l1 = hl[0]
                src = 1
            else:
                l1 = _rows_gradient(X, y, sw, rows, lo - base + h, hi - base, loss_id,
                                    loss_param, K, fit_intercept, theta, hparts[0], scale,
                                    hp[0, :K], hd[0, :K], batch_size)
        part = hparts[src]
        for t in range(P):
            grad[t] += part[t]
        loss += l1
        if not _end_batch(k, loss, theta, grad, state, n_penalized, alpha, l1_ratio,
                          rule_id, hyper, lrs, step0, batch_loss):
            store_release(sync, _PUB, _STOP)
            return k
    return k1


@kernel(cache=False)
def _halves_helper(X, y, sw, rows, n_batches, batch_size, loss_id, loss_param, K,
                   fit_intercept, theta, hparts, hl, sync, hp, hd, idle_spins):
    """The helper of _halves_batches: claims the second half of each batch published,
    computes it into hparts[1] and its loss into hl[0], then marks it done.  Leaves at
    the end of the epoch, or after ``idle_spins`` pauses with no new batch."""
    m = rows.shape[0]
    last = -1
    idle = 0
    while True:
        k = load_acquire(sync, _PUB)
        if k >= _STOP:
            return
        if k > last:
            last = k
            idle = 0
            if k < n_batches and compare_and_swap(sync, _CLAIM, k - 1, k):
                lo = k * batch_size
                hi = min(lo + batch_size, m)
                h = (hi - lo + 1) // 2
                hl[0] = _rows_gradient(X, y, sw, rows, lo + h, hi, loss_id, loss_param, K,
                                       fit_intercept, theta, hparts[1], 1.0 / (hi - lo),
                                       hp[1, :K], hd[1, :K], batch_size)
                store_release(sync, _DONE, k)
        else:
            idle += 1
            if idle > idle_spins:
                return
            spin_pause()


def _pair_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                     fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                     state, batch_loss):
    """The epoch of mid-sized batches on two threads: _halves_batches and its helper.
    Deadlock-free whatever the schedule (each waits a bounded time, then goes on
    alone); the same bits as the one-thread epoch."""
    K = n_outputs
    hparts, hl, sync, hp, hd = _halves_workspace(theta, K, 2)
    done = _team_scratch(2)[2]
    for t in prange(2):
        if t == 0:
            done[0] = _halves_batches(X, y, sw, order, ZERO, ZERO, n_batches, batch_size,
                                      order.shape[0], loss_id, loss_param, K, fit_intercept,
                                      alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                                      state, batch_loss, hparts, hl, sync, hp, hd, _WAIT_SPINS,
                                      sync[:0])
            store_release(sync, _PUB, _STOP)
        else:
            _halves_helper(X, y, sw, order, n_batches, batch_size, loss_id, loss_param, K,
                           fit_intercept, theta, hparts, hl, sync, hp, hd, _IDLE_SPINS)
    return done[0]


@kernel(cache=False)
def _split_batches(X, y, sw, rows, k0, k1, batch_size, m, loss_id, loss_param, fit_intercept,
                   alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
                   q, lw, progress):
    """Batches k0..k1-1 (K = 1) with each batch's margins formed in two passes over its
    rows, features [0, h) and then [h, d) (more rows' misses in flight at once than
    whole rows one after the other), the losses of the whole batch in one loop (their
    polynomial chains overlap), then the gradient, four rows a pass.  The rows of the
    next batch are requested a batch ahead, part by part.  ``q`` (3, batch rows): the
    two partial margins and the coefficients c_i dl_i; ``lw`` (4, batch rows) float64:
    margins, labels, losses, derivatives.  ``progress``: a reader's
    progress array (the batch's first position is published there), or an empty one.
    Returns k1, or the first batch whose loss is not finite (not applied)."""
    d = X.shape[1]
    h = ((d // 2 + 4) // 8) * 8
    has_sw = sw.shape[0] > 0
    publish = progress.shape[0] > 0
    n_penalized = d
    for k in range(k0, k1):
        lo = k * batch_size
        hi = min(lo + batch_size, m)
        nb = hi - lo
        if publish:
            store_release(progress, _POS, lo)
        for part in range(2):
            a = 0 if part == 0 else h
            b = h if part == 0 else d
            th = theta[a:b]  # (loops from a nonzero start were not vectorised: 3x slower)
            w = b - a
            r = 0
            while r < nb:
                for t in range(r, min(r + 4, nb)):
                    if hi + t < m:
                        prefetch_part(X, rows[hi + t], a, b)
                        if part == 0:  # and the row's label and weight
                            prefetch_item(y, rows[hi + t])
                            if has_sw:
                                prefetch_item(sw, rows[hi + t])
                if r + 4 <= nb:  # four rows a pass: theta loaded once for the four
                    s0, s1, s2, s3 = dot4_rows(X, rows[lo + r], rows[lo + r + 1],
                                               rows[lo + r + 2], rows[lo + r + 3], a, b, theta)
                    q[part, r] = s0
                    q[part, r + 1] = s1
                    q[part, r + 2] = s2
                    q[part, r + 3] = s3
                    r += 4
                else:
                    xi = X[rows[lo + r], a:b]
                    acc = zero_of(theta)
                    for j in range(w):
                        acc += xi[j] * th[j]
                    q[part, r] = acc
                    r += 1
        b0 = theta[d] if fit_intercept else zero_of(theta)
        small = True
        for r in range(nb):
            p = float((q[0, r] + q[1, r]) + b0)
            lw[0, r] = p
            lw[1, r] = float(y[rows[lo + r]])
            small &= abs(p) <= 700.0
        if loss_id == LOSS_LOGISTIC and small:
            logistic_poly_rows(lw[0], lw[1], lw[2], lw[3], nb)  # vectorised over the rows
        else:
            for r in range(nb):
                lw[2, r], lw[3, r] = point_loss(loss_id, loss_param, lw[0, r], lw[1, r])
        scale = 1.0 / nb
        lsum = 0.0
        for r in range(nb):
            c = scale * sw[rows[lo + r]] if has_sw else scale
            lsum += c * _sample_loss(theta, lw[2, r])
            q[2, r] = cast_like(theta, c * lw[3, r])
        for t in range(grad.shape[0]):
            grad[t] = 0
        r = 0
        qc = q[2]
        while r + 4 <= nb:
            axpy4_rows(qc[r], qc[r + 1], qc[r + 2], qc[r + 3], X, rows[lo + r],
                       rows[lo + r + 1], rows[lo + r + 2], rows[lo + r + 3], 0, d, grad)
            if fit_intercept:
                grad[d] += (qc[r] + qc[r + 1]) + (qc[r + 2] + qc[r + 3])
            r += 4
        while r < nb:
            xi = X[rows[lo + r]]
            gi = q[2, r]
            for j in range(d):
                grad[j] += xi[j] * gi
            if fit_intercept:
                grad[d] += gi
            r += 1
        if not _end_batch(k, lsum, theta, grad, state, n_penalized, alpha, l1_ratio,
                          rule_id, hyper, lrs, step0, batch_loss):
            return k
    return k1


@kernel(cache=False)
def _read_ahead(X, y, sw, rows, progress, part, parts):
    """Reader ``part`` of ``parts`` of _read_epoch_impl: loads one element per cache line
    of the rows at positions part (mod parts), READER_LEAD to READER_WINDOW positions
    ahead of the trainer's published position (and their labels and weights), until the
    trainer ends, the order does, or a pause of READER_GAP_CYCLES shows contention.
    Returns how many rows it read."""
    m = rows.shape[0]
    d = X.shape[1]
    step = max(1, 64 // X.itemsize)
    ahead = READER_PREFETCH * parts
    has_sw = sw.shape[0] > 0
    n_read = 0
    k = part
    steps = 0
    last_pos = -1
    t_seen = cycle_count()
    while load_acquire(progress, _END) == 0:
        pos = load_acquire(progress, _POS)
        steps += 1
        if steps % 32 == 0:
            now = cycle_count()
            if now - t_seen > READER_GAP_CYCLES:
                break
            if pos != last_pos:
                last_pos = pos
                t_seen = now
        if k < pos + READER_LEAD:   # the first of this reader's positions from there
            k = pos + READER_LEAD + (part - (pos + READER_LEAD)) % parts
        if k >= m:
            break
        if k >= pos + READER_WINDOW:
            spin_pause()
            continue
        if k + ahead < m:   # more misses in flight for this thread's loads
            prefetch_row(X, rows[k + ahead])
        i = rows[k]
        for j in range(0, d, step):
            touch(X, i, j)
        touch(X, i, d - 1)
        touch(y, i, 0)
        if has_sw:
            touch(sw, i, 0)
        k += parts
        n_read += 1
    return n_read


def _read_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                     fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                     state, batch_loss, readers):
    """A shuffled plain-SGD epoch at batch size 1 on one thread (_plain_sgd_b1, rows
    read straight from X) with ``readers`` reader threads loading its rows ahead
    (_read_ahead; _reader_count).  They change nothing the trainer computes: the same
    bits as one thread."""
    progress, sink, done = _team_scratch(1 + readers)
    for t in prange(1 + readers):
        if t == 0:
            done[0] = _plain_sgd_b1(X, y, sw, order, ZERO, ZERO, n_batches, loss_id, loss_param,
                                    fit_intercept, alpha, l1_ratio, lrs, theta, batch_loss,
                                    progress)
            store_release(progress, _END, 1)
        else:
            sink[t] = _read_ahead(X, y, sw, order, progress, t - 1, readers)
    return done[0]


def _rule1_read_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                           n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0,
                           theta, grad, state, batch_loss, readers):
    """_read_epoch_impl for any other rule at batch size 1 (_rule_b1)."""
    progress, sink, done = _team_scratch(1 + readers)
    for t in prange(1 + readers):
        if t == 0:
            done[0] = _rule_b1(X, y, sw, order, ZERO, ZERO, n_batches, loss_id, loss_param,
                               fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
                               grad, state, batch_loss, progress)
            store_release(progress, _END, 1)
        else:
            sink[t] = _read_ahead(X, y, sw, order, progress, t - 1, readers)
    return done[0]


@kernel(cache=False)
def _split_workspace(rows, theta):
    """_split_batches' q (3, rows) and lw (4, rows) (docs there)."""
    return np.zeros((3, rows), dtype=theta.dtype), np.zeros((4, rows))


def _split_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                      fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                      state, batch_loss):
    """An epoch of _split_batches on this thread.  A kernel of its own (as the two-thread
    ones): _linear_epoch_impl does not carry it, so its first compilation (every process,
    for a custom loss) does not pay for it."""
    q, lw = _split_workspace(min(batch_size, order.shape[0]), theta)
    return _split_batches(X, y, sw, order, 0, n_batches, batch_size, order.shape[0], loss_id,
                          loss_param, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0,
                          theta, grad, state, batch_loss, q, lw, np.zeros(0, dtype=np.int64))


def _split_read_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                           n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0,
                           theta, grad, state, batch_loss, readers):
    """A shuffled epoch of _split_batches on one thread, with ``readers`` reader threads
    loading its rows ahead (_read_ahead; _reader_count).  The same bits as one thread."""
    progress, sink, done = _team_scratch(1 + readers)
    q, lw = _split_workspace(min(batch_size, order.shape[0]), theta)
    for t in prange(1 + readers):
        if t == 0:
            done[0] = _split_batches(X, y, sw, order, 0, n_batches, batch_size, order.shape[0],
                                     loss_id, loss_param, fit_intercept, alpha, l1_ratio,
                                     rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
                                     q, lw, progress)
            store_release(progress, _END, 1)
        else:
            sink[t] = _read_ahead(X, y, sw, order, progress, t - 1, readers)
    return done[0]


@kernel(cache=False)
def _uses_split(rows, n, d, K, itemsize, min_bytes):
    """Batches of ``rows`` rows of an (n, d) X run as _split_batches (shapes only;
    ``min_bytes``: SPLIT_MIN_BYTES)."""
    return (PAIR_MIN_ROWS <= rows < SPLIT_MAX_ROWS and 2 * rows < n and K == 1
            and d >= SPLIT_MIN_D and n * d * itemsize >= min_bytes)


@kernel(cache=False)
def _uses_halves(rows, n):
    """Batches of ``rows`` rows out of n are summed as two halves (shapes only)."""
    return PAIR_MIN_ROWS <= rows <= CHUNK_ROWS and 2 * rows < n


@kernel(cache=False)
def _run_batches(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param, K,
                 fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state,
                 batch_loss, plain_b1, par, parts, lparts, pks, dlks, halves, hparts, hl, sync,
                 hp, hd):
    """Batches k0..k1-1 of the epoch; position p of the epoch is row rows[p - base] of X.

    Returns k1, or the first batch whose loss is not finite (not applied)."""
    if loss_param is not None:  # (never plain_b1 for softmax: not compiled into its kernel)
        if plain_b1:
            return _plain_sgd_b1(X, y, sw, rows, base, k0, k1, loss_id, loss_param,
                                 fit_intercept, alpha, l1_ratio, lrs, theta, batch_loss,
                                 sync[:0])
    if batch_size == 1:
        return _rule_b1(X, y, sw, rows, base, k0, k1, loss_id, loss_param, fit_intercept, alpha,
                        l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
                        sync[:0])
    if halves:
        return _halves_batches(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param,
                               K, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0,
                               theta, grad, state, batch_loss, hparts, hl, sync, hp, hd, ZERO,
                               sync[:0])
    return _gradient_batches(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param, K,
                             fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
                             grad, state, batch_loss, par, parts, lparts, pks, dlks)


# _run_batches' paths one by one, with its signature: the runners of the kernels that an
# epoch of one kind runs (_blocks_*_epoch_impl), so that they compile one path each.
@kernel(cache=False)
def _run_plain_b1(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param, K,
                  fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state,
                  batch_loss, plain_b1, par, parts, lparts, pks, dlks, halves, hparts, hl, sync,
                  hp, hd):
    return _plain_sgd_b1(X, y, sw, rows, base, k0, k1, loss_id, loss_param, fit_intercept,
                         alpha, l1_ratio, lrs, theta, batch_loss, sync[:0])


@kernel(cache=False)
def _run_scalar_rule_b1(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param, K,
                        fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                        state, batch_loss, plain_b1, par, parts, lparts, pks, dlks, halves,
                        hparts, hl, sync, hp, hd):
    return _scalar_rule_b1(X, y, sw, rows, base, k0, k1, loss_id, loss_param, fit_intercept,
                           alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state,
                           batch_loss, sync[:0])


@kernel(cache=False)
def _run_softmax_b1(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param, K,
                    fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                    state, batch_loss, plain_b1, par, parts, lparts, pks, dlks, halves, hparts,
                    hl, sync, hp, hd):
    return _softmax_b1(X, y, sw, rows, base, k0, k1, fit_intercept, alpha, l1_ratio, rule_id,
                       hyper, lrs, step0, theta, grad, state, batch_loss, sync[:0])


@kernel(cache=False)
def _run_halves(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param, K,
                fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state,
                batch_loss, plain_b1, par, parts, lparts, pks, dlks, halves, hparts, hl, sync,
                hp, hd):
    return _halves_batches(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param, K,
                           fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
                           grad, state, batch_loss, hparts, hl, sync, hp, hd, ZERO, sync[:0])


@kernel(cache=False)
def _run_serial(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param, K,
                fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state,
                batch_loss, plain_b1, par, parts, lparts, pks, dlks, halves, hparts, hl, sync,
                hp, hd):
    """Batches of at most CHUNK_ROWS rows, neither b = 1 nor halves: _gradient_batches
    without its chunks (its _batch_gradient is this _rows_gradient call for them)."""
    n_penalized = X.shape[1] * K
    for k in range(k0, k1):
        lo = k * batch_size
        hi = min(lo + batch_size, m)
        loss = _rows_gradient(X, y, sw, rows, lo - base, hi - base, loss_id, loss_param, K,
                              fit_intercept, theta, grad, 1.0 / (hi - lo), pks[0], dlks[0],
                              np.int64(PREFETCH_AHEAD))
        if not _end_batch(k, loss, theta, grad, state, n_penalized, alpha, l1_ratio, rule_id,
                          hyper, lrs, step0, batch_loss):
            return k
    return k1


@kernel(cache=False)
def _run_gradient_batches(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param, K,
                          fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
                          grad, state, batch_loss, plain_b1, par, parts, lparts, pks, dlks,
                          halves, hparts, hl, sync, hp, hd):
    return _gradient_batches(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param,
                             K, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0,
                             theta, grad, state, batch_loss, par, parts, lparts, pks, dlks)


@kernel(cache=False)
def _gradient_batches(X, y, sw, rows, base, k0, k1, batch_size, m, loss_id, loss_param, K,
                      fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                      state, batch_loss, par, parts, lparts, pks, dlks):
    """_run_batches' batches k0..k1-1 that are neither b = 1 nor halves: each batch's
    gradient by _batch_gradient (in chunks, on the threads where ``par``), then _end_batch."""
    n_penalized = X.shape[1] * K
    for k in range(k0, k1):
        lo = k * batch_size
        hi = min(lo + batch_size, m)
        loss = _batch_gradient(X, y, sw, rows, lo - base, hi - base, loss_id, loss_param, K,
                               fit_intercept, theta, grad, 1.0 / (hi - lo), parts, lparts, pks,
                               dlks, par)
        if not _end_batch(k, loss, theta, grad, state, n_penalized, alpha, l1_ratio,
                          rule_id, hyper, lrs, step0, batch_loss):
            return k
    return k1


@kernel(cache=False)
def _gather(X, y, sw, order, lo, hi, Xb, yb, swb):
    """Copy the rows order[lo:hi] (and their y, sw) to the front of Xb, yb, swb."""
    d = X.shape[1]
    has_sw = sw.shape[0] > 0
    for p in range(lo, hi):
        if p + PREFETCH_AHEAD < hi:
            prefetch_row(X, order[p + PREFETCH_AHEAD])
        i = order[p]
        t = p - lo
        xi = X[i]
        xb = Xb[t]
        for j in range(d):
            xb[j] = xi[j]
        yb[t] = y[i]
        if has_sw:
            swb[t] = sw[i]


def _blocks_epoch_kernel(runner):
    """The epoch of _linear_epoch_impl, its batches run by ``runner`` (_run_batches, or one
    of its paths, with its signature), as a kernel inlined into its caller: a kernel that
    calls it compiles only its runner's path.  (``runner`` is a constant of the closure:
    passed as an argument, a function is a first-class value, which Numba flags as
    experimental.  Inlined, one level fewer of the kernel tree is optimised again: a first
    b = 4 fit with a custom loss 14.8-17.2 s against 18.3-18.7.)"""

    @kernel(cache=False, inline=True)
    def blocks_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                     fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                     state, batch_loss, gather_min_bytes, gather_block_bytes):
        """Straight from X through ``order``, or in blocks of ``block`` batches: each
        block's rows first copied, in epoch order, into a small contiguous buffer (a gather
        loop with no dependency between rows, so many cache misses are in flight at once),
        then trained on from there (sequential reads, in cache).  The arithmetic is the
        same either way, bit for bit.  gather_*: GATHER_MIN_BYTES and GATHER_BLOCK_BYTES,
        passed in so that tests can drive the gathered path on small data through the
        same compiled kernels.  (One call site of ``runner``: every call site would be
        compiled and optimised again.)"""
        m = order.shape[0]
        K = n_outputs
        d = X.shape[1]
        rows_b = min(batch_size, m)
        plain_b1 = (batch_size == 1 and loss_id != LOSS_SOFTMAX and rule_id == RULE_SGD
                    and hyper[0] == 0.0 and hyper[3] == 0.0)
        parts, lparts, pks, dlks = _workspace(rows_b, theta, K)
        # mid-sized batches: two halves (the rule is on the shapes only, so the bits are
        # those of _pair_epoch_impl, which linear_epoch runs instead on two threads)
        halves = _uses_halves(rows_b, X.shape[0])
        hparts, hl, sync, hp, hd = _halves_workspace(theta, K, 2 if halves else 0)
        rows = order
        block = 0
        if batch_size >= m and n_batches == 1 and _is_sorted(order):
            pass  # one batch already in storage order (the driver hands BGD its rows so)
        elif batch_size >= m and n_batches == 1 and _is_permutation(order, X.shape[0]):
            # One batch of all n rows (BGD): the gradient is a sum over the set of rows,
            # so stream them in storage order (sequential reads) instead of shuffled.
            rows = np.arange(m)
        elif (X.shape[0] * d * X.itemsize >= gather_min_bytes
              and batch_size * d * K < PARALLEL_MIN_WORK
              and n_batches * batch_size >= 4 * gather_block_bytes // (d * X.itemsize)
              and not _is_sorted(order)):
            # Small batches read through a shuffled order of a large X: gather each block
            # of rows into a contiguous buffer first.  Rows in storage order
            # (shuffle=False) stream faster where they are.
            block = max(1, gather_block_bytes // (d * X.itemsize) // batch_size)
        gather = block > 0
        step = block if gather else max(n_batches, 1)
        rows_per_block = step * batch_size if gather else 0
        Xb = np.empty((rows_per_block, d), dtype=X.dtype)
        yb = np.empty(rows_per_block, dtype=y.dtype)
        swb = np.empty(rows_per_block if sw.shape[0] > 0 else 0, dtype=sw.dtype)
        local_rows = np.arange(rows_per_block)
        last = min(n_batches * batch_size, m)
        # (no control flow inside the long argument list below: Python 3.11 passes it as a
        # tuple, which Numba cannot build around a branch)
        par_direct = not gather
        for k0 in range(0, n_batches, step):
            k1 = min(k0 + step, n_batches)
            if gather:
                base = k0 * batch_size
                _gather(X, y, sw, rows, base, min(base + rows_per_block, last), Xb, yb, swb)
                Xs, ys, sws, rs = Xb, yb, swb, local_rows
            else:
                base = 0
                Xs, ys, sws, rs = X, y, sw, rows
            k = runner(Xs, ys, sws, rs, base, k0, k1, batch_size, m, loss_id, loss_param, K,
                       fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                       state, batch_loss, plain_b1, par_direct, parts, lparts, pks, dlks, halves,
                       hparts, hl, sync, hp, hd)
            if k < k1:
                return k
        return n_batches

    return blocks_epoch


_blocks_epoch_any = _blocks_epoch_kernel(_run_batches)
_blocks_epoch_sgd1 = _blocks_epoch_kernel(_run_plain_b1)
_blocks_epoch_rule1 = _blocks_epoch_kernel(_run_scalar_rule_b1)
_blocks_epoch_softmax1 = _blocks_epoch_kernel(_run_softmax_b1)
_blocks_epoch_halves = _blocks_epoch_kernel(_run_halves)
_blocks_epoch_serial = _blocks_epoch_kernel(_run_serial)
_blocks_epoch_large = _blocks_epoch_kernel(_run_gradient_batches)


def _linear_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                       fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                       state, batch_loss, gather_min_bytes, gather_block_bytes):
    """Every path of an epoch but the split (batches that _uses_split are run by
    _split_epoch_impl instead: linear_epoch picks); the kernel behind the njit overload
    of linear_epoch.  gather_*: as _blocks_epoch_kernel's."""
    return _blocks_epoch_any(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                             n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                             step0, theta, grad, state, batch_loss, gather_min_bytes,
                             gather_block_bytes)


# _linear_epoch_impl with one path of _run_batches each, for an X large enough to gather
# (linear_epoch picks by the shapes; the same bits): a first fit compiles its path only
# (a custom loss at b = 1 in storage order over a 16 MB X: 46-50 -> 6 s).  Module-level
# functions of one line each, like every other top-level kernel, rather than closures
# made by _blocks_epoch_kernel: Numba caches them as it caches the others.
def _blocks_sgd1_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                            n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                            step0, theta, grad, state, batch_loss, gather_min_bytes,
                            gather_block_bytes):
    return _blocks_epoch_sgd1(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                              n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                              step0, theta, grad, state, batch_loss, gather_min_bytes,
                              gather_block_bytes)


def _blocks_rule1_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                             n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                             step0, theta, grad, state, batch_loss, gather_min_bytes,
                             gather_block_bytes):
    return _blocks_epoch_rule1(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                               n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                               step0, theta, grad, state, batch_loss, gather_min_bytes,
                               gather_block_bytes)


def _blocks_softmax1_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                                n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                                step0, theta, grad, state, batch_loss, gather_min_bytes,
                                gather_block_bytes):
    return _blocks_epoch_softmax1(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                                  n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper,
                                  lrs, step0, theta, grad, state, batch_loss, gather_min_bytes,
                                  gather_block_bytes)


def _blocks_halves_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                              n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                              step0, theta, grad, state, batch_loss, gather_min_bytes,
                              gather_block_bytes):
    return _blocks_epoch_halves(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                                n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                                step0, theta, grad, state, batch_loss, gather_min_bytes,
                                gather_block_bytes)


def _blocks_serial_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                              n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                              step0, theta, grad, state, batch_loss, gather_min_bytes,
                              gather_block_bytes):
    return _blocks_epoch_serial(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                                n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                                step0, theta, grad, state, batch_loss, gather_min_bytes,
                                gather_block_bytes)


def _blocks_large_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                             n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                             step0, theta, grad, state, batch_loss, gather_min_bytes,
                             gather_block_bytes):
    return _blocks_epoch_large(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                               n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                               step0, theta, grad, state, batch_loss, gather_min_bytes,
                               gather_block_bytes)


def _sgd1_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                     fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                     state, batch_loss):
    """Plain SGD at batch size 1 on this thread, straight from X: what _linear_epoch_impl
    runs for it when X is too small to gather (the same call, the same bits).  A kernel
    of its own, as the two below, so that such a fit compiles only its own path: a fit
    with a custom loss compiles in every process (1.8 s here against 21.8 s for the
    whole of _linear_epoch_impl), and a first fit with a built-in loss before its cache
    is written."""
    return _plain_sgd_b1(X, y, sw, order, ZERO, ZERO, n_batches, loss_id, loss_param, fit_intercept,
                         alpha, l1_ratio, lrs, theta, batch_loss, np.zeros(0, dtype=np.int64))


def _rule1_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                      fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                      state, batch_loss):
    """_sgd1_epoch_impl for any other rule at batch size 1 (scalar losses, _scalar_rule_b1):
    what _linear_epoch_impl runs for it when X is too small to gather (the same bits)."""
    return _scalar_rule_b1(X, y, sw, order, ZERO, ZERO, n_batches, loss_id, loss_param,
                           fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
                           grad, state, batch_loss, np.zeros(0, dtype=np.int64))


def _softmax1_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                         fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                         state, batch_loss):
    """Softmax at batch size 1 (_softmax_b1) when X is too small to gather: apart from
    _rule1_epoch_impl, which compiled it for every scalar loss too (4 of its 8.6 s)."""
    return _softmax_b1(X, y, sw, order, ZERO, ZERO, n_batches, fit_intercept, alpha, l1_ratio,
                       rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
                       np.zeros(0, dtype=np.int64))


def _halves_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                       fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                       state, batch_loss):
    """Mid-sized batches as two halves on this thread (no helper), straight from X: what
    _linear_epoch_impl runs for them when X is too small to gather (the same call, the
    same bits), in a kernel of its own (7 s to compile with a custom loss, against 19 s)."""
    hparts, hl, sync, hp, hd = _halves_workspace(theta, n_outputs, 2)
    return _halves_batches(X, y, sw, order, ZERO, ZERO, n_batches, batch_size, order.shape[0],
                           loss_id, loss_param, n_outputs, fit_intercept, alpha, l1_ratio,
                           rule_id, hyper, lrs, step0, theta, grad, state, batch_loss, hparts,
                           hl, sync, hp, hd, ZERO, sync[:0])


def _halves_read_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                            n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                            step0, theta, grad, state, batch_loss, readers):
    """Mid-sized batches as two halves on one thread, shuffled over a large X, with
    ``readers`` reader threads loading its rows ahead (_read_ahead), as Cython's halves
    do: the batches of too few multiply-adds for the pair of threads (_pairs), over too
    few features for the split (_uses_split), which went gathered instead (hinge, b = 32,
    20 features: 200,000 rows 8.7 -> 5.0-5.8 ms, 1,000,000 rows 62 -> 39; Cython 4.2-6.0
    and 23).  The same bits as one thread."""
    hparts, hl, sync, hp, hd = _halves_workspace(theta, n_outputs, 2)
    progress, sink, done = _team_scratch(1 + readers)
    for t in prange(1 + readers):
        if t == 0:
            done[0] = _halves_batches(X, y, sw, order, ZERO, ZERO, n_batches, batch_size,
                                      order.shape[0], loss_id, loss_param, n_outputs,
                                      fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0,
                                      theta, grad, state, batch_loss, hparts, hl, sync, hp, hd,
                                      ZERO, progress)
            store_release(progress, _END, 1)
        else:
            sink[t] = _read_ahead(X, y, sw, order, progress, t - 1, readers)
    return done[0]


def _serial_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                       fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                       state, batch_loss):
    """Batches of at most CHUNK_ROWS rows that are neither plain SGD at batch size 1 nor
    halves nor the whole order (b = 2..7, or b = 1 with another rule), on this thread,
    straight from X: what _linear_epoch_impl runs for them when X is too small to gather
    (its _batch_gradient is this _rows_gradient call for such batches: the same bits),
    in a kernel of its own."""
    n_penalized = X.shape[1] * n_outputs
    m = order.shape[0]
    pk = np.empty(n_outputs, dtype=theta.dtype)
    dlk = np.empty(n_outputs)
    for k in range(n_batches):
        lo = k * batch_size
        hi = min(lo + batch_size, m)
        loss = _rows_gradient(X, y, sw, order, lo, hi, loss_id, loss_param, n_outputs,
                              fit_intercept, theta, grad, 1.0 / (hi - lo), pk, dlk,
                              np.int64(PREFETCH_AHEAD))
        if not _end_batch(k, loss, theta, grad, state, n_penalized, alpha, l1_ratio, rule_id,
                          hyper, lrs, step0, batch_loss):
            return k
    return n_batches


def _large_epoch_impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                      fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                      state, batch_loss):
    """Batches of more than CHUNK_ROWS rows, or one batch of the whole order (BGD), of any X:
    what _linear_epoch_impl runs for them (no halves, never gathered: its
    _gradient_batches call, so the same bits), in a kernel of its own: a first BGD fit had
    compiled the whole of _linear_epoch_impl (39 s cold here; a custom loss pays that in
    every process)."""
    m = order.shape[0]
    parts, lparts, pks, dlks = _workspace(min(batch_size, m), theta, n_outputs)
    rows = order
    if (batch_size >= m and n_batches == 1 and not _is_sorted(order)
            and _is_permutation(order, X.shape[0])):
        rows = np.arange(m)  # BGD: the same set of rows, streamed in storage order
    return _gradient_batches(X, y, sw, rows, ZERO, ZERO, n_batches, batch_size, m, loss_id,
                             loss_param, n_outputs, fit_intercept, alpha, l1_ratio, rule_id,
                             hyper, lrs, step0, theta, grad, state, batch_loss, TRUE, parts,
                             lparts, pks, dlks)


# Built-in losses: cached.  A user's loss function: compiled per function, not cached.
_linear_batch_gradient_builtin = kernel(_linear_batch_gradient_impl)
_linear_batch_gradient_custom = kernel(cache=False)(_linear_batch_gradient_impl)
_linear_epoch_builtin = kernel(_linear_epoch_impl)
_linear_epoch_custom = kernel(cache=False)(_linear_epoch_impl)
# The two-thread epoch is a kernel of its own, compiled only when an epoch uses it.
_pair_epoch_builtin = kernel(parallel=True)(_pair_epoch_impl)
_pair_epoch_custom = kernel(parallel=True, cache=False)(_pair_epoch_impl)
_split_epoch_builtin = kernel(_split_epoch_impl)
_split_epoch_custom = kernel(cache=False)(_split_epoch_impl)
# ... and so are the epochs with a reader thread
_read_epoch_builtin = kernel(parallel=True)(_read_epoch_impl)
_read_epoch_custom = kernel(parallel=True, cache=False)(_read_epoch_impl)
_rule1_read_epoch_builtin = kernel(parallel=True)(_rule1_read_epoch_impl)
_rule1_read_epoch_custom = kernel(parallel=True, cache=False)(_rule1_read_epoch_impl)
_split_read_epoch_builtin = kernel(parallel=True)(_split_read_epoch_impl)
_split_read_epoch_custom = kernel(parallel=True, cache=False)(_split_read_epoch_impl)
# ... and the paths of _linear_epoch_impl that an X too small to gather takes.
_sgd1_epoch_builtin = kernel(_sgd1_epoch_impl)
_sgd1_epoch_custom = kernel(cache=False)(_sgd1_epoch_impl)
_rule1_epoch_builtin = kernel(_rule1_epoch_impl)
_rule1_epoch_custom = kernel(cache=False)(_rule1_epoch_impl)
_softmax1_epoch_builtin = kernel(_softmax1_epoch_impl)
_softmax1_epoch_custom = kernel(cache=False)(_softmax1_epoch_impl)
_halves_epoch_builtin = kernel(_halves_epoch_impl)
_halves_epoch_custom = kernel(cache=False)(_halves_epoch_impl)
_halves_read_epoch_builtin = kernel(parallel=True)(_halves_read_epoch_impl)
_halves_read_epoch_custom = kernel(parallel=True, cache=False)(_halves_read_epoch_impl)
_serial_epoch_builtin = kernel(_serial_epoch_impl)
_serial_epoch_custom = kernel(cache=False)(_serial_epoch_impl)
_large_epoch_builtin = kernel(_large_epoch_impl)
_large_epoch_custom = kernel(cache=False)(_large_epoch_impl)
# ... and the paths of _linear_epoch_impl that an X large enough to gather takes.
_blocks_sgd1_epoch_builtin = kernel(_blocks_sgd1_epoch_impl)
_blocks_sgd1_epoch_custom = kernel(cache=False)(_blocks_sgd1_epoch_impl)
_blocks_rule1_epoch_builtin = kernel(_blocks_rule1_epoch_impl)
_blocks_rule1_epoch_custom = kernel(cache=False)(_blocks_rule1_epoch_impl)
_blocks_softmax1_epoch_builtin = kernel(_blocks_softmax1_epoch_impl)
_blocks_softmax1_epoch_custom = kernel(cache=False)(_blocks_softmax1_epoch_impl)
_blocks_halves_epoch_builtin = kernel(_blocks_halves_epoch_impl)
_blocks_halves_epoch_custom = kernel(cache=False)(_blocks_halves_epoch_impl)
_blocks_serial_epoch_builtin = kernel(_blocks_serial_epoch_impl)
_blocks_serial_epoch_custom = kernel(cache=False)(_blocks_serial_epoch_impl)
_blocks_large_epoch_builtin = kernel(_blocks_large_epoch_impl)
_blocks_large_epoch_custom = kernel(cache=False)(_blocks_large_epoch_impl)


def _pairs(n, d, n_outputs, batch_size, n_batches, m, itemsize):
    """Whether linear_epoch runs the epoch on two threads (_pair_epoch_impl)."""
    rows = min(batch_size, m)
    return (n_batches >= 2 and _uses_halves(rows, n)
            and not _uses_split(rows, n, d, n_outputs, itemsize, SPLIT_MIN_BYTES)
            and numba.get_num_threads() >= 2
            and ((rows + 1) // 2) * d * n_outputs >= PAIR_MIN_WORK
            and n_batches * rows * d * n_outputs >= PAIR_EPOCH_FACTOR * PAIR_MIN_WORK)


def _ascending(order):
    """True when ``order`` is strictly increasing (the rows in storage order).  A shuffled
    order shows a descent within its first positions, so those are looked at first: the
    whole comparison took 110-150 us after an epoch had pushed the order out of the
    caches (about 3 % of a W1 b = 32 epoch)."""
    head = order[:8].tolist()
    if any(a >= b for a, b in zip(head, head[1:])):
        return False
    return bool(np.all(order[1:] > order[:-1]))


def _reader_helps(X, order):
    """A shuffled epoch over a large X with a second thread free for a reader."""
    return (X.nbytes >= READER_MIN_BYTES and order.shape[0] >= 2 * READER_WINDOW
            and numba.get_num_threads() >= 2 and not _ascending(order))


def _reader_count():
    """Reader threads beside the trainer (``readers``, the read epochs' last argument):
    MAX_READERS at most, one for each thread that numba's thread count leaves, at least
    one.  Decided here, not in the kernels: ``numba.get_num_threads()`` inside a kernel
    would keep it out of the cache."""
    return max(1, min(MAX_READERS, numba.get_num_threads() - 1))


def _plain_b1(batch_size, loss_id, n_outputs, rule_id, hyper):
    """Plain SGD at batch size 1 (no momentum, no weight decay; one output)."""
    return (batch_size == 1 and n_outputs == 1 and loss_id != LOSS_SOFTMAX
            and rule_id == RULE_SGD and hyper[0] == 0.0 and hyper[3] == 0.0)


def _b1(batch_size, loss_id, n_outputs):
    """Batch size 1: _plain_sgd_b1 or _rule_b1 (softmax: _softmax_b1)."""
    return batch_size == 1


def _reads(X, order, batch_size, loss_id, n_outputs):
    """Whether linear_epoch runs a b = 1 epoch with reader threads (_read_epoch_impl,
    _rule1_read_epoch_impl)."""
    return _b1(batch_size, loss_id, n_outputs) and _reader_helps(X, order)


def _splits(X, order, batch_size, n_outputs):
    """Whether linear_epoch runs the epoch as _split_batches."""
    return _uses_split(min(batch_size, order.shape[0]), X.shape[0], X.shape[1], n_outputs,
                       X.itemsize, SPLIT_MIN_BYTES)


def _split_reads(X, order, batch_size, n_outputs):
    """Whether linear_epoch runs the epoch with _split_batches and a reader thread."""
    return _splits(X, order, batch_size, n_outputs) and _reader_helps(X, order)


def _builtin_param(loss_id, loss_param, dtype):
    """What the kernels get as loss_param for a built-in loss code (Python entries):
    epsilon as a float64, rounded to float32 first when theta (the computing dtype) is
    float32.  The losses are formed in float64, and against the double epsilon a float32
    residual 0.1f (a label 0.1, a zero prediction) exceeds 0.1, where NumPy's, Cython's
    and the GPU's float32 comparisons with epsilon in float32 (the weak-scalar rule of
    NumPy and PyTorch) find a tie, as a float64 fit does: a different derivative."""
    if loss_id == LOSS_SOFTMAX:
        return _SOFTMAX_PARAM
    eps = float(0.0 if loss_param is None else loss_param)
    return float(np.float32(eps)) if dtype == np.float32 else eps


def _is_builtin_param(t):
    return isinstance(t, (types.Number, types.Boolean, types.NoneType))


# (njit callers: a function is the loss itself, which no built-in code's kernel has room for)
_FUNCTION_NEEDS_CUSTOM = ("Invalid loss_param: a function is a custom loss, so loss_id must "
                          "be LOSS_CUSTOM (-1)")


def add_penalty(theta, grad, n_penalized, alpha, l1_ratio):
    """Add alpha*((1-r) w + r sign(w)) to grad[:n_penalized]; return the penalty's value."""
    checks.penalty(theta, grad, n_penalized, alpha, l1_ratio)
    return _add_penalty(theta, grad, int(n_penalized), float(alpha), float(l1_ratio))


@overload(add_penalty)
def _ol_add_penalty(theta, grad, n_penalized, alpha, l1_ratio):
    def impl(theta, grad, n_penalized, alpha, l1_ratio):
        return _add_penalty(theta, grad, n_penalized, alpha, l1_ratio)
    return impl


def _loss_signature():
    return ("loss_param(p: float64, y: float64) -> (loss, dloss), a pair of numbers",
            (numba.float64, numba.float64))


def _compiling_loss(fn):
    """``user_function`` for a custom loss, with the types the kernels call it with."""
    return user_function("loss_param", fn, _loss_signature, returns_pair)


def _custom_loss(loss_param):
    # a custom loss (loss_id LOSS_CUSTOM, checked callable) must be compiled to be inlined
    if callable(loss_param):
        checks.njit_function("loss_param", loss_param, checks.LOSS_SIGNATURE)


def linear_batch_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept, theta,
                          grad, scale):
    """grad = scale * sum_{i in rows} s_i dl_i/dtheta; returns scale * sum s_i l_i."""
    rows = checks.linear_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept,
                                  theta, grad, scale)
    _custom_loss(loss_param)
    y, sw = checks.data_arrays(X, y, sw)
    if callable(loss_param):
        with on_calling_thread(True), _compiling_loss(loss_param):
            return guarded(_linear_batch_gradient_custom, X, y, sw, rows, int(loss_id),
                           loss_param, int(n_outputs), bool(fit_intercept), theta, grad,
                           float(scale))
    return guarded(_linear_batch_gradient_builtin, X, y, sw, rows, int(loss_id),
                   _builtin_param(loss_id, loss_param, theta.dtype), int(n_outputs),
                   bool(fit_intercept),
                   theta, grad, float(scale))


@overload(linear_batch_gradient)
def _ol_linear_batch_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept,
                              theta, grad, scale):
    _check_scalar_types("linear_batch_gradient",
                        counts=(("loss_id", loss_id), ("n_outputs", n_outputs)),
                        reals=(("scale", scale),), flags=(("fit_intercept", fit_intercept),))
    if _is_builtin_param(loss_param):
        def impl(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept, theta, grad,
                 scale):
            lid, K, fi, sc = _gradient_scalars(loss_id, n_outputs, fit_intercept, scale)
            if loss_id == LOSS_SOFTMAX:
                return _linear_batch_gradient_builtin(X, y, sw, rows, lid, _SOFTMAX_PARAM, K, fi,
                                                      theta, grad, sc)
            return _linear_batch_gradient_builtin(X, y, sw, rows, lid,
                                                  _scalar_param(loss_param, theta), K, fi, theta,
                                                  grad, sc)
    else:
        def impl(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept, theta, grad,
                 scale):
            if loss_id != LOSS_CUSTOM:
                raise ValueError(_FUNCTION_NEEDS_CUSTOM)
            lid, K, fi, sc = _gradient_scalars(loss_id, n_outputs, fit_intercept, scale)
            return _linear_batch_gradient_custom(X, y, sw, rows, lid, loss_param, K, fi, theta,
                                                 grad, sc)
    return impl


def epoch_threads(n, d, n_outputs, fit_intercept, batch_size, n_batches, itemsize=8):
    """How many threads ``linear_epoch`` would run an epoch's batches on (1: serial; reader
    threads are not counted, as in Cython's: the driver's background shuffle on a third
    thread costs the epoch less than it saves, W1 b = 32 driver epoch q1 6.26-7.02 against
    6.48-7.60 ms drawn in front).  ``itemsize``: X's (4 or 8)."""
    rows = min(batch_size, n)
    if _pairs(n, d, n_outputs, batch_size, n_batches, n, itemsize):
        return 2
    if rows > CHUNK_ROWS and rows * d * n_outputs >= PARALLEL_MIN_WORK:
        return numba.get_num_threads()
    return 1


#: The epoch kernels linear_epoch chooses from, by path: (built-in loss, custom loss).
_EPOCHS = {
    "pair": (_pair_epoch_builtin, _pair_epoch_custom),
    "split_read": (_split_read_epoch_builtin, _split_read_epoch_custom),
    "split": (_split_epoch_builtin, _split_epoch_custom),
    "read": (_read_epoch_builtin, _read_epoch_custom),
    "rule1_read": (_rule1_read_epoch_builtin, _rule1_read_epoch_custom),
    "sgd1": (_sgd1_epoch_builtin, _sgd1_epoch_custom),
    "rule1": (_rule1_epoch_builtin, _rule1_epoch_custom),
    "softmax1": (_softmax1_epoch_builtin, _softmax1_epoch_custom),
    "halves_read": (_halves_read_epoch_builtin, _halves_read_epoch_custom),
    "halves": (_halves_epoch_builtin, _halves_epoch_custom),
    "serial": (_serial_epoch_builtin, _serial_epoch_custom),
    "large": (_large_epoch_builtin, _large_epoch_custom),
    "blocks_sgd1": (_blocks_sgd1_epoch_builtin, _blocks_sgd1_epoch_custom),
    "blocks_rule1": (_blocks_rule1_epoch_builtin, _blocks_rule1_epoch_custom),
    "blocks_softmax1": (_blocks_softmax1_epoch_builtin, _blocks_softmax1_epoch_custom),
    "blocks_halves": (_blocks_halves_epoch_builtin, _blocks_halves_epoch_custom),
    "blocks_serial": (_blocks_serial_epoch_builtin, _blocks_serial_epoch_custom),
    "blocks_large": (_blocks_large_epoch_builtin, _blocks_large_epoch_custom),
}


def _epoch_path(X, order, batch_size, n_batches, loss_id, n_outputs, rule_id, hyper):
    """Which kernel of _EPOCHS runs an epoch (Python ints in; shapes, thread count and the
    order's kind decide).  _linear_epoch_impl (behind the njit overload) runs every case
    but the split; each of these runs one of its paths (or the split, the pair, the readers),
    in a kernel of its own so that a fit compiles only the path it takes: "large" for one
    batch of the whole order (any X); "blocks_*" for an X large enough to gather (gathered
    or not, as _linear_epoch_impl would); "sgd1", "rule1", "softmax1", "halves", "serial"
    and "large" straight from an X too small to gather."""
    rows = min(batch_size, order.shape[0])
    if _pairs(X.shape[0], X.shape[1], n_outputs, batch_size, n_batches, order.shape[0],
              X.itemsize):
        return "pair"
    if _splits(X, order, batch_size, n_outputs):
        return "split_read" if _reader_helps(X, order) else "split"
    plain = _plain_b1(batch_size, loss_id, n_outputs, rule_id, hyper)
    if _reads(X, order, batch_size, loss_id, n_outputs):
        return "read" if plain else "rule1_read"
    if _uses_halves(rows, X.shape[0]) and _reader_helps(X, order):
        return "halves_read"
    if batch_size >= order.shape[0]:
        return "large"  # one batch of the whole order (never gathered)
    blocks = X.nbytes >= GATHER_MIN_BYTES
    if _b1(batch_size, loss_id, n_outputs):
        path = "sgd1" if plain else "softmax1" if loss_id == LOSS_SOFTMAX else "rule1"
        return "blocks_" + path if blocks else path
    if _uses_halves(rows, X.shape[0]):
        return "blocks_halves" if blocks else "halves"
    if batch_size <= CHUNK_ROWS:
        return "blocks_serial" if blocks else "serial"
    return "blocks_large" if blocks else "large"


def linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                 fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state,
                 batch_loss):
    """A whole epoch (docs/kernels.md); returns n_done."""
    order = checks.linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                                n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                                step0, theta, grad, state, batch_loss)
    _custom_loss(loss_param)
    y, sw = checks.data_arrays(X, y, sw)
    hyper = checks.real_array("hyper", hyper, np.float64)
    lrs = checks.real_array("lrs", lrs, np.float64)
    args_tail = (int(n_outputs), bool(fit_intercept), float(alpha), float(l1_ratio),
                 int(rule_id), hyper, lrs, int(step0), theta, grad, state, batch_loss)
    custom = callable(loss_param)
    param = loss_param if custom else _builtin_param(int(loss_id), loss_param, theta.dtype)
    with on_calling_thread(custom):  # the path is chosen for the threads it will have
        path = _epoch_path(X, order, int(batch_size), int(n_batches), int(loss_id),
                           int(n_outputs), int(rule_id), hyper)
        target = _EPOCHS[path][custom]
        if path.startswith("blocks"):
            args_tail += (GATHER_MIN_BYTES, GATHER_BLOCK_BYTES)
        elif path in ("read", "rule1_read", "split_read", "halves_read"):
            args_tail += (_reader_count(),)
        with _compiling_loss(param) if custom else nullcontext():
            return guarded(target, X, y, sw, order, int(batch_size), int(n_batches),
                           int(loss_id), param, *args_tail)


def _check_scalar_types(entry, counts=(), reals=(), flags=()):
    """An @njit caller's scalar arguments, at typing time: ``counts`` integers, ``reals``
    integers or floats, ``flags`` booleans or integers (name, Numba type pairs).  The
    conversions below would otherwise truncate a float count (np.int64(8.5) is 8)."""
    for names, kinds, what in ((counts, (types.Integer,), "an integer"),
                               (reals, (types.Integer, types.Float), "a real number"),
                               (flags, (types.Boolean, types.Integer), "a bool")):
        for name, t in names:
            if not isinstance(t, kinds):  # (a Numba bool is no Integer)
                raise numba.core.errors.TypingError(
                    f"{entry}: {name} must be {what}, got {t}; pass it as the Python entry "
                    f"would take it (docs/kernels.md)")


@numba.njit(inline="always")
def _epoch_scalars(batch_size, n_batches, loss_id, n_outputs, fit_intercept, alpha, l1_ratio,
                   rule_id, step0):
    """The scalars in the types the Python entry hands over (its int(), float(), bool()),
    whatever integer or float types the caller's code has (an int alpha, an int32 count):
    each other type would compile the epoch kernels again beside the ones fits use.
    (Plain literals in the caller's call already arrive unliteral: @overload types its
    implementation with the plain types first.)"""
    return (np.int64(batch_size), np.int64(n_batches), np.int64(loss_id), np.int64(n_outputs),
            np.bool_(fit_intercept), np.float64(alpha), np.float64(l1_ratio), np.int64(rule_id),
            np.int64(step0))


@numba.njit(inline="always")
def _gradient_scalars(loss_id, n_outputs, fit_intercept, scale):
    """_epoch_scalars for linear_batch_gradient."""
    return np.int64(loss_id), np.int64(n_outputs), np.bool_(fit_intercept), np.float64(scale)


@overload(linear_epoch)
def _ol_linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                     fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                     state, batch_loss):
    _check_scalar_types("linear_epoch", counts=(
        ("batch_size", batch_size), ("n_batches", n_batches), ("loss_id", loss_id),
        ("n_outputs", n_outputs), ("rule_id", rule_id), ("step0", step0)),
        reals=(("alpha", alpha), ("l1_ratio", l1_ratio)),
        flags=(("fit_intercept", fit_intercept),))
    builtin = _is_builtin_param(loss_param)
    whole = _linear_epoch_builtin if builtin else _linear_epoch_custom
    split = _split_epoch_builtin if builtin else _split_epoch_custom

    @numba.njit(inline="always")
    def split_or_whole(X, y, sw, order, batch_size, n_batches, loss_id, param, n_outputs,
                       fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                       state, batch_loss):
        if _uses_split(min(batch_size, order.shape[0]), X.shape[0], X.shape[1], n_outputs,
                       X.itemsize, SPLIT_MIN_BYTES):
            return split(X, y, sw, order, batch_size, n_batches, loss_id, param, n_outputs,
                         fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
                         grad, state, batch_loss)
        return whole(X, y, sw, order, batch_size, n_batches, loss_id, param, n_outputs,
                     fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                     state, batch_loss, np.int64(GATHER_MIN_BYTES),
                     np.int64(GATHER_BLOCK_BYTES))

    if not builtin:
        def impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                 fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state,
                 batch_loss):
            b, nb, lid, K, fi, a, r, rid, s0 = _epoch_scalars(
                batch_size, n_batches, loss_id, n_outputs, fit_intercept, alpha, l1_ratio,
                rule_id, step0)
            if loss_id != LOSS_CUSTOM:
                raise ValueError(_FUNCTION_NEEDS_CUSTOM)
            return split_or_whole(X, y, sw, order, b, nb, lid, loss_param, K, fi, a, r, rid,
                                  hyper, lrs, s0, theta, grad, state, batch_loss)
        return impl

    # a built-in code: the softmax kernel and the K = 1 one, picked here (_SOFTMAX_PARAM).
    # Softmax goes straight to the whole-epoch kernel: it has K > 1 outputs, so it is never
    # split, and typing the split kernel with its None would compile softmax's rows there.
    def impl(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
             fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state,
             batch_loss):
        b, nb, lid, K, fi, a, r, rid, s0 = _epoch_scalars(
            batch_size, n_batches, loss_id, n_outputs, fit_intercept, alpha, l1_ratio, rule_id,
            step0)
        if loss_id == LOSS_SOFTMAX:
            return whole(X, y, sw, order, b, nb, lid, _SOFTMAX_PARAM, K, fi, a, r, rid, hyper,
                         lrs, s0, theta, grad, state, batch_loss, np.int64(GATHER_MIN_BYTES),
                         np.int64(GATHER_BLOCK_BYTES))
        return split_or_whole(X, y, sw, order, b, nb, lid, _scalar_param(loss_param, theta), K,
                              fi, a, r, rid, hyper, lrs, s0, theta, grad, state, batch_loss)

    return impl


def _scalar_param(loss_param, theta):
    """A built-in K = 1 loss's parameter in njit code as a float64 (None: 0.0), the type of
    the cached kernels; rounded to float32 first for a float32 theta (_builtin_param)."""


@overload(_scalar_param)
def _ol_scalar_param(loss_param, theta):
    if isinstance(loss_param, types.NoneType):
        return lambda loss_param, theta: 0.0
    if isinstance(loss_param, types.Boolean):
        return lambda loss_param, theta: 1.0 if loss_param else 0.0
    if theta.dtype == types.float32:
        return lambda loss_param, theta: np.float64(np.float32(loss_param))
    return lambda loss_param, theta: np.float64(loss_param)
