"""Linear models on the GPU: per-batch gradient, penalty and update kernels.

Two paths, both deterministic (fixed-order reductions, no floating-point
atomics) and both equal to ``fastgd.reference.linear_epoch`` within the
project's tolerances:

fused path (small batches, ``config.FUSED_MAX_BATCH``)
    :func:`fused_epoch` -- ONE launch per epoch, one block that walks every
    batch of the epoch: partial gradients, penalty, batch loss, divergence
    check and update, with barriers between the phases.  Small batches are
    latency bound; one SM that never returns to the host beats any number of
    launches.

batched path (large batches, BGD)
    per batch TWO launches, no host synchronisation:
    :func:`batch_partials` (grid of G blocks; block g walks its rows of the
    batch and writes its partial gradient, partial data loss and a share of
    the penalty value into ``part[g, :]``), then :func:`reduce_update`
    (ceil(P / 32) blocks; each reduces its 32 columns of ``part`` over g in a
    fixed order, every block reduces the loss column the same way, adds the
    penalty and applies the update).  A device-side flag stops every later
    batch of the epoch once a batch loss is not finite, so theta and the
    state stay as they were before that batch (the reference's contract).
    With one output and at most ROW_MAX_FEATURES features the partial
    gradients come from :func:`batch_partials_rows` instead (one warp a row,
    no tiles, no barriers between rows): the work is a stream over X's rows.

Shared layout of one block (dtype ``T``, dynamic shared memory):
``[tile: rows x ld][pred/coef: rows x K][reduction scratch: 2 x threads]``.
A tile is ``rows`` rows of X (gathered through the batch order) by at most
``tc`` features (``ld`` = row stride, odd so column reads are bank-conflict
free).  One thread per (row, output) computes predictions from the tile; one
thread per row evaluates the loss and stores ``c_i * dloss`` (``c_i`` =
sample weight / |B|); one thread per (feature, output) then sums
``coef[r, k] * x[r, j]`` over the tile's rows in row order into its own slot of
the block's partial gradient (a row of ``part`` in global memory, owned by
that thread -- no atomics).  Wide X is walked in column chunks.

All kernels are made per accumulation dtype by :func:`linear_kernels`; the
data may be float32 while theta is float64 (values are cast when staged).
``linear_epoch`` here is the convention's entry point for host arrays (it
runs a :class:`~fastgd.kernels.cuda.engine.LinearEngine` for one epoch).
"""
import functools
import math

import numpy as np
from numba import cuda, float64

from .. import checks, ids
from .losses import loss_functions
from .updates import update_functions

LOSS_SOFTMAX = ids.LOSS_SOFTMAX

#: The row kernel keeps a row's features in registers, 32 a chunk (one per lane):
#: compiled for 1, 2, 4 or 8 chunks, it takes X with at most 256 columns.
ROW_MAX_FEATURES = 256


def row_chunks(n_features):
    """Chunks of the row kernel for ``n_features`` columns: a power of two, so a few
    kernels serve every width (registers grow with the chunks: 72 for 4 at float32,
    111 for 8)."""
    c = 1
    while 32 * c < n_features:
        c *= 2
    return c


class LinearKernels:
    def __init__(self, **fns):
        self.__dict__.update(fns)


