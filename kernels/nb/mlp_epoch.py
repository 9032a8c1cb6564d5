"""One epoch of a multi-layer perceptron, in Numba: the whole epoch in compiled code.

Same names, signatures and results as ``fastgd.reference.mlp_epoch`` (layouts in
docs/kernels.md, design in docs/mlp.md); the algorithm is the Cython backend's
(``kernels/cy/mlp_epoch.pyx``), line for line.  Per batch:

1. gather the batch rows ``X[order[...]]`` into a contiguous block of ``work``
   (converted to the accumulation dtype A of theta);
2. forward: per layer one GEMM ``Z = A_prev @ W``, then bias + activation;
3. head loss and its derivative, scaled by ``s_i / |B|`` (``losses.py``'s code);
4. backward: per layer ``G_prev = (G @ W^T) * act'`` and ``gW = A_prev^T @ G`` (GEMMs);
5. penalty (W's only) and the update rule (``updates.apply_update``).
Plain SGD without penalty or weight decay folds the update into the backward GEMM,
``W <- W - lr * A_prev^T @ G`` (BLAS alpha = -lr, beta = 1), once ``G_prev`` has been
computed with the old W; ``grad`` is then never written.

GEMMs: the BLAS entry that ``np.dot`` lowers to in Numba (Numba's ``numba_xxgemm``
helper, which calls scipy's ``cython_blas`` ``?gemm``), called directly so that alpha,
beta and leading dimensions reach BLAS (sub-blocks, accumulation, the fused update).
Every GEMM is cut into tiles of at most ``ST_WORK`` multiply-adds, which OpenBLAS runs
on the calling thread.

Threads: ``mlp_epoch`` runs the epoch on a team of ``numba.get_num_threads()`` threads
(fewer for small problems): the calling thread and T - 1 Python threads, each inside the
same ``nogil`` kernel, splitting every layer into fixed blocks of ``BLOCK`` units and
meeting at a spin-then-yield barrier (atomics) between phases. A team whose threads wait
long at barriers (another process holds a CPU) finishes the epoch on the calling thread
alone. Results are bit-identical for any T, and with or without that switch.
``mlp_epoch_serial`` is the same epoch on one thread, an ``@njit`` function for users'
own ``@njit`` code. Nothing is allocated per batch.
"""
import sys
import threading

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from .config import kernel
from .losses import loss_dloss, softmax_loss_dloss
from .updates import _apply_update
from .. import checks
from ..ids import ACT_RELU, ACT_TANH, LOSS_SOFTMAX, RULE_SGD

#: OpenBLAS runs a GEMM on the calling thread when m*n*k <= 65536 * 4.
ST_WORK = 262144
#: Tile rows (32-row tiles use OpenBLAS's small-matrix kernels on AVX-512) and columns.
TILE_M = 32
TILE_N = 128
#: Units per block of a layer's forward (output units) / backward (input units).
BLOCK = 32
#: A team thread gets at least this many multiply-adds per batch, else fewer threads.
MIN_TEAM_WORK = 1 << 20
_min_team_work = MIN_TEAM_WORK
#: A thread that waited at barriers more than this (and more than half of the batch so
#: far) marks the team contended; the epoch then finishes on one thread.  In cycles of
#: the CPU's time-stamp counter (about 0.2 ms at 3 GHz).
CONTENDED_WAIT_CYCLES = 600_000
_contended_wait = CONTENDED_WAIT_CYCLES

_MAX_FINITE = 1.7976931348623157e308
_N, _T = ord("N"), ord("T")


def _set_contended_wait(seconds):
    """Test knob: the barrier wait that marks the team contended (< 0: at once, so the
    epoch goes solo after its first barrier), in seconds (converted at 3 GHz); returns
    the previous value in seconds."""
    global _contended_wait
    old = _contended_wait / 3e9 if _contended_wait >= 0 else -1.0
    _contended_wait = int(seconds * 3e9) if seconds >= 0 else -1
    return old


