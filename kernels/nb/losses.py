"""Per-sample linear losses and their derivative d loss / d p: Numba.

Exactly the definitions of ``fastgd.reference.losses`` (scikit-learn's
``_sgd_fast`` for the hinge/huber/epsilon families; exact, overflow-free
logistic and softmax cross-entropies), one sample at a time, in float64.
Labels are in the loss's internal form ({0, 1} logistic, +-1 hinge family,
class index for softmax).  A NaN/inf prediction gives exactly what the
reference gives (so a diverging fit stops at the same batch).

Public ``@njit`` kernels:

``loss_dloss(loss_id, loss_param, p, y) -> (loss, dloss)``
    every scalar loss code (not softmax); ``loss_param`` is epsilon for
    huber / epsilon_insensitive / squared_epsilon_insensitive.
``softmax_loss_dloss(p, y, dl) -> loss``
    ``p`` (K,) scores, ``y`` the class index, writes d loss / d p into ``dl`` (K,).
``point_loss(loss_id, loss_param, p, y) -> (loss, dloss)``
    what the epoch kernels call: ``loss_param(p, y)`` when ``loss_param`` is a
    user's ``@njit`` function (``LOSS_CUSTOM``), else ``loss_dloss``; resolved
    at compile time, so the built-in path carries no overhead.
``loss_and_dloss(loss_id, loss_param, p, y) -> (loss (b,), dloss (b, K))``
    the reference's batch form, for parity checks.
"""
import math

import numpy as np
from numba.core import types
from numba.extending import overload

from .config import kernel
from ..ids import (LOSS_SQUARED, LOSS_LOGISTIC, LOSS_SOFTMAX, LOSS_HINGE, LOSS_SQUARED_HINGE,
                   LOSS_MODIFIED_HUBER, LOSS_HUBER, LOSS_EPSILON_INSENSITIVE,
                   LOSS_SQUARED_EPSILON_INSENSITIVE, LOSS_PERCEPTRON)


@kernel
def loss_dloss(loss_id, loss_param, p, y):
    """(loss, d loss / d p) of one sample for a scalar loss code (float64)."""
    p = float(p)
    y = float(y)
    eps = float(loss_param)
    if loss_id == LOSS_SQUARED:
        r = p - y
        return 0.5 * r * r, r
    if loss_id == LOSS_LOGISTIC:
        # softplus(p) - y p and sigmoid(p) - y, stable for any |p|.
        e = math.exp(-abs(p))
        pos = p if p > 0.0 else 0.0
        if p != p:
            pos = p
        loss = pos - p * y + math.log1p(e)
        sig = 1.0 / (1.0 + e) if p >= 0.0 else e / (1.0 + e)
        return loss, sig - y
    if loss_id == LOSS_HINGE or loss_id == LOSS_PERCEPTRON:
        threshold = 1.0 if loss_id == LOSS_HINGE else 0.0
        z = p * y
        loss = threshold - z
        if loss < 0.0:  # keeps NaN, like np.maximum
            loss = 0.0
        return loss, (-y if z <= threshold else 0.0)
    if loss_id == LOSS_SQUARED_HINGE:
        z = 1.0 - p * y
        if z > 0.0:
            return z * z, -2.0 * y * z
        return 0.0, 0.0
    if loss_id == LOSS_MODIFIED_HUBER:
        z = p * y
        if z >= -1.0 and z < 1.0:
            return (1.0 - z) ** 2, -2.0 * (1.0 - z) * y
        if z < -1.0:
            return -4.0 * z, -4.0 * y
        return 0.0, 0.0
    if loss_id == LOSS_HUBER:
        r = p - y
        a = abs(r)
        if a <= eps:
            return 0.5 * r * r, r
        return eps * a - 0.5 * eps * eps, (eps if r > 0.0 else -eps)
    if loss_id == LOSS_EPSILON_INSENSITIVE:
        z = y - p
        loss = abs(z) - eps
        if loss < 0.0:
            loss = 0.0
        if z > eps:
            return loss, -1.0
        if -z > eps:
            return loss, 1.0
        return loss, 0.0
    if loss_id == LOSS_SQUARED_EPSILON_INSENSITIVE:
        z = y - p
        over = abs(z) - eps
        if over < 0.0:
            over = 0.0
        if z > eps:
            return over * over, -2.0 * (z - eps)
        if -z > eps:
            return over * over, 2.0 * (-z - eps)
        return over * over, 0.0
    return np.nan, np.nan  # unknown code: the epoch stops at its first batch


@kernel
def softmax_loss_dloss(p, y, dl):
    """Multinomial cross-entropy of scores ``p`` (K,) for class ``y``; dl/dp into ``dl``."""
    K = p.shape[0]
    m = float(p[0])
    for k in range(1, K):
        v = float(p[k])
        if v > m or v != v:
            m = v
    s = 0.0
    for k in range(K):
        e = math.exp(float(p[k]) - m)
        dl[k] = e
        s += e
    c = int(y)
    for k in range(K):
        dl[k] = dl[k] / s
    dl[c] -= 1.0
    return (m + math.log(s)) - float(p[c])


def point_loss(loss_id, loss_param, p, y):
    """(loss, dloss) of one sample: a user's function or a built-in code."""
    if callable(loss_param):
        l, dl = loss_param(p, y)
        return float(l), float(dl)
    return loss_dloss(loss_id, 0.0 if loss_param is None else loss_param, p, y)


@overload(point_loss, inline="always")
def _ol_point_loss(loss_id, loss_param, p, y):
    if isinstance(loss_param, (types.Number, types.Boolean)):
        def impl(loss_id, loss_param, p, y):
            return loss_dloss(loss_id, loss_param, p, y)
    elif isinstance(loss_param, (types.NoneType, types.Omitted)):
        def impl(loss_id, loss_param, p, y):
            return loss_dloss(loss_id, 0.0, p, y)
    else:  # a user's @njit (p, y) -> (loss, dloss), compiled into the caller
        def impl(loss_id, loss_param, p, y):
            l, dl = loss_param(p, y)
            return float(l), float(dl)
    return impl


@kernel(cache=False)
def loss_and_dloss(loss_id, loss_param, p, y):
    """Batch form of the reference: p (b, K), y (b,) -> (loss (b,), dloss (b, K))."""
    b, K = p.shape
    loss = np.empty(b)
    dloss = np.empty((b, K))
    for i in range(b):
        if loss_id == LOSS_SOFTMAX:
            loss[i] = softmax_loss_dloss(p[i], y[i], dloss[i])
        else:
            l, dl = point_loss(loss_id, loss_param, float(p[i, 0]), float(y[i]))
            loss[i] = l
            dloss[i, 0] = dl
    return loss, dloss