@functools.lru_cache(maxsize=None)
def linear_kernels(dtype):
    """Device functions and kernels computing in ``dtype`` (float32 or float64)."""
    from numba.np.numpy_support import from_dtype

    T = from_dtype(np.dtype(dtype))
    zero = T(0.0)
    one = T(1.0)
    fns = loss_functions(np.dtype(dtype))
    scalar_loss = fns.scalar_loss
    softmax_row = fns.softmax_row
    update_one = update_functions(np.dtype(dtype)).update_one

    @cuda.jit(device=True)
    def load_tile(X, order, rowbase, nr, j0, nc, sm, ld, lane, grp, ngrp):
        # Warps over rows, lanes over features: a warp reads 32 consecutive
        # elements of a row at a time (coalesced).  Four rows per step, their
        # loads issued before any store, so each thread keeps four loads in
        # flight (rows past the tile's end re-read its last row, never stored).
        last = nr - 1
        for r in range(grp, nr, 4 * ngrp):
            r1 = r + ngrp
            r2 = r1 + ngrp
            r3 = r2 + ngrp
            i0 = order[rowbase + r]
            i1 = order[rowbase + min(r1, last)]
            i2 = order[rowbase + min(r2, last)]
            i3 = order[rowbase + min(r3, last)]
            for j in range(lane, nc, 32):
                c = j0 + j
                v0 = X[i0, c]
                v1 = X[i1, c]
                v2 = X[i2, c]
                v3 = X[i3, c]
                sm[r * ld + j] = T(v0)
                if r1 < nr:
                    sm[r1 * ld + j] = T(v1)
                if r2 < nr:
                    sm[r2 * ld + j] = T(v2)
                if r3 < nr:
                    sm[r3 * ld + j] = T(v3)

    @cuda.jit(device=True)
    def strided_dot(a, a0, da, b, b0, db, start, stop, step):
        """sum of a[a0 + i da] * b[b0 + i db] over i in range(start, stop, step), in order."""
        s = zero
        for i in range(start, stop, step):
            s += a[a0 + i * da] * b[b0 + i * db]
        return s

    @cuda.jit(device=True)
    def slices_sum(sm, off, count):
        """sm[off] + ... + sm[off + count - 1], in that order (the slices' partial sums)."""
        s = zero
        for q in range(count):
            s += sm[off + q]
        return s

    @cuda.jit(device=True)
    def block_rows(X, y, sw, order, base, r0, r1, scale, loss_id, eps, K, fit_intercept,
                   theta, acc, arow, sm, rows_cap, tc, ld, coef_off, red_off, split, t, nt):
        """acc[arow, :P] += sum over rows order[base+r0 : base+r1] of c_i dl_i/dtheta.

        Returns this thread's share of sum_i c_i l_i (c_i = scale * sw_i).
        Every thread of the block must call it with the same arguments.

        ``split`` > 1 (``config.SPLIT_DOTS``) cuts each prediction's dot product into
        up to ``split`` strided column slices and each gradient sum into row slices, on
        otherwise idle threads; the slices' partial sums meet in the reduction scratch
        and are added in slice order (fixed: the result depends on ``split``, never on
        timing).  ``split`` = 1 is one thread a dot product, as before.
        """
        d = X.shape[1]
        dK = d * K
        nchunks = (d + tc - 1) // tc
        lane = t % 32
        grp = t // 32
        ngrp = nt // 32
        has_sw = sw.shape[0] > 0
        myloss = zero
        tr0 = r0
        while tr0 < r1:
            nr = min(rows_cap, r1 - tr0)
            rowbase = base + tr0
            # pass A: predictions, chunk by chunk (same (row, output) per thread)
            for rk in range(t, nr * K, nt):
                sm[coef_off + rk] = zero
            for ch in range(nchunks):
                j0 = ch * tc
                nc = min(tc, d - j0)
                if ch > 0:
                    cuda.syncthreads()  # previous chunk's readers are done
                load_tile(X, order, rowbase, nr, j0, nc, sm, ld, lane, grp, ngrp)
                cuda.syncthreads()
                sa = max(1, min(split, nt // (nr * K), nc))
                if sa == 1:
                    for rk in range(t, nr * K, nt):
                        r = rk // K
                        k = rk - r * K
                        p = sm[coef_off + rk]
                        for j in range(nc):
                            p += sm[r * ld + j] * theta[(j0 + j) * K + k]
                        sm[coef_off + rk] = p
                else:
                    if t < nr * K * sa:  # slice q of (row, output) rk's columns
                        rk = t // sa
                        r = rk // K
                        k = rk - r * K
                        sm[red_off + t] = strided_dot(sm, r * ld, 1, theta, j0 * K + k, K,
                                                      t - rk * sa, nc, sa)
                    cuda.syncthreads()
                    for rk in range(t, nr * K, nt):
                        sm[coef_off + rk] += slices_sum(sm, red_off + rk * sa, sa)
            if K > 1:
                cuda.syncthreads()  # a row's K predictions come from K threads
            # the loss of each row; coef <- c_i * dloss_i
            for r in range(t, nr, nt):
                row = order[rowbase + r]
                c = scale
                if has_sw:
                    c = scale * T(sw[row])
                if loss_id == LOSS_SOFTMAX:
                    off = coef_off + r * K
                    if fit_intercept:
                        for k in range(K):
                            sm[off + k] = sm[off + k] + theta[dK + k]
                    lr_ = softmax_row(sm, off, K, int(y[row]), c)
                    myloss += c * lr_
                else:
                    p = sm[coef_off + r]
                    if fit_intercept:
                        p = p + theta[dK]
                    lr_, dl = scalar_loss(loss_id, eps, p, T(y[row]))
                    sm[coef_off + r] = dl * c
                    myloss += c * lr_
            cuda.syncthreads()
            # pass B: gradient, last chunk first (it is still in shared memory)
            for cc in range(nchunks):
                ch = nchunks - 1 - cc
                j0 = ch * tc
                nc = min(tc, d - j0)
                if cc > 0:
                    cuda.syncthreads()
                    load_tile(X, order, rowbase, nr, j0, nc, sm, ld, lane, grp, ngrp)
                    cuda.syncthreads()
                sb = max(1, min(split, nt // (nc * K), nr))
                if sb == 1:
                    for jk in range(t, nc * K, nt):
                        j = jk // K
                        k = jk - j * K
                        s = zero
                        for r in range(nr):
                            s += sm[coef_off + r * K + k] * sm[r * ld + j]
                        acc[arow, j0 * K + jk] += s
                else:
                    if t < nc * K * sb:  # slice q of (feature, output) jk's rows
                        jk = t // sb
                        j = jk // K
                        k = jk - j * K
                        sm[red_off + t] = strided_dot(sm, coef_off + k, K, sm, j, ld,
                                                      t - jk * sb, nr, sb)
                    cuda.syncthreads()
                    for jk in range(t, nc * K, nt):
                        acc[arow, j0 * K + jk] += slices_sum(sm, red_off + jk * sb, sb)
            if fit_intercept:
                for k in range(t, K, nt):
                    s = zero
                    for r in range(nr):
                        s += sm[coef_off + r * K + k]
                    acc[arow, dK + k] += s
            tr0 += rows_cap
            if tr0 < r1:
                cuda.syncthreads()  # before the next tile overwrites tile and coef
        if split > 1:
            cuda.syncthreads()  # the slices' scratch is the callers' reduction scratch
        return myloss

    @cuda.jit(device=True)
    def penalty_part(theta, j0, j1, t, nt, h2, r1):
        """This thread's share of sum_j (h2 w_j^2 + r1 |w_j|) over j in [j0, j1)."""
        s = zero
        for j in range(j0 + t, j1, nt):
            w = theta[j]
            s += h2 * w * w + r1 * abs(w)
        return s

    @cuda.jit(device=True)
    def penalty_grad(w, alpha, l2, l1):
        sg = zero
        if w > zero:
            sg = one
        elif w < zero:
            sg = -one
        return alpha * (l2 * w + l1 * sg)

    @cuda.jit(device=True)
    def block_sum2(sm, off, t, nt, a, b, fanout):
        """Sums of a and b over the block's threads, in a fixed tree order.

        Level by level, thread i < m adds positions i + m, i + 2m, ... to
        position i (m = ceil(n / fanout)); every thread gets both totals.
        """
        sm[off + t] = a
        sm[off + nt + t] = b
        cuda.syncthreads()
        n = nt
        while n > 1:
            m = (n + fanout - 1) // fanout
            if t < m:
                sa = sm[off + t]
                sb = sm[off + nt + t]
                i = t + m
                while i < n:
                    sa += sm[off + i]
                    sb += sm[off + nt + i]
                    i += m
                sm[off + t] = sa
                sm[off + nt + t] = sb
            cuda.syncthreads()
            n = m
        return sm[off], sm[off + nt]

    @cuda.jit(device=True)
    def store_loss_penalty(part, g, G, P, dK, theta, alpha, l1_ratio, myloss, sm, red_off, t, nt,
                           fanout):
        """The end of a partial-gradient block: part[g, P] = the block's data loss (the
        sum of the threads' ``myloss``), part[g, P + 1] = its share of the penalty sum
        (block g of G takes a contiguous 1/G of the dK penalised weights)."""
        mypen = zero
        if alpha != 0.0:
            chunk = (dK + G - 1) // G
            j0 = min(g * chunk, dK)
            j1 = min(j0 + chunk, dK)
            mypen = penalty_part(theta, j0, j1, t, nt, T(0.5 * (1.0 - l1_ratio)), T(l1_ratio))
        lsum, psum = block_sum2(sm, red_off, t, nt, myloss, mypen, fanout)
        if t == 0:
            part[g, P] = lsum
            part[g, P + 1] = psum

    @cuda.jit(device=True)
    def batch_total(lsum, psum, alpha):
        # data loss + penalty value, summed in float64 as the reference does
        total = float64(lsum)
        if alpha != 0.0:
            total += float64(T(alpha) * psum)
        return total

    @cuda.jit(device=True)
    def is_finite(v):
        return not (math.isinf(v) or math.isnan(v))

    @cuda.jit
    def fused_epoch(X, y, sw, order, batch_size, n_batches, loss_id, eps, K, fit_intercept,
                    alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, state, part,
                    batch_loss, rows_cap, tc, ld, coef_off, red_off, fanout, split):
        """A whole epoch in one block (``part`` row 0 is the gradient workspace)."""
        sm = cuda.shared.array(0, T)
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        d = X.shape[1]
        dK = d * K
        P = dK + (K if fit_intercept else 0)
        m = order.shape[0]
        t_eps = T(eps)
        t_alpha = T(alpha)
        h2 = T(0.5 * (1.0 - l1_ratio))
        l2 = T(1.0 - l1_ratio)
        l1 = T(l1_ratio)
        for j in range(t, P, nt):
            part[0, j] = zero
        for kb in range(n_batches):
            start = kb * batch_size
            nb = min(batch_size, m - start)
            myloss = block_rows(X, y, sw, order, start, 0, nb, T(1.0 / nb), loss_id, t_eps, K,
                                fit_intercept, theta, part, 0, sm, rows_cap, tc, ld, coef_off,
                                red_off, split, t, nt)
            mypen = zero
            if alpha != 0.0:
                mypen = penalty_part(theta, 0, dK, t, nt, h2, l1)
            lsum, psum = block_sum2(sm, red_off, t, nt, myloss, mypen, fanout)
            total = batch_total(lsum, psum, alpha)
            if t == 0:
                batch_loss[kb] = total
            if not is_finite(total):
                return  # every thread saw the same total: the block leaves together
            lr = lrs[kb]
            step = step0 + kb + 1
            for j in range(t, P, nt):
                g = part[0, j]
                part[0, j] = zero
                if alpha != 0.0 and j < dK:
                    g = g + penalty_grad(theta[j], t_alpha, l2, l1)
                update_one(rule_id, hyper, theta, state, j, g, lr, step)
            cuda.syncthreads()

    @cuda.jit
    def batch_partials(X, y, sw, order, start, nb, rows_per_block, scale, loss_id, eps, K,
                       fit_intercept, alpha, l1_ratio, theta, part, flag, rows_cap, tc, ld,
                       coef_off, red_off, fanout, split):
        """Block g: part[g, :P] = its rows' gradient, part[g, P] = their loss,
        part[g, P+1] = its share of the penalty sum (before alpha)."""
        if flag[0] != 0:
            return  # set by an earlier launch only: the same for every thread
        sm = cuda.shared.array(0, T)
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        g = cuda.blockIdx.x
        G = cuda.gridDim.x
        d = X.shape[1]
        dK = d * K
        P = dK + (K if fit_intercept else 0)
        for j in range(t, P, nt):
            part[g, j] = zero
        r0 = min(g * rows_per_block, nb)
        r1 = min(r0 + rows_per_block, nb)
        myloss = block_rows(X, y, sw, order, start, r0, r1, T(scale), loss_id, T(eps), K,
                            fit_intercept, theta, part, g, sm, rows_cap, tc, ld, coef_off,
                            red_off, split, t, nt)
        store_loss_penalty(part, g, G, P, dK, theta, alpha, l1_ratio, myloss, sm, red_off, t,
                           nt, fanout)

    @cuda.jit
    def reduce_update(part, G, kb, lr, step, K, d, fit_intercept, alpha, l1_ratio, rule_id,
                      hyper, theta, state, batch_loss, flag, fanout):
        """Sum the G partials (fixed order), add the penalty, check the loss, update.

        Block b owns parameters [32 b, 32 b + 32); every block reduces the
        loss column identically, so all blocks agree on skipping the update.
        """
        sm = cuda.shared.array(0, T)
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        b = cuda.blockIdx.x
        dK = d * K
        P = dK + (K if fit_intercept else 0)
        flag_off = 2 * nt
        col_off = 2 * nt + 1
        if t == 0:
            sm[flag_off] = T(flag[0])
        cuda.syncthreads()
        if sm[flag_off] != zero:
            return  # an earlier batch diverged (only this launch may set it)
        la = zero
        pa = zero
        for gg in range(t, G, nt):
            la += part[gg, P]
            pa += part[gg, P + 1]
        lsum, psum = block_sum2(sm, 0, t, nt, la, pa, fanout)
        total = batch_total(lsum, psum, alpha)
        if b == 0 and t == 0:
            batch_loss[kb] = total
        if not is_finite(total):
            if b == 0 and t == 0:
                flag[0] = 1
            return
        lane = t % 32
        grp = t // 32
        ngrp = nt // 32
        col = b * 32 + lane
        s = zero
        if col < P:
            for gg in range(grp, G, ngrp):
                s += part[gg, col]
        sm[col_off + grp * 32 + lane] = s
        cuda.syncthreads()
        if grp == 0 and col < P:
            gsum = sm[col_off + lane]
            for q in range(1, ngrp):
                gsum += sm[col_off + q * 32 + lane]
            if alpha != 0.0 and col < dK:
                gsum = gsum + penalty_grad(theta[col], T(alpha), T(1.0 - l1_ratio),
                                           T(l1_ratio))
            update_one(rule_id, hyper, theta, state, col, gsum, lr, step)

    return LinearKernels(load_tile=load_tile, block_rows=block_rows, penalty_part=penalty_part,
                         penalty_grad=penalty_grad, block_sum2=block_sum2,
                         store_loss_penalty=store_loss_penalty,
                         fused_epoch=fused_epoch, batch_partials=batch_partials,
                         reduce_update=reduce_update)


@functools.lru_cache(maxsize=None)
def row_partials_kernel(dtype, chunks):
    """``batch_partials_rows`` computing in ``dtype``, for rows of at most 32 x ``chunks``
    features."""
    from numba import config as numba_config
    from numba.np.numpy_support import from_dtype

    simulated = bool(getattr(numba_config, "ENABLE_CUDASIM", 0))
    T = from_dtype(np.dtype(dtype))
    zero = T(0.0)
    tiles = linear_kernels(dtype)
    store_loss_penalty = tiles.store_loss_penalty
    scalar_loss = loss_functions(np.dtype(dtype)).scalar_loss

    if simulated:
        @cuda.jit(device=True)
        def warp_sum(v, lane, sm, off):
            """The sum of v over the warp's lanes, every lane gets it: a butterfly (lane i
            adds lane i ^ m for m = 16, 8, 4, 2, 1), here through shared memory (the
            simulator has no shuffles; every warp of the block calls it in step)."""
            m = 16
            while m > 0:
                sm[off + lane] = v
                cuda.syncthreads()
                v = v + sm[off + (lane ^ m)]
                cuda.syncthreads()
                m //= 2
            return v
    else:
        @cuda.jit(device=True)
        def warp_sum(v, lane, sm, off):
            """The sum of v over the warp's lanes, every lane gets it: a butterfly (lane i
            adds lane i ^ m for m = 16, 8, 4, 2, 1); a + b == b + a, so every lane ends
            with the same bits."""
            v = v + cuda.shfl_xor_sync(0xFFFFFFFF, v, 16)
            v = v + cuda.shfl_xor_sync(0xFFFFFFFF, v, 8)
            v = v + cuda.shfl_xor_sync(0xFFFFFFFF, v, 4)
            v = v + cuda.shfl_xor_sync(0xFFFFFFFF, v, 2)
            v = v + cuda.shfl_xor_sync(0xFFFFFFFF, v, 1)
            return v

    @cuda.jit(device=True)
    def load_row(X, i, lane, d, x):
        for c in range(chunks):
            j = lane + 32 * c
            x[c] = T(X[i, j]) if j < d else zero

    @cuda.jit(device=True)
    def row_dot(x, th):
        p = zero
        for c in range(chunks):
            p += x[c] * th[c]
        return p

    @cuda.jit(device=True)
    def row_terms(loss_id, eps, scale, y, sw, has_sw, i, p):
        """(c_i dl_i, c_i l_i) of row i with prediction p (c_i = scale x its weight)."""
        c = scale * T(sw[i]) if has_sw else scale
        l, dl = scalar_loss(loss_id, eps, p, T(y[i]))
        return c * dl, c * l

    @cuda.jit
    def batch_partials_rows(X, y, sw, order, start, nb, rows_per_block, scale, loss_id, eps, K,
                            fit_intercept, alpha, l1_ratio, theta, part, flag, rows_cap, tc, ld,
                            coef_off, red_off, fanout, split):
        """``batch_partials`` (same arguments, same ``part`` row) for K = 1 and
        d <= 32 x chunks, one warp a row: lane l holds features l, l + 32, ...
        of the row, of theta and of the warp's gradient sum in registers.  Warp w
        takes rows w and w + nw of every 2 nw rows of the block's share (two rows'
        loads in flight, neighbouring warps on neighbouring rows); the dot product
        is a butterfly over the lanes; the warps' sums meet in shared memory and
        are added in warp order.  A fixed order throughout: the bits depend on the
        launch geometry, never on timing.  Shared memory: nw x (P + 1) partials,
        2 nt reduction scratch, 32 nw for the simulator's warp sums."""
        if flag[0] != 0:
            return
        sm = cuda.shared.array(0, T)
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        g = cuda.blockIdx.x
        G = cuda.gridDim.x
        lane = t % 32
        w = t // 32
        nw = nt // 32
        d = X.shape[1]
        P = d + (1 if fit_intercept else 0)
        red = nw * (P + 1)
        wsum = red + 2 * nt + 32 * w
        has_sw = sw.shape[0] > 0
        t_eps = T(eps)
        t_scale = T(scale)
        th = cuda.local.array(chunks, T)
        acc = cuda.local.array(chunks, T)
        xa = cuda.local.array(chunks, T)
        xb = cuda.local.array(chunks, T)
        for c in range(chunks):
            j = lane + 32 * c
            th[c] = theta[j] if j < d else zero
            acc[c] = zero
            xa[c] = zero
            xb[c] = zero
        b0 = theta[d] if fit_intercept else zero
        isum = zero
        lsum = zero
        r0 = min(g * rows_per_block, nb)
        r1 = min(r0 + rows_per_block, nb)
        for base in range(r0, r1, 2 * nw):
            ra = base + w
            rb = ra + nw
            ia = order[start + ra] if ra < r1 else 0
            ib = order[start + rb] if rb < r1 else 0
            if ra < r1:
                load_row(X, ia, lane, d, xa)
            if rb < r1:
                load_row(X, ib, lane, d, xb)
            # every warp of the block takes the same number of steps (the simulator's
            # warp sums are block barriers); a row past the share adds nothing
            pa = warp_sum(row_dot(xa, th), lane, sm, wsum)
            pb = warp_sum(row_dot(xb, th), lane, sm, wsum)
            ca = zero
            cb = zero
            if ra < r1:
                ca, la = row_terms(loss_id, t_eps, t_scale, y, sw, has_sw, ia, pa + b0)
                lsum += la
            if rb < r1:
                cb, lb = row_terms(loss_id, t_eps, t_scale, y, sw, has_sw, ib, pb + b0)
                lsum += lb
            for c in range(chunks):
                acc[c] += ca * xa[c]
            for c in range(chunks):
                acc[c] += cb * xb[c]
            isum += ca
            isum += cb
        for c in range(chunks):
            j = lane + 32 * c
            if j < d:
                sm[w * (P + 1) + j] = acc[c]
        if lane == 0:
            if fit_intercept:
                sm[w * (P + 1) + d] = isum
            sm[w * (P + 1) + P] = lsum
        cuda.syncthreads()
        for j in range(t, P, nt):
            s = sm[j]
            for q in range(1, nw):
                s += sm[q * (P + 1) + j]
            part[g, j] = s
        myloss = zero
        if t == 0:
            myloss = sm[P]
            for q in range(1, nw):
                myloss += sm[q * (P + 1) + P]
        store_loss_penalty(part, g, G, P, d, theta, alpha, l1_ratio, myloss, sm, red, t, nt,
                           fanout)

    return batch_partials_rows


def linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                 fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                 state, batch_loss):
    """The convention's ``linear_epoch`` (docs/kernels.md) on the GPU.

    Host or device arrays; theta, state and batch_loss are updated in place
    (host arrays are copied back).  ``grad`` is not used (the gradient lives
    in the kernels' own workspace).  A fit should use
    :class:`~fastgd.kernels.cuda.engine.LinearEngine`, which keeps everything
    on the device across epochs; this is the one-epoch convenience.
    """
    from ._device import as_device_array, is_device_array
    from .engine import LinearEngine

    if not any(is_device_array(a) for a in (X, y, sw, order, theta, state)):
        # host arrays: the CPU entries' checks (device arrays are trusted, as in a fit)
        order = checks.linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id,
                                    loss_param, n_outputs, fit_intercept, alpha, l1_ratio,
                                    rule_id, hyper, lrs, step0, theta,
                                    np.zeros_like(theta) if grad is None else grad, state,
                                    batch_loss)

    class _Spec:
        pass

    spec = _Spec()
    spec.loss_id, spec.loss_param, spec.n_outputs = loss_id, loss_param, n_outputs
    spec.fit_intercept, spec.alpha, spec.l1_ratio = fit_intercept, alpha, l1_ratio
    spec.rule_id, spec.hyper, spec.batch_size = rule_id, hyper, batch_size
    eng = LinearEngine(X, y, sw, spec, theta, state)
    if is_device_array(order):
        order2 = as_device_array(order)
        order2 = order2.reshape(1, order2.shape[0])
    else:
        order2 = np.asarray(order, dtype=np.int64)[None, :]
    eng.prepare(order2)
    n_done = eng.run_epoch(0, n_batches, lrs, step0, batch_loss)
    eng.copy_theta_state_to(theta, state)
    return n_done