def _set_min_team_work(value):
    """Test/benchmark knob: the per-thread work floor (0: always the full team);
    returns the previous value."""
    global _min_team_work
    old = _min_team_work
    _min_team_work = int(value)
    return old


# ---------------------------------------------------------------- low-level pieces

# int numba_xxgemm(char kind, char transa, char transb, intp m, n, k, void* alpha, void* a,
#                  intp lda, void* b, intp ldb, void* beta, void* c, intp ldc)
# (Numba's helper, exported by its helper library; column-major, like BLAS.)
_xxgemm = types.ExternalFunction("numba_xxgemm", types.intc(
    types.char, types.char, types.char, types.intp, types.intp, types.intp, types.voidptr,
    types.voidptr, types.intp, types.voidptr, types.intp, types.voidptr, types.voidptr,
    types.intp))


@intrinsic
def _atomic_add(typingctx, arr, idx, val):
    """arr[idx] += val atomically (acq_rel) on an int64 array; returns the new value."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None
    sig = types.int64(arr, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        old = builder.atomic_rmw("add", ptr, args[2], "acq_rel")
        return builder.add(old, args[2])
    return sig, codegen


@intrinsic
def _atomic_load(typingctx, arr, idx):
    """arr[idx] read with acquire ordering (int64 array)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None
    sig = types.int64(arr, types.intp)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        return builder.load_atomic(ptr, "acquire", 8)
    return sig, codegen


@intrinsic
def _atomic_store(typingctx, arr, idx, val):
    """arr[idx] = val with release ordering (int64 array)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None
    sig = types.void(arr, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def _addr(typingctx, arr, off):
    """The address of arr[off] (1-D array) as a void pointer.  Unlike ``arr[off:].ctypes``
    it makes no array view, so no reference count is touched: views of the shared work
    arrays from several threads would make their reference counts bounce between cores."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1):
        return None
    sig = types.voidptr(arr, types.intp)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        return builder.bitcast(ptr, ir.IntType(8).as_pointer())
    return sig, codegen


@intrinsic
def _cycles(typingctx):
    """The CPU's cycle counter (``llvm.readcyclecounter``; 0 where there is none)."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.readcyclecounter",
                                              fnty=ir.FunctionType(ir.IntType(64), []))
        return builder.call(fn, [])
    return sig, codegen


_HAVE_SCHED_YIELD = sys.platform != "win32"


@intrinsic
def _yield_cpu(typingctx):
    """sched_yield() where the C library has it; nothing elsewhere."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _HAVE_SCHED_YIELD:
            fn = cgutils.get_or_insert_function(builder.module,
                                                ir.FunctionType(ir.IntType(32), []),
                                                "sched_yield")
            builder.call(fn, [])
        return context.get_dummy_value()
    return sig, codegen


@kernel
def _barrier(bar, ts):
    """Sense-reversing barrier.  ``bar`` (shared, int64): [count, sense, n, contended,
    wait limit in cycles (< 0: always contended)]; ``ts`` (the thread's own, int64):
    [sense, batch start, cycles waited this batch].  Spins a while, then yields the CPU.
    A thread that waited more than the limit and more than half of the batch so far
    sets ``contended`` (another process has a CPU: a descheduled partner stalls every
    barrier)."""
    s = 1 - ts[0]
    ts[0] = s
    n = bar[2]
    if n <= 1:
        return
    if _atomic_add(bar, 0, 1) == n:
        _atomic_store(bar, 0, 0)
        _atomic_store(bar, 1, s)
        return
    w0 = _cycles()
    spins = 0
    while _atomic_load(bar, 1) != s:
        spins += 1
        if spins > 4096:
            _yield_cpu()
    now = _cycles()
    ts[2] += now - w0
    limit = bar[4]
    if limit < 0 or (ts[2] > limit and 2 * ts[2] > now - ts[1]):
        _atomic_store(bar, 3, 1)


