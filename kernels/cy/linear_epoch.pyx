# cython: language_level=3
"""Linear models, one whole epoch per ``nogil`` call (docs/kernels.md).

Python-callable, with the reference's signatures (``fastgd/reference/linear_epoch.py``):

    linear_batch_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs,
                          fit_intercept, theta, grad, scale) -> float
    add_penalty(theta, grad, n_penalized, alpha, l1_ratio) -> float
    linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                 n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                 step0, theta, grad, state, batch_loss) -> int n_done

X (n, d) C-contiguous float32/float64; y, sw the same dtype (sw may be empty);
theta, grad, state float32/float64 (the accumulation dtype), written in place.

How an epoch runs (all inside one ``nogil`` call):
- per batch, one fused pass over its rows, read through ``order`` with the
  next rows prefetched: margin (SIMD dot), dloss, accumulate (SIMD axpy);
- a batch holding at least half of X's rows (BGD) is read in row order
  (counting sort of its indices), so X is streamed;
- large batches: fixed row chunks in an OpenMP loop, per-chunk partial
  gradients added in chunk order (bit-identical for any thread count);
- mid-sized batches (at least 8 rows, one chunk): two fixed halves whose
  gradients are added in order; with two threads each computes one half and
  both apply the update to their own copy of the parameters, one barrier per
  batch (_pair_epoch; the same bits on one thread);
- then penalty + update rule + the next penalty value in one fused pass over
  the parameters (``updates.c_update_penalized``);
- plain SGD at batch size 1 (K = 1, no penalty, no momentum, no weight decay)
  never materialises grad: dot, dloss, axpy straight into theta;
- a non-finite batch loss stops the epoch before that batch's update.
"""
import os

import numpy as np

from .. import checks

cimport openmp
from cython.parallel cimport parallel, prange
from libc.math cimport isfinite, fabs, NAN
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

from .losses cimport loss_dloss, softmax_loss_dloss
from .updates cimport (c_update_penalized, c_update_penalized_range, c_penalty_value,
                       sgd_momentum_buffer)

cdef extern from "fgd_simd.h" nogil:
    double fgd_dot_dd(const double* x, const double* w, Py_ssize_t n)
    double fgd_dot_dd_stream(const double* x, const double* w, Py_ssize_t n)
    void fgd_dot4_dd(const double* x0, const double* x1, const double* x2, const double* x3,
                     const double* w, Py_ssize_t n, double* out)
    void fgd_dot4_fd(const float* x0, const float* x1, const float* x2, const float* x3,
                     const double* w, Py_ssize_t n, double* out)
    void fgd_dot4_ff(const float* x0, const float* x1, const float* x2, const float* x3,
                     const float* w, Py_ssize_t n, float* out)
    float fgd_dot_ff(const float* x, const float* w, Py_ssize_t n)
    double fgd_dot_fd(const float* x, const double* w, Py_ssize_t n)
    float fgd_dot_df(const double* x, const float* w, Py_ssize_t n)
    void fgd_axpy_dd(double a, const double* x, double* y, Py_ssize_t n)
    void fgd_axpy_ff(float a, const float* x, float* y, Py_ssize_t n)
    void fgd_axpy_fd(double a, const float* x, double* y, Py_ssize_t n)
    void fgd_axpy_df(float a, const double* x, float* y, Py_ssize_t n)
    double fgd_axpy_dot_dd(double a, const double* xp, double* w, const double* x, Py_ssize_t n)
    float fgd_axpy_dot_ff(float a, const float* xp, float* w, const float* x, Py_ssize_t n)
    double fgd_axpy_dot_fd(double a, const float* xp, double* w, const float* x, Py_ssize_t n)
    float fgd_axpy_dot_df(float a, const double* xp, float* w, const double* x, Py_ssize_t n)
    void fgd_axpy4_dd(const double* a, const double* x0, const double* x1, const double* x2,
                      const double* x3, double* y, Py_ssize_t n)
    void fgd_axpy4_dd_l1(const double* a, const double* x0, const double* x1, const double* x2,
                         const double* x3, double* y, Py_ssize_t n)
    void fgd_axpy4_ff(const float* a, const float* x0, const float* x1, const float* x2,
                      const float* x3, float* y, Py_ssize_t n)
    void fgd_axpy4_fd(const double* a, const float* x0, const float* x1, const float* x2,
                      const float* x3, double* y, Py_ssize_t n)
    void fgd_prefetch_row(const void* p, size_t nbytes)
    void fgd_logistic4(const double* p, const double* y, double* loss, double* dl)
    int fgd_softmax4_dd(double* s, Py_ssize_t K, const Py_ssize_t* cls, double* loss)
    void fgd_logistic_rows(const double* p, const double* y, Py_ssize_t n, double* loss,
                           double* dl)
    void fgd_logistic_rows_x4(const double* p, const double* y, Py_ssize_t n, double* loss,
                              double* dl)

from .team cimport (fgd_team_barrier, fgd_thread_state, fgd_barrier_init, fgd_thread_init,
                    fgd_batch_start, fgd_barrier_wait, fgd_contended, fgd_barrier_solo,
                    fgd_omp_barrier)

cdef extern from "fgd_team.h" nogil:
    double fgd_contended_wait

cdef extern from "fgd_reader.h" nogil:
    enum: FGD_READER_WINDOW, FGD_READER_PREFETCH
    ctypedef struct fgd_reader:
        pass
    void fgd_reader_init(fgd_reader* r)
    void fgd_reader_at(fgd_reader* r, Py_ssize_t k)
    void fgd_reader_done(fgd_reader* r)
    void fgd_read_ahead(fgd_reader* r, const char* X, size_t stride, size_t row_bytes,
                        const char* y, const char* sw, size_t item, const int64_t* order,
                        Py_ssize_t m, int part, int parts)

cdef enum:
    LOSS_LOGISTIC = 1
    LOSS_SOFTMAX = 2
    LOSS_CUSTOM = -1
    RULE_SGD = 0
    RULE_ADAGRAD = 3
    # rows prefetched ahead of the one being processed
    PREFETCH_AHEAD = 8
    # rows whose logistic losses _rows_grad computes in one call
    LOGISTIC_BLOCK = 16
    # batches cut by features over a large X run on one thread with the reader below
    # this many rows, on two threads from it (see _split_reads)
    SPLIT_READER_MAX_ROWS = 128
    # Batches of at least PAIR_MIN_ROWS rows that are not chunked (c_chunk_layout == 1)
    # and not streamed are summed as two fixed halves (see _pair_epoch) ...
    PAIR_MIN_ROWS = 8
    # chunking of large batches (see c_chunk_layout)
    CHUNK_WORK = 131072      # multiply-adds per chunk, about 50 us of work
    MIN_CHUNK_ROWS = 256
    MAX_CHUNKS = 256
    MAX_PARTIAL = 4194304    # elements of per-chunk partial gradients, at most
    SOFTMAX_T_MIN_ROWS = 4   # rows from which a softmax call works on W transposed


cdef inline afloat _dot(const xfloat* x, const afloat* w, Py_ssize_t n) noexcept nogil:
    if xfloat is double:
        if afloat is double:
            return fgd_dot_dd(x, w, n)
        else:
            return fgd_dot_df(x, w, n)
    else:
        if afloat is double:
            return fgd_dot_fd(x, w, n)
        else:
            return fgd_dot_ff(x, w, n)


cdef inline void _dot4(const xfloat* x0, const xfloat* x1, const xfloat* x2, const xfloat* x3,
                       const afloat* w, Py_ssize_t n, afloat* out) noexcept nogil:
    """out[r] = x_r . w for four rows, w loaded once for the four."""
    if xfloat is double:
        if afloat is double:
            fgd_dot4_dd(x0, x1, x2, x3, w, n, out)
        else:  # (double X, float32 theta): rare, one row at a time
            out[0] = fgd_dot_df(x0, w, n)
            out[1] = fgd_dot_df(x1, w, n)
            out[2] = fgd_dot_df(x2, w, n)
            out[3] = fgd_dot_df(x3, w, n)
    else:
        if afloat is double:
            fgd_dot4_fd(x0, x1, x2, x3, w, n, out)
        else:
            fgd_dot4_ff(x0, x1, x2, x3, w, n, out)


cdef inline afloat _axpy_dot(afloat a, const xfloat* xp, afloat* w, const xfloat* x,
                             Py_ssize_t n) noexcept nogil:
    """w += a xp, then x . w, in one pass (same bits as _axpy then _dot)."""
    if xfloat is double:
        if afloat is double:
            return fgd_axpy_dot_dd(a, xp, w, x, n)
        else:
            return fgd_axpy_dot_df(a, xp, w, x, n)
    else:
        if afloat is double:
            return fgd_axpy_dot_fd(a, xp, w, x, n)
        else:
            return fgd_axpy_dot_ff(a, xp, w, x, n)


cdef inline void _axpy(afloat a, const xfloat* x, afloat* y, Py_ssize_t n) noexcept nogil:
    if xfloat is double:
        if afloat is double:
            fgd_axpy_dd(a, x, y, n)
        else:
            fgd_axpy_df(a, x, y, n)
    else:
        if afloat is double:
            fgd_axpy_fd(a, x, y, n)
        else:
            fgd_axpy_ff(a, x, y, n)


cdef inline void _axpy4(const afloat* a, const xfloat* x0, const xfloat* x1, const xfloat* x2,
                        const xfloat* x3, afloat* y, Py_ssize_t n) noexcept nogil:
    if xfloat is double:
        if afloat is double:
            fgd_axpy4_dd(a, x0, x1, x2, x3, y, n)
        else:
            fgd_axpy_df(a[0], x0, y, n)
            fgd_axpy_df(a[1], x1, y, n)
            fgd_axpy_df(a[2], x2, y, n)
            fgd_axpy_df(a[3], x3, y, n)
    else:
        if afloat is double:
            fgd_axpy4_fd(a, x0, x1, x2, x3, y, n)
        else:
            fgd_axpy4_ff(a, x0, x1, x2, x3, y, n)


cdef inline void _axpy4_l1(const afloat* a, const xfloat* x0, const xfloat* x1, const xfloat* x2,
                           const xfloat* x3, afloat* y, Py_ssize_t n) noexcept nogil:
    """_axpy4 for rows just read into L1 (the same bits; see fgd_axpy4_dd_l1)."""
    if xfloat is double and afloat is double:
        fgd_axpy4_dd_l1(a, x0, x1, x2, x3, y, n)
    else:
        _axpy4(a, x0, x1, x2, x3, y, n)


cdef inline afloat _dot_s(const xfloat* x, const afloat* w, Py_ssize_t n,
                         bint streamed) noexcept nogil:
    """_dot; for rows streamed in storage order (BGD) the plain-load form (same bits)."""
    if xfloat is double and afloat is double and streamed:
        return fgd_dot_dd_stream(x, w, n)
    return _dot(x, w, n)


cdef inline void _axpy4_s(const afloat* a, const xfloat* x0, const xfloat* x1,
                          const xfloat* x2, const xfloat* x3, afloat* y, Py_ssize_t n,
                          bint streamed) noexcept nogil:
    """_axpy4; for streamed rows (just read into L1 by their dots) _axpy4_l1 (same bits)."""
    if streamed:
        _axpy4_l1(a, x0, x1, x2, x3, y, n)
    else:
        _axpy4(a, x0, x1, x2, x3, y, n)


cdef Py_ssize_t _chunks_before_balance(Py_ssize_t n_rows, Py_ssize_t d, Py_ssize_t K,
                                       Py_ssize_t P) noexcept nogil:
    """The chunk count c_chunk_layout starts from: at least the count it returns for
    n_rows (balancing only lengthens the chunks), and, unlike that count, never larger
    for fewer rows, so the workspace for a run's largest batch holds every batch's."""
    cdef Py_ssize_t work = d * K if d * K > 0 else 1
    cdef Py_ssize_t cr = CHUNK_WORK // work, nc
    if cr < MIN_CHUNK_ROWS:
        cr = MIN_CHUNK_ROWS
    nc = (n_rows + cr - 1) // cr
    if nc > MAX_CHUNKS:
        nc = MAX_CHUNKS
    if P > 0 and nc * P > MAX_PARTIAL:
        nc = MAX_PARTIAL // P
    return nc if nc > 1 else 1


