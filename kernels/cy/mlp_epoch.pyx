# cython: language_level=3
"""Multi-layer perceptrons, one whole epoch per ``nogil`` call (docs/kernels.md, docs/mlp.md).

Python-callable, with the reference's signatures (``fastgd/reference/mlp_epoch.py``):

    mlp_workspace_size(layer_sizes, batch_size) -> int
    mlp_batch_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad,
                       scale, work) -> float
    mlp_add_penalty(theta, grad, layer_sizes, alpha, l1_ratio) -> float
    mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes, activation_id,
              alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
              work) -> int n_done

Per batch (inside one ``nogil`` call, nothing allocated):
- gather the batch's rows into a block of ``work`` (converted to the accumulation dtype);
- forward: per layer ``Z = A_prev @ W`` (GEMM) then bias + activation;
- head loss and d loss / d z scaled by ``s_i / |B|`` (``losses.pxd``'s per-sample code);
- backward: per layer ``G_prev = (G @ W^T) * act'`` and ``gW = A_prev^T @ G`` (GEMMs);
- penalty on the W's, then ``updates.c_apply_update``.
Plain SGD without penalty or weight decay folds the update into the backward GEMM,
``W <- W - lr * A_prev^T @ G`` (BLAS alpha = -lr, beta = 1), after ``G_prev`` has been
computed with the old W; ``grad`` is then never written.

Threads. One OpenMP team runs the whole epoch (a parallel region per epoch, not per
batch). Each layer's forward is cut into fixed blocks of BLOCK output units and its
backward into fixed blocks of BLOCK input units (a block of G_prev's columns and the
same block of W's rows depend on nothing else); the threads take blocks round robin and
meet at a spin-then-yield barrier between phases (about 2 L + 2 per batch). The serial
bits (head loss, the update rule when it is not folded) run on thread 0. Every GEMM is
cut into tiles of at most ST_WORK multiply-adds, which OpenBLAS runs on the calling
thread, so BLAS never starts threads of its own under the team. A team whose threads
wait long at barriers (another process holds a CPU, so a descheduled partner stalls
every phase) finishes the epoch on thread 0 alone. Block and tile shapes depend on the
layer sizes and the batch only: results are bit-identical for any number of threads, and
with or without that switch. Small problems (less than 2**20 multiply-adds per
batch and thread) run on fewer threads, down to one.

GEMMs go through ``scipy.linalg.cython_blas`` (column-major): a row-major (r, c) block is
the column-major (c, r) transpose, so row-major ``C = op(A) op(B)`` is the column-major
call ``C^T = op(B)^T op(A)^T`` with the operands swapped and the same transpose flags.
"""
import numpy as np

cimport openmp
from cython.parallel cimport parallel
from libc.math cimport exp, expf, tanh, tanhf, fabs, isfinite
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm

from .. import checks
from .losses cimport loss_dloss, softmax_loss_dloss
from .updates cimport c_apply_update

from .team cimport (FGD_TEAM_MAX, fgd_team_barrier, fgd_thread_state, fgd_barrier_init,
                    fgd_thread_init, fgd_batch_start, fgd_barrier_wait, fgd_contended,
                    fgd_barrier_solo, fgd_omp_barrier)

cdef extern from "fgd_team.h" nogil:
    double fgd_contended_wait

cdef enum:
    ACT_RELU = 0
    ACT_TANH = 1
    ACT_SIGMOID = 2
    LOSS_SOFTMAX = 2
    RULE_SGD = 0
    # OpenBLAS runs a GEMM on the calling thread when m*n*k <= 65536 * 4 (its
    # GEMM_MULTITHREAD_THRESHOLD): tiles of at most this much work never start its threads.
    ST_WORK = 262144
    # tile rows: 32-row tiles use OpenBLAS's small-matrix kernels on AVX-512 CPUs
    TILE_M = 32
    TILE_N = 128
    # units per block of a layer's forward (output units) / backward (input units)
    BLOCK = 32

# A team thread gets at least this many multiply-adds per batch (2 * rows * params in
# total), else the epoch uses fewer threads.  Module-level so tests can lower it.
cdef Py_ssize_t _min_team_work = 1 << 20


