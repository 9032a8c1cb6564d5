"""Fused update rules with PyTorch's formulas, in place on flat vectors.

``step`` is the 1-based count of this update (PyTorch's ``state["step"]``
after its increment).  Each function reads theta, grad and the state once and
writes theta and the state once.
"""
import numpy as np

from ..kernels import checks, ids


def sgd_update(theta, grad, buf, lr, momentum, dampening, nesterov, weight_decay, step):
    d = grad + weight_decay * theta if weight_decay != 0 else grad
    if momentum != 0:
        if step == 1:
            buf[:] = d  # torch: the buffer starts as the first gradient
        else:
            buf *= momentum
            buf += (1.0 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    theta -= lr * d


def adam_update(theta, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, step):
    g = grad
    if weight_decay != 0:
        if decoupled:
            theta *= 1.0 - lr * weight_decay
        else:
            g = grad + weight_decay * theta
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * g * g
    bias1 = 1.0 - beta1**step
    bias2_sqrt = np.sqrt(1.0 - beta2**step)
    if amsgrad:
        np.maximum(vmax, v, out=vmax)
        denom = np.sqrt(vmax) / bias2_sqrt + eps
    else:
        denom = np.sqrt(v) / bias2_sqrt + eps
    theta -= (lr / bias1) * (m / denom)


def adagrad_update(theta, grad, acc, lr, lr_decay, weight_decay, eps, step):
    g = grad + weight_decay * theta if weight_decay != 0 else grad
    clr = lr / (1.0 + (step - 1) * lr_decay)
    acc += g * g
    theta -= clr * (g / (np.sqrt(acc) + eps))


def rmsprop_update(theta, grad, square_avg, buf, grad_avg, lr, alpha, eps, weight_decay, momentum, centered):
    g = grad + weight_decay * theta if weight_decay != 0 else grad
    square_avg *= alpha
    square_avg += (1.0 - alpha) * g * g
    if centered:
        grad_avg *= alpha
        grad_avg += (1.0 - alpha) * g
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        buf *= momentum
        buf += g / avg
        theta -= lr * buf
    else:
        theta -= lr * (g / avg)


def apply_update(rule_id, hyper, theta, grad, state, lr, step):
    """Dispatch on the rule code; ``state`` is (STATE_SLOTS[rule], P)."""
    checks.update(rule_id, hyper, theta, grad, state, lr, step)
    _apply_update(rule_id, hyper, theta, grad, state, lr, step)


def _apply_update(rule_id, hyper, theta, grad, state, lr, step):
    h = hyper
    if rule_id == ids.RULE_SGD:
        sgd_update(theta, grad, state[0], lr, h[0], h[1], bool(h[2]), h[3], step)
    elif rule_id in (ids.RULE_ADAM, ids.RULE_ADAMW):
        adam_update(theta, grad, state[0], state[1], state[2], lr, h[0], h[1], h[2], h[3],
                    rule_id == ids.RULE_ADAMW, bool(h[4]), step)
    elif rule_id == ids.RULE_ADAGRAD:
        adagrad_update(theta, grad, state[0], lr, h[0], h[1], h[2], step)
    elif rule_id == ids.RULE_RMSPROP:
        rmsprop_update(theta, grad, state[0], state[1], state[2], lr, h[0], h[1], h[2], h[3], bool(h[4]))
    else:
        raise ValueError(f"unknown update rule id {rule_id}")
