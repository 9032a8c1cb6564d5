"""One epoch of a linear model, batch by batch: the readable oracle.

Calling convention (shared by every backend, see docs/kernels.md):

theta  flat parameters, dtype = accumulation dtype: W (d, K) row-major, then
       the intercept (K,) when fit_intercept.
order  int64 row indices; batch k is order[k*b : min((k+1)*b, len(order))].
lrs    float64 step size per batch of this epoch.
step0  updates already applied before this epoch (the optimizer's step count).
batch_loss  float64 (n_batches,) output: data loss + penalty at theta before
       the batch's update.
Returns the number of batches whose update was applied; fewer than n_batches
means batch ``n_done`` had a non-finite loss and theta is left as it was
before that batch.
"""
import math

import numpy as np

from ..kernels import checks
from .losses import loss_and_dloss
from .updates import _apply_update


def split_theta(theta, n_features, n_outputs, fit_intercept):
    """Views (W (d, K), b (K,) or None) into the flat parameter vector."""
    dk = n_features * n_outputs
    W = theta[:dk].reshape(n_features, n_outputs)
    b = theta[dk:dk + n_outputs] if fit_intercept else None
    return W, b


def linear_batch_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept,
                          theta, grad, scale):
    """grad = scale * sum_i s_i dl_i/dtheta over ``rows``; returns scale * sum_i s_i l_i.

    The penalty is not included (see ``add_penalty``), so partial sums over
    disjoint row sets add up exactly to the batch gradient (data-parallel use).
    """
    rows = checks.linear_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept,
                                  theta, grad, scale)
    y, sw = checks.data_arrays(X, y, sw)
    return _batch_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept,
                           theta, grad, scale)


def _batch_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept, theta, grad,
                    scale):
    acc = theta.dtype
    d = X.shape[1]
    W, b = split_theta(theta, d, n_outputs, fit_intercept)
    Xb = X[rows].astype(acc, copy=False)
    p = Xb @ W
    if b is not None:
        p = p + b
    loss, dloss = loss_and_dloss(loss_id, loss_param, p, y[rows].astype(acc, copy=False))
    c = np.full(len(rows), scale, dtype=acc) if len(sw) == 0 else scale * sw[rows].astype(acc)
    dloss = dloss * c[:, None]
    gW, gb = split_theta(grad, d, n_outputs, fit_intercept)
    gW[...] = Xb.T @ dloss
    if gb is not None:
        gb[...] = dloss.sum(axis=0)
    return float(np.dot(c, loss))


def add_penalty(theta, grad, n_penalized, alpha, l1_ratio):
    """Add the penalty's (sub)gradient to grad[:n_penalized]; return its value.

    alpha * ((1 - r)/2 ||w||^2 + r ||w||_1): l2 is r = 0, l1 is r = 1.
    """
    checks.penalty(theta, grad, n_penalized, alpha, l1_ratio)
    return _add_penalty(theta, grad, n_penalized, alpha, l1_ratio)


def _add_penalty(theta, grad, n_penalized, alpha, l1_ratio):
    if alpha == 0:
        return 0.0
    w = theta[:n_penalized]
    grad[:n_penalized] += alpha * ((1.0 - l1_ratio) * w + l1_ratio * np.sign(w))
    return float(alpha * (0.5 * (1.0 - l1_ratio) * np.dot(w, w) + l1_ratio * np.abs(w).sum()))


def linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                 fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                 state, batch_loss):
    order = checks.linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
                                n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs,
                                step0, theta, grad, state, batch_loss)
    y, sw = checks.data_arrays(X, y, sw)
    m = len(order)
    n_penalized = X.shape[1] * n_outputs
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported, not warned about
        return _epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                      fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad,
                      state, batch_loss, m, n_penalized)


def _epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs, fit_intercept,
           alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss, m,
           n_penalized):
    for k in range(n_batches):
        rows = order[k * batch_size:min((k + 1) * batch_size, m)]
        loss = _batch_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept,
                               theta, grad, 1.0 / len(rows))
        loss += _add_penalty(theta, grad, n_penalized, alpha, l1_ratio)
        batch_loss[k] = loss
        if not math.isfinite(loss):
            return k
        _apply_update(rule_id, hyper, theta, grad, state, lrs[k], step0 + k + 1)
    return n_batches
