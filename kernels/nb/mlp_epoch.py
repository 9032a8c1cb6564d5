"""One epoch of a multi-layer perceptron, in Numba: the whole epoch in one ``@njit`` call.

Same names, signatures and results as ``fastgd.reference.mlp_epoch`` (layouts in
docs/kernels.md, design in docs/mlp.md).  Per batch:

1. gather the batch rows ``X[order[...]]`` into a contiguous block of ``work``
   (converted to the accumulation dtype A of theta);
2. forward: one GEMM per layer (``np.dot`` with ``out=``, which Numba lowers to
   scipy's BLAS ``?gemm``), then bias + activation in one pass;
3. head loss and its derivative, scaled by ``s_i / |B|``;
4. backward: per layer ``gW = A_prev^T @ G`` and ``G_prev = (G @ W^T) * act'``,
   two GEMMs, into ``grad`` and the ping-pong delta buffers of ``work``;
5. penalty (W's only) and the update rule (``fastgd.kernels.nb.updates``).

Nothing is allocated per batch: every buffer is a view of ``work`` (size
``mlp_workspace_size``) or of ``grad``.  Plain SGD without penalty or weight decay
applies each layer's update right after its gradient GEMM, while the gradient is
still in cache (same arithmetic as the separate pass: ``w -= lr * g``).
All functions are ``@njit`` and can be called from users' own ``@njit`` code.
"""
import math

import numpy as np

from .config import kernel
from .losses import loss_dloss, softmax_loss_dloss
from .updates import apply_update
from ..ids import ACT_RELU, ACT_TANH, LOSS_SOFTMAX, RULE_SGD


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


# ---------------------------------------------------------------- helpers

_MAX_FINITE = 1.7976931348623157e308


@kernel
def _finite(x):
    """False for inf and NaN.  Not ``math.isfinite``: Numba lowers it as an ordered
    compare of ``x - x`` with itself, and under the ``reassoc`` fast-math flag LLVM may
    simplify ``x - x`` when x is a sum (``math.isfinite(a + b)`` returns True for
    a = inf).  An ordered compare against the largest double cannot be folded without
    ``nnan``/``ninf``."""
    return abs(x) <= _MAX_FINITE

@kernel
def _gather(X, rows, xb):
    nb, d = xb.shape
    for i in range(nb):
        r = rows[i]
        for j in range(d):
            xb[i, j] = X[r, j]


@kernel
def _sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@kernel
def _bias_act(z, b, activation_id, hidden):
    """z += b (row-wise), then the activation in place for hidden layers."""
    nb, n = z.shape
    if not hidden:
        for i in range(nb):
            for j in range(n):
                z[i, j] += b[j]
    elif activation_id == ACT_RELU:
        for i in range(nb):
            for j in range(n):
                v = z[i, j] + b[j]
                z[i, j] = v if v > 0 else 0.0
    elif activation_id == ACT_TANH:
        for i in range(nb):
            for j in range(n):
                z[i, j] = math.tanh(z[i, j] + b[j])
    else:
        for i in range(nb):
            for j in range(n):
                z[i, j] = _sigmoid(z[i, j] + b[j])


@kernel
def _times_act_grad(g, a, activation_id):
    """g *= act'(z), written through the activation's output a."""
    nb, n = g.shape
    if activation_id == ACT_RELU:
        for i in range(nb):
            for j in range(n):
                if not a[i, j] > 0:
                    g[i, j] = 0.0
    elif activation_id == ACT_TANH:
        for i in range(nb):
            for j in range(n):
                v = a[i, j]
                g[i, j] *= 1.0 - v * v
    else:
        for i in range(nb):
            for j in range(n):
                v = a[i, j]
                g[i, j] *= v * (1.0 - v)


