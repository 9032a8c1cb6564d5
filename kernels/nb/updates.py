"""Fused update rules (PyTorch's formulas), in place on flat vectors: Numba.

Same names, argument order and formulas as ``fastgd.reference.updates``.
Every function can be called from Python or from your own ``@njit`` code.  The
single-rule functions are ``@njit`` kernels that trust their inputs, from Python too;
``apply_update`` checks its arguments when Python calls it (``checks.update``) and is
the kernel itself in ``@njit`` code.  Each makes one pass over the parameters, reading
``theta``, ``grad`` and the state once and writing ``theta`` and the state
once.  ``step`` is the 1-based count of this update (PyTorch's
``state["step"]`` after its increment).  ``lr`` and the hyper-parameters are
float64; arrays are float32 or float64 (all of one dtype).  Adam, Adagrad and
RMSprop are compiled without the "reassoc" flag (config.kernel): each parameter's
arithmetic keeps the formula's order, as the reference's and Cython's do.
"""
import math

import numpy as np
from numba.extending import overload

from .config import kernel
from .. import checks
from ..ids import RULE_SGD, RULE_ADAM, RULE_ADAMW, RULE_ADAGRAD, RULE_RMSPROP


@kernel(inline=True)
def plain_sgd_update(theta, grad, lr):
    """``theta -= lr * grad``: SGD without momentum or weight decay.  Inlined into its
    ``@njit`` callers: the epoch's batch loops call it directly (at W1's b = 32 the calls
    through apply_update and sgd_update had cost 2.5 ns a row, 6 % of the epoch)."""
    for i in range(theta.shape[0]):
        theta[i] -= lr * grad[i]


@kernel(inline=True)
def sgd_momentum_step(w, g, b, lr, momentum, damp1, nesterov, first):
    """One parameter of torch.optim.SGD with momentum: (w, b) after the step on gradient
    ``g`` (weight decay included) from buffer ``b``; ``damp1`` is 1 - dampening, and the
    buffer starts as the first gradient (``first``: step 1).  Inlined into sgd_update
    and into the b = 1 row loop that fuses the step with the next row's margin."""
    b = g if first else momentum * b + damp1 * g
    return w - lr * (g + momentum * b if nesterov else b), b


@kernel
def sgd_update(theta, grad, buf, lr, momentum, dampening, nesterov, weight_decay, step):
    """torch.optim.SGD: the momentum buffer starts as the first gradient (step 1)."""
    n = theta.shape[0]
    if momentum == 0.0:
        if weight_decay == 0.0:
            plain_sgd_update(theta, grad, lr)
        else:
            for i in range(n):
                theta[i] -= lr * (grad[i] + weight_decay * theta[i])
        return
    first = step == 1
    damp1 = 1.0 - dampening
    for i in range(n):
        d = grad[i] + weight_decay * theta[i] if weight_decay != 0.0 else grad[i]
        theta[i], buf[i] = sgd_momentum_step(theta[i], d, buf[i], lr, momentum, damp1,
                                             nesterov, first)


@kernel(inline=True)
def bias_correction(beta, step):
    """Adam's ``1 - beta**step``, without the power once it is exactly 1: from
    step (1 - beta) >= 38.2 on, beta**step <= exp(-step (1 - beta)) < 2**-55 (as
    -log(beta) >= 1 - beta), and 1 - x rounds to 1.0 for any x under 2**-54 (the same
    bits).  Adam's beta1 = 0.9 gets there at step 382, beta2 = 0.999 at 38,200."""
    if step * (1.0 - beta) >= 38.2:
        return 1.0
    return 1.0 - beta ** step


@kernel(inline=True)
def _adam_moments(t, g, m, v, beta1, beta2, weight_decay, decoupled, decay):
    """One parameter's weight decay and moments: (t, m, v) for Adam's step."""
    if weight_decay != 0.0:
        if decoupled:
            t = t * decay
        else:
            g = g + weight_decay * t
    return t, beta1 * m + (1.0 - beta1) * g, beta2 * v + (1.0 - beta2) * g * g


