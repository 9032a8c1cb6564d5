"""Per-sample losses as CUDA device functions (same definitions as the reference).

``fastgd.reference.losses`` is the oracle: every formula below is the same
expression, term for term, evaluated in the accumulation dtype ``T`` (float32
or float64).  Device functions are made per dtype by :func:`loss_functions`
(every literal is cast to ``T`` so float32 code never silently promotes to
float64 on the device):

``scalar_loss(loss_id, eps, p, y) -> (loss, dloss/dp)``
    every loss code except softmax; ``eps`` is the loss parameter (huber's
    delta, the epsilon of the insensitive losses) already cast to ``T``.
``softmax_row(buf, off, K, cls, c) -> loss``
    ``buf[off:off+K]`` holds the K logits of one sample on entry and
    ``c * dloss/dp_k`` on exit (``c`` = scale x sample weight); returns the
    unscaled cross-entropy.  Max-shifted, so it never overflows.

Logistic is softplus(p) - y p with sigmoid(p) - y as derivative, both written
without overflow for any |p|, exactly as the reference.

:func:`evaluate` runs a loss over host vectors on the device (tests use it to
check every loss against the reference one launch per loss).
"""
import functools
import math

import numpy as np
from numba import cuda

from .. import ids

LOSS_SQUARED = ids.LOSS_SQUARED
LOSS_LOGISTIC = ids.LOSS_LOGISTIC
LOSS_SOFTMAX = ids.LOSS_SOFTMAX
LOSS_HINGE = ids.LOSS_HINGE
LOSS_SQUARED_HINGE = ids.LOSS_SQUARED_HINGE
LOSS_MODIFIED_HUBER = ids.LOSS_MODIFIED_HUBER
LOSS_HUBER = ids.LOSS_HUBER
LOSS_EPSILON_INSENSITIVE = ids.LOSS_EPSILON_INSENSITIVE
LOSS_SQUARED_EPSILON_INSENSITIVE = ids.LOSS_SQUARED_EPSILON_INSENSITIVE
LOSS_PERCEPTRON = ids.LOSS_PERCEPTRON

#: loss codes the CUDA kernels implement (LOSS_CUSTOM is a host callable: not here)
SUPPORTED_LOSSES = (LOSS_SQUARED, LOSS_LOGISTIC, LOSS_SOFTMAX, LOSS_HINGE, LOSS_SQUARED_HINGE,
                    LOSS_MODIFIED_HUBER, LOSS_HUBER, LOSS_EPSILON_INSENSITIVE,
                    LOSS_SQUARED_EPSILON_INSENSITIVE, LOSS_PERCEPTRON)


class LossFunctions:
    """The device functions of one accumulation dtype."""

    def __init__(self, scalar_loss, softmax_row):
        self.scalar_loss = scalar_loss
        self.softmax_row = softmax_row