def _set_contended_wait(double seconds):
    """Test knob: the barrier wait that marks the team contended (< 0: at once, so the
    epoch goes solo after its first barrier); returns the previous value."""
    global fgd_contended_wait
    old = fgd_contended_wait
    fgd_contended_wait = seconds
    return old


def _set_min_team_work(Py_ssize_t value):
    """Test/benchmark knob: set the per-thread work floor (0: always the full team);
    returns the previous value."""
    global _min_team_work
    old = _min_team_work
    _min_team_work = value
    return old


# ---------------------------------------------------------------- BLAS

cdef inline void _gemm1(char ta, char tb, int m, int n, int k, afloat alpha, const afloat* A,
                        int lda, const afloat* B, int ldb, afloat beta, afloat* C,
                        int ldc) noexcept nogil:
    """One BLAS call: row-major C (m, n) = alpha op(A) op(B) + beta C, op(A) (m, k),
    op(B) (k, n); ``ta``/``tb`` are c'N' or c'T' and the leading dimensions are
    row-major (the row length of each stored block)."""
    if afloat is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>B, &ldb, <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>B, &ldb, <double*>A, &lda, &beta, C,
              &ldc)


cdef void _gemm(char ta, char tb, int m, int n, int k, afloat alpha, const afloat* A,
                int lda, const afloat* B, int ldb, afloat beta, afloat* C,
                int ldc) noexcept nogil:
    """As ``_gemm1``, cut into tiles of TILE_M rows x up to TILE_N columns x kt (the k
    chunks summed with beta = 1) of at most ST_WORK multiply-adds each, so that BLAS
    runs them on the calling thread.  The tiling depends on (m, n, k) only."""
    cdef int i0, j0, p0, mt, nt, kt, mm, nn, kk
    cdef const afloat* a
    cdef const afloat* b
    if <Py_ssize_t>m * n * k <= ST_WORK:
        _gemm1(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
        return
    mt = TILE_M if m > TILE_M else m
    nt = TILE_N if n > TILE_N else n
    kt = ST_WORK // (mt * nt)
    if kt > k:
        kt = k
    i0 = 0
    while i0 < m:
        mm = mt if m - i0 > mt else m - i0
        j0 = 0
        while j0 < n:
            nn = nt if n - j0 > nt else n - j0
            p0 = 0
            while p0 < k:
                kk = kt if k - p0 > kt else k - p0
                # offsets in Py_ssize_t: i0 * lda passes 2**31 at nb * n_in elements (a
                # BGD batch of 10M rows of 256 features), where int arithmetic wraps
                a = A + (<Py_ssize_t>i0 * lda + p0 if ta == c'N' else <Py_ssize_t>p0 * lda + i0)
                b = B + (<Py_ssize_t>p0 * ldb + j0 if tb == c'N' else <Py_ssize_t>j0 * ldb + p0)
                _gemm1(ta, tb, mm, nn, kk, alpha, a, lda, b, ldb,
                       beta if p0 == 0 else <afloat>1, C + <Py_ssize_t>i0 * ldc + j0, ldc)
                p0 += kk
            j0 += nn
        i0 += mm


# ---------------------------------------------------------------- elementwise pieces

cdef inline afloat _sigmoid(afloat z) noexcept nogil:
    cdef afloat e
    if afloat is float:
        e = expf(-fabs(z))
    else:
        e = exp(-fabs(z))
    if z >= 0:
        return <afloat>1.0 / (<afloat>1.0 + e)
    return e / (<afloat>1.0 + e)


cdef void _bias_act(afloat* Z, const afloat* b, Py_ssize_t nb, Py_ssize_t ld,
                    Py_ssize_t n, int act, bint hidden) noexcept nogil:
    """Z[:, :n] += b (row-wise), then the activation in place for hidden layers; Z's
    rows are ``ld`` apart."""
    cdef Py_ssize_t i, j
    cdef afloat v
    cdef afloat* z
    for i in range(nb):
        z = Z + i * ld
        if not hidden:
            for j in range(n):
                z[j] = z[j] + b[j]
        elif act == ACT_RELU:
            for j in range(n):
                v = z[j] + b[j]
                z[j] = v if v > 0 else 0
        elif act == ACT_TANH:
            for j in range(n):
                if afloat is float:
                    z[j] = tanhf(z[j] + b[j])
                else:
                    z[j] = tanh(z[j] + b[j])
        else:
            for j in range(n):
                z[j] = _sigmoid(z[j] + b[j])


cdef void _times_act_grad(afloat* G, const afloat* A, Py_ssize_t nb, Py_ssize_t ld,
                          Py_ssize_t n, int act) noexcept nogil:
    """G[:, :n] *= act'(z), written through the activation's output A (rows ``ld``
    apart in both).  relu multiplies by the 0/1 mask, as the reference does."""
    cdef Py_ssize_t i, j
    cdef afloat a
    cdef afloat* g
    cdef const afloat* ar
    for i in range(nb):
        g = G + i * ld
        ar = A + i * ld
        if act == ACT_RELU:
            for j in range(n):
                g[j] = g[j] * (<afloat>1 if ar[j] > 0 else <afloat>0)
        elif act == ACT_TANH:
            for j in range(n):
                a = ar[j]
                g[j] = g[j] * (1 - a * a)
        else:
            for j in range(n):
                a = ar[j]
                g[j] = g[j] * (a * (1 - a))


cdef void _col_sums(const afloat* G, Py_ssize_t nb, Py_ssize_t n, afloat* out) noexcept nogil:
    cdef Py_ssize_t i, j
    memset(out, 0, n * sizeof(afloat))
    for i in range(nb):
        for j in range(n):
            out[j] += G[i * n + j]


cdef inline Py_ssize_t _w_off(const int64_t* sizes, Py_ssize_t l) noexcept nogil:
    """Offset of W_l in theta (b_l follows W_l)."""
    cdef Py_ssize_t j, off = 0
    for j in range(l):
        off += sizes[j] * sizes[j + 1] + sizes[j + 1]
    return off


cdef inline Py_ssize_t _out_off(const int64_t* sizes, Py_ssize_t l, Py_ssize_t nb) noexcept nogil:
    """Offset in work of layer l's input block (l = 0: the gathered rows; l: a_l)."""
    cdef Py_ssize_t j, off = 0
    for j in range(l):
        off += sizes[j]
    return nb * off


cdef inline Py_ssize_t _delta_off(const int64_t* sizes, Py_ssize_t L, Py_ssize_t nb,
                                  int which) noexcept nogil:
    """Offset in work of delta buffer ``which`` (0 or 1)."""
    cdef Py_ssize_t l, widest = 0
    for l in range(1, L + 1):
        if sizes[l] > widest:
            widest = sizes[l]
    return _out_off(sizes, L + 1, nb) + which * nb * widest


cdef Py_ssize_t c_mlp_workspace_size(const int64_t* sizes, Py_ssize_t n_layers,
                                     Py_ssize_t batch_size) noexcept nogil:
    return _delta_off(sizes, n_layers, batch_size, 2) + batch_size


# ---------------------------------------------------------------- the phases of a batch
# Each phase is run by every thread of the team (tid in 0..T-1), which takes its share
# of fixed blocks; the caller puts a barrier between phases.

cdef void _gather(const xfloat* X, const int64_t* rows, Py_ssize_t nb, Py_ssize_t d,
                  afloat* xb, int tid, int T) noexcept nogil:
    cdef Py_ssize_t i = tid, j
    cdef const xfloat* xr
    while i < nb:
        xr = X + rows[i] * d
        if (xfloat is float and afloat is float) or (xfloat is double and afloat is double):
            memcpy(xb + i * d, xr, d * sizeof(afloat))
        else:
            for j in range(d):
                xb[i * d + j] = <afloat>xr[j]
        i += T


cdef void _forward_layer(const afloat* prev, afloat* Z, const afloat* W, const afloat* b,
                         Py_ssize_t nb, Py_ssize_t n_in, Py_ssize_t n_out, int act,
                         bint hidden, int tid, int T) noexcept nogil:
    """Z = act(prev @ W + b) on this thread's blocks of BLOCK output units."""
    cdef Py_ssize_t j0 = tid * BLOCK, nn
    while j0 < n_out:
        nn = BLOCK if n_out - j0 > BLOCK else n_out - j0
        _gemm(c'N', c'N', <int>nb, <int>nn, <int>n_in, <afloat>1, prev, <int>n_in, W + j0,
              <int>n_out, <afloat>0, Z + j0, <int>n_out)
        _bias_act(Z + j0, b + j0, nb, n_out, nn, act, hidden)
        j0 += T * BLOCK


cdef double _head_loss(const xfloat* y, const xfloat* sw, const int64_t* rows,
                       Py_ssize_t nb, int loss_id, Py_ssize_t K, const afloat* Z,
                       double scale, afloat* G) noexcept nogil:
    """G = c_i dl_i/dz (c_i = scale * s_i); returns sum_i c_i l_i."""
    cdef Py_ssize_t i, j, r
    cdef afloat c, dl, li
    cdef double total = 0.0
    for i in range(nb):
        r = rows[i]
        c = <afloat>scale if sw == NULL else <afloat>scale * <afloat>sw[r]
        if loss_id == LOSS_SOFTMAX:
            li = softmax_loss_dloss(Z + i * K, K, <Py_ssize_t>y[r], G + i * K)
            for j in range(K):
                G[i * K + j] = c * G[i * K + j]
        else:
            li = loss_dloss(loss_id, 0.0, Z[i], <afloat>y[r], &dl)
            G[i] = c * dl
        total += <double>(c * li)
    return total


cdef void _backward_layer(const afloat* A, const afloat* G, afloat* Gp, afloat* W, afloat* gW,
                          Py_ssize_t nb, Py_ssize_t n_in, Py_ssize_t n_out, int act,
                          double lr, bint fused, int tid, int T) noexcept nogil:
    """On this thread's blocks of BLOCK input units: G_prev[:, blk] = (G @ W[blk]^T) * act'
    (when Gp is not NULL) with the W of before the update, then gW[blk] = A[:, blk]^T @ G,
    or, ``fused``, W[blk] -= lr * A[:, blk]^T @ G.  The bias is left to the caller."""
    cdef Py_ssize_t j0 = tid * BLOCK, nn
    while j0 < n_in:
        nn = BLOCK if n_in - j0 > BLOCK else n_in - j0
        if Gp != NULL:
            _gemm(c'N', c'T', <int>nb, <int>nn, <int>n_out, <afloat>1, G, <int>n_out,
                  W + j0 * n_out, <int>n_out, <afloat>0, Gp + j0, <int>n_in)
            _times_act_grad(Gp + j0, A + j0, nb, n_in, nn, act)
        if fused:
            _gemm(c'T', c'N', <int>nn, <int>n_out, <int>nb, <afloat>(-lr), A + j0, <int>n_in,
                  G, <int>n_out, <afloat>1, W + j0 * n_out, <int>n_out)
        else:
            _gemm(c'T', c'N', <int>nn, <int>n_out, <int>nb, <afloat>1, A + j0, <int>n_in, G,
                  <int>n_out, <afloat>0, gW + j0 * n_out, <int>n_out)
        j0 += T * BLOCK


cdef double _batch_forward(const xfloat* X, const xfloat* y, const xfloat* sw,
                           const int64_t* rows, Py_ssize_t nb, int loss_id,
                           const int64_t* sizes, Py_ssize_t L, int act, const afloat* theta,
                           double scale, afloat* work, int tid, int T,
                           fgd_team_barrier* bar, fgd_thread_state* ts,
                           double* shared) noexcept nogil:
    """Gather, forward, head loss (thread 0).  Returns the data loss on thread 0 (0 on
    the others); leaves the layer outputs and the head delta in ``work``.  Ends with a
    barrier, before which thread 0 sets ``shared[1]`` (go solo) from the contention
    flag."""
    cdef Py_ssize_t l, woff = 0, n_in, n_out
    cdef double loss = 0.0
    _gather(X, rows, nb, sizes[0], work, tid, T)
    fgd_barrier_wait(bar, ts)
    for l in range(L):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        _forward_layer(work + _out_off(sizes, l, nb), work + _out_off(sizes, l + 1, nb),
                       theta + woff, theta + woff + n_in * n_out, nb, n_in, n_out, act,
                       l < L - 1, tid, T)
        woff += n_in * n_out + n_out
        fgd_barrier_wait(bar, ts)
    if tid == 0:
        loss = _head_loss(y, sw, rows, nb, loss_id, sizes[L], work + _out_off(sizes, L, nb),
                          scale, work + _delta_off(sizes, L, nb, 0))
        if T > 1:  # once set, never reset: a leaving thread may read it late
            shared[1] = 1.0 if fgd_contended(bar) else 0.0
    fgd_barrier_wait(bar, ts)
    return loss


cdef void _batch_backward(const int64_t* sizes, Py_ssize_t L, int act, afloat* theta,
                          afloat* grad, Py_ssize_t nb, afloat* work, double lr, bint fused,
                          int tid, int T, fgd_team_barrier* bar,
                          fgd_thread_state* ts) noexcept nogil:
    """Backward from the head delta; ``fused``: plain SGD applied inside the GEMMs (grad
    only holds the bias sums).  A barrier after each layer."""
    cdef Py_ssize_t l, j, n_in, n_out, woff
    cdef int cur = 0
    cdef afloat* G
    cdef afloat* gb
    cdef afloat* W
    for l in range(L - 1, -1, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        woff = _w_off(sizes, l)
        W = theta + woff
        G = work + _delta_off(sizes, L, nb, cur)
        _backward_layer(work + _out_off(sizes, l, nb), G,
                        work + _delta_off(sizes, L, nb, 1 - cur) if l > 0 else NULL,
                        W, grad + woff, nb, n_in, n_out, act, lr, fused, tid, T)
        if tid == 0:
            gb = grad + woff + n_in * n_out
            _col_sums(G, nb, n_out, gb)
            if fused:
                for j in range(n_out):
                    W[n_in * n_out + j] -= <afloat>lr * gb[j]
        fgd_barrier_wait(bar, ts)
        cur = 1 - cur


# ---------------------------------------------------------------- C-level API

cdef double c_mlp_batch_gradient(const xfloat* X, const xfloat* y, const xfloat* sw,
                                 const int64_t* rows, Py_ssize_t n_rows, int loss_id,
                                 const int64_t* sizes, Py_ssize_t n_layers, int activation_id,
                                 const afloat* theta, afloat* grad, double scale,
                                 afloat* work) noexcept nogil:
    cdef fgd_team_barrier bar
    cdef fgd_thread_state ts
    cdef double shared[2]
    cdef double loss
    fgd_barrier_init(&bar, 1)
    fgd_thread_init(&ts)
    loss = _batch_forward(X, y, sw, rows, n_rows, loss_id, sizes, n_layers, activation_id,
                          theta, scale, work, 0, 1, &bar, &ts, shared)
    # (the backward pass takes theta writeable for the epoch's fused update; with fused
    # False it only reads it, so a read-only theta is safe here)
    _batch_backward(sizes, n_layers, activation_id, <afloat*>theta, grad, n_rows, work, 0.0,
                    False, 0, 1, &bar, &ts)
    return loss


cdef double c_mlp_add_penalty(const afloat* theta, afloat* grad, const int64_t* sizes,
                              Py_ssize_t n_layers, double alpha,
                              double l1_ratio) noexcept nogil:
    cdef Py_ssize_t l, i, off = 0, n
    cdef double a2 = alpha * (1.0 - l1_ratio), a1 = alpha * l1_ratio, total = 0.0
    cdef double sq, ab, w, sgn
    if alpha == 0:
        return 0.0
    for l in range(n_layers):
        n = sizes[l] * sizes[l + 1]
        sq = 0.0
        ab = 0.0
        for i in range(off, off + n):
            w = theta[i]
            sq += w * w
            ab += fabs(w)
            sgn = 1.0 if w > 0 else (-1.0 if w < 0 else 0.0)
            grad[i] += <afloat>(a2 * w + a1 * sgn)
        total += 0.5 * a2 * sq + a1 * ab
        off += n + sizes[l + 1]
    return total


cdef Py_ssize_t _team_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                            const int64_t* order, Py_ssize_t m, Py_ssize_t batch_size,
                            Py_ssize_t n_batches, int loss_id, const int64_t* sizes,
                            Py_ssize_t L, int act, double alpha, double l1_ratio,
                            int rule_id, const double* hyper, const double* lrs,
                            long long step0, afloat* theta, afloat* grad, afloat* state,
                            double* batch_loss, afloat* work, int tid, int T,
                            fgd_team_barrier* bar, double* shared) noexcept nogil:
    """The epoch as seen by thread ``tid`` of a team of T: thread 0 returns n_done, the
    others n_done too, or -1 when they leave a contended team (thread 0 then finishes
    the epoch alone, with the same blocks and tiles, so the same bits).
    ``shared``: (2,) doubles, the batch loss and the go-solo flag, written by thread 0
    before a barrier."""
    cdef Py_ssize_t k, start, nb, P = _w_off(sizes, L)
    cdef fgd_thread_state ts
    cdef double loss
    # plain SGD, no penalty, no weight decay: the update rides on the backward GEMMs
    cdef bint fused = (rule_id == RULE_SGD and hyper[0] == 0 and hyper[3] == 0
                       and alpha == 0)
    fgd_thread_init(&ts)
    for k in range(n_batches):
        start = k * batch_size
        nb = m - start if m - start < batch_size else batch_size
        fgd_batch_start(bar, &ts)
        loss = _batch_forward(X, y, sw, order + start, nb, loss_id, sizes, L, act, theta,
                              1.0 / nb, work, tid, T, bar, &ts, shared)
        if T > 1 and shared[1] != 0:  # contended: thread 0 goes on alone
            if tid != 0:
                return -1
            T = 1
            fgd_barrier_solo(bar)
        if fused:
            if tid == 0:
                batch_loss[k] = loss
                shared[0] = loss
            fgd_barrier_wait(bar, &ts)
            if not isfinite(shared[0]):
                return k
            _batch_backward(sizes, L, act, theta, grad, nb, work, lrs[k], True, tid, T, bar,
                            &ts)
            continue
        _batch_backward(sizes, L, act, theta, grad, nb, work, 0.0, False, tid, T, bar, &ts)
        if tid == 0:
            loss += c_mlp_add_penalty(theta, grad, sizes, L, alpha, l1_ratio)
            batch_loss[k] = loss
            shared[0] = loss
            if isfinite(loss):
                c_apply_update(rule_id, hyper, theta, grad, state, P, lrs[k], step0 + k + 1)
        fgd_barrier_wait(bar, &ts)
        if not isfinite(shared[0]):
            return k
    return n_batches


cdef Py_ssize_t c_mlp_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                            const int64_t* order, Py_ssize_t m, Py_ssize_t batch_size,
                            Py_ssize_t n_batches, int loss_id, const int64_t* sizes,
                            Py_ssize_t n_layers, int activation_id, double alpha,
                            double l1_ratio, int rule_id, const double* hyper,
                            const double* lrs, long long step0, afloat* theta, afloat* grad,
                            afloat* state, double* batch_loss, afloat* work) noexcept nogil:
    cdef fgd_team_barrier bar
    cdef double shared[2]
    cdef Py_ssize_t done[1]
    cdef Py_ssize_t k, b = batch_size if batch_size < m else m
    cdef Py_ssize_t per_batch = 2 * b * _w_off(sizes, n_layers)
    cdef int T = openmp.omp_get_max_threads(), tid, nt
    shared[0] = 0.0
    shared[1] = 0.0
    if _min_team_work > 0 and per_batch // _min_team_work < T:
        T = <int>(per_batch // _min_team_work)
    if T > FGD_TEAM_MAX:
        T = FGD_TEAM_MAX
    if T < 1:
        T = 1
    if T == 1:
        fgd_barrier_init(&bar, 1)
        return _team_epoch(X, y, sw, order, m, batch_size, n_batches, loss_id, sizes,
                           n_layers, activation_id, alpha, l1_ratio, rule_id, hyper, lrs,
                           step0, theta, grad, state, batch_loss, work, 0, 1, &bar, shared)
    with parallel(num_threads=T):
        tid = openmp.omp_get_thread_num()
        nt = openmp.omp_get_num_threads()
        if tid == 0:
            fgd_barrier_init(&bar, nt)
        fgd_omp_barrier()
        k = _team_epoch(X, y, sw, order, m, batch_size, n_batches, loss_id, sizes,
                        n_layers, activation_id, alpha, l1_ratio, rule_id, hyper, lrs,
                        step0, theta, grad, state, batch_loss, work, tid, nt, &bar, shared)
        if tid == 0:
            done[0] = k
    return done[0]


# ---------------------------------------------------------------- Python API

def mlp_workspace_size(layer_sizes, batch_size):
    """Elements of dtype A the kernels need for batches of up to ``batch_size`` rows:
    ``b * (d + h1 + ... + K_out + 2 * max(h1, ..., K_out) + 1)``."""
    s = [int(v) for v in layer_sizes]
    return int(batch_size) * (sum(s) + 2 * max(s[1:]) + 1)


def mlp_batch_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad, scale,
                       work):
    """grad = scale * sum_{i in rows} s_i dl_i/dtheta; returns scale * sum s_i l_i.
    ``work`` holds at least ``mlp_workspace_size(layer_sizes, len(rows))`` elements.
    Runs on the calling thread."""
    layer_sizes = checks.layer_sizes_array(layer_sizes)
    rows = checks.mlp_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad,
                               scale, work)
    y, sw = checks.data_arrays(X, y, sw)
    return _batch_gradient(X, y, sw, rows, int(loss_id), layer_sizes, int(activation_id), theta,
                           grad, float(scale), work)