cdef Py_ssize_t c_chunk_layout(Py_ssize_t n_rows, Py_ssize_t d, Py_ssize_t K, Py_ssize_t P,
                               Py_ssize_t* chunk_rows) noexcept nogil:
    cdef Py_ssize_t cr, nc = _chunks_before_balance(n_rows, d, K, P)
    if nc < 2:
        chunk_rows[0] = n_rows
        return 1
    cr = (n_rows + nc - 1) // nc          # balance the chunks
    cr = (cr + 3) & ~(<Py_ssize_t>3)       # whole blocks of 4 rows
    chunk_rows[0] = cr
    return (n_rows + cr - 1) // cr


cdef inline void _prefetch_all(const xfloat* X, const xfloat* y, const xfloat* sw, Py_ssize_t d,
                               const int64_t* order, Py_ssize_t pos, Py_ssize_t m) noexcept nogil:
    """Prefetch row order[pos] of X and its label and weight (random reads of y
    and sw miss the cache as surely as those of X)."""
    cdef int64_t i
    if pos < m:
        i = order[pos]
        fgd_prefetch_row(X + i * d, d * sizeof(xfloat))
        fgd_prefetch_row(y + i, sizeof(xfloat))
        if sw != NULL:
            fgd_prefetch_row(sw + i, sizeof(xfloat))


cdef inline double _softmax_row_major(const xfloat* xi, const afloat* theta, afloat* g,
                                      Py_ssize_t d, Py_ssize_t K, bint fi, Py_ssize_t cls,
                                      afloat c, afloat* acc, afloat* scratch) noexcept nogil:
    """One softmax row on row-major W (batches of too few rows for the transposed copy):
    g += c dl/dtheta; returns c l.  ``acc`` (K) holds the scores, then c dl.  Inlined at
    each call, so where ``acc`` is the caller's local array GCC knows that it aliases
    neither theta nor g and keeps the K sums out of memory (20-27 % at 2-3 rows a batch);
    ``scratch`` (K, may be ``acc``) takes the loss's in-place softmax."""
    cdef Py_ssize_t j, k
    cdef afloat xj, l
    cdef const afloat* Wj
    cdef afloat* gj
    for k in range(K):
        acc[k] = 0
    for j in range(d):
        xj = <afloat>xi[j]
        Wj = theta + j * K
        for k in range(K):
            acc[k] += xj * Wj[k]
    for k in range(K):
        scratch[k] = acc[k] + theta[d * K + k] if fi else acc[k]
    l = softmax_loss_dloss(scratch, K, cls, scratch)
    for k in range(K):
        acc[k] = scratch[k] * c
    for j in range(d):
        xj = <afloat>xi[j]
        gj = g + j * K
        for k in range(K):
            gj[k] += xj * acc[k]
    if fi:
        for k in range(K):
            g[d * K + k] += acc[k]
    return <double>(c * l)


cdef double _rows_grad(const xfloat* X, const xfloat* y, const xfloat* sw, Py_ssize_t d,
                       const int64_t* order, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t m,
                       Py_ssize_t ahead, bint streamed,
                       int loss_id, double param, Py_ssize_t K, bint fi,
                       const afloat* theta, afloat* g, afloat scale,
                       afloat* scratch) noexcept nogil:
    """g[:P] = sum over the rows order[start:stop] of c_i dl_i/dtheta with
    c_i = scale * sw_i (g is overwritten); returns sum c_i l_i.

    K = 1: blocks of 4 rows: a dot per row (each row read front to back, which
    the hardware prefetcher streams; interleaving four rows defeats it), then one
    pass g += a0 x0 + a1 x1 + a2 x2 + a3 x3 over the rows now in L1 (rounded as
    four axpys in a row), then single rows.  Rows
    order[pos + ahead] (pos + ahead < m) are prefetched.  ``streamed``: the rows are in
    storage order (BGD), read with fgd_dot_dd_stream and _axpy4_l1 (the same bits).
    K > 1 (softmax): W (d, K) is copied transposed, once per call, so that a row's K
    scores are K vectorised dot products of length d and its gradient K axpys into a
    transposed gradient, written back into g at the end (the K-wide inner loops over
    row-major W ran at about one multiply-add a cycle: a softmax epoch took 10-35x a
    logistic one); for float64, four rows at a time (dot4 and axpy4 per class).  Calls
    of fewer than SOFTMAX_T_MIN_ROWS rows, or without the memory for the copies, take the
    row loop below.
    ``scratch`` holds K elements (softmax)."""
    cdef Py_ssize_t P = d * K + (K if fi else 0)
    cdef Py_ssize_t pos, j, k, i, r
    cdef const xfloat* xi
    cdef const xfloat* xr[4]
    cdef const afloat* Wj
    cdef afloat* gj
    cdef afloat p, dl, c, l, xj
    cdef afloat a4[4]
    cdef afloat acc[16]
    cdef afloat pb[4]
    cdef afloat yb[4]
    cdef afloat cb[4]
    cdef afloat lb[4]
    cdef double loss = 0.0
    cdef afloat* wt = NULL
    cdef afloat* gt
    cdef afloat* s4
    cdef Py_ssize_t cls4[4]
    cdef double l4[4]
    cdef double* d4 = NULL
    cdef int vec
    cdef const xfloat* xb[LOGISTIC_BLOCK]
    cdef double pbb[LOGISTIC_BLOCK]
    cdef double ybb[LOGISTIC_BLOCK]
    cdef double lbb[LOGISTIC_BLOCK]
    cdef double abb[LOGISTIC_BLOCK]
    memset(g, 0, P * sizeof(afloat))
    pos = start
    # Blocks of LOGISTIC_BLOCK rows (still in L1 for their gradient pass): their margins,
    # the block's losses in one call (in double: float32 data too, whose scalar losses
    # made its epochs 1.2-1.6x float64's), then the gradient four rows a pass; for float64
    # the gradient's bits of the loop below (the loss sum may round differently in its
    # last bit: the compiler regroups that reduction under -fassociative-math).
    if K == 1 and loss_id == LOSS_LOGISTIC:
        while pos + LOGISTIC_BLOCK <= stop:
            for r in range(LOGISTIC_BLOCK):
                _prefetch_all(X, y, sw, d, order, pos + ahead + r, m)
                i = order[pos + r]
                xb[r] = X + i * d
                p = _dot_s(xb[r], theta, d, streamed)
                if fi:
                    p = p + theta[d]
                pbb[r] = p
                ybb[r] = y[i]
            fgd_logistic_rows(pbb, ybb, LOGISTIC_BLOCK, lbb, abb)
            for k in range(0, LOGISTIC_BLOCK, 4):
                if not (fabs(pbb[k]) <= 700 and fabs(pbb[k + 1]) <= 700
                        and fabs(pbb[k + 2]) <= 700 and fabs(pbb[k + 3]) <= 700):
                    for r in range(k, k + 4):
                        lbb[r] = loss_dloss(loss_id, param, pbb[r], ybb[r], &abb[r])
                for r in range(k, k + 4):
                    c = scale if sw == NULL else scale * <afloat>sw[order[pos + r]]
                    loss += <double>(c * <afloat>lbb[r])
                    a4[r - k] = <afloat>abb[r] * c
                _axpy4_s(a4, xb[k], xb[k + 1], xb[k + 2], xb[k + 3], g, d, streamed)
                if fi:
                    g[d] = (((g[d] + a4[0]) + a4[1]) + a4[2]) + a4[3]
            pos += LOGISTIC_BLOCK
    if K == 1:
        while pos + 4 <= stop:
            for r in range(4):
                _prefetch_all(X, y, sw, d, order, pos + ahead + r, m)
                i = order[pos + r]
                xr[r] = X + i * d
                p = _dot_s(xr[r], theta, d, streamed)
                if fi:
                    p = p + theta[d]
                pb[r] = p
                yb[r] = <afloat>y[i]
                cb[r] = scale if sw == NULL else scale * <afloat>sw[i]
            if (afloat is double and loss_id == LOSS_LOGISTIC and fabs(pb[0]) <= 700
                    and fabs(pb[1]) <= 700 and fabs(pb[2]) <= 700 and fabs(pb[3]) <= 700):
                fgd_logistic4(pb, yb, lb, a4)     # exp and log1p for 4 rows at once
            else:
                for r in range(4):
                    lb[r] = loss_dloss(loss_id, param, pb[r], yb[r], &a4[r])
            for r in range(4):
                loss += <double>(cb[r] * lb[r])
                a4[r] = a4[r] * cb[r]
            _axpy4_s(a4, xr[0], xr[1], xr[2], xr[3], g, d, streamed)
            if fi:
                g[d] = (((g[d] + a4[0]) + a4[1]) + a4[2]) + a4[3]
            pos += 4
    if K > 1 and stop - pos >= SOFTMAX_T_MIN_ROWS:  # fewer rows do not repay the copies
        wt = <afloat*>malloc((2 * K * d + 8 * K) * sizeof(afloat))
    if wt != NULL and afloat is float:
        # float32 sums: the four rows' losses in float64 (d4), as numba computes every
        # float32 loss; a failed malloc leaves them to the per-row float32 loss
        d4 = <double*>malloc(4 * K * sizeof(double))
    if wt != NULL:
        gt = wt + K * d
        for j in range(d):
            for k in range(K):
                wt[k * d + j] = theta[j * K + k]
        memset(gt, 0, K * d * sizeof(afloat))
        # Four rows at a time, so that each class's weights and gradient row are
        # loaded (and the gradient stored) once for the four: a class's scores of
        # four rows in one dot4, its gradient row += the four rows in one axpy4
        # (1 thread, 100k x 100, K = 5: the per-row dots and axpys were half the
        # epoch's time).  s4[4 k + r]: row r's score, then c dl, for class k.
        s4 = gt + K * d
        while pos + 4 <= stop:
            for r in range(4):
                _prefetch_all(X, y, sw, d, order, pos + ahead + r, m)
                xr[r] = X + order[pos + r] * d
            for k in range(K):
                _dot4(xr[0], xr[1], xr[2], xr[3], wt + k * d, d, s4 + 4 * k)
                if fi:
                    for r in range(4):
                        s4[4 * k + r] = s4[4 * k + r] + theta[d * K + k]
            for r in range(4):
                cls4[r] = <Py_ssize_t>y[order[pos + r]]
            # the four rows' losses in one call (exp and log vectorised), else one by one
            if afloat is double:
                vec = fgd_softmax4_dd(s4, K, cls4, l4)
            else:
                vec = 0
                if d4 != NULL:
                    for k in range(4 * K):
                        d4[k] = s4[k]
                    vec = fgd_softmax4_dd(d4, K, cls4, l4)
                    if vec:
                        for k in range(4 * K):
                            s4[k] = <afloat>d4[k]
            for r in range(4):
                i = order[pos + r]
                c = scale if sw == NULL else scale * <afloat>sw[i]
                for k in range(K):
                    scratch[k] = s4[4 * k + r]
                l = l4[r] if vec else softmax_loss_dloss(scratch, K, cls4[r], scratch)
                loss += <double>(c * l)
                for k in range(K):
                    s4[4 * k + r] = scratch[k] * c
                    if fi:
                        g[d * K + k] += s4[4 * k + r]
            for k in range(K):
                _axpy4_l1(s4 + 4 * k, xr[0], xr[1], xr[2], xr[3], gt + k * d, d)
            pos += 4
        for pos in range(pos, stop):
            _prefetch_all(X, y, sw, d, order, pos + ahead, m)
            i = order[pos]
            xi = X + i * d
            c = scale if sw == NULL else scale * <afloat>sw[i]
            for k in range(K):
                scratch[k] = _dot(xi, wt + k * d, d)
                if fi:
                    scratch[k] = scratch[k] + theta[d * K + k]
            l = softmax_loss_dloss(scratch, K, <Py_ssize_t>y[i], scratch)
            loss += <double>(c * l)
            for k in range(K):
                scratch[k] = scratch[k] * c
                _axpy(scratch[k], xi, gt + k * d, d)
                if fi:
                    g[d * K + k] += scratch[k]
        for j in range(d):
            for k in range(K):
                g[j * K + k] = gt[k * d + j]
        free(wt)
        free(d4)
        return loss
    for pos in range(pos, stop):
        _prefetch_all(X, y, sw, d, order, pos + ahead, m)
        i = order[pos]
        xi = X + i * d
        c = scale if sw == NULL else scale * <afloat>sw[i]
        if K == 1:
            p = _dot(xi, theta, d)
            if fi:
                p = p + theta[d]
            l = loss_dloss(loss_id, param, p, <afloat>y[i], &dl)
            loss += <double>(c * l)
            dl = dl * c
            _axpy(dl, xi, g, d)
            if fi:
                g[d] += dl
        elif K <= 16:  # the sums in a local array, which aliases neither theta nor g
            loss += _softmax_row_major(xi, theta, g, d, K, fi, <Py_ssize_t>y[i], c, acc, scratch)
        else:
            loss += _softmax_row_major(xi, theta, g, d, K, fi, <Py_ssize_t>y[i], c, scratch,
                                       scratch)
    return loss


