"""Fused update rules (PyTorch's formulas) as CUDA device functions and kernels.

Same formulas, term for term, as ``fastgd.reference.updates`` (torch.optim,
``foreach=False``).  Each parameter is updated by one thread in one pass: it
reads theta[j], its gradient and its state slots once and writes theta[j] and
the state once.

Per-step scalars (bias corrections, Adagrad's decayed rate, 1 - lr * wd) are
computed in float64, like PyTorch's Python-float step arithmetic, then cast to
the accumulation dtype ``T``; the element-wise arithmetic runs in ``T``.

``update_functions(dtype).update_one(rule_id, hyper, theta, state, j, g, lr, step)``
    the device function every epoch kernel calls (``hyper`` is the float64
    device array of ``fastgd.kernels.ids``'s layout, ``state`` is
    (STATE_SLOTS[rule], P)).
``apply_update(rule_id, hyper, theta, grad, state, lr, step)``
    the convention's dispatcher: one element-wise kernel launch over the P
    parameters.  Device arrays are updated in place; host arrays are copied
    to the device, updated, and copied back into the same arrays.
"""
import functools
import math

import numpy as np
from numba import cuda

from .. import checks, ids

RULE_SGD = ids.RULE_SGD
RULE_ADAM = ids.RULE_ADAM
RULE_ADAMW = ids.RULE_ADAMW
RULE_ADAGRAD = ids.RULE_ADAGRAD
RULE_RMSPROP = ids.RULE_RMSPROP

SUPPORTED_RULES = (RULE_SGD, RULE_ADAM, RULE_ADAMW, RULE_ADAGRAD, RULE_RMSPROP)


class UpdateFunctions:
    def __init__(self, **fns):
        self.__dict__.update(fns)


