"""Multi-layer perceptrons on the GPU: a whole epoch in one launch.

Same convention and results as ``fastgd.reference.mlp_epoch`` (layer_sizes
``[d, h1, ..., K_out]``; theta is, layer after layer, ``W_l`` (n_in, n_out)
row-major then ``b_l``; hidden layers use the activation, the head is linear and
feeds squared, logistic or softmax; the penalty covers the W's only).

:func:`mlp_kernels` makes, per accumulation dtype, ``mlp_fused_epoch``: ONE
launch per epoch, one block that walks every batch:

1. forward, layer by layer, one thread per (row, unit): ``z = sum_a in[i, a]
   W[a, u]`` in feature order, ``+ b[u]``, then the activation (not on the head);
   every layer's output goes to the workspace ``acts`` (rows x sum(n_out));
2. the head's loss per row; ``delta_L = c_i * dloss`` (``c_i`` = weight / |B|);
3. backward, layer by layer, one thread per (row, unit):
   ``delta_{l-1}[i, a] = (sum_u delta_l[i, u] W_l[a, u]) * act'(out_{l-1}[i, a])``;
4. a fixed-order block reduction of the data loss and the penalty value; the
   batch loss; stop at the first non-finite batch (theta and state untouched);
5. one thread per parameter: its gradient summed over the rows in row order
   (``in[i, a] * delta[i, u]``, or ``delta[i, u]`` for a bias), plus the
   penalty, then the update rule -- no gradient buffer, no atomics.

Deterministic and bit-reproducible for fixed tunables.  One block means one SM:
this is the first, correct MLP kernel (the simulator and small nets); large
batches would want the linear engine's batched two-kernel scheme.
"""
import functools
import math

import numpy as np
from numba import cuda, float64

from .. import checks, ids
from .losses import loss_functions
from .updates import update_functions

LOSS_SOFTMAX = ids.LOSS_SOFTMAX
ACT_RELU = ids.ACT_RELU
ACT_TANH = ids.ACT_TANH
ACT_SIGMOID = ids.ACT_SIGMOID


def workspace_shape(layer_sizes, batch_size):
    """(rows, columns) of each of the two workspaces (outputs, deltas)."""
    s = [int(v) for v in layer_sizes]
    return int(batch_size), sum(s[1:])


class MLPKernels:
    def __init__(self, **fns):
        self.__dict__.update(fns)