cdef inline Py_ssize_t _even(Py_ssize_t n) noexcept nogil:
    return n + (n & 1)


cdef inline Py_ssize_t _padded(Py_ssize_t n) noexcept nogil:
    # Elements from one chunk's partial gradient (or softmax scratch) to the next's: n
    # plus a cache line (64 bytes in float32 elements, enough for either dtype), so that
    # the threads on neighbouring chunks never write one line.  Packed n apart, they
    # shared the line at each boundary, which both wrote at every row (the softmax
    # scratch some twenty times a row: K = 5, the BGD epoch over 100k x 100 ran 1.4x
    # faster on two threads than on one, against 1.95x for numba's).
    return n + 16


cdef Py_ssize_t _work_size(Py_ssize_t max_rows, Py_ssize_t d, Py_ssize_t K,
                           Py_ssize_t P) noexcept nogil:
    """Elements of dtype A that _batch_grad needs for batches of up to max_rows rows:
    per-chunk partial gradients, per-chunk softmax scratch, per-chunk losses (double).
    Sized by the chunk count before balancing: a shorter batch can be cut into more
    chunks than max_rows (d = 101, K = 5: 16,836 rows in 66, 16,897 in 65), and the
    count of the largest batch had left the last, shorter one writing past the end."""
    cdef Py_ssize_t nc = _chunks_before_balance(max_rows, d, K, P)
    return _even(nc * (_padded(P) + _padded(K)) + K) + 2 * nc + 2


cdef inline bint _use_sorted(Py_ssize_t n_rows, Py_ssize_t n) noexcept nogil:
    # A batch holding at least half of X is read in row order (a streaming pass).
    return 2 * n_rows >= n


cdef bint _is_sorted(const int64_t* rows, Py_ssize_t n_rows) noexcept nogil:
    cdef Py_ssize_t i
    cdef bint ok = True
    for i in range(1, n_rows):  # no early exit, so it vectorises (one streaming pass)
        ok &= rows[i - 1] <= rows[i]
    return ok


cdef void _sort_rows(const int64_t* rows, Py_ssize_t n_rows, Py_ssize_t n, int* counts,
                     int64_t* out) noexcept nogil:
    """out = rows sorted ascending (counting sort over 0..n-1; repeats kept)."""
    cdef Py_ssize_t pos, i, o = 0
    cdef int c
    memset(counts, 0, n * sizeof(int))
    for pos in range(n_rows):
        counts[rows[pos]] += 1
    for i in range(n):
        c = counts[i]
        while c > 0:
            out[o] = i
            o += 1
            c -= 1


cdef double _batch_grad(const xfloat* X, const xfloat* y, const xfloat* sw, Py_ssize_t n,
                        Py_ssize_t d, const int64_t* order, Py_ssize_t start, Py_ssize_t stop,
                        Py_ssize_t m, int loss_id, double param, Py_ssize_t K, bint fi,
                        const afloat* theta, afloat* grad, afloat scale, afloat* work,
                        int* counts, int64_t* sorted_rows) noexcept nogil:
    """The gradient of the rows order[start:stop] into grad; returns the data loss.

    A batch holding at least half of the rows of X (BGD) is first sorted by row
    index (``counts``: n ints, ``sorted_rows``: stop - start int64; both NULL to
    skip), so X is streamed.  Large batches are cut into fixed chunks
    (c_chunk_layout), run in an OpenMP loop into per-chunk partials, which are
    added in chunk order.  ``work``: _work_size(stop - start, d, K, P) elements."""
    cdef Py_ssize_t P = d * K + (K if fi else 0)
    cdef Py_ssize_t nb = stop - start
    cdef Py_ssize_t cr, nc, c, j, s, e
    cdef afloat* part
    cdef afloat* scr
    cdef double* closs
    cdef double loss
    cdef bint streamed = False
    if counts != NULL and sorted_rows != NULL and _use_sorted(nb, n):
        if not _is_sorted(order + start, nb):  # the driver hands BGD storage order
            _sort_rows(order + start, nb, n, counts, sorted_rows)
            order = sorted_rows
            start = 0
            stop = nb
        m = stop        # rows in increasing order, streamed (_rows_grad)
        streamed = True
    nc = c_chunk_layout(nb, d, K, P, &cr)
    if nc == 1:
        return _rows_grad(X, y, sw, d, order, start, stop, m, PREFETCH_AHEAD, streamed, loss_id,
                          param, K, fi, theta, grad, scale, work)
    part = work
    scr = work + nc * _padded(P)
    closs = <double*>(work + _even(nc * (_padded(P) + _padded(K)) + K))
    for c in prange(nc, schedule='dynamic', chunksize=1):
        s = start + c * cr
        e = s + cr
        if e > stop:
            e = stop
        closs[c] = _rows_grad(X, y, sw, d, order, s, e, e, PREFETCH_AHEAD, streamed,
                              loss_id, param, K, fi, theta, part + c * _padded(P), scale,
                              scr + c * _padded(K))
    # fixed-order reduction: chunk 0, then 1, ... (independent of the thread count)
    for j in range(P):
        grad[j] = part[j]
    loss = closs[0]
    for c in range(1, nc):
        for j in range(P):
            grad[j] += part[c * _padded(P) + j]
        loss += closs[c]
    return loss


cdef double c_linear_batch_gradient(const xfloat* X, const xfloat* y, const xfloat* sw,
                                    Py_ssize_t n, Py_ssize_t d, const int64_t* rows,
                                    Py_ssize_t n_rows, int loss_id, double loss_param,
                                    Py_ssize_t K, bint fit_intercept, const afloat* theta,
                                    afloat* grad, double scale) noexcept nogil:
    cdef bint out_of_memory
    return _linear_batch_gradient(X, y, sw, n, d, rows, n_rows, loss_id, loss_param, K,
                                  fit_intercept, theta, grad, scale, &out_of_memory)


cdef double _linear_batch_gradient(const xfloat* X, const xfloat* y, const xfloat* sw,
                                   Py_ssize_t n, Py_ssize_t d, const int64_t* rows,
                                   Py_ssize_t n_rows, int loss_id, double loss_param,
                                   Py_ssize_t K, bint fit_intercept, const afloat* theta,
                                   afloat* grad, double scale,
                                   bint* out_of_memory) noexcept nogil:
    """c_linear_batch_gradient, saying whether its scratch could not be allocated (it then
    returns NaN and leaves grad as it was; the Python entry raises MemoryError)."""
    cdef Py_ssize_t P = d * K + (K if fit_intercept else 0)
    cdef afloat* work = <afloat*>malloc(_work_size(n_rows, d, K, P) * sizeof(afloat))
    cdef int* counts = NULL
    cdef int64_t* srt = NULL
    cdef double loss = NAN
    out_of_memory[0] = True
    if work == NULL:
        return NAN
    if _use_sorted(n_rows, n):
        counts = <int*>malloc(n * sizeof(int))
        srt = <int64_t*>malloc(n_rows * sizeof(int64_t))
    if not _use_sorted(n_rows, n) or (counts != NULL and srt != NULL):
        out_of_memory[0] = False
        loss = _batch_grad(X, y, sw, n, d, rows, 0, n_rows, n_rows, loss_id, loss_param, K,
                           fit_intercept, theta, grad, <afloat>scale, work, counts, srt)
    free(work)
    free(counts)
    free(srt)
    return loss


cdef double c_add_penalty(const afloat* theta, afloat* grad, Py_ssize_t n_penalized,
                          double alpha, double l1_ratio) noexcept nogil:
    cdef Py_ssize_t j
    cdef afloat w, a = <afloat>alpha, r = <afloat>l1_ratio, r1 = <afloat>(1.0 - l1_ratio)
    if alpha == 0:
        return 0.0
    for j in range(n_penalized):
        w = theta[j]
        grad[j] += a * (r1 * w + r * <afloat>((w > 0) - (w < 0)))
    return c_penalty_value(theta, n_penalized, alpha, l1_ratio)


cdef Py_ssize_t _sgd1_epoch(const xfloat* X, const xfloat* y, const xfloat* sw, Py_ssize_t d,
                            const int64_t* order, Py_ssize_t m, Py_ssize_t n_batches,
                            int loss_id, double param, bint fi, double alpha, double l1_ratio,
                            const double* lrs, afloat* theta, double* batch_loss,
                            fgd_reader* rd) noexcept nogil:
    """Plain SGD (no momentum, no weight decay), batch size 1, K = 1:
    w_k = w_{k-1} + a_k x_k with a_k = -lr_k sw_k dl_k, without a gradient vector.

    Row k's pass over the weights applies row k-1's update and forms row k's
    margin from the updated values in the same loop (_axpy_dot): w is read and
    written once per row, and x_{k-1} is still in L1.  The margin is exactly
    x_k . w_{k-1}, as the reference computes it.  (It replaced a lazy form,
    p_k = x_k . w_{k-2} + a_{k-1} x_k . x_{k-1}, with a shorter dependency chain
    but three passes per row: W1 in storage order 7.0 -> 5.3-5.5 ms, shuffled
    11.5-12.1 -> 10.5-10.8 ms; docs/cython.md.)  The intercept is updated at once.  Divergence: theta is
    w_{k-1} (the pending update applied) when row k's loss is not finite.
    With a penalty (alpha > 0) each row takes its own passes, as numba's _plain_sgd_b1
    does: the margin, the penalty's value at w_{k-1} (the batch loss's), then
    w -= lr (dl x + alpha ((1 - r) w + r sign w)), applied at once.  The general loop
    took 3-4.5x as long for it (a gradient vector, a penalty pass and an update per row).
    ``rd``: the reader to tell where the epoch is (fgd_reader.h), or NULL."""
    cdef Py_ssize_t k, i
    cdef const xfloat* xi
    cdef const xfloat* xprev = NULL
    cdef afloat p, dl, c, l, aprev = 0, lr, w
    cdef afloat a2 = <afloat>(alpha * (1.0 - l1_ratio)), a1 = <afloat>(alpha * l1_ratio)
    cdef double loss, pen = 0.0
    cdef Py_ssize_t j
    cdef size_t half = (d * sizeof(xfloat)) // 2
    cdef const char* pfrow = NULL
    for k in range(n_batches):
        if rd != NULL:
            fgd_reader_at(rd, k)
        # the next rows' lines are requested in two halves, spread over the row's work
        if k + PREFETCH_AHEAD < m:
            i = order[k + PREFETCH_AHEAD]
            pfrow = <const char*>(X + i * d)
            fgd_prefetch_row(pfrow, half)
            fgd_prefetch_row(y + i, sizeof(xfloat))
            if sw != NULL:
                fgd_prefetch_row(sw + i, sizeof(xfloat))
        else:
            pfrow = NULL
        i = order[k]
        xi = X + i * d
        c = 1 if sw == NULL else <afloat>sw[i]
        if alpha != 0:
            p = _dot(xi, theta, d)
            pen = c_penalty_value(theta, d, alpha, l1_ratio)
        elif aprev != 0:
            p = _axpy_dot(aprev, xprev, theta, xi, d)      # theta = w_{k-1}
            aprev = 0
        else:
            p = _dot(xi, theta, d)
        if pfrow != NULL:
            fgd_prefetch_row(pfrow + half, d * sizeof(xfloat) - half)
        if fi:
            p = p + theta[d]
        l = loss_dloss(loss_id, param, p, <afloat>y[i], &dl)
        loss = <double>(c * l) + pen
        batch_loss[k] = loss
        if not isfinite(loss):
            return k
        dl = dl * c
        if alpha != 0:
            lr = <afloat>lrs[k]
            if a1 == 0:  # l2: no sign term, so the loop vectorises
                for j in range(d):
                    w = theta[j]
                    theta[j] = w - lr * (<afloat>xi[j] * dl + a2 * w)
            else:
                for j in range(d):
                    w = theta[j]
                    theta[j] = w - lr * (<afloat>xi[j] * dl
                                         + (a2 * w + a1 * (<afloat>(w > 0) - <afloat>(w < 0))))
            if fi:
                theta[d] = theta[d] - lr * dl
        elif dl != 0:
            lr = <afloat>lrs[k]
            aprev = -lr * dl
            xprev = xi
            if fi:
                theta[d] = theta[d] - lr * dl
    if aprev != 0:
        _axpy(aprev, xprev, theta, d)
    return n_batches


