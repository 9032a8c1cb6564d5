"""Per-sample linear losses, vectorised over a batch of predictions.

``p`` has shape (b, K) (K = 1 except for softmax), ``y`` shape (b,).  Labels are
already in the loss's internal form: {0, 1} for logistic, ±1 for the hinge
family, class indices for softmax, reals otherwise.  Definitions follow
scikit-learn's ``_sgd_fast`` (hinge, squared_hinge, modified_huber, huber,
epsilon_insensitive, squared_epsilon_insensitive, perceptron); logistic and
softmax are the exact cross-entropies, computed without overflow.
"""
import numpy as np

from ..kernels import ids


def loss_and_dloss(loss_id, loss_param, p, y):
    """Return (loss (b,), dloss (b, K)) where dloss = d loss / d p."""
    if loss_id == ids.LOSS_SOFTMAX:
        return _softmax(p, y)
    if loss_id == ids.LOSS_CUSTOM:
        l, dl = loss_param(p[:, 0], y)
        return l, dl[:, None]
    l, dl = _scalar_loss(loss_id, loss_param, p[:, 0], y)
    return l, dl[:, None]


def _scalar_loss(loss_id, eps, p, y):
    if loss_id == ids.LOSS_SQUARED:
        r = p - y
        return 0.5 * r * r, r
    if loss_id == ids.LOSS_LOGISTIC:
        # softplus(p) - y p, and sigmoid(p) - y, both stable for any |p|.
        loss = np.maximum(p, 0) - p * y + np.log1p(np.exp(-np.abs(p)))
        e = np.exp(-np.abs(p))
        sig = np.where(p >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return loss, sig - y
    if loss_id in (ids.LOSS_HINGE, ids.LOSS_PERCEPTRON):
        threshold = 1.0 if loss_id == ids.LOSS_HINGE else 0.0
        z = p * y
        active = z <= threshold
        return np.maximum(0.0, threshold - z), np.where(active, -y, 0.0)
    if loss_id == ids.LOSS_SQUARED_HINGE:
        z = 1.0 - p * y
        active = z > 0
        return np.where(active, z * z, 0.0), np.where(active, -2.0 * y * z, 0.0)
    if loss_id == ids.LOSS_MODIFIED_HUBER:
        z = p * y
        quad = (z >= -1.0) & (z < 1.0)
        lin = z < -1.0
        loss = np.where(quad, (1.0 - z) ** 2, np.where(lin, -4.0 * z, 0.0))
        dloss = np.where(quad, -2.0 * (1.0 - z) * y, np.where(lin, -4.0 * y, 0.0))
        return loss, dloss
    if loss_id == ids.LOSS_HUBER:
        r = p - y
        a = np.abs(r)
        small = a <= eps
        loss = np.where(small, 0.5 * r * r, eps * a - 0.5 * eps * eps)
        dloss = np.where(small, r, np.where(r > 0, eps, -eps))
        return loss, dloss
    if loss_id == ids.LOSS_EPSILON_INSENSITIVE:
        z = y - p
        loss = np.maximum(0.0, np.abs(z) - eps)
        dloss = np.where(z > eps, -1.0, np.where(-z > eps, 1.0, 0.0))
        return loss, dloss
    if loss_id == ids.LOSS_SQUARED_EPSILON_INSENSITIVE:
        z = y - p
        over = np.maximum(0.0, np.abs(z) - eps)
        dloss = np.where(z > eps, -2.0 * (z - eps), np.where(-z > eps, 2.0 * (-z - eps), 0.0))
        return over * over, dloss
    raise ValueError(f"unknown loss id {loss_id}")


def _softmax(p, y):
    m = p.max(axis=1, keepdims=True)
    e = np.exp(p - m)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(p.shape[0])
    cls = y.astype(np.intp)
    loss = (m[:, 0] + np.log(s[:, 0])) - p[rows, cls]
    dloss = e / s
    dloss[rows, cls] -= 1.0
    return loss, dloss