@kernel
def _batch_start(bar, ts):
    if bar[2] > 1:
        ts[1] = _cycles()
        ts[2] = 0


@kernel
def _finite(x):
    """False for inf and NaN.  Not ``math.isfinite``: Numba lowers it as an ordered
    compare of ``x - x`` with itself, and under the ``reassoc`` fast-math flag LLVM may
    simplify ``x - x`` when x is a sum (``math.isfinite(a + b)`` returns True for
    a = inf).  An ordered compare against the largest double cannot be folded without
    ``nnan``/``ninf``."""
    return abs(x) <= _MAX_FINITE


@kernel
def _gemm1(ta, tb, m, n, k, alpha, A, a0, lda, B, b0, ldb, beta, C, c0, ldc, ab):
    """One BLAS call, row-major: C[c0:] (m, n) = alpha op(A[a0:]) op(B[b0:]) + beta C with
    row-major leading dimensions; ``ta``/``tb`` are ord('N') or ord('T').  A, B, C are
    flat arrays of one dtype; ``ab`` (2,) of that dtype carries alpha and beta.  The
    column-major call is C^T = op(B)^T op(A)^T: operands swapped, same flags."""
    ab[0] = alpha
    ab[1] = beta
    kind = ord("s") if C.itemsize == 4 else ord("d")
    _xxgemm(kind, tb, ta, n, m, k, _addr(ab, 0), _addr(B, b0), ldb, _addr(A, a0), lda,
            _addr(ab, 1), _addr(C, c0), ldc)