cdef inline int64_t _b1_row(const xfloat* X, const xfloat* y, const xfloat* sw, Py_ssize_t d,
                            const int64_t* order, Py_ssize_t k, Py_ssize_t m,
                            fgd_reader* rd) noexcept nogil:
    """Row k of a b = 1 epoch: tells the reader (if any) where the epoch is, requests the
    row PREFETCH_AHEAD positions on, and returns the row's index."""
    if rd != NULL:
        fgd_reader_at(rd, k)
    _prefetch_all(X, y, sw, d, order, k + PREFETCH_AHEAD, m)
    return order[k]


cdef Py_ssize_t _rule1_epoch(const xfloat* X, const xfloat* y, const xfloat* sw, Py_ssize_t d,
                             const int64_t* order, Py_ssize_t m, Py_ssize_t n_batches,
                             int loss_id, double param, bint fi, double alpha,
                             double l1_ratio, int rule_id, const double* hyper,
                             const double* lrs, long long step0, afloat* theta, afloat* grad,
                             afloat* state, double* batch_loss, fgd_reader* rd) noexcept nogil:
    """Batch size 1, K = 1, any update rule (momentum, weight decay, Adam, ...): per
    row its margin, loss, g = sw dl x written straight into grad, and the rule's fused
    pass (with the penalty, whose value for the next row's loss comes out of it).  The
    bits of _serial_epoch at b = 1 (there g is zeroed and g += dl x), without its
    per-batch machinery: chunk layout, the 4-row blocks' bookkeeping, the zeroing
    (Adagrad at b = 1 over 100 features, X in the L3: 285 -> 266 ns a row; SGD with
    momentum or weight decay and no penalty takes _sgd_rule1_epoch).
    ``rd``: the reader to tell where the epoch is (fgd_reader.h), or NULL."""
    cdef Py_ssize_t P = d + (1 if fi else 0)
    cdef Py_ssize_t k, j
    cdef int64_t i
    cdef const xfloat* xi
    cdef afloat p, dl, c, l
    cdef double loss
    cdef double pen = c_penalty_value(theta, d, alpha, l1_ratio)
    for k in range(n_batches):
        i = _b1_row(X, y, sw, d, order, k, m, rd)
        xi = X + i * d
        c = 1 if sw == NULL else <afloat>sw[i]
        p = _dot(xi, theta, d)
        if fi:
            p = p + theta[d]
        l = loss_dloss(loss_id, param, p, <afloat>y[i], &dl)
        loss = <double>(c * l) + pen
        batch_loss[k] = loss
        if not isfinite(loss):
            return k
        dl = dl * c
        for j in range(d):
            grad[j] = dl * <afloat>xi[j]
        if fi:
            grad[d] = dl
        pen = c_update_penalized(rule_id, hyper, theta, grad, state, P, lrs[k], step0 + k + 1,
                                 d, alpha, l1_ratio)
    return n_batches


cdef void _transposed(const afloat* src, afloat* dst, Py_ssize_t r, Py_ssize_t c,
                      Py_ssize_t P) noexcept nogil:
    """dst = src with its first r c elements, an (r, c) row-major block, transposed to
    (c, r), and the rest up to P (the intercepts) copied: W (d, K) to (K, d) with
    (r, c) = (d, K), and back with (K, d)."""
    cdef Py_ssize_t i, j
    for i in range(r):
        for j in range(c):
            dst[j * r + i] = src[i * c + j]
    for i in range(r * c, P):
        dst[i] = src[i]


cdef Py_ssize_t _softmax1_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                                Py_ssize_t d, const int64_t* order, Py_ssize_t m,
                                Py_ssize_t n_batches, Py_ssize_t K, bint fi, double alpha,
                                double l1_ratio, int rule_id, const double* hyper,
                                const double* lrs, long long step0, afloat* theta,
                                afloat* grad, afloat* state, double* batch_loss,
                                fgd_reader* rd) noexcept nogil:
    """Batch size 1, softmax over K classes, any update rule.  W (d, K) and the state's
    rows are copied transposed, (K, d), for the whole epoch, so that a row's K scores
    are K vectorised dots of length d and its gradient K scaled copies of the row;
    through _rows_grad a single row takes the K-wide loops over row-major W (about one
    multiply-add a cycle; 100k x 100, K = 5: 83 ms an epoch).  Every rule is
    elementwise, so it steps the transposed parameters as it would W (plain SGD
    without a penalty: theta += (-lr c dl_q) x, one axpy a class); the penalty's value
    sums them in another order (the loss, not theta, may differ in its last bit).  The
    parameters go back to W's layout at the end, or before returning at a non-finite
    loss (theta then as before that row).  Returns n_done, or -1 if out of memory.
    ``rd``: the reader to tell where the epoch is (fgd_reader.h), or NULL."""
    cdef Py_ssize_t DK = d * K, P = DK + (K if fi else 0)
    cdef Py_ssize_t S = _state_slots(rule_id)
    cdef Py_ssize_t k, j, q, s, n_done = n_batches
    cdef int64_t i
    cdef const xfloat* xi
    cdef afloat c, l, a, lr
    cdef double loss, pen
    cdef bint plain = rule_id == RULE_SGD and hyper[0] == 0 and hyper[3] == 0 and alpha == 0
    cdef afloat* tt = <afloat*>malloc((P * (1 + S) + K) * sizeof(afloat))
    cdef afloat* st
    cdef afloat* sc
    if tt == NULL:
        return -1
    st = tt + P
    sc = st + S * P
    _transposed(theta, tt, d, K, P)
    for s in range(S):
        _transposed(state + s * P, st + s * P, d, K, P)
    pen = c_penalty_value(tt, DK, alpha, l1_ratio)
    for k in range(n_batches):
        i = _b1_row(X, y, sw, d, order, k, m, rd)
        xi = X + i * d
        c = 1 if sw == NULL else <afloat>sw[i]
        for q in range(K):
            sc[q] = _dot(xi, tt + q * d, d)
            if fi:
                sc[q] = sc[q] + tt[DK + q]
        l = softmax_loss_dloss(sc, K, <Py_ssize_t>y[i], sc)
        loss = <double>(c * l) + pen
        batch_loss[k] = loss
        if not isfinite(loss):
            n_done = k
            break
        if plain:
            lr = <afloat>lrs[k]
            for q in range(K):
                a = sc[q] * c
                _axpy(-(lr * a), xi, tt + q * d, d)
                if fi:
                    tt[DK + q] = tt[DK + q] - lr * a
            continue
        for q in range(K):
            a = sc[q] * c
            for j in range(d):
                grad[q * d + j] = a * <afloat>xi[j]
            if fi:
                grad[DK + q] = a
        pen = c_update_penalized(rule_id, hyper, tt, grad, st, P, lrs[k], step0 + k + 1, DK,
                                 alpha, l1_ratio)
    _transposed(tt, theta, K, d, P)
    for s in range(S):
        _transposed(st + s * P, state + s * P, K, d, P)
    free(tt)
    return n_done


cdef inline void _step(afloat a, const afloat* v, afloat* w, Py_ssize_t n) noexcept nogil:
    """w += a v, v in theta's dtype (fgd_simd.h's axpy: the rounding of _axpy_dot's
    update part)."""
    if afloat is double:
        fgd_axpy_dd(a, v, w, n)
    else:
        fgd_axpy_ff(a, v, w, n)


cdef inline afloat _step_dot(afloat a, const afloat* v, afloat* w, const xfloat* x,
                            Py_ssize_t n) noexcept nogil:
    """_step, then x . w, in one pass where X shares theta's dtype."""
    if xfloat is afloat:
        return _axpy_dot(a, v, w, x, n)
    _step(a, v, w, n)
    return _dot(x, w, n)


cdef inline void _sgd_direction(afloat a, const xfloat* xp, const afloat* w, afloat* buf,
                                afloat* out, Py_ssize_t n, afloat mom, afloat damp1,
                                bint nesterov, bint first, bint has_wd,
                                afloat wd) noexcept nogil:
    """The direction of torch's SGD step for g = a xp (+ wd w): the momentum buffer b
    (updated in buf; ``out`` is left alone when the direction is b itself), Nesterov's
    g + mom b, or g (no momentum), written to ``out``.  One loop per case: no store
    under a flag."""
    cdef Py_ssize_t j
    cdef afloat g, b
    if mom == 0:
        for j in range(n):
            out[j] = a * <afloat>xp[j] + (wd * w[j] if has_wd else 0)
    elif nesterov:
        for j in range(n):
            g = a * <afloat>xp[j]
            if has_wd:
                g = g + wd * w[j]
            b = sgd_momentum_buffer(buf[j], g, mom, damp1, first)
            buf[j] = b
            out[j] = g + mom * b
    else:
        for j in range(n):
            g = a * <afloat>xp[j]
            if has_wd:
                g = g + wd * w[j]
            buf[j] = sgd_momentum_buffer(buf[j], g, mom, damp1, first)


cdef Py_ssize_t _sgd_rule1_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                                 Py_ssize_t d, const int64_t* order, Py_ssize_t m,
                                 Py_ssize_t n_batches, int loss_id, double param, bint fi,
                                 const double* hyper, const double* lrs, long long step0,
                                 afloat* theta, afloat* grad, afloat* buf, double* batch_loss,
                                 fgd_reader* rd) noexcept nogil:
    """Batch size 1, K = 1, SGD with momentum or weight decay, no penalty: as in
    _sgd1_epoch, row k-1's update is finished in row k's pass over theta.  Its
    direction (the momentum buffer, Nesterov's g + mom b, or g + wd w) is formed first
    (_sgd_direction), then theta -= lr direction and row k's margin in one pass
    (_axpy_dot).  The intercept is updated at once."""
    cdef afloat mom = <afloat>hyper[0], damp1 = <afloat>(1.0 - hyper[1])
    cdef afloat wd = <afloat>hyper[3]
    cdef bint nesterov = hyper[2] != 0, has_wd = hyper[3] != 0
    cdef afloat* dirv = buf if (hyper[0] != 0 and not nesterov) else grad
    cdef Py_ssize_t k
    cdef int64_t i
    cdef const xfloat* xi
    cdef const xfloat* xprev = NULL
    cdef afloat p, dl, c, l, g, b, aprev = 0, lrprev = 0
    cdef double loss
    cdef bint first
    for k in range(n_batches):
        i = _b1_row(X, y, sw, d, order, k, m, rd)
        xi = X + i * d
        c = 1 if sw == NULL else <afloat>sw[i]
        if xprev != NULL:
            _sgd_direction(aprev, xprev, theta, buf, grad, d, mom, damp1, nesterov,
                           step0 + k == 1, has_wd, wd)
            p = _step_dot(-lrprev, dirv, theta, xi, d)
        else:
            p = _dot(xi, theta, d)
        if fi:
            p = p + theta[d]
        l = loss_dloss(loss_id, param, p, <afloat>y[i], &dl)
        loss = <double>(c * l)
        batch_loss[k] = loss
        if not isfinite(loss):
            return k
        aprev = dl * c
        xprev = xi
        lrprev = <afloat>lrs[k]
        if fi:
            g = aprev + (wd * theta[d] if has_wd else 0)
            first = step0 + k + 1 == 1
            if mom != 0:
                b = sgd_momentum_buffer(buf[d], g, mom, damp1, first)
                buf[d] = b
                g = g + mom * b if nesterov else b
            theta[d] = theta[d] - lrprev * g
    if xprev != NULL:
        _sgd_direction(aprev, xprev, theta, buf, grad, d, mom, damp1, nesterov,
                       step0 + n_batches == 1, has_wd, wd)
        _step(-lrprev, dirv, theta, d)
    return n_batches