@functools.lru_cache(maxsize=None)
def loss_functions(dtype):
    """Device functions computing in ``dtype`` (np.float32 or np.float64)."""
    from numba.np.numpy_support import from_dtype

    T = from_dtype(np.dtype(dtype))
    zero = T(0.0)
    one = T(1.0)
    half = T(0.5)
    two = T(2.0)
    four = T(4.0)

    @cuda.jit(device=True)
    def scalar_loss(loss_id, eps, p, y):
        if loss_id == LOSS_SQUARED:
            r = p - y
            return half * r * r, r
        if loss_id == LOSS_LOGISTIC:
            e = math.exp(-abs(p))
            loss = (p if p > zero else zero) - p * y + math.log1p(e)  # not max(): fmax
            if p >= zero:
                sig = one / (one + e)
            else:
                sig = e / (one + e)
            return T(loss), T(sig - y)
        if loss_id == LOSS_HINGE or loss_id == LOSS_PERCEPTRON:
            threshold = one if loss_id == LOSS_HINGE else zero
            z = p * y
            # max(0, t - z) spelled out so that a NaN margin keeps a NaN loss (as
            # NumPy's np.maximum does; a fit stops at the first non-finite batch loss)
            loss = threshold - z
            if loss < zero:
                loss = zero
            if z <= threshold:
                return loss, -y
            return loss, zero
        if loss_id == LOSS_SQUARED_HINGE:
            z = one - p * y
            if z > zero:
                return z * z, -two * y * z
            return zero, zero
        if loss_id == LOSS_MODIFIED_HUBER:
            z = p * y
            if z >= -one and z < one:
                return (one - z) * (one - z), -two * (one - z) * y
            if z < -one:
                return -four * z, -four * y
            return zero, zero
        if loss_id == LOSS_HUBER:
            r = p - y
            a = abs(r)
            if a <= eps:
                return half * r * r, r
            if r > zero:
                return eps * a - half * eps * eps, eps
            return eps * a - half * eps * eps, -eps
        if loss_id == LOSS_EPSILON_INSENSITIVE:
            z = y - p
            loss = abs(z) - eps
            if loss < zero:  # not max(): a NaN residual keeps a NaN loss
                loss = zero
            if z > eps:
                return loss, -one
            if -z > eps:
                return loss, one
            return loss, zero
        if loss_id == LOSS_SQUARED_EPSILON_INSENSITIVE:
            z = y - p
            over = abs(z) - eps
            if over < zero:
                over = zero
            if z > eps:
                return over * over, -two * (z - eps)
            if -z > eps:
                return over * over, two * (-z - eps)
            return over * over, zero
        # unknown code: a NaN loss stops the fit (the API never sends one)
        nan = T(math.nan)
        return nan, nan

    @cuda.jit(device=True)
    def softmax_row(buf, off, K, cls, c):
        m = buf[off]
        for k in range(1, K):
            v = buf[off + k]
            if v > m:
                m = v
        p_cls = buf[off + cls]
        s = zero
        for k in range(K):
            e = T(math.exp(buf[off + k] - m))
            buf[off + k] = e
            s += e
        for k in range(K):
            q = buf[off + k] / s
            if k == cls:
                q -= one
            buf[off + k] = q * c
        return T((m + T(math.log(s))) - p_cls)

    return LossFunctions(scalar_loss, softmax_row)


@functools.lru_cache(maxsize=None)
def _evaluate_kernel(dtype):
    fns = loss_functions(dtype)
    scalar_loss = fns.scalar_loss
    softmax_row = fns.softmax_row
    from numba.np.numpy_support import from_dtype

    T = from_dtype(np.dtype(dtype))

    @cuda.jit
    def kernel(loss_id, eps, p, y, loss, dloss):
        i = cuda.grid(1)
        if i >= p.shape[0]:
            return
        K = p.shape[1]
        if loss_id == LOSS_SOFTMAX:
            for k in range(K):
                dloss[i, k] = p[i, k]
            loss[i] = softmax_row(dloss[i], 0, K, int(y[i]), T(1.0))
        else:
            l, dl = scalar_loss(loss_id, T(eps), p[i, 0], y[i])
            loss[i] = l
            dloss[i, 0] = dl

    return kernel


def evaluate(loss_id, loss_param, p, y):
    """Loss and dloss of host arrays ``p`` (b, K) and ``y`` (b,), on the device.

    Same contract as ``fastgd.reference.losses.loss_and_dloss`` (the dtype of
    ``p`` is the computing dtype).  One launch; meant for tests and checks.
    """
    p = np.ascontiguousarray(p)
    dtype = p.dtype
    y = np.ascontiguousarray(y, dtype=dtype)
    n, K = p.shape
    loss = cuda.device_array(n, dtype=dtype)
    dloss = cuda.device_array((n, K), dtype=dtype)
    eps = float(loss_param) if loss_param is not None else 0.0
    tpb = 32
    _evaluate_kernel(dtype)[(n + tpb - 1) // tpb, tpb](int(loss_id), eps, cuda.to_device(p),
                                                      cuda.to_device(y), loss, dloss)
    return loss.copy_to_host(), dloss.copy_to_host()