@kernel
def _gemm(ta, tb, m, n, k, alpha, A, a0, lda, B, b0, ldb, beta, C, c0, ldc, ab):
    """As ``_gemm1``, cut into tiles of TILE_M rows x up to TILE_N columns x kt (k chunks
    summed with beta = 1) of at most ST_WORK multiply-adds, so that BLAS runs them on
    the calling thread.  The tiling depends on (m, n, k) only."""
    if m * n * k <= ST_WORK:
        _gemm1(ta, tb, m, n, k, alpha, A, a0, lda, B, b0, ldb, beta, C, c0, ldc, ab)
        return
    mt = min(m, TILE_M)
    nt = min(n, TILE_N)
    kt = min(k, ST_WORK // (mt * nt))
    for i0 in range(0, m, mt):
        mm = min(mt, m - i0)
        for j0 in range(0, n, nt):
            nn = min(nt, n - j0)
            for p0 in range(0, k, kt):
                kk = min(kt, k - p0)
                ao = a0 + (i0 * lda + p0 if ta == _N else p0 * lda + i0)
                bo = b0 + (p0 * ldb + j0 if tb == _N else j0 * ldb + p0)
                _gemm1(ta, tb, mm, nn, kk, alpha, A, ao, lda, B, bo, ldb,
                       beta if p0 == 0 else 1.0, C, c0 + i0 * ldc + j0, ldc, ab)


@kernel
def _sigmoid(z):
    e = np.exp(-abs(z))
    if z >= 0:
        return 1.0 / (1.0 + e)
    return e / (1.0 + e)


@kernel
def _bias_act(Z, z0, b, b0, nb, ld, n, act, hidden):
    """Z[z0:] (nb rows, ``ld`` apart, first n columns) += b[b0:b0+n], then the activation
    in place for hidden layers."""
    for i in range(nb):
        r = z0 + i * ld
        if not hidden:
            for j in range(n):
                Z[r + j] += b[b0 + j]
        elif act == ACT_RELU:
            for j in range(n):
                v = Z[r + j] + b[b0 + j]
                Z[r + j] = v if v > 0 else 0.0
        elif act == ACT_TANH:
            for j in range(n):
                Z[r + j] = np.tanh(Z[r + j] + b[b0 + j])
        else:
            for j in range(n):
                Z[r + j] = _sigmoid(Z[r + j] + b[b0 + j])


@kernel
def _times_act_grad(G, g0, A, a0, nb, ld, n, act):
    """G[g0:] *= act'(z) through the activation's output A[a0:] (nb rows ``ld`` apart,
    n columns); relu multiplies by the 0/1 mask, as the reference does."""
    for i in range(nb):
        rg = g0 + i * ld
        ra = a0 + i * ld
        if act == ACT_RELU:
            for j in range(n):
                G[rg + j] *= 1.0 if A[ra + j] > 0 else 0.0
        elif act == ACT_TANH:
            for j in range(n):
                a = A[ra + j]
                G[rg + j] *= 1.0 - a * a
        else:
            for j in range(n):
                a = A[ra + j]
                G[rg + j] *= a * (1.0 - a)


@kernel
def _layout(layer_sizes):
    """(w_off (L,), cum (L + 3,)): theta offset of each W_l (b_l follows it), and per-row
    workspace offsets: layer l's input block at nb*cum[l], the two delta buffers at
    nb*cum[L+1] and nb*(cum[L+1] + H) (H = widest layer), the end at nb*cum[L+2]."""
    L = layer_sizes.shape[0] - 1
    w_off = np.empty(L + 1, np.int64)
    cum = np.zeros(L + 3, np.int64)
    off = 0
    widest = 0
    for l in range(L):
        w_off[l] = off
        off += layer_sizes[l] * layer_sizes[l + 1] + layer_sizes[l + 1]
        widest = max(widest, layer_sizes[l + 1])
    w_off[L] = off  # = P
    for l in range(L + 1):
        cum[l + 1] = cum[l] + layer_sizes[l]
    cum[L + 2] = cum[L + 1] + 2 * widest
    return w_off, cum


@kernel
def mlp_n_params(layer_sizes):
    """Length of theta for ``layer_sizes`` (int64 array)."""
    p = 0
    for l in range(layer_sizes.shape[0] - 1):
        p += layer_sizes[l] * layer_sizes[l + 1] + layer_sizes[l + 1]
    return p


@kernel
def mlp_workspace_size(layer_sizes, batch_size):
    """``b * (d + h1 + ... + K_out + 2 * max(h1, ..., K_out) + 1)`` (see the reference)."""
    total = layer_sizes[0]
    widest = 0
    for l in range(1, layer_sizes.shape[0]):
        total += layer_sizes[l]
        widest = max(widest, layer_sizes[l])
    return batch_size * (total + 2 * widest + 1)


# ---------------------------------------------------------------- phases of a batch
# Run by every thread of the team (tid in 0..T-1) on its share of fixed blocks; the
# caller puts a barrier between phases.

@kernel
def _batch_forward(X, y, sw, rows, loss_id, sizes, act, theta, scale, work, w_off, cum,
                   ab, tid, T, bar, ts, shared):
    """Gather, forward, head loss (thread 0).  Returns the data loss on thread 0 (0.0 on
    the others); leaves the layer outputs and the head delta in ``work``.  Ends with a
    barrier, before which thread 0 sets ``shared[1]`` (go solo) from the contention
    flag."""
    L = sizes.shape[0] - 1
    nb = rows.shape[0]
    d = sizes[0]
    for i in range(tid, nb, T):
        r = rows[i]
        for j in range(d):
            work[i * d + j] = X[r, j]
    _barrier(bar, ts)
    for l in range(L):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        a0 = nb * cum[l]
        z0 = nb * cum[l + 1]
        for j0 in range(tid * BLOCK, n_out, T * BLOCK):
            nn = min(BLOCK, n_out - j0)
            _gemm(_N, _N, nb, nn, n_in, 1.0, work, a0, n_in, theta, w_off[l] + j0, n_out,
                  0.0, work, z0 + j0, n_out, ab)
            _bias_act(work, z0 + j0, theta, w_off[l] + n_in * n_out + j0, nb, n_out, nn, act,
                      l < L - 1)
        _barrier(bar, ts)
    loss = 0.0
    if tid == 0:
        K = sizes[L]
        z0 = nb * cum[L]
        g0 = nb * cum[L + 1]
        weighted = sw.shape[0] > 0
        for i in range(nb):
            r = rows[i]
            c = scale * sw[r] if weighted else scale
            if loss_id == LOSS_SOFTMAX:
                li = softmax_loss_dloss(work[z0 + i * K:z0 + (i + 1) * K], y[r],
                                        work[g0 + i * K:g0 + (i + 1) * K])
                for j in range(K):
                    work[g0 + i * K + j] *= c
            else:  # squared or logistic, one output
                li, dl = loss_dloss(loss_id, 0.0, work[z0 + i], y[r])
                work[g0 + i] = c * dl
            loss += c * li
        if T > 1:  # once set, never reset: a leaving thread may read it late
            shared[1] = 1.0 if _atomic_load(bar, 3) != 0 else 0.0
    _barrier(bar, ts)
    return loss


@kernel
def _batch_backward(sizes, act, theta, grad, nb, work, w_off, cum, lr, fused, ab, tid, T,
                    bar, ts):
    """Backward from the head delta; ``fused``: plain SGD applied inside the GEMMs (grad
    only holds the bias sums).  A barrier after each layer."""
    L = sizes.shape[0] - 1
    widest = (cum[L + 2] - cum[L + 1]) // 2
    cur = 0
    for l in range(L - 1, -1, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        a0 = nb * cum[l]
        g0 = nb * (cum[L + 1] + cur * widest)
        gp0 = nb * (cum[L + 1] + (1 - cur) * widest)
        w0 = w_off[l]
        for j0 in range(tid * BLOCK, n_in, T * BLOCK):
            nn = min(BLOCK, n_in - j0)
            if l > 0:  # G_prev with the W of before the update
                _gemm(_N, _T, nb, nn, n_out, 1.0, work, g0, n_out, theta, w0 + j0 * n_out,
                      n_out, 0.0, work, gp0 + j0, n_in, ab)
                _times_act_grad(work, gp0 + j0, work, a0 + j0, nb, n_in, nn, act)
            if fused:
                _gemm(_T, _N, nn, n_out, nb, -lr, work, a0 + j0, n_in, work, g0, n_out, 1.0,
                      theta, w0 + j0 * n_out, n_out, ab)
            else:
                _gemm(_T, _N, nn, n_out, nb, 1.0, work, a0 + j0, n_in, work, g0, n_out, 0.0,
                      grad, w0 + j0 * n_out, n_out, ab)
        if tid == 0:
            gb0 = w0 + n_in * n_out
            for j in range(n_out):
                grad[gb0 + j] = 0.0
            for i in range(nb):
                for j in range(n_out):
                    grad[gb0 + j] += work[g0 + i * n_out + j]
            if fused:
                for j in range(n_out):
                    theta[gb0 + j] -= lr * grad[gb0 + j]
        _barrier(bar, ts)
        cur = 1 - cur


@kernel
def _penalty(theta, grad, sizes, alpha, l1_ratio, w_off):
    """Add alpha * ((1 - r) W + r sign(W)) to the W parts of grad; return the penalty."""
    if alpha == 0.0:
        return 0.0
    a2 = alpha * (1.0 - l1_ratio)
    a1 = alpha * l1_ratio
    total = 0.0
    for l in range(sizes.shape[0] - 1):
        sq = 0.0
        ab = 0.0
        for i in range(w_off[l], w_off[l] + sizes[l] * sizes[l + 1]):
            w = theta[i]
            sq += w * w
            ab += abs(w)
            sgn = 1.0 if w > 0 else (-1.0 if w < 0 else 0.0)
            grad[i] += a2 * w + a1 * sgn
        total += 0.5 * a2 * sq + a1 * ab
    return total


@kernel
def _team_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes, activation_id,
                alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
                work, tid, T, bar, shared):
    """The epoch as seen by thread ``tid`` of a team of T: thread 0 returns n_done, the
    others n_done too, or -1 when they leave a contended team (thread 0 then finishes
    the epoch alone, with the same blocks and tiles, so the same bits).  ``bar``: see
    ``_barrier``; ``shared``: float64 (2,), the batch loss and the go-solo flag, written
    by thread 0 before a barrier."""
    m = order.shape[0]
    w_off, cum = _layout(layer_sizes)
    ab = np.empty(2, theta.dtype)  # this thread's alpha/beta for BLAS
    ts = np.zeros(3, np.int64)
    # plain SGD, no penalty, no weight decay: the update rides on the backward GEMMs
    fused = rule_id == RULE_SGD and hyper[0] == 0.0 and hyper[3] == 0.0 and alpha == 0.0
    for k in range(n_batches):
        start = k * batch_size
        stop = min(start + batch_size, m)
        nb = stop - start
        _batch_start(bar, ts)
        loss = _batch_forward(X, y, sw, order[start:stop], loss_id, layer_sizes,
                              activation_id, theta, 1.0 / nb, work, w_off, cum, ab, tid, T,
                              bar, ts, shared)
        if T > 1 and shared[1] != 0.0:  # contended: thread 0 goes on alone
            if tid != 0:
                return -1
            T = 1
            _atomic_store(bar, 2, 1)
        if fused:
            if tid == 0:
                batch_loss[k] = loss
                shared[0] = loss
            _barrier(bar, ts)
            if not _finite(shared[0]):
                return k
            _batch_backward(layer_sizes, activation_id, theta, grad, nb, work, w_off, cum,
                            lrs[k], True, ab, tid, T, bar, ts)
            continue
        _batch_backward(layer_sizes, activation_id, theta, grad, nb, work, w_off, cum, 0.0,
                        False, ab, tid, T, bar, ts)
        if tid == 0:
            loss += _penalty(theta, grad, layer_sizes, alpha, l1_ratio, w_off)
            batch_loss[k] = loss
            shared[0] = loss
            if _finite(loss):
                _apply_update(rule_id, hyper, theta, grad, state, lrs[k], step0 + k + 1)
        _barrier(bar, ts)
        if not _finite(shared[0]):
            return k
    return n_batches


# ---------------------------------------------------------------- public kernels

@kernel
def _mlp_batch_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad,
                        scale, work):
    w_off, cum = _layout(layer_sizes)
    ab = np.empty(2, theta.dtype)
    bar = np.array([0, 0, 1, 0, -1], np.int64)
    ts = np.zeros(3, np.int64)
    loss = _batch_forward(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, scale,
                          work, w_off, cum, ab, 0, 1, bar, ts, np.zeros(2))
    _batch_backward(layer_sizes, activation_id, theta, grad, rows.shape[0], work, w_off, cum,
                    0.0, False, ab, 0, 1, bar, ts)
    return loss