# ... and the halves run on two threads when each has at least this many multiply-adds
# (rows x d x K) per batch, and the epoch PAIR_EPOCH_FACTOR times as many in all: below
# either, one barrier per batch or the team's start costs more than it saves (thirteenth
# session, b = 32 and 128 over 2,000-20,000 rows of 50-200 features, one thread against
# two: 20,000 x 50 at b = 32 0.48 against 0.64 ms, 20,000 x 100 0.78 against 0.67,
# 2,000 x 100 0.08 against 0.11; the old 512 paired them all).  Module-level so tests can
# change it (0: always pair); results are the same bits either way.
cdef Py_ssize_t _pair_min_work = 1200
cdef enum:
    PAIR_EPOCH_FACTOR = 800


def _set_pair_min_work(Py_ssize_t value):
    """Test/benchmark knob: the per-half work from which the halves of a mini-batch run
    on two threads, the epoch's 800 times as much (0: always, when two are available);
    returns the previous value."""
    global _pair_min_work
    old = _pair_min_work
    _pair_min_work = value
    return old


def _set_contended_wait(double seconds):
    """Test knob: the barrier wait that marks the pair contended (< 0: at once, so the
    epoch goes on one thread after its first barrier); returns the previous value."""
    global fgd_contended_wait
    old = fgd_contended_wait
    fgd_contended_wait = seconds
    return old


# A shuffled one-thread epoch gets a reader thread (fgd_reader.h) when a second
# thread is available and X is at least this many bytes (smaller X stays in cache
# from one epoch to the next, and the reader only costs a core).
cdef Py_ssize_t _reader_min_bytes = 8 << 20


def _set_reader_min_bytes(Py_ssize_t value):
    """Test/benchmark knob: the size of X from which shuffled one-thread epochs get a
    reader thread (0: always; a huge value: never); returns the previous value."""
    global _reader_min_bytes
    old = _reader_min_bytes
    _reader_min_bytes = value
    return old


# Reader threads of a shuffled one-thread epoch, where OpenMP's thread count leaves the
# cores for them: one core's reads are what limits it on two (docs/w1-b32.md), and each
# reader keeps its own misses in flight.  Measured on 8 cores of a Xeon with X of
# 1,000,000 x 100 float64 in DRAM (bench/readers.py, docs/benchmarks-log.md): b = 32 90 ms
# with one reader, 77 with two, 76 with three; so two.  The trainer's results do not
# depend on it.
cdef int _max_readers = 2


def _set_max_readers(int value):
    """Test/benchmark knob: at most this many reader threads (at least 1); returns the
    previous value."""
    global _max_readers
    if value < 1:
        raise ValueError(f"Invalid reader count: {value} (at least 1)")
    old = _max_readers
    _max_readers = value
    return old


cdef inline int _reader_threads() noexcept nogil:
    cdef int free_threads = openmp.omp_get_max_threads() - 1
    return free_threads if free_threads < _max_readers else _max_readers


# Batches cut by features run on one thread with the reader, rather than on two
# threads, when X is at least this many bytes (about the last-level cache; set at
# import, from the OS where it tells).  Each core's hardware prefetcher streams on
# past its own part of a row into the other's, so two threads that each read half
# of every row move up to twice the bytes: with X in cache that costs nothing and
# two threads win (W1-like 20,000 x 100: 0.79 against 1.03 ms), from memory one
# thread and the reader win (100,000 x 100, b = 32: 4.8 against 6.2 ms) for batches
# of fewer than SPLIT_READER_MAX_ROWS rows.  (The reader follows the trainer's batch
# starts, and reads at most 112 rows ahead: from b = 256 on, two threads win again,
# 5.5-5.9 against 6.0-8.6 ms; b = 128 ties.)
cdef Py_ssize_t _split_reader_min_bytes = 32 << 20


def _last_level_cache_bytes(default=32 << 20):
    """The largest CPU cache in bytes, from Linux's sysfs (``default`` elsewhere)."""
    import glob
    best = 0
    for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            with open(path) as f:
                text = f.read().strip().upper()
            scale = 1
            for unit, factor in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
                if text.endswith(unit):
                    text, scale = text[:len(text) - 1], factor
            best = max(best, int(text) * scale)
        except (OSError, ValueError):
            continue
    return best or default


_split_reader_min_bytes = _last_level_cache_bytes()


def _set_split_reader_min_bytes(Py_ssize_t value):
    """The size of X from which batches cut by features run on one thread with the
    reader rather than on two threads (0: always; a huge value: never); returns the
    previous value."""
    global _split_reader_min_bytes
    old = _split_reader_min_bytes
    _split_reader_min_bytes = value
    return old


cdef inline bint _split_reads(Py_ssize_t n, Py_ssize_t d, Py_ssize_t itemsize,
                              Py_ssize_t max_rows) noexcept nogil:
    return (max_rows < SPLIT_READER_MAX_ROWS and n * d * itemsize >= _split_reader_min_bytes
            and n * d * itemsize >= _reader_min_bytes)


cdef inline bint _use_reader(Py_ssize_t n, Py_ssize_t d, Py_ssize_t itemsize,
                             const int64_t* order, Py_ssize_t m) noexcept nogil:
    return (n * d * itemsize >= _reader_min_bytes and openmp.omp_get_max_threads() >= 2
            and m >= 2 * FGD_READER_WINDOW and not _is_sorted(order, m))


cdef inline Py_ssize_t _state_slots(int rule_id) noexcept nogil:
    # fastgd.kernels.ids.STATE_SLOTS: SGD and Adagrad one row, Adam(W) and RMSprop three
    return 1 if (rule_id == RULE_SGD or rule_id == RULE_ADAGRAD) else 3


cdef inline Py_ssize_t _batch_stop(Py_ssize_t k, Py_ssize_t batch_size,
                                   Py_ssize_t m) noexcept nogil:
    """One past the last position of batch k (the last batch may be shorter)."""
    cdef Py_ssize_t stop = (k + 1) * batch_size
    return stop if stop < m else m


cdef inline int _pair_threads(Py_ssize_t max_rows, Py_ssize_t d, Py_ssize_t K,
                              Py_ssize_t n_batches) noexcept nogil:
    """Threads (1 or 2) that run a paired epoch's halves now."""
    if (n_batches >= 2 and openmp.omp_get_max_threads() >= 2
            and ((max_rows + 1) // 2) * d * K >= _pair_min_work
            and n_batches * max_rows * d * K >= PAIR_EPOCH_FACTOR * _pair_min_work):
        return 2
    return 1


cdef inline bint _paired(Py_ssize_t max_rows, Py_ssize_t n, Py_ssize_t d, Py_ssize_t K,
                         Py_ssize_t P) noexcept nogil:
    """Whether an epoch's batches are summed as two halves: a rule on the shapes only
    (never the thread count), so the bits do not depend on how many threads run."""
    cdef Py_ssize_t cr
    return (max_rows >= PAIR_MIN_ROWS and not _use_sorted(max_rows, n)
            and c_chunk_layout(max_rows, d, K, P, &cr) == 1)


cdef Py_ssize_t _pair_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                            Py_ssize_t d, const int64_t* order, Py_ssize_t m,
                            Py_ssize_t batch_size, Py_ssize_t n_batches, int loss_id,
                            double param, Py_ssize_t K, bint fi, double alpha,
                            double l1_ratio, int rule_id, const double* hyper,
                            const double* lrs, long long step0, afloat* theta, afloat* grad,
                            afloat* state, double* batch_loss, afloat* parts, double* lparts,
                            int* solo, afloat* scratch, int tid, int T,
                            fgd_team_barrier* bar, fgd_reader* rd) noexcept nogil:
    """The epoch of mid-sized batches as thread ``tid`` of T (1 or 2) sees it.

    Batch k's gradient is the sum, in this order, of the gradients of its first
    ceil(nb / 2) rows and of the rest; with T = 2 each thread computes one half
    (reading its rows straight from X, prefetching its rows of the next batch) into
    ``parts[k % 2]``, and after one barrier both add the halves and apply the same
    update to their own copy of theta, grad and state (thread 0's are the caller's),
    so the only data that crosses cores per batch is a partial gradient.  T = 1 does
    both halves itself: the same arithmetic, the same bits.  ``parts``: 2 x 2 x _padded(P),
    ``lparts``: 2 x 2, ``solo``: 2 flags (thread 0 decides before barrier k, in slot
    k % 2, whether the pair is contended and the epoch goes on on thread 0 alone).
    Returns n_done (thread 1: n_done, or -1 when it left the pair)."""
    cdef Py_ssize_t P = d * K + (K if fi else 0)
    cdef Py_ssize_t n_pen = d * K
    cdef Py_ssize_t k, j, start, stop, nb, h, half, s, e
    cdef afloat* buf
    cdef double* lb
    cdef double loss, pen
    cdef fgd_thread_state ts
    fgd_thread_init(&ts)
    pen = c_penalty_value(theta, n_pen, alpha, l1_ratio)
    for k in range(n_batches):
        start = k * batch_size
        stop = _batch_stop(k, batch_size, m)
        nb = stop - start
        h = (nb + 1) // 2
        buf = parts + (k & 1) * 2 * _padded(P)
        lb = lparts + (k & 1) * 2
        if rd != NULL:
            fgd_reader_at(rd, start)
        fgd_batch_start(bar, &ts)
        for half in range(2):
            if half % T != tid:
                continue
            s = start if half == 0 else start + h
            e = start + h if half == 0 else stop
            lb[half] = _rows_grad(X, y, sw, d, order, s, e, m, batch_size, False, loss_id, param, K,
                                  fi, theta, buf + half * _padded(P), <afloat>(1.0 / nb),
                                  scratch)
        if T > 1:
            if tid == 0:
                solo[k & 1] = fgd_contended(bar)
            fgd_barrier_wait(bar, &ts)
            if solo[k & 1]:
                if tid != 0:
                    return -1
                T = 1
                fgd_barrier_solo(bar)
        for j in range(P):
            grad[j] = buf[j] + buf[_padded(P) + j]
        loss = (lb[0] + lb[1]) + pen
        if tid == 0:
            batch_loss[k] = loss
        if not isfinite(loss):
            return k
        pen = c_update_penalized(rule_id, hyper, theta, grad, state, P, lrs[k],
                                 step0 + k + 1, n_pen, alpha, l1_ratio)
    return n_batches


cdef Py_ssize_t _paired_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                              Py_ssize_t n, Py_ssize_t d, const int64_t* order, Py_ssize_t m,
                              Py_ssize_t batch_size, Py_ssize_t n_batches, int loss_id,
                              double param, Py_ssize_t K, bint fi, double alpha,
                              double l1_ratio, int rule_id, const double* hyper,
                              const double* lrs, long long step0, afloat* theta,
                              afloat* grad, afloat* state, double* batch_loss, int T,
                              fgd_reader* rd) noexcept nogil:
    """Runs _pair_epoch on T threads (1 or 2; one thread tells ``rd`` where it is, if
    not NULL); -1 if out of memory."""
    cdef Py_ssize_t P = d * K + (K if fi else 0)
    cdef Py_ssize_t S = _state_slots(rule_id) * P
    cdef Py_ssize_t max_rows = batch_size if batch_size < m else m
    cdef Py_ssize_t done[1]
    cdef Py_ssize_t r
    cdef int tid, nt
    cdef int solo[2]
    cdef double lparts[4]
    cdef fgd_team_barrier bar
    # parts (2 parities x 2 halves), each thread's scratch (K), each padded by a cache
    # line (_padded: the two threads write both every row), then thread 1's theta, grad
    # (2P) and state (S)
    cdef afloat* work = <afloat*>malloc((4 * _padded(P) + 2 * _padded(K) + 2 * P + S)
                                        * sizeof(afloat))
    cdef afloat* parts = work
    cdef afloat* scratch = work + 4 * _padded(P)
    cdef afloat* theta1 = scratch + 2 * _padded(K)
    cdef afloat* grad1 = theta1 + P
    cdef afloat* state1 = grad1 + P
    if work == NULL:
        return -1
    solo[0] = 0
    solo[1] = 0
    if T == 1:
        fgd_barrier_init(&bar, 1)
        r = _pair_epoch(X, y, sw, d, order, m, batch_size, n_batches, loss_id, param, K, fi,
                        alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state,
                        batch_loss, parts, lparts, solo, scratch, 0, 1, &bar, rd)
        free(work)
        return r
    memcpy(theta1, theta, P * sizeof(afloat))
    memcpy(state1, state, S * sizeof(afloat))
    with parallel(num_threads=2):
        tid = openmp.omp_get_thread_num()
        nt = openmp.omp_get_num_threads()
        if tid == 0:
            fgd_barrier_init(&bar, nt)
        fgd_omp_barrier()
        if tid == 0:
            done[0] = _pair_epoch(X, y, sw, d, order, m, batch_size, n_batches, loss_id,
                                  param, K, fi, alpha, l1_ratio, rule_id, hyper, lrs, step0,
                                  theta, grad, state, batch_loss, parts, lparts, solo, scratch,
                                  0, nt, &bar, NULL)
        else:
            _pair_epoch(X, y, sw, d, order, m, batch_size, n_batches, loss_id, param, K, fi,
                        alpha, l1_ratio, rule_id, hyper, lrs, step0, theta1, grad1, state1,
                        batch_loss, parts, lparts, solo, scratch + _padded(K), 1, nt, &bar,
                        NULL)
    free(work)
    return done[0]