@kernel
def _head_loss(loss_id, y, sw, rows, scale, z, g):
    """g = c_i * dl_i/dz (c_i = scale * s_i); returns sum_i c_i l_i."""
    nb, K = z.shape
    total = 0.0
    weighted = sw.shape[0] > 0
    for i in range(nb):
        r = rows[i]
        c = scale * sw[r] if weighted else scale
        if loss_id == LOSS_SOFTMAX:
            li = softmax_loss_dloss(z[i], y[r], g[i])
            for j in range(K):
                g[i, j] *= c
        else:  # squared or logistic, one output
            li, dl = loss_dloss(loss_id, 0.0, z[i, 0], y[r])
            g[i, 0] = c * dl
        total += c * li
    return total


@kernel
def _offsets(layer_sizes):
    """Once per epoch: theta offsets of each W_l and b_l, and ``cum`` (L + 3,) such that
    for a batch of nb rows the workspace holds x_b at ``nb*cum[0]``, layer l's output at
    ``nb*cum[l]``, the two delta buffers at ``nb*cum[L+1]`` and ``nb*(cum[L+1] + H)``
    (H = widest layer) and ``nb*cum[L+2]`` is the end."""
    L = layer_sizes.shape[0] - 1
    w_off = np.empty(L, np.int64)
    b_off = np.empty(L, np.int64)
    cum = np.zeros(L + 3, np.int64)
    off = 0
    widest = 0
    for l in range(L):
        w_off[l] = off
        off += layer_sizes[l] * layer_sizes[l + 1]
        b_off[l] = off
        off += layer_sizes[l + 1]
        widest = max(widest, layer_sizes[l + 1])
    for l in range(L + 1):
        cum[l + 1] = cum[l] + layer_sizes[l]
    cum[L + 2] = cum[L + 1] + 2 * widest
    return w_off, b_off, cum


@kernel
def _forward_loss(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, scale, work,
                  w_off, b_off):
    """Gather, forward, head loss; returns scale * sum s_i l_i, leaves the layer outputs
    and the head delta in ``work``."""
    L = layer_sizes.shape[0] - 1
    nb = rows.shape[0]
    d = layer_sizes[0]
    xb = work[:nb * d].reshape((nb, d))
    _gather(X, rows, xb)
    prev = xb
    off = nb * d
    for l in range(L):
        n_in = layer_sizes[l]
        n_out = layer_sizes[l + 1]
        W = theta[w_off[l]:w_off[l] + n_in * n_out].reshape((n_in, n_out))
        z = work[off:off + nb * n_out].reshape((nb, n_out))
        np.dot(prev, W, z)
        _bias_act(z, theta[b_off[l]:b_off[l] + n_out], activation_id, l < L - 1)
        prev = z
        off += nb * n_out
    K = layer_sizes[L]
    g = work[off:off + nb * K].reshape((nb, K))  # first delta buffer
    return _head_loss(loss_id, y, sw, rows, scale, prev, g)


@kernel
def _backward(layer_sizes, activation_id, theta, grad, work, nb, w_off, b_off, cum, lr,
              fused):
    """Backward pass from the head delta left by ``_forward_loss``.  With ``fused``,
    plain SGD is applied to each layer right after its gradient (w -= lr * g)."""
    L = layer_sizes.shape[0] - 1
    widest = (cum[L + 2] - cum[L + 1]) // 2
    d_off = (nb * cum[L + 1], nb * (cum[L + 1] + widest))  # the two delta buffers
    cur = 0
    for l in range(L - 1, -1, -1):
        n_in = layer_sizes[l]
        n_out = layer_sizes[l + 1]
        G = work[d_off[cur]:d_off[cur] + nb * n_out].reshape((nb, n_out))
        A = work[nb * cum[l]:nb * cum[l] + nb * n_in].reshape((nb, n_in))
        W = theta[w_off[l]:w_off[l] + n_in * n_out].reshape((n_in, n_out))
        if l > 0:  # G_prev with the W of before the update
            Gp = work[d_off[1 - cur]:d_off[1 - cur] + nb * n_in].reshape((nb, n_in))
            np.dot(G, W.T, Gp)
            _times_act_grad(Gp, A, activation_id)
        gW = grad[w_off[l]:w_off[l] + n_in * n_out].reshape((n_in, n_out))
        np.dot(A.T, G, gW)
        gb = grad[b_off[l]:b_off[l] + n_out]
        gb[:] = 0.0
        for i in range(nb):
            for j in range(n_out):
                gb[j] += G[i, j]
        if fused:
            sl = theta[w_off[l]:b_off[l] + n_out]
            gl = grad[w_off[l]:b_off[l] + n_out]
            for i in range(sl.shape[0]):
                sl[i] -= lr * gl[i]
        cur = 1 - cur