@kernel
def _mlp_add_penalty(theta, grad, layer_sizes, alpha, l1_ratio):
    w_off, cum = _layout(layer_sizes)
    return _penalty(theta, grad, layer_sizes, alpha, l1_ratio, w_off)


@kernel
def mlp_epoch_serial(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes,
                     activation_id, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                     state, batch_loss, work):
    """``mlp_epoch`` on the calling thread, for users' own ``@njit`` code (bit-identical
    to the threaded ``mlp_epoch``)."""
    return _team_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes,
                       activation_id, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
                       grad, state, batch_loss, work, 0, 1,
                       np.array([0, 0, 1, 0, -1], np.int64), np.zeros(2))


def mlp_batch_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad, scale,
                       work):
    """grad = scale * sum_{i in rows} s_i dl_i/dtheta (all of grad overwritten); returns
    scale * sum s_i l_i.  No penalty.  ``work`` must hold
    ``mlp_workspace_size(layer_sizes, len(rows))`` elements of theta's dtype.  Checked
    when Python calls it; the kernel itself (trusting its inputs) in ``@njit`` code."""
    layer_sizes = checks.layer_sizes_array(layer_sizes)
    rows = checks.mlp_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad,
                               scale, work)
    y, sw = checks.data_arrays(X, y, sw)
    if not theta.flags.writeable:  # (only read, but the passes it shares with the epoch
        theta = theta.copy()       # type it writeable: P elements, not a kernel of its own)
    return _mlp_batch_gradient(X, y, sw, rows, int(loss_id), layer_sizes, int(activation_id),
                               theta, grad, float(scale), work)


