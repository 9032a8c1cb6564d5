"""Custom per-sample models, one sample at a time in Python: the readable oracle.

Same signatures as ``fastgd.kernels.nb.custom_epoch``.  ``fn(params, x, y,
grad_out) -> loss`` is called per sample from Python, with ``grad_out`` zeroed
before each call; ``y`` is a Python float.  A fit passes the user's ``@njit``
function itself, so that overflow, NaN and its ``error_model`` behave as in the
Numba kernel.  Any other callable works too; if it is plain Python, its ``math``
raises ``OverflowError`` where compiled code gives inf, and ``ValueError("math
domain error")`` where it gives NaN (the square root or log of a negative number):
such a sample's loss is taken as inf or NaN, so the epoch stops at that batch as the
Numba kernel does.
"""
import math

from ..kernels import checks
from .updates import _apply_update


def custom_model_batch_gradient(fn, X, y, sw, rows, theta, grad, scale, gbuf):
    """grad = scale * sum_{i in rows} s_i grad_i; returns scale * sum s_i loss_i."""
    rows = checks.custom_gradient(fn, X, y, sw, rows, theta, grad, gbuf, scale)
    y, sw = checks.data_arrays(X, y, sw)
    return _batch_gradient(fn, X, y, sw, rows, theta, grad, scale, gbuf)


def _batch_gradient(fn, X, y, sw, rows, theta, grad, scale, gbuf):
    grad[:] = 0
    loss = 0.0
    for i in rows:
        gbuf[:] = 0
        try:
            l = fn(theta, X[i], float(y[i]), gbuf)
        except OverflowError:
            l = math.inf
        except ValueError as exc:
            if "math domain error" not in str(exc):
                raise
            l = math.nan
        c = scale * (float(sw[i]) if len(sw) else 1.0)
        loss += c * float(l)
        grad += c * gbuf
    return loss


def custom_model_epoch(fn, X, y, sw, order, batch_size, n_batches, rule_id, hyper, lrs, step0,
                       theta, grad, state, batch_loss, gbuf):
    order = checks.custom_epoch(fn, X, y, sw, order, batch_size, n_batches, rule_id, hyper, lrs,
                                step0, theta, grad, state, batch_loss, gbuf)
    y, sw = checks.data_arrays(X, y, sw)
    m = len(order)
    for k in range(n_batches):
        rows = order[k * batch_size:min((k + 1) * batch_size, m)]
        loss = _batch_gradient(fn, X, y, sw, rows, theta, grad, 1.0 / len(rows), gbuf)
        batch_loss[k] = loss
        if not math.isfinite(loss):
            return k
        _apply_update(rule_id, hyper, theta, grad, state, lrs[k], step0 + k + 1)
    return n_batches


def custom_model_predict(predict, theta, X, out):
    """out[i] = predict(theta, X[i]) for every row."""
    checks.predict_arrays(theta, X, out)
    for i in range(X.shape[0]):
        out[i] = predict(theta, X[i])
    return out
