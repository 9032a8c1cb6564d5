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
``logistic_poly(p, y) -> (loss, dloss)``
    the logistic loss for ``|p| <= 700`` with exp and log1p as inline
    polynomials (no libm call), which the 4-row blocks of the batch gradient
    use: within a few ulps of ``loss_dloss``.
"""
import math

import numpy as np
from numba.core import types
from numba.extending import overload

from numba import njit

from ._util import bits_to_f64
from .config import kernel
from ..ids import (LOSS_SQUARED, LOSS_LOGISTIC, LOSS_SOFTMAX, LOSS_HINGE, LOSS_SQUARED_HINGE,
                   LOSS_MODIFIED_HUBER, LOSS_HUBER, LOSS_EPSILON_INSENSITIVE,
                   LOSS_SQUARED_EPSILON_INSENSITIVE, LOSS_PERCEPTRON)


@kernel(reassoc=False)
def loss_dloss(loss_id, loss_param, p, y):
    """(loss, d loss / d p) of one sample for a scalar loss code (float64).  Without the
    reassoc flag: LLVM had turned the squared loss's (0.5 r) r, the reference's order,
    into 0.5 (r r), which overflows from |r| = sqrt(max) instead of sqrt(2 max), so a
    diverging fit stopped about 100 updates before the reference's (review); nothing
    here is a reduction that reassociation would vectorise."""
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
        l, dl = loss_param(np.float64(p), np.float64(y))
        return float(l), float(dl)
    return loss_dloss(loss_id, 0.0 if loss_param is None else loss_param, p, y)


@overload(point_loss, inline="always")
def _ol_point_loss(loss_id, loss_param, p, y):
    if isinstance(loss_param, (types.Number, types.Boolean)):
        def impl(loss_id, loss_param, p, y):
            return loss_dloss(loss_id, loss_param, p, y)
    elif isinstance(loss_param, types.NoneType):
        def impl(loss_id, loss_param, p, y):
            return loss_dloss(loss_id, 0.0, p, y)
    else:  # a user's @njit (p, y) -> (loss, dloss), compiled into the caller.  Given
        # float64 p and y whatever the data's dtype, as documented and as the reference
        # gives them (np.float64: Numba's float() keeps a float32): float32 ones had
        # compiled a second specialisation that Loss never checked, overflowing at exp(89)
        def impl(loss_id, loss_param, p, y):
            l, dl = loss_param(np.float64(p), np.float64(y))
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


# Compiled without fast-math flags: the range reduction depends on the order of
# operations (reassociation would fold the rounding constant away); LLVM keeps each
# instruction's flags when it inlines this into the kernels.  error_model="numpy": a
# Python-model division would add a zero check and an exception path to each call.
@njit(fastmath=False, error_model="numpy", cache=False)
def logistic_poly(p, y):
    """(softplus(p) - y p, sigmoid(p) - y) for |p| <= 700, without libm calls.

    exp(-|p|): k = round(-|p| / ln 2) by the 1.5 * 2**52 rounding constant,
    r = -|p| - k ln 2 (two-part constant, |r| <= ln 2 / 2), a degree-13 Taylor
    polynomial, 2**k from its exponent bits.  log1p(e) = 2 atanh(e / (2 + e)), a
    17-term series in u**2 <= 1/9.  Both polynomials by Estrin's scheme (short
    dependency chains).  The loss is a sum of two terms, as in loss_dloss, so the
    small log1p term is never cancelled against p.
    """
    p = float(p)
    y = float(y)
    x = -abs(p)
    t = x * 1.4426950408889634 + 6755399441055744.0
    k = t - 6755399441055744.0
    r = (x - k * 0.6931471805598903) - k * 5.497923018708371e-14
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    q0 = (1.0 + r) + r2 * (0.5 + r * (1.0 / 6.0))
    q1 = (1.0 / 24.0 + r * (1.0 / 120.0)) + r2 * (1.0 / 720.0 + r * (1.0 / 5040.0))
    q2 = (1.0 / 40320.0 + r * (1.0 / 362880.0)) + r2 * (1.0 / 3628800.0 + r * (1.0 / 39916800.0))
    q3 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0)
    e = ((q0 + r4 * q1) + r8 * (q2 + r4 * q3)) * bits_to_f64((np.int64(k) + 1023) << 52)
    dl = (1.0 if p >= 0.0 else e) / (1.0 + e) - y
    u = e / (2.0 + e)
    v = u * u
    v2 = v * v
    v4 = v2 * v2
    v8 = v4 * v4
    s = (((1.0 + v * (1.0 / 3.0)) + v2 * (1.0 / 5.0 + v * (1.0 / 7.0)))
         + v4 * ((1.0 / 9.0 + v * (1.0 / 11.0)) + v2 * (1.0 / 13.0 + v * (1.0 / 15.0)))
         + v8 * (((1.0 / 17.0 + v * (1.0 / 19.0)) + v2 * (1.0 / 21.0 + v * (1.0 / 23.0)))
                 + v4 * ((1.0 / 25.0 + v * (1.0 / 27.0)) + v2 * (1.0 / 29.0 + v * (1.0 / 31.0)))
                 + v8 * (1.0 / 33.0)))
    lin = (1.0 - y) * p if p >= 0.0 else 0.0 - y * p
    return lin + (2.0 * u) * s, dl


# The same polynomial inlined (in Numba's IR) into a loop compiled without fast-math
# flags, so the loop over rows is vectorised: 3 ns a row against 15 ns for calls to
# logistic_poly (LLVM does not inline that across Numba's modules).  Same bits.
_logistic_poly_inline = njit(inline="always", fastmath=False, error_model="numpy",
                             cache=False)(logistic_poly.py_func)


@njit(fastmath=False, error_model="numpy", cache=False)
def logistic_poly_rows(p, y, loss, dl, n):
    """loss[r], dl[r] = logistic_poly(p[r], y[r]) for r < n (all |p[r]| <= 700)."""
    for r in range(n):
        loss[r], dl[r] = _logistic_poly_inline(p[r], y[r])