@functools.lru_cache(maxsize=None)
def update_functions(dtype):
    """Device functions of one accumulation dtype (np.float32 or np.float64)."""
    from numba.np.numpy_support import from_dtype

    T = from_dtype(np.dtype(dtype))
    zero = T(0.0)

    @cuda.jit(device=True)
    def sgd_one(theta, state, j, g, lr, momentum, dampening, nesterov, weight_decay, step):
        w = theta[j]
        d = g
        if weight_decay != 0.0:
            d = g + T(weight_decay) * w
        if momentum != 0.0:
            if step == 1:
                buf = d
            else:
                buf = state[0, j] * T(momentum) + T(1.0 - dampening) * d
            state[0, j] = buf
            if nesterov:
                d = d + T(momentum) * buf
            else:
                d = buf
        theta[j] = w - T(lr) * d

    @cuda.jit(device=True)
    def adam_one(theta, state, j, g, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                 step):
        w = theta[j]
        gg = g
        if weight_decay != 0.0:
            if decoupled:
                w = w * T(1.0 - lr * weight_decay)
            else:
                gg = g + T(weight_decay) * w
        m = state[0, j] * T(beta1) + T(1.0 - beta1) * gg
        v = state[1, j] * T(beta2) + T(1.0 - beta2) * gg * gg
        state[0, j] = m
        state[1, j] = v
        bias1 = 1.0 - beta1 ** step
        bias2_sqrt = math.sqrt(1.0 - beta2 ** step)
        if amsgrad:
            vmax = state[2, j]
            if v > vmax or v != v:  # torch.maximum: a NaN in either wins (a GPU's fmax,
                vmax = v            # which max() lowers to, drops it)
            state[2, j] = vmax
            denom = T(math.sqrt(vmax)) / T(bias2_sqrt) + T(eps)
        else:
            denom = T(math.sqrt(v)) / T(bias2_sqrt) + T(eps)
        theta[j] = w - T(lr / bias1) * (m / denom)

    @cuda.jit(device=True)
    def adagrad_one(theta, state, j, g, lr, lr_decay, weight_decay, eps, step):
        w = theta[j]
        gg = g
        if weight_decay != 0.0:
            gg = g + T(weight_decay) * w
        clr = lr / (1.0 + (step - 1) * lr_decay)
        acc = state[0, j] + gg * gg
        state[0, j] = acc
        theta[j] = w - T(clr) * (gg / (T(math.sqrt(acc)) + T(eps)))

    @cuda.jit(device=True)
    def rmsprop_one(theta, state, j, g, lr, alpha, eps, weight_decay, momentum, centered):
        w = theta[j]
        gg = g
        if weight_decay != 0.0:
            gg = g + T(weight_decay) * w
        sq = state[0, j] * T(alpha) + T(1.0 - alpha) * gg * gg
        state[0, j] = sq
        if centered:
            ga = state[2, j] * T(alpha) + T(1.0 - alpha) * gg
            state[2, j] = ga
            avg = T(math.sqrt(sq - ga * ga)) + T(eps)
        else:
            avg = T(math.sqrt(sq)) + T(eps)
        if momentum > 0.0:
            buf = state[1, j] * T(momentum) + gg / avg
            state[1, j] = buf
            theta[j] = w - T(lr) * buf
        else:
            theta[j] = w - T(lr) * (gg / avg)

    @cuda.jit(device=True)
    def update_one(rule_id, hyper, theta, state, j, g, lr, step):
        if rule_id == RULE_SGD:
            sgd_one(theta, state, j, g, lr, hyper[0], hyper[1], hyper[2] != 0.0, hyper[3], step)
        elif rule_id == RULE_ADAM or rule_id == RULE_ADAMW:
            adam_one(theta, state, j, g, lr, hyper[0], hyper[1], hyper[2], hyper[3],
                     rule_id == RULE_ADAMW, hyper[4] != 0.0, step)
        elif rule_id == RULE_ADAGRAD:
            adagrad_one(theta, state, j, g, lr, hyper[0], hyper[1], hyper[2], step)
        elif rule_id == RULE_RMSPROP:
            rmsprop_one(theta, state, j, g, lr, hyper[0], hyper[1], hyper[2], hyper[3],
                        hyper[4] != 0.0)
        else:
            theta[j] = T(math.nan)  # unknown rule: poison, the API never sends one

    @cuda.jit
    def apply_update_kernel(rule_id, hyper, theta, grad, state, lr, step):
        j = cuda.grid(1)
        if j < theta.shape[0]:
            update_one(rule_id, hyper, theta, state, j, T(grad[j]), lr, step)

    return UpdateFunctions(sgd_one=sgd_one, adam_one=adam_one, adagrad_one=adagrad_one,
                           rmsprop_one=rmsprop_one, update_one=update_one,
                           apply_update_kernel=apply_update_kernel, zero=zero)


def _as_device(a):
    from ._device import as_device_array, is_device_array

    if is_device_array(a):
        return as_device_array(a), False
    return cuda.to_device(np.ascontiguousarray(a)), True


def apply_update(rule_id, hyper, theta, grad, state, lr, step, threads=None):
    """One fused update of every parameter (docs/kernels.md), in place.

    ``theta``, ``grad``, ``state`` may be device arrays (updated in place on
    the device) or NumPy arrays (copied over and back, for tests).
    """
    from . import config

    tpb = config.THREADS_PER_BLOCK if threads is None else checks.count(
        "threads", threads, 1, "it is the threads of a CUDA block")
    if tpb > 1024:
        raise ValueError(f"Invalid threads: {tpb}; a CUDA block has at most 1024 threads")
    P = theta.shape[0]
    if all(isinstance(a, np.ndarray) for a in (theta, grad, state)):  # the CPU entries' check
        checks.update(rule_id, hyper, theta, grad, state, lr, step)
    d_theta, theta_host = _as_device(theta)
    d_state, state_host = _as_device(state)
    d_grad, _ = _as_device(grad)
    d_hyper = cuda.to_device(np.ascontiguousarray(hyper, dtype=np.float64))
    kernel = update_functions(np.dtype(d_theta.dtype)).apply_update_kernel
    kernel[max(1, (P + tpb - 1) // tpb), tpb](int(rule_id), d_hyper, d_theta, d_grad, d_state,
                                              float(lr), int(step))
    if theta_host:
        theta[...] = d_theta.copy_to_host()
    if state_host:
        state[...] = d_state.copy_to_host()
