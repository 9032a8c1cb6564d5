"""One epoch of a multi-layer perceptron, batch by batch: the readable oracle.

Calling convention (shared by every backend, see docs/kernels.md and docs/mlp.md):

layer_sizes  int64 ``[d, h1, ..., K_out]``; L = len(layer_sizes) - 1 weight layers.
theta        flat parameters, dtype A (the accumulation dtype), layer after layer:
             ``W_l`` (n_in, n_out) row-major, then ``b_l`` (n_out,).  ``W_l`` is the
             *transpose* of torch's ``nn.Linear.weight`` (we compute ``X @ W + b``).
activation   hidden layers use ``activation_id`` (``ids.ACT_RELU/TANH/SIGMOID``); the head
             (last layer) is linear and feeds the loss: squared (K_out = 1), logistic
             (K_out = 1, labels {0, 1}) or softmax (K_out = K, labels 0..K-1 as floats).
batch loss   ``(1/|B|) sum_i s_i l_i`` + ``alpha * ((1 - r)/2 ||W||^2 + r ||W||_1)`` summed
             over the W's only (biases are never penalised; sign(0) = 0).
work         workspace of ``mlp_workspace_size(layer_sizes, batch_size)`` elements of
             dtype A.  The reference does not need it (it is readable NumPy that allocates
             freely) but accepts it so every backend has the same signature; its size
             formula is the same on every backend (one buffer serves any of them).
"""
import math

import numpy as np

from ..kernels import checks, ids
from .losses import loss_and_dloss
from .updates import _apply_update


# ---------------------------------------------------------------- parameters

def mlp_n_params(layer_sizes):
    """Length of theta: sum over layers of n_in * n_out + n_out."""
    s = [int(v) for v in layer_sizes]
    return sum(s[l] * s[l + 1] + s[l + 1] for l in range(len(s) - 1))


def mlp_unflatten(theta, layer_sizes):
    """List of (W (n_in, n_out), b (n_out,)) *views* into the flat ``theta``."""
    s = [int(v) for v in layer_sizes]
    params, off = [], 0
    for l in range(len(s) - 1):
        n_in, n_out = s[l], s[l + 1]
        W = theta[off:off + n_in * n_out].reshape(n_in, n_out)
        off += n_in * n_out
        b = theta[off:off + n_out]
        off += n_out
        params.append((W, b))
    return params


def mlp_flatten(params, dtype=None):
    """Inverse of ``mlp_unflatten``: a new flat vector from a list of (W, b)."""
    parts = []
    for W, b in params:
        parts.append(np.ravel(np.asarray(W)))
        parts.append(np.ravel(np.asarray(b)))
    theta = np.concatenate(parts)
    return theta if dtype is None else theta.astype(dtype)


def mlp_init(layer_sizes, rng, dtype=np.float64):
    """PyTorch ``nn.Linear``'s default init, drawn from a numpy ``Generator``.

    For every layer, W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
    fan_in = n_in (torch's kaiming_uniform(a=sqrt(5)) on the weight has exactly this
    bound).  Draw order: layer by layer, first ``rng.uniform(-k, k, size=(n_in, n_out))``
    for W (in our (n_in, n_out) layout, row-major), then ``rng.uniform(-k, k, size=n_out)``
    for b.  Values are drawn in float64 and then cast to ``dtype``.  Returns the flat
    theta (see the module docstring for the layout).
    """
    s = [int(v) for v in layer_sizes]
    parts = []
    for l in range(len(s) - 1):
        n_in, n_out = s[l], s[l + 1]
        bound = 1.0 / math.sqrt(n_in)
        parts.append(rng.uniform(-bound, bound, size=(n_in, n_out)).ravel())
        parts.append(rng.uniform(-bound, bound, size=n_out))
    return np.concatenate(parts).astype(dtype)


def mlp_workspace_size(layer_sizes, batch_size):
    """Elements of dtype A the compiled kernels need for a batch of ``batch_size`` rows.

    ``b * (d + h1 + ... + K_out + 2 * max(h1, ..., K_out) + 1)``: the gathered batch
    (b, d), every layer's output (b, n_out), two ping-pong buffers for the backward
    deltas (b, max n_out) and the per-row loss weights (b,).  Same formula on every
    backend.
    """
    s = [int(v) for v in layer_sizes]
    b = int(batch_size)
    return b * (s[0] + sum(s[1:]) + 2 * max(s[1:]) + 1)


# ---------------------------------------------------------------- activations

def _activate(activation_id, z):
    if activation_id == ids.ACT_RELU:
        return np.maximum(z, 0)
    if activation_id == ids.ACT_TANH:
        return np.tanh(z)
    if activation_id == ids.ACT_SIGMOID:
        e = np.exp(-np.abs(z))  # no overflow for any z
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)
    raise ValueError(f"unknown activation id {activation_id}")