@functools.lru_cache(maxsize=None)
def mlp_kernels(dtype):
    from numba.np.numpy_support import from_dtype

    T = from_dtype(np.dtype(dtype))
    zero = T(0.0)
    one = T(1.0)
    fns = loss_functions(np.dtype(dtype))
    scalar_loss = fns.scalar_loss
    softmax_row = fns.softmax_row
    update_one = update_functions(np.dtype(dtype)).update_one

    @cuda.jit(device=True)
    def activate(act, z):
        if act == ACT_RELU:
            # not max(z, zero): on a GPU it is fmax, which returns 0 for a NaN z, and the
            # fit would go on where the reference and the simulator stop
            return zero if z < zero else z
        if act == ACT_TANH:
            return T(math.tanh(z))
        e = T(math.exp(-abs(z)))
        if z >= zero:
            return one / (one + e)
        return e / (one + e)

    @cuda.jit(device=True)
    def activation_grad(act, a):
        if act == ACT_RELU:
            return one if a > zero else zero
        if act == ACT_TANH:
            return one - a * a
        return a * (one - a)

    @cuda.jit(device=True)
    def block_sum2(sm, t, nt, a, b, fanout):
        sm[t] = a
        sm[nt + t] = b
        cuda.syncthreads()
        n = nt
        while n > 1:
            m = (n + fanout - 1) // fanout
            if t < m:
                sa = sm[t]
                sb = sm[nt + t]
                i = t + m
                while i < n:
                    sa += sm[i]
                    sb += sm[nt + i]
                    i += m
                sm[t] = sa
                sm[nt + t] = sb
            cuda.syncthreads()
            n = m
        return sm[0], sm[nt]

    @cuda.jit
    def mlp_fused_epoch(X, y, sw, order, batch_size, n_batches, loss_id, sizes, act,
                        alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, state, acts,
                        deltas, batch_loss, fanout):
        sm = cuda.shared.array(0, T)
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        L = sizes.shape[0] - 1
        m = order.shape[0]
        has_sw = sw.shape[0] > 0
        t_alpha = T(alpha)
        h2 = T(0.5 * (1.0 - l1_ratio))
        l2 = T(1.0 - l1_ratio)
        l1 = T(l1_ratio)
        for kb in range(n_batches):
            start = kb * batch_size
            nb = min(batch_size, m - start)
            scale = T(1.0 / nb)
            # 1. forward
            woff = 0
            aoff = 0        # column of this layer's outputs in acts
            in_off = 0      # column of this layer's inputs (l > 0)
            for l in range(L):
                n_in = sizes[l]
                n_out = sizes[l + 1]
                boff = woff + n_in * n_out
                for iu in range(t, nb * n_out, nt):
                    i = iu // n_out
                    u = iu - i * n_out
                    s = zero
                    if l == 0:
                        row = order[start + i]
                        for a in range(n_in):
                            s += T(X[row, a]) * theta[woff + a * n_out + u]
                    else:
                        for a in range(n_in):
                            s += acts[i, in_off + a] * theta[woff + a * n_out + u]
                    z = s + theta[boff + u]
                    if l < L - 1:
                        z = activate(act, z)
                    acts[i, aoff + u] = z
                cuda.syncthreads()
                in_off = aoff
                aoff += n_out
                woff = boff + n_out
            # 2. the head's loss; delta_L = c_i * dloss
            K = sizes[L]
            hoff = aoff - K
            myloss = zero
            for i in range(t, nb, nt):
                row = order[start + i]
                c = scale
                if has_sw:
                    c = scale * T(sw[row])
                if loss_id == LOSS_SOFTMAX:
                    dr = deltas[i]
                    for k in range(K):
                        dr[hoff + k] = acts[i, hoff + k]
                    li = softmax_row(dr, hoff, K, int(y[row]), c)
                else:
                    li, dl = scalar_loss(loss_id, zero, acts[i, hoff], T(y[row]))
                    deltas[i, hoff] = dl * c
                myloss += c * li
            cuda.syncthreads()
            # 3. backward: delta of layer l-1's outputs from layer l's
            out_off = hoff
            woff_l = theta.shape[0]
            for l in range(L - 1, 0, -1):
                n_in = sizes[l]
                n_out = sizes[l + 1]
                woff_l = woff_l - n_out - n_in * n_out
                in_off = out_off - n_in
                for ia in range(t, nb * n_in, nt):
                    i = ia // n_in
                    a = ia - i * n_in
                    s = zero
                    for u in range(n_out):
                        s += deltas[i, out_off + u] * theta[woff_l + a * n_out + u]
                    deltas[i, in_off + a] = s * activation_grad(act, acts[i, in_off + a])
                cuda.syncthreads()
                out_off = in_off
            # 4. batch loss = data loss + penalty (W's only)
            mypen = zero
            if alpha != 0.0:
                woff = 0
                for l in range(L):
                    nw = sizes[l] * sizes[l + 1]
                    for j in range(woff + t, woff + nw, nt):
                        w = theta[j]
                        mypen += h2 * w * w + l1 * abs(w)
                    woff += nw + sizes[l + 1]
            lsum, psum = block_sum2(sm, t, nt, myloss, mypen, fanout)
            total = float64(lsum)
            if alpha != 0.0:
                total += float64(t_alpha * psum)
            if t == 0:
                batch_loss[kb] = total
            if math.isinf(total) or math.isnan(total):
                return
            # 5. gradient of each parameter (row order), penalty, update
            lr = lrs[kb]
            step = step0 + kb + 1
            woff = 0
            aoff = 0
            in_off = 0
            for l in range(L):
                n_in = sizes[l]
                n_out = sizes[l + 1]
                nw = n_in * n_out
                for idx in range(t, nw + n_out, nt):
                    g = zero
                    if idx < nw:
                        a = idx // n_out
                        u = idx - a * n_out
                        if l == 0:
                            for i in range(nb):
                                g += T(X[order[start + i], a]) * deltas[i, aoff + u]
                        else:
                            for i in range(nb):
                                g += acts[i, in_off + a] * deltas[i, aoff + u]
                        if alpha != 0.0:
                            w = theta[woff + idx]
                            sg = zero
                            if w > zero:
                                sg = one
                            elif w < zero:
                                sg = -one
                            g = g + t_alpha * (l2 * w + l1 * sg)
                    else:
                        u = idx - nw
                        for i in range(nb):
                            g += deltas[i, aoff + u]
                    update_one(rule_id, hyper, theta, state, woff + idx, g, lr, step)
                in_off = aoff
                aoff += n_out
                woff += nw + n_out
            cuda.syncthreads()

    return MLPKernels(activate=activate, activation_grad=activation_grad,
                      mlp_fused_epoch=mlp_fused_epoch)


def mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes, activation_id,
              alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
              work):
    """The convention's ``mlp_epoch`` (docs/kernels.md) for host or device arrays.

    theta, state and batch_loss are updated in place (host arrays are copied
    back); ``grad`` and ``work`` are not used (the kernel has its own
    workspaces).  A fit should use :class:`~fastgd.kernels.cuda.engine.MLPEngine`.
    """
    from ._device import as_device_array, is_device_array
    from .engine import MLPEngine

    if not any(is_device_array(a) for a in (X, y, sw, order, theta, state)):
        # host arrays: the CPU entries' checks (device arrays are trusted, as in a fit)
        order = checks.mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id,
                                 checks.layer_sizes_array(layer_sizes), activation_id, alpha,
                                 l1_ratio, rule_id, hyper, lrs, step0, theta,
                                 np.zeros_like(theta) if grad is None else grad, state, batch_loss,
                                 work, needs_work=False)

    class _Spec:
        pass

    spec = _Spec()
    spec.loss_id, spec.layer_sizes, spec.activation_id = loss_id, layer_sizes, activation_id
    spec.alpha, spec.l1_ratio, spec.rule_id = alpha, l1_ratio, rule_id
    spec.hyper, spec.batch_size = hyper, batch_size
    eng = MLPEngine(X, y, sw, spec, theta, state)
    if is_device_array(order):
        o = as_device_array(order)
        o = o.reshape(1, o.shape[0])
    else:
        o = np.asarray(order, dtype=np.int64)[None, :]
    eng.prepare(o)
    n_done = eng.run_epoch(0, n_batches, lrs, step0, batch_loss)
    eng.copy_theta_state_to(theta, state)
    return n_done