@overload(mlp_batch_gradient)
def _ol_mlp_batch_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad,
                           scale, work):
    def impl(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad, scale, work):
        return _mlp_batch_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta,
                                   grad, scale, work)
    return impl


def mlp_add_penalty(theta, grad, layer_sizes, alpha, l1_ratio):
    """Add the penalty's (sub)gradient to the W parts of grad; return its value (checked
    from Python, the kernel itself in ``@njit`` code)."""
    layer_sizes = checks.layer_sizes_array(layer_sizes)
    checks.mlp_penalty(theta, grad, layer_sizes, alpha, l1_ratio)
    return _mlp_add_penalty(theta, grad, layer_sizes, float(alpha), float(l1_ratio))


@overload(mlp_add_penalty)
def _ol_mlp_add_penalty(theta, grad, layer_sizes, alpha, l1_ratio):
    def impl(theta, grad, layer_sizes, alpha, l1_ratio):
        return _mlp_add_penalty(theta, grad, layer_sizes, alpha, l1_ratio)
    return impl


def team_size(layer_sizes, batch_size, n_rows):
    """Threads ``mlp_epoch`` uses: ``numba.get_num_threads()``, fewer when a thread would
    get less than MIN_TEAM_WORK multiply-adds per batch."""
    t = numba.get_num_threads()
    if _min_team_work > 0:
        b = min(int(batch_size), int(n_rows))
        p = sum(int(a) * int(c) + int(c) for a, c in zip(layer_sizes[:-1], layer_sizes[1:]))
        t = min(t, 2 * b * p // _min_team_work)
    return max(1, t)


def mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes, activation_id,
              alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
              work):
    """See ``fastgd.reference.mlp_epoch.mlp_epoch``; returns the number of batches applied.

    Runs on ``team_size(...)`` threads: this one plus T - 1 Python threads, each in the
    same ``nogil`` kernel (see the module docstring)."""
    layer_sizes = checks.layer_sizes_array(layer_sizes)
    order = checks.mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes,
                             activation_id, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
                             grad, state, batch_loss, work)
    y, sw = checks.data_arrays(X, y, sw)
    hyper = checks.real_array("hyper", hyper, np.float64)
    lrs = checks.real_array("lrs", lrs, np.float64)
    T = team_size(layer_sizes, batch_size, len(order))
    # (as the types of the cached kernels: an int alpha or a NumPy-integer count would
    # compile a kernel of its own)
    args = (X, y, sw, order, int(batch_size), int(n_batches), int(loss_id), layer_sizes,
            int(activation_id), float(alpha), float(l1_ratio), int(rule_id), hyper, lrs,
            int(step0), theta, grad, state, batch_loss, work)
    if T == 1:
        return int(mlp_epoch_serial(*args))
    bar = np.array([0, 0, T, 0, _contended_wait], np.int64)
    shared = np.zeros(2)
    helpers = [threading.Thread(target=_team_epoch, args=args + (t, T, bar, shared),
                                daemon=True) for t in range(1, T)]
    for h in helpers:
        h.start()
    try:
        done = _team_epoch(*args, 0, T, bar, shared)
    finally:
        for h in helpers:
            h.join()
    return int(done)