# Mid-sized batches with K = 1 and at least this many features are cut by features
# (_split_epoch) rather than by rows (_pair_epoch).  Module-level so tests and
# benchmarks can compare the two; the bits depend on it.
cdef Py_ssize_t _split_min_d = 32


def _set_split_min_d(Py_ssize_t value):
    """Test/benchmark knob: the number of features from which mid-sized batches are cut
    by features instead of rows (a huge value: never); returns the previous value."""
    global _split_min_d
    old = _split_min_d
    _split_min_d = value
    return old


cdef inline Py_ssize_t _split_at(Py_ssize_t d, Py_ssize_t K) noexcept nogil:
    """Where _split_epoch cuts the features (a multiple of 8 near d / 2), or 0 when the
    batches are cut into row halves instead (_pair_epoch).  A rule on the shapes only."""
    if K != 1 or d < _split_min_d or d < 16:
        return 0
    return ((d // 2 + 4) // 8) * 8


cdef void _part_margins(const xfloat* X, const xfloat* y, const xfloat* sw, Py_ssize_t d,
                        const int64_t* order, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t m,
                        Py_ssize_t ahead, Py_ssize_t lo, Py_ssize_t hi, const afloat* theta,
                        afloat* q) noexcept nogil:
    """q[r] = x_i[lo:hi] . theta[lo:hi] for the rows i = order[start + r] of a batch,
    four rows at a time (float64); requests [lo:hi) of the rows ``ahead`` positions on
    (and their labels and weights)."""
    cdef Py_ssize_t pos, t, w = hi - lo
    cdef int64_t i
    pos = start
    while pos < stop:
        for t in range(pos, pos + 4 if pos + 4 <= stop else stop):
            if t + ahead < m:
                i = order[t + ahead]
                fgd_prefetch_row(X + i * d + lo, w * sizeof(xfloat))
                fgd_prefetch_row(y + i, sizeof(xfloat))
                if sw != NULL:
                    fgd_prefetch_row(sw + i, sizeof(xfloat))
        if xfloat is double and afloat is double and pos + 4 <= stop:
            fgd_dot4_dd(X + order[pos] * d + lo, X + order[pos + 1] * d + lo,
                        X + order[pos + 2] * d + lo, X + order[pos + 3] * d + lo, theta + lo, w,
                        q + pos - start)
            pos += 4
        else:
            q[pos - start] = _dot(X + order[pos] * d + lo, theta + lo, w)
            pos += 1


cdef double _split_coefs(const xfloat* y, const xfloat* sw, const int64_t* order,
                         Py_ssize_t start, Py_ssize_t stop, int loss_id, double param,
                         afloat b, const afloat* q0, const afloat* q1, afloat scale,
                         afloat* a, afloat* work) noexcept nogil:
    """a[r] = c_r dl(p_r, y_r) with p_r = (q0[r] + q1[r]) + b and c_r = scale sw_r,
    for the rows of a batch; returns sum c_r l_r (row order).  ``work``: 3 x the
    batch's rows."""
    cdef Py_ssize_t nb = stop - start, r, nv = 0
    cdef int64_t i
    cdef afloat c
    cdef afloat* pb = work
    cdef afloat* yb = work + nb
    cdef afloat* lb = work + 2 * nb
    cdef double loss = 0.0
    cdef bint small = True
    cdef Py_ssize_t s0, cnt
    cdef double pd[64]
    cdef double yd[64]
    cdef double ld[64]
    cdef double ad[64]
    for r in range(nb):
        pb[r] = (q0[r] + q1[r]) + b
        yb[r] = <afloat>y[order[start + r]]
        small &= fabs(pb[r]) <= 700
    if loss_id == LOSS_LOGISTIC and small:
        nv = nb & ~(<Py_ssize_t>3)
        if afloat is double:
            fgd_logistic_rows_x4(pb, yb, nv, lb, a)  # exp and log1p, 16 rows a step
        else:  # the same call in double, 64 rows at a time (scalar float losses were slower)
            for s0 in range(0, nv, 64):
                cnt = nv - s0 if nv - s0 < 64 else 64
                for r in range(cnt):
                    pd[r] = pb[s0 + r]
                    yd[r] = yb[s0 + r]
                fgd_logistic_rows_x4(pd, yd, cnt, ld, ad)
                for r in range(cnt):
                    lb[s0 + r] = <afloat>ld[r]
                    a[s0 + r] = <afloat>ad[r]
    for r in range(nv, nb):
        lb[r] = loss_dloss(loss_id, param, pb[r], yb[r], &a[r])
    for r in range(nb):
        c = scale if sw == NULL else scale * <afloat>sw[order[start + r]]
        loss += <double>(c * lb[r])
        a[r] = a[r] * c
    return loss


cdef void _part_grad(const xfloat* X, Py_ssize_t d, const int64_t* order, Py_ssize_t start,
                     Py_ssize_t stop, Py_ssize_t lo, Py_ssize_t hi, const afloat* a,
                     afloat* g) noexcept nogil:
    """g[lo:hi] = sum_r a[r] x_i[lo:hi] over the rows i = order[start + r] (overwritten):
    four rows a pass, then single rows (the rows are still in cache from the margins)."""
    cdef Py_ssize_t nb = stop - start, r = 0, w = hi - lo
    memset(g + lo, 0, w * sizeof(afloat))
    while r + 4 <= nb:
        _axpy4_l1(a + r, X + order[start + r] * d + lo, X + order[start + r + 1] * d + lo,
                  X + order[start + r + 2] * d + lo, X + order[start + r + 3] * d + lo, g + lo, w)
        r += 4
    for r in range(r, nb):
        _axpy(a[r], X + order[start + r] * d + lo, g + lo, w)


cdef Py_ssize_t _split_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                             Py_ssize_t d, const int64_t* order, Py_ssize_t m,
                             Py_ssize_t batch_size, Py_ssize_t n_batches, int loss_id,
                             double param, bint fi, double alpha, double l1_ratio, int rule_id,
                             const double* hyper, const double* lrs, long long step0,
                             Py_ssize_t h, afloat* theta, afloat* grad, afloat* state,
                             afloat* theta0, afloat* state0, double* batch_loss, afloat* q,
                             Py_ssize_t qstride, double* pens, afloat* a, int* solo, int tid,
                             int T, fgd_team_barrier* bar, fgd_reader* rd) noexcept nogil:
    """The epoch of mid-sized batches (K = 1) with the features cut at h, as thread
    ``tid`` of T (1 or 2) sees it.

    Part 0 is features [0, h), part 1 features [h, d).  Per batch, each part's
    partial margins x_i[part] . w[part] go to ``q`` (parity k % 2, part: qstride
    elements each); after one barrier both threads form p_i = (q0_i + q1_i) + b, the
    loss and the coefficients a_i = c_i dl_i, and each then forms the gradient of its
    own part and applies the update rule to it; the intercept, from sum a_i, is updated
    by both.  So 2 x batch-size margins (and two penalty values, ``pens``: parity,
    part, a cache line each) cross the cores per batch, each thread reads and updates
    only its part of the rows and weights, and nothing is applied twice but the
    intercept.  T = 1 runs both parts itself: the same calls, the same bits.
    ``a``: this thread's 4 x qstride elements (coefficients and _split_coefs' work).
    Thread 1 works on its own copy of the parameters (``theta``, ``state``; thread 0's
    are ``theta0``, ``state0``) and hands its part back at the end, or when the pair
    is contended (thread 0 decides before barrier k, in solo[k % 2], and goes on alone
    after one more barrier that waits for the hand-back).
    Returns n_done (thread 1: n_done, or -1 when it left the pair)."""
    cdef Py_ssize_t P = d + (1 if fi else 0)
    cdef Py_ssize_t S = _state_slots(rule_id)
    cdef Py_ssize_t k, r, s, part, start, stop, nb, lo, hi, n_done = n_batches
    cdef afloat* qb
    cdef double* pb
    cdef afloat b, gb
    cdef double loss
    cdef fgd_thread_state ts
    fgd_thread_init(&ts)
    for part in range(2):
        if part % T == tid:
            lo = 0 if part == 0 else h
            hi = h if part == 0 else d
            pens[part * 8] = c_penalty_value(theta + lo, hi - lo, alpha, l1_ratio)
    for k in range(n_batches):
        start = k * batch_size
        stop = _batch_stop(k, batch_size, m)
        nb = stop - start
        qb = q + (k & 1) * 2 * qstride
        pb = pens + (k & 1) * 16
        if rd != NULL:
            fgd_reader_at(rd, start)
        fgd_batch_start(bar, &ts)
        for part in range(2):
            if part % T == tid:
                _part_margins(X, y, sw, d, order, start, stop, m, batch_size,
                              0 if part == 0 else h, h if part == 0 else d, theta,
                              qb + part * qstride)
        if T > 1:
            if tid == 0:
                solo[k & 1] = fgd_contended(bar)
            fgd_barrier_wait(bar, &ts)
            if solo[k & 1]:
                if tid != 0:
                    n_done = -1
                    break
                fgd_barrier_wait(bar, &ts)  # thread 1 has handed its part back
                T = 1
                fgd_barrier_solo(bar)
        b = theta[d] if fi else 0
        loss = _split_coefs(y, sw, order, start, stop, loss_id, param, b, qb, qb + qstride,
                            <afloat>(1.0 / nb), a, a + qstride)
        loss = loss + (pb[0] + pb[8])
        if tid == 0:
            batch_loss[k] = loss
        if not isfinite(loss):
            n_done = k
            break
        pb = pens + ((k + 1) & 1) * 16
        if fi:
            gb = 0
            for r in range(nb):
                gb = gb + a[r]
            grad[d] = gb
        if T == 1 and alpha == 0:
            # Both parts on this thread and no penalty values to keep apart: one pass for
            # the gradient and one for the update, whose elementwise arithmetic is that of
            # the per-part calls (the same bits).
            _part_grad(X, d, order, start, stop, 0, d, a, grad)
            c_update_penalized_range(rule_id, hyper, theta, grad, state, P, 0, P, lrs[k],
                                     step0 + k + 1, 0, 0.0, 0.0)
            pb[0] = 0.0
            pb[8] = 0.0
            continue
        for part in range(2):
            if part % T == tid:
                lo = 0 if part == 0 else h
                hi = h if part == 0 else d
                _part_grad(X, d, order, start, stop, lo, hi, a, grad)
                pb[part * 8] = c_update_penalized_range(rule_id, hyper, theta, grad, state, P,
                                                        lo, hi - lo, lrs[k], step0 + k + 1,
                                                        hi - lo, alpha, l1_ratio)
        if fi:
            c_update_penalized_range(rule_id, hyper, theta, grad, state, P, d, 1, lrs[k],
                                     step0 + k + 1, 0, 0.0, 0.0)
    if tid == 1:  # hand part 1 back to thread 0's parameters
        memcpy(theta0 + h, theta + h, (d - h) * sizeof(afloat))
        for s in range(S):
            memcpy(state0 + s * P + h, state + s * P + h, (d - h) * sizeof(afloat))
        if n_done == -1:
            fgd_barrier_wait(bar, &ts)
    return n_done


cdef inline Py_ssize_t _line_up(Py_ssize_t n, Py_ssize_t itemsize) noexcept nogil:
    # n elements rounded up to whole cache lines (in elements)
    cdef Py_ssize_t per = 64 // itemsize
    return (n + per - 1) // per * per


cdef Py_ssize_t _run_split_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                                 Py_ssize_t d, const int64_t* order, Py_ssize_t m,
                                 Py_ssize_t batch_size, Py_ssize_t n_batches, int loss_id,
                                 double param, bint fi, double alpha, double l1_ratio,
                                 int rule_id, const double* hyper, const double* lrs,
                                 long long step0, afloat* theta, afloat* grad, afloat* state,
                                 double* batch_loss, int T, fgd_reader* rd) noexcept nogil:
    """Runs _split_epoch on T threads (1 or 2; one thread tells ``rd`` where it is, if
    not NULL); -1 if out of memory."""
    cdef Py_ssize_t P = d + (1 if fi else 0)
    cdef Py_ssize_t S = _state_slots(rule_id) * P
    cdef Py_ssize_t h = _split_at(d, 1)
    cdef Py_ssize_t max_rows = batch_size if batch_size < m else m
    cdef Py_ssize_t qs = _line_up(max_rows, sizeof(afloat))
    cdef Py_ssize_t ps = _line_up(P, sizeof(afloat))
    cdef Py_ssize_t done[1]
    cdef Py_ssize_t r
    cdef int tid, nt
    cdef int solo[2]
    cdef fgd_team_barrier bar
    # line-aligned: pens (2 parities x 2 parts, a line each), q (2 x 2), each thread's a
    # and margins, labels, losses (4 x the rows), and thread 1's theta, grad and state
    cdef Py_ssize_t bytes_ = (4 * qs + 8 * qs + 3 * ps + S) * sizeof(afloat) + 32 * sizeof(double)
    cdef char* raw = <char*>malloc(bytes_ + 64)
    cdef char* base
    cdef afloat* q
    cdef double* pens
    cdef afloat* a0
    cdef afloat* a1
    cdef afloat* theta1
    cdef afloat* grad1
    cdef afloat* state1
    if raw == NULL:
        return -1
    base = raw + (64 - (<size_t>raw) % 64) % 64
    pens = <double*>base
    q = <afloat*>(base + 32 * sizeof(double))
    a0 = q + 4 * qs
    a1 = a0 + 4 * qs
    theta1 = a1 + 4 * qs
    grad1 = theta1 + ps
    state1 = grad1 + ps
    solo[0] = 0
    solo[1] = 0
    if T == 1:
        fgd_barrier_init(&bar, 1)
        r = _split_epoch(X, y, sw, d, order, m, batch_size, n_batches, loss_id, param, fi,
                         alpha, l1_ratio, rule_id, hyper, lrs, step0, h, theta, grad, state,
                         theta, state, batch_loss, q, qs, pens, a0, solo, 0, 1, &bar, rd)
        free(raw)
        return r
    memcpy(theta1, theta, P * sizeof(afloat))
    memcpy(state1, state, S * sizeof(afloat))
    with parallel(num_threads=2):
        tid = openmp.omp_get_thread_num()
        nt = openmp.omp_get_num_threads()
        if tid == 0:
            fgd_barrier_init(&bar, nt)
        fgd_omp_barrier()
        if tid == 0:
            done[0] = _split_epoch(X, y, sw, d, order, m, batch_size, n_batches, loss_id,
                                   param, fi, alpha, l1_ratio, rule_id, hyper, lrs, step0, h,
                                   theta, grad, state, theta, state, batch_loss, q, qs, pens,
                                   a0, solo, 0, nt, &bar, NULL)
        else:
            _split_epoch(X, y, sw, d, order, m, batch_size, n_batches, loss_id, param, fi,
                         alpha, l1_ratio, rule_id, hyper, lrs, step0, h, theta1, grad1, state1,
                         theta, state, batch_loss, q, qs, pens, a1, solo, 1, nt, &bar, NULL)
    free(raw)
    return done[0]