@kernel
def mlp_batch_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad,
                       scale, work):
    """grad = scale * sum_{i in rows} s_i dl_i/dtheta (all of grad overwritten); returns
    scale * sum s_i l_i.  No penalty.  ``work`` must hold
    ``mlp_workspace_size(layer_sizes, len(rows))`` elements of theta's dtype."""
    w_off, b_off, cum = _offsets(layer_sizes)
    loss = _forward_loss(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, scale,
                         work, w_off, b_off)
    _backward(layer_sizes, activation_id, theta, grad, work, rows.shape[0], w_off, b_off,
              cum, 0.0, False)
    return loss


@kernel
def _penalty(theta, grad, layer_sizes, alpha, l1_ratio, w_off, with_grad):
    """alpha * ((1 - r)/2 ||W||^2 + r ||W||_1) over the W's; adds its gradient when
    ``with_grad``."""
    if alpha == 0.0:
        return 0.0
    a2 = alpha * (1.0 - l1_ratio)
    a1 = alpha * l1_ratio
    total = 0.0
    for l in range(layer_sizes.shape[0] - 1):
        sq = 0.0
        ab = 0.0
        for i in range(w_off[l], w_off[l] + layer_sizes[l] * layer_sizes[l + 1]):
            w = theta[i]
            sq += w * w
            ab += abs(w)
            if with_grad:
                sgn = 1.0 if w > 0 else (-1.0 if w < 0 else 0.0)
                grad[i] += a2 * w + a1 * sgn
        total += 0.5 * a2 * sq + a1 * ab
    return total


@kernel
def mlp_add_penalty(theta, grad, layer_sizes, alpha, l1_ratio):
    """Add the penalty's (sub)gradient to the W parts of grad; return its value."""
    w_off, b_off, cum = _offsets(layer_sizes)
    return _penalty(theta, grad, layer_sizes, alpha, l1_ratio, w_off, True)


@kernel
def mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes, activation_id,
              alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
              work):
    """See ``fastgd.reference.mlp_epoch.mlp_epoch``; returns the number of batches applied."""
    m = order.shape[0]
    w_off, b_off, cum = _offsets(layer_sizes)
    # plain SGD, no penalty, no weight decay: update each layer during the backward pass
    fused = rule_id == RULE_SGD and hyper[0] == 0.0 and hyper[3] == 0.0 and alpha == 0.0
    for k in range(n_batches):
        start = k * batch_size
        stop = min(start + batch_size, m)
        rows = order[start:stop]
        nb = stop - start
        loss = _forward_loss(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta,
                             1.0 / nb, work, w_off, b_off)
        if fused:
            batch_loss[k] = loss
            if not _finite(loss):
                return k
            _backward(layer_sizes, activation_id, theta, grad, work, nb, w_off, b_off,
                      cum, lrs[k], True)
            continue
        _backward(layer_sizes, activation_id, theta, grad, work, nb, w_off, b_off, cum, 0.0, False)
        loss += _penalty(theta, grad, layer_sizes, alpha, l1_ratio, w_off, True)
        batch_loss[k] = loss
        if not _finite(loss):
            return k
        apply_update(rule_id, hyper, theta, grad, state, lrs[k], step0 + k + 1)
    return n_batches