def _activation_grad(activation_id, a):
    """d act / d z expressed through the output a = act(z)."""
    if activation_id == ids.ACT_RELU:
        return (a > 0).astype(a.dtype)  # 0 at z = 0, like torch
    if activation_id == ids.ACT_TANH:
        return 1 - a * a
    if activation_id == ids.ACT_SIGMOID:
        return a * (1 - a)
    raise ValueError(f"unknown activation id {activation_id}")


# ---------------------------------------------------------------- forward / gradient

def _forward(params, activation_id, Xb):
    """List [Xb, a_1, ..., a_{L-1}, z_L] of layer outputs (the head is linear)."""
    outs = [Xb]
    L = len(params)
    for l, (W, b) in enumerate(params):
        z = outs[-1] @ W + b
        outs.append(z if l == L - 1 else _activate(activation_id, z))
    return outs


def mlp_forward(theta, layer_sizes, activation_id, X):
    """Head outputs (n, K_out), dtype of theta: predictions for squared, logits for
    logistic (one column) and softmax (K columns)."""
    params = mlp_unflatten(theta, layer_sizes)
    return _forward(params, activation_id, np.asarray(X).astype(theta.dtype, copy=False))[-1]


def mlp_batch_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad,
                       scale, work=None):
    """grad = scale * sum_{i in rows} s_i dl_i/dtheta (overwrites all of grad, biases
    included); returns scale * sum_i s_i l_i.  No penalty (see ``mlp_add_penalty``), so
    partial sums over disjoint row sets add up to the batch's (data-parallel use).
    ``work`` is ignored here (compiled backends need it, sized for len(rows) rows).
    """
    layer_sizes = checks.layer_sizes_array(layer_sizes)
    rows = checks.mlp_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad,
                               scale, work, needs_work=False)
    y, sw = checks.data_arrays(X, y, sw)
    return _batch_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad,
                           scale)


def _batch_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad, scale):
    acc = theta.dtype
    params = mlp_unflatten(theta, layer_sizes)
    gparams = mlp_unflatten(grad, layer_sizes)
    Xb = X[rows].astype(acc, copy=False)
    outs = _forward(params, activation_id, Xb)
    loss, dloss = loss_and_dloss(loss_id, None, outs[-1], y[rows].astype(acc, copy=False))
    c = np.full(len(rows), scale, dtype=acc) if len(sw) == 0 else scale * sw[rows].astype(acc)
    delta = dloss * c[:, None]  # d(batch loss) / d z_L
    for l in range(len(params) - 1, -1, -1):
        gW, gb = gparams[l]
        gW[...] = outs[l].T @ delta
        gb[...] = delta.sum(axis=0)
        if l > 0:
            delta = (delta @ params[l][0].T) * _activation_grad(activation_id, outs[l])
    return float(np.dot(c, loss))


def mlp_add_penalty(theta, grad, layer_sizes, alpha, l1_ratio):
    """Add alpha * ((1 - r) W + r sign(W)) to the W parts of grad; return the penalty
    alpha * ((1 - r)/2 ||W||^2 + r ||W||_1) summed over the layers' W's."""
    layer_sizes = checks.layer_sizes_array(layer_sizes)
    checks.mlp_penalty(theta, grad, layer_sizes, alpha, l1_ratio)
    return _add_penalty(theta, grad, layer_sizes, alpha, l1_ratio)


def _add_penalty(theta, grad, layer_sizes, alpha, l1_ratio):
    if alpha == 0:
        return 0.0
    total = 0.0
    for (W, _), (gW, _) in zip(mlp_unflatten(theta, layer_sizes),
                               mlp_unflatten(grad, layer_sizes)):
        gW += alpha * ((1.0 - l1_ratio) * W + l1_ratio * np.sign(W))
        w = W.ravel()
        total += float(alpha * (0.5 * (1.0 - l1_ratio) * np.dot(w, w)
                                + l1_ratio * np.abs(w).sum()))
    return total


def mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes, activation_id,
              alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
              work):
    """Run ``n_batches`` updates; return how many were applied (see module docstring).

    Batch k is ``order[k*b : min((k+1)*b, m)]``; ``batch_loss[k]`` is its loss (data +
    penalty) at theta before its update.  A non-finite batch loss stops the epoch at
    that batch, which is then not applied (theta and state stay as before it).
    """
    layer_sizes = checks.layer_sizes_array(layer_sizes)
    order = checks.mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes,
                             activation_id, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta,
                             grad, state, batch_loss, work, needs_work=False)
    y, sw = checks.data_arrays(X, y, sw)
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported, not warned about
        return _epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes,
                      activation_id, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                      state, batch_loss)


def _epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes, activation_id, alpha,
           l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss):
    m = len(order)
    for k in range(n_batches):
        rows = order[k * batch_size:min((k + 1) * batch_size, m)]
        loss = _batch_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad,
                               1.0 / len(rows))
        loss += _add_penalty(theta, grad, layer_sizes, alpha, l1_ratio)
        batch_loss[k] = loss
        if not math.isfinite(loss):
            return k
        _apply_update(rule_id, hyper, theta, grad, state, lrs[k], step0 + k + 1)
    return n_batches