cdef Py_ssize_t _serial_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                              Py_ssize_t n, Py_ssize_t d, const int64_t* order, Py_ssize_t m,
                              Py_ssize_t batch_size, Py_ssize_t n_batches, int loss_id,
                              double loss_param, Py_ssize_t K, bint fit_intercept,
                              double alpha, double l1_ratio, int rule_id,
                              const double* hyper, const double* lrs, long long step0,
                              afloat* theta, afloat* grad, afloat* state,
                              double* batch_loss, fgd_reader* rd) noexcept nogil:
    """Batch after batch on this thread (the rows of large batches in parallel chunks);
    tells ``rd`` where it is, if not NULL.  -1 if out of memory."""
    cdef Py_ssize_t P = d * K + (K if fit_intercept else 0)
    cdef Py_ssize_t n_pen = d * K
    cdef Py_ssize_t k, start, stop
    cdef Py_ssize_t max_rows = batch_size if batch_size < m else m
    cdef afloat* work
    cdef int* counts = NULL
    cdef int64_t* srt = NULL
    cdef double loss, pen
    cdef Py_ssize_t n_done = n_batches
    work = <afloat*>malloc(_work_size(max_rows, d, K, P) * sizeof(afloat))
    if _use_sorted(max_rows, n):
        counts = <int*>malloc(n * sizeof(int))
        srt = <int64_t*>malloc(max_rows * sizeof(int64_t))
        if counts == NULL or srt == NULL:
            n_done = -1
    if work == NULL:
        n_done = -1
    if n_done == -1:
        free(work)
        free(counts)
        free(srt)
        return -1
    pen = c_penalty_value(theta, n_pen, alpha, l1_ratio)
    for k in range(n_batches):
        start = k * batch_size
        stop = _batch_stop(k, batch_size, m)
        if rd != NULL:
            fgd_reader_at(rd, start)
        loss = _batch_grad(X, y, sw, n, d, order, start, stop, m, loss_id, loss_param, K,
                           fit_intercept, theta, grad, <afloat>(1.0 / (stop - start)), work,
                           counts, srt)
        loss = loss + pen
        batch_loss[k] = loss
        if not isfinite(loss):
            n_done = k
            break
        pen = c_update_penalized(rule_id, hyper, theta, grad, state, P, lrs[k],
                                 step0 + k + 1, n_pen, alpha, l1_ratio)
    free(work)
    free(counts)
    free(srt)
    return n_done


cdef enum:
    EPOCH_SGD1 = 0      # _sgd1_epoch
    EPOCH_HALVES = 1    # _paired_epoch on one thread
    EPOCH_SERIAL = 2    # _serial_epoch
    EPOCH_SPLIT = 3     # _run_split_epoch on one thread
    EPOCH_RULE1 = 4     # _rule1_epoch
    EPOCH_SGD_RULE1 = 5  # _sgd_rule1_epoch
    EPOCH_SOFTMAX1 = 6  # _softmax1_epoch


cdef Py_ssize_t _one_thread_epoch(int kind, const xfloat* X, const xfloat* y,
                                  const xfloat* sw, Py_ssize_t n, Py_ssize_t d,
                                  const int64_t* order, Py_ssize_t m, Py_ssize_t batch_size,
                                  Py_ssize_t n_batches, int loss_id, double loss_param,
                                  Py_ssize_t K, bint fit_intercept, double alpha,
                                  double l1_ratio, int rule_id, const double* hyper,
                                  const double* lrs, long long step0, afloat* theta,
                                  afloat* grad, afloat* state, double* batch_loss,
                                  fgd_reader* rd) noexcept nogil:
    cdef Py_ssize_t r
    if kind == EPOCH_SGD1:
        return _sgd1_epoch(X, y, sw, d, order, m, n_batches, loss_id, loss_param,
                           fit_intercept, alpha, l1_ratio, lrs, theta, batch_loss, rd)
    if kind == EPOCH_SGD_RULE1:
        return _sgd_rule1_epoch(X, y, sw, d, order, m, n_batches, loss_id, loss_param,
                                fit_intercept, hyper, lrs, step0, theta, grad, state, batch_loss,
                                rd)
    if kind == EPOCH_RULE1:
        return _rule1_epoch(X, y, sw, d, order, m, n_batches, loss_id, loss_param,
                            fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
                            grad, state, batch_loss, rd)
    if kind == EPOCH_SOFTMAX1:
        r = _softmax1_epoch(X, y, sw, d, order, m, n_batches, K, fit_intercept, alpha, l1_ratio,
                            rule_id, hyper, lrs, step0, theta, grad, state, batch_loss, rd)
        if r >= 0:
            return r
        # no memory for the transposed copies: the general loop (the same results)
    if kind == EPOCH_HALVES:
        return _paired_epoch(X, y, sw, n, d, order, m, batch_size, n_batches, loss_id,
                             loss_param, K, fit_intercept, alpha, l1_ratio, rule_id, hyper,
                             lrs, step0, theta, grad, state, batch_loss, 1, rd)
    if kind == EPOCH_SPLIT:
        return _run_split_epoch(X, y, sw, d, order, m, batch_size, n_batches, loss_id,
                                loss_param, fit_intercept, alpha, l1_ratio, rule_id, hyper,
                                lrs, step0, theta, grad, state, batch_loss, 1, rd)
    return _serial_epoch(X, y, sw, n, d, order, m, batch_size, n_batches, loss_id, loss_param,
                         K, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
                         grad, state, batch_loss, rd)


cdef Py_ssize_t c_linear_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                               Py_ssize_t n, Py_ssize_t d, const int64_t* order, Py_ssize_t m,
                               Py_ssize_t batch_size, Py_ssize_t n_batches, int loss_id,
                               double loss_param, Py_ssize_t K, bint fit_intercept,
                               double alpha, double l1_ratio, int rule_id,
                               const double* hyper, const double* lrs, long long step0,
                               afloat* theta, afloat* grad, afloat* state,
                               double* batch_loss) noexcept nogil:
    cdef Py_ssize_t P = d * K + (K if fit_intercept else 0)
    cdef Py_ssize_t max_rows = batch_size if batch_size < m else m
    cdef Py_ssize_t cr
    cdef Py_ssize_t done[1]
    cdef fgd_reader rd
    cdef int kind, tid
    if (K == 1 and batch_size == 1 and rule_id == RULE_SGD and hyper[0] == 0
            and hyper[3] == 0):
        kind = EPOCH_SGD1
    elif K == 1 and batch_size == 1 and rule_id == RULE_SGD and alpha == 0:
        kind = EPOCH_SGD_RULE1
    elif K == 1 and batch_size == 1:
        kind = EPOCH_RULE1
    elif batch_size == 1:
        kind = EPOCH_SOFTMAX1
    elif _paired(max_rows, n, d, K, P):
        kind = EPOCH_SPLIT if _split_at(d, K) > 0 else EPOCH_HALVES
        if _pair_threads(max_rows, d, K, n_batches) == 2:
            if kind == EPOCH_SPLIT:
                if not _split_reads(n, d, sizeof(xfloat), max_rows):
                    return _run_split_epoch(X, y, sw, d, order, m, batch_size, n_batches,
                                            loss_id, loss_param, fit_intercept, alpha,
                                            l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                                            state, batch_loss, 2, NULL)
            else:
                return _paired_epoch(X, y, sw, n, d, order, m, batch_size, n_batches, loss_id,
                                     loss_param, K, fit_intercept, alpha, l1_ratio, rule_id,
                                     hyper, lrs, step0, theta, grad, state, batch_loss, 2,
                                     NULL)
    else:
        kind = EPOCH_SERIAL
    # (the shape tests first: _use_reader scans the order, which BGD need not pay for)
    if ((kind != EPOCH_SERIAL or (c_chunk_layout(max_rows, d, K, P, &cr) == 1
                                  and not _use_sorted(max_rows, n)))
            and _use_reader(n, d, sizeof(xfloat), order, m)):
        # one thread trains, the other reads its rows ahead (fgd_reader.h)
        fgd_reader_init(&rd)
        with parallel(num_threads=1 + _reader_threads()):
            tid = openmp.omp_get_thread_num()
            if tid == 0:
                done[0] = _one_thread_epoch(kind, X, y, sw, n, d, order, m, batch_size,
                                            n_batches, loss_id, loss_param, K, fit_intercept,
                                            alpha, l1_ratio, rule_id, hyper, lrs, step0,
                                            theta, grad, state, batch_loss, &rd)
                fgd_reader_done(&rd)
            else:
                fgd_read_ahead(&rd, <const char*>X, d * sizeof(xfloat), d * sizeof(xfloat),
                               <const char*>y, <const char*>sw, sizeof(xfloat), order, m,
                               tid - 1, openmp.omp_get_num_threads() - 1)
        return done[0]
    return _one_thread_epoch(kind, X, y, sw, n, d, order, m, batch_size, n_batches, loss_id,
                             loss_param, K, fit_intercept, alpha, l1_ratio, rule_id, hyper,
                             lrs, step0, theta, grad, state, batch_loss, NULL)