def _batch_gradient(const xfloat[:, ::1] X, const xfloat[::1] y, const xfloat[::1] sw,
                    const int64_t[::1] rows, int loss_id, const int64_t[::1] layer_sizes,
                    int activation_id, const afloat[::1] theta, afloat[::1] grad, double scale,
                    afloat[::1] work):
    cdef const xfloat* swp = &sw[0] if sw.shape[0] > 0 else NULL
    cdef double loss
    if rows.shape[0] == 0:
        grad[:] = 0
        return 0.0
    with nogil:
        loss = c_mlp_batch_gradient(&X[0, 0], &y[0], swp, &rows[0], rows.shape[0], loss_id,
                                    &layer_sizes[0], layer_sizes.shape[0] - 1, activation_id,
                                    &theta[0], &grad[0], scale, &work[0])
    return loss


def mlp_add_penalty(theta, grad, layer_sizes, alpha, l1_ratio):
    """Add the penalty's (sub)gradient to the W parts of grad; return its value."""
    layer_sizes = checks.layer_sizes_array(layer_sizes)
    checks.mlp_penalty(theta, grad, layer_sizes, alpha, l1_ratio)
    return _add_penalty(theta, grad, layer_sizes, float(alpha), float(l1_ratio))


def _add_penalty(const afloat[::1] theta, afloat[::1] grad, const int64_t[::1] layer_sizes,
                 double alpha, double l1_ratio):
    cdef double pen
    with nogil:
        pen = c_mlp_add_penalty(&theta[0], &grad[0], &layer_sizes[0],
                                layer_sizes.shape[0] - 1, alpha, l1_ratio)
    return pen


def mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes, activation_id,
              alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
              work):
    """See ``fastgd.reference.mlp_epoch.mlp_epoch``; returns the number of batches applied."""
    layer_sizes = checks.layer_sizes_array(layer_sizes)
    order = checks.mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes,
                             activation_id, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
                             grad, state, batch_loss, work)
    y, sw = checks.data_arrays(X, y, sw)
    return _epoch(X, y, sw, order, int(batch_size), int(n_batches), int(loss_id), layer_sizes,
                  int(activation_id), float(alpha), float(l1_ratio), int(rule_id),
                  checks.real_array("hyper", hyper, np.float64),
                  checks.real_array("lrs", lrs, np.float64), int(step0), theta, grad, state,
                  batch_loss, work)


def _epoch(const xfloat[:, ::1] X, const xfloat[::1] y, const xfloat[::1] sw,
           const int64_t[::1] order, Py_ssize_t batch_size, Py_ssize_t n_batches,
           int loss_id, const int64_t[::1] layer_sizes, int activation_id, double alpha,
           double l1_ratio, int rule_id, const double[::1] hyper, const double[::1] lrs,
           long long step0, afloat[::1] theta, afloat[::1] grad, afloat[:, ::1] state,
           double[::1] batch_loss, afloat[::1] work):
    cdef const xfloat* swp = &sw[0] if sw.shape[0] > 0 else NULL
    cdef Py_ssize_t done
    if n_batches == 0:
        return 0
    with nogil:
        done = c_mlp_epoch(&X[0, 0], &y[0], swp, &order[0], order.shape[0], batch_size,
                           n_batches, loss_id, &layer_sizes[0], layer_sizes.shape[0] - 1,
                           activation_id, alpha, l1_ratio, rule_id, &hyper[0], &lrs[0], step0,
                           &theta[0], &grad[0], &state[0, 0], &batch_loss[0], &work[0])
    return done