@kernel(reassoc=False)
def adam_update(theta, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled,
                amsgrad, step):
    """torch.optim.Adam (``decoupled=False``) and AdamW (``decoupled=True``)."""
    n = theta.shape[0]
    bias1 = bias_correction(beta1, step)
    bias2_sqrt = math.sqrt(bias_correction(beta2, step))
    step_size = lr / bias1
    decay = 1.0 - lr * weight_decay
    if bias2_sqrt == 1.0 and not amsgrad:
        # from step 38,200 on (beta2 = 0.999): sqrt(v) / 1 is sqrt(v), the same bits with
        # one division a parameter instead of two
        for i in range(n):
            t, mi, vi = _adam_moments(theta[i], grad[i], m[i], v[i], beta1, beta2,
                                      weight_decay, decoupled, decay)
            m[i] = mi
            v[i] = vi
            theta[i] = t - step_size * (mi / (math.sqrt(vi) + eps))
        return
    for i in range(n):
        t, mi, vi = _adam_moments(theta[i], grad[i], m[i], v[i], beta1, beta2, weight_decay,
                                  decoupled, decay)
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vm = vmax[i]
            if vi > vm or vi != vi:  # torch.maximum: a NaN in either wins
                vm = vi
            vmax[i] = vm
            denom = math.sqrt(vm) / bias2_sqrt + eps
        else:
            denom = math.sqrt(vi) / bias2_sqrt + eps
        theta[i] = t - step_size * (mi / denom)


@kernel(reassoc=False)
def adagrad_update(theta, grad, acc, lr, lr_decay, weight_decay, eps, step):
    """torch.optim.Adagrad (``initial_accumulator_value`` is the state's start)."""
    n = theta.shape[0]
    clr = lr / (1.0 + (step - 1) * lr_decay)
    for i in range(n):
        g = grad[i] + weight_decay * theta[i] if weight_decay != 0.0 else grad[i]
        a = acc[i] + g * g
        acc[i] = a
        theta[i] -= clr * (g / (math.sqrt(a) + eps))


@kernel(reassoc=False)
def rmsprop_update(theta, grad, square_avg, buf, grad_avg, lr, alpha, eps, weight_decay,
                   momentum, centered):
    """torch.optim.RMSprop (``centered`` subtracts the running mean gradient)."""
    n = theta.shape[0]
    for i in range(n):
        g = grad[i] + weight_decay * theta[i] if weight_decay != 0.0 else grad[i]
        sq = alpha * square_avg[i] + (1.0 - alpha) * g * g
        square_avg[i] = sq
        if centered:
            ga = alpha * grad_avg[i] + (1.0 - alpha) * g
            grad_avg[i] = ga
            avg = math.sqrt(sq - ga * ga) + eps
        else:
            avg = math.sqrt(sq) + eps
        if momentum > 0.0:
            b = momentum * buf[i] + g / avg
            buf[i] = b
            theta[i] -= lr * b
        else:
            theta[i] -= lr * (g / avg)


@kernel
def _apply_update(rule_id, hyper, theta, grad, state, lr, step):
    h = hyper
    if rule_id == RULE_SGD:
        sgd_update(theta, grad, state[0], lr, h[0], h[1], h[2] != 0.0, h[3], step)
    elif rule_id == RULE_ADAM or rule_id == RULE_ADAMW:
        adam_update(theta, grad, state[0], state[1], state[2], lr, h[0], h[1], h[2], h[3],
                    rule_id == RULE_ADAMW, h[4] != 0.0, step)
    elif rule_id == RULE_ADAGRAD:
        adagrad_update(theta, grad, state[0], lr, h[0], h[1], h[2], step)
    elif rule_id == RULE_RMSPROP:
        rmsprop_update(theta, grad, state[0], state[1], state[2], lr, h[0], h[1], h[2], h[3],
                       h[4] != 0.0)


def apply_update(rule_id, hyper, theta, grad, state, lr, step):
    """Dispatch on the rule code; ``state`` is (STATE_SLOTS[rule], P), ``hyper`` per ids.py.
    From Python the arguments are checked first (``checks.update``); from ``@njit`` code
    this is the kernel itself, which trusts them."""
    checks.update(rule_id, hyper, theta, grad, state, lr, step)
    _apply_update(int(rule_id), np.ascontiguousarray(hyper, dtype=np.float64), theta, grad,
                  state, float(lr), int(step))


@overload(apply_update)
def _ol_apply_update(rule_id, hyper, theta, grad, state, lr, step):
    def impl(rule_id, hyper, theta, grad, state, lr, step):
        _apply_update(rule_id, hyper, theta, grad, state, lr, step)
    return impl