# ---------------------------------------------------------------------------
# Python-callable wrappers.

cdef _check_loss(int loss_id):
    if loss_id == LOSS_CUSTOM:
        raise ValueError("loss_id=LOSS_CUSTOM (-1): user-defined losses are not supported by "
                         "the Cython backend; use backend='numba' (or 'numpy')")


def _batch_gradient_impl(const xfloat[:, ::1] X, const xfloat[::1] y, const xfloat[::1] sw,
                         const int64_t[::1] rows, int loss_id, double loss_param,
                         Py_ssize_t K, bint fit_intercept, const afloat[::1] theta,
                         afloat[::1] grad, double scale):
    cdef Py_ssize_t d = X.shape[1], P = d * K + (K if fit_intercept else 0)
    cdef double loss
    cdef bint out_of_memory
    cdef const xfloat* swp = &sw[0] if sw.shape[0] > 0 else NULL
    if rows.shape[0] == 0:
        grad[:P] = 0
        return 0.0
    with nogil:
        loss = _linear_batch_gradient(&X[0, 0], &y[0], swp, X.shape[0], d, &rows[0],
                                      rows.shape[0], loss_id, loss_param, K, fit_intercept,
                                      &theta[0], &grad[0], scale, &out_of_memory)
    if out_of_memory:
        raise MemoryError("linear_batch_gradient: no memory for the batch's scratch "
                          f"({rows.shape[0]} rows)")
    return loss


def linear_batch_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept,
                          theta, grad, scale):
    """grad = scale * sum_{i in rows} sw_i dl_i/dtheta (overwritten); returns
    scale * sum sw_i l_i.  No penalty (see add_penalty)."""
    rows = checks.linear_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs,
                                  fit_intercept, theta, grad, scale)
    _check_loss(loss_id)
    y, sw = checks.data_arrays(X, y, sw)
    return _batch_gradient_impl(X, y, sw, rows, int(loss_id),
                                0.0 if loss_param is None else float(loss_param),
                                int(n_outputs), bool(fit_intercept), theta, grad, float(scale))


def _add_penalty_impl(const afloat[::1] theta, afloat[::1] grad, Py_ssize_t n_penalized,
                      double alpha, double l1_ratio):
    if alpha == 0 or n_penalized <= 0:
        return 0.0
    cdef double v
    with nogil:
        v = c_add_penalty(&theta[0], &grad[0], n_penalized, alpha, l1_ratio)
    return v


def add_penalty(theta, grad, n_penalized, alpha, l1_ratio):
    """grad[:n_penalized] += alpha*((1-r) w + r sign(w)); returns the penalty value."""
    checks.penalty(theta, grad, n_penalized, alpha, l1_ratio)
    return _add_penalty_impl(theta, grad, int(n_penalized), float(alpha), float(l1_ratio))


def _epoch_impl(const xfloat[:, ::1] X, const xfloat[::1] y, const xfloat[::1] sw,
                const int64_t[::1] order, Py_ssize_t batch_size, Py_ssize_t n_batches,
                int loss_id, double loss_param, Py_ssize_t K, bint fit_intercept,
                double alpha, double l1_ratio, int rule_id, const double[::1] hyper,
                const double[::1] lrs, long long step0, afloat[::1] theta, afloat[::1] grad,
                afloat[:, ::1] state, double[::1] batch_loss):
    cdef Py_ssize_t d = X.shape[1]
    cdef Py_ssize_t n_done
    cdef const xfloat* swp = &sw[0] if sw.shape[0] > 0 else NULL
    if n_batches <= 0:
        return 0
    with nogil:
        n_done = c_linear_epoch(&X[0, 0], &y[0], swp, X.shape[0], d, &order[0], order.shape[0],
                                batch_size, n_batches, loss_id, loss_param, K,
                                fit_intercept, alpha, l1_ratio, rule_id, &hyper[0], &lrs[0],
                                step0, &theta[0], &grad[0], &state[0, 0], &batch_loss[0])
    if n_done < 0:
        raise MemoryError("linear_epoch: cannot allocate the per-chunk workspace")
    return n_done


def linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                 fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                 state, batch_loss):
    """One epoch, batch by batch, in one nogil call; returns n_done (docs/kernels.md)."""
    order = checks.linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                                n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                                step0, theta, grad, state, batch_loss)
    _check_loss(loss_id)
    y, sw = checks.data_arrays(X, y, sw)
    return _epoch_impl(X, y, sw, order, int(batch_size), int(n_batches), int(loss_id),
                       0.0 if loss_param is None else float(loss_param), int(n_outputs),
                       bool(fit_intercept), float(alpha), float(l1_ratio), int(rule_id),
                       checks.real_array("hyper", hyper, np.float64),
                       checks.real_array("lrs", lrs, np.float64), int(step0), theta, grad,
                       state, batch_loss)


def chunk_layout(n_rows, d, n_outputs=1, fit_intercept=True):
    """(n_chunks, rows_per_chunk) the kernels use for a batch of n_rows rows;
    n_chunks == 1 means the batch is processed serially."""
    cdef Py_ssize_t cr
    cdef Py_ssize_t K = n_outputs, dd = d
    cdef Py_ssize_t nc = c_chunk_layout(n_rows, dd, K, dd * K + (K if fit_intercept else 0),
                                        &cr)
    return int(nc), int(cr)


def _workspace_check(Py_ssize_t max_rows, Py_ssize_t d, Py_ssize_t K, bint fit_intercept):
    """Test hook: (elements _work_size allocates for batches of up to max_rows rows, the
    most that _batch_grad's layout uses for any batch of 1..max_rows rows)."""
    cdef Py_ssize_t P = d * K + (K if fit_intercept else 0), nb, nc, cr, need = 0, used
    with nogil:
        for nb in range(1, max_rows + 1):
            nc = c_chunk_layout(nb, d, K, P, &cr)
            used = _even(nc * (_padded(P) + _padded(K)) + K) + 2 * nc if nc > 1 else K
            if used > need:
                need = used
    return int(_work_size(max_rows, d, K, P)), int(need)


def _softmax4(const double[:, ::1] scores, const Py_ssize_t[::1] cls):
    """Test hook: the softmax losses of four rows (``scores`` (4, K)) as the float64
    batches take them (``fgd_softmax4_dd``): (loss (4,), dl (4, K), vectorised), where
    ``vectorised`` False means the scalar path would run instead (dl and loss then NaN)."""
    cdef Py_ssize_t K = scores.shape[1], k, r
    cdef Py_ssize_t c4[4]
    if scores.shape[0] != 4 or cls.shape[0] != 4:
        raise ValueError("_softmax4: scores must be (4, K) and cls (4,)")
    s = np.empty(4 * K)
    cdef double[::1] sv = s
    loss = np.full(4, np.nan)
    cdef double[::1] lv = loss
    for r in range(4):
        if not 0 <= cls[r] < K:
            raise ValueError(f"_softmax4: class {cls[r]} outside 0..{K - 1}")
        c4[r] = cls[r]
        for k in range(K):
            sv[4 * k + r] = scores[r, k]
    vec = bool(fgd_softmax4_dd(&sv[0], K, c4, &lv[0]))
    dl = s.reshape(K, 4).T.copy() if vec else np.full((4, K), np.nan)
    return loss, dl, vec


def _dot4_impl(const xfloat[:, ::1] x, const afloat[::1] w, afloat[::1] out):
    with nogil:
        _dot4(&x[0, 0], &x[1, 0], &x[2, 0], &x[3, 0], &w[0], w.shape[0], &out[0])


def _dot4_rows(x, w):
    """Test hook: the four rows of ``x`` (4, d) dotted with ``w`` (d,) as the softmax
    batches do it (``_dot4``: x float32 or float64, w of the sums' dtype)."""
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    if x.ndim != 2 or x.shape[0] != 4 or w.shape != (x.shape[1],):
        raise ValueError("_dot4_rows: x must be (4, d) and w (d,)")
    out = np.zeros(4, w.dtype)
    if x.shape[1]:
        _dot4_impl(x, w, out)
    return out


def batch_split(d, n_outputs=1):
    """Where mid-sized batches (see epoch_threads) cut the features between the two
    threads (a multiple of 8 near d / 2), or 0 when they cut the rows instead."""
    cdef Py_ssize_t dd = d, K = n_outputs
    return int(_split_at(dd, K))


def epoch_threads(Py_ssize_t n, Py_ssize_t d, Py_ssize_t n_outputs, bint fit_intercept,
                  Py_ssize_t batch_size, Py_ssize_t n_batches, Py_ssize_t itemsize=8):
    """How many threads ``linear_epoch`` would run an epoch's batches on now (1: serial;
    a reader thread is not counted), so a caller can keep other work off the cores it
    uses.  ``itemsize``: X's (4 or 8)."""
    cdef Py_ssize_t K = n_outputs
    cdef Py_ssize_t P = d * K + (K if fit_intercept else 0)
    cdef Py_ssize_t rows = batch_size if batch_size < n else n
    cdef Py_ssize_t cr
    cdef int T = openmp.omp_get_max_threads()
    if T < 2:
        return 1
    if _paired(rows, n, d, K, P):
        if _split_at(d, K) > 0 and _split_reads(n, d, itemsize, rows):
            return 1
        return _pair_threads(rows, d, K, n_batches)
    return T if c_chunk_layout(rows, d, K, P, &cr) > 1 else 1


def _one_thread_after_fork():
    # libgomp's thread pool does not survive fork(): a forked child that opens a parallel
    # region waits for ever for threads that are not there.  The child trains on one thread
    # instead (no result depends on the thread count).  numba's OpenMP layer has no such
    # way out: it stops the child (docs/decisions.md).
    openmp.omp_set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_one_thread_after_fork)


def omp_max_threads():
    """The number of OpenMP threads a parallel batch would use now."""
    return openmp.omp_get_max_threads()


cdef double _read_span(const double* X, Py_ssize_t d, const int64_t* order,
                       Py_ssize_t m) noexcept nogil:
    """Brings every cache line of the rows order[0:m] in, as the reader thread does
    (the row FGD_READER_PREFETCH ahead requested, then one load a line); returns the
    sum of one element a line (a checksum)."""
    cdef Py_ssize_t pos, j
    cdef const double* row
    cdef double s = 0.0
    for pos in range(m):
        if pos + FGD_READER_PREFETCH < m:
            fgd_prefetch_row(X + order[pos + FGD_READER_PREFETCH] * d, d * sizeof(double))
        row = X + order[pos] * d
        for j in range(0, d, 8):  # 8 doubles: one cache line
            s += row[j]
        s += row[d - 1]
    return s


def _read_rows(X, order, int threads=1):
    """Benchmark helper: the memory floor of an epoch that visits the rows of X
    (float64) in ``order``: every cache line of every row is brought in, with the
    reader thread's prefetching and nothing else (no arithmetic to overlap); returns
    a checksum of the lines read.  ``threads`` (1 or 2) threads take the first and the
    second half of the order.  With ``threads=2`` its time is a floor for any epoch that
    fetches every row in that order the way these kernels do, whatever it computes
    (docs/cython.md)."""
    cdef const double[:, ::1] Xv = np.ascontiguousarray(X, dtype=np.float64)
    cdef const int64_t[::1] ov = np.ascontiguousarray(order, dtype=np.int64)
    cdef Py_ssize_t m = ov.shape[0], d = Xv.shape[1], half
    checks.rows_in_range("order", np.asarray(ov), Xv.shape[0])
    cdef double part[2]
    cdef int t
    if threads not in (1, 2):
        raise ValueError(f"_read_rows: threads must be 1 or 2, got {threads}")
    if m == 0 or d == 0:
        return 0.0
    half = (m + 1) // 2 if threads == 2 else m
    part[1] = 0.0
    for t in prange(threads, nogil=True, num_threads=threads, schedule="static"):
        part[t] = _read_span(&Xv[0, 0], d, &ov[0] + t * half, half if t == 0 else m - half)
    return part[0] + part[1]
