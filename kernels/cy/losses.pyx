# cython: language_level=3
"""Python-callable wrappers around the inline ``nogil`` losses of ``losses.pxd``.

They exist so tests (and curious users) reach the very C code the epoch loops
inline, as scikit-learn's ``_sgd_fast`` does with its loss classes:

    py_loss(loss_id, loss_param, p, y)          one sample (float64)
    py_dloss(loss_id, loss_param, p, y)         one sample (float64)
    loss_and_dloss(loss_id, loss_param, p, y)   a batch, like the reference's:
        p (b, K) float32/float64, y (b,) same dtype -> (loss (b,), dloss (b, K))
        computed in p's dtype.

For LOSS_SOFTMAX, ``p`` of py_loss/py_dloss is the (K,) logit vector and
py_dloss returns a (K,) array.
"""
import numpy as np

from .. import checks

from cython cimport floating

from .losses cimport (loss_dloss, loss_value, dloss_value, softmax_loss_dloss,
                      LOSS_SOFTMAX)

LOSS_CUSTOM = -1


cdef _check_supported(int loss_id):
    if loss_id == LOSS_CUSTOM:
        raise ValueError("loss_id=LOSS_CUSTOM (-1): user-defined losses are not supported by "
                         "the Cython backend; use backend='numba' (or 'numpy')")
    if loss_id < 0 or loss_id > 9:
        raise ValueError(f"loss_id={loss_id}: unknown loss code; expected one of 0..9 "
                         "(fastgd.kernels.ids.LOSS_*)")


def _logits(p, double y):
    """A softmax sample's (K,) logits, and its label checked to be one of the K classes."""
    p = np.ascontiguousarray(p, dtype=np.float64)
    if p.ndim != 1 or p.shape[0] < 2:
        raise ValueError(f"Invalid p: shape {p.shape}; softmax takes the (K,) logits of one "
                         "sample, K >= 2")
    checks.class_labels(np.array([y]), p.shape[0])
    return p


def py_loss(int loss_id, double loss_param, p, double y):
    """Loss of one sample (float64), computed by the inline C function."""
    _check_supported(loss_id)
    cdef double[::1] pv, dl
    if loss_id == LOSS_SOFTMAX:
        pv = _logits(p, y)
        dl = np.empty(pv.shape[0])
        return softmax_loss_dloss(&pv[0], pv.shape[0], <Py_ssize_t>y, &dl[0])
    return loss_value(loss_id, loss_param, <double>p, y)


def py_dloss(int loss_id, double loss_param, p, double y):
    """d loss / d p of one sample (float64); a (K,) array for softmax."""
    _check_supported(loss_id)
    cdef double[::1] pv
    cdef double[::1] dl
    if loss_id == LOSS_SOFTMAX:
        pv = _logits(p, y)
        out = np.empty(pv.shape[0])
        dl = out
        softmax_loss_dloss(&pv[0], pv.shape[0], <Py_ssize_t>y, &dl[0])
        return out
    return dloss_value(loss_id, loss_param, <double>p, y)


cdef void _batch(int loss_id, double param, const floating[:, ::1] p, const floating[::1] y,
                 floating[::1] loss, floating[:, ::1] dloss) noexcept nogil:
    cdef Py_ssize_t i, b = p.shape[0], K = p.shape[1]
    for i in range(b):
        if loss_id == LOSS_SOFTMAX:
            loss[i] = softmax_loss_dloss(&p[i, 0], K, <Py_ssize_t>y[i], &dloss[i, 0])
        else:
            loss[i] = loss_dloss(loss_id, param, p[i, 0], y[i], &dloss[i, 0])


def loss_and_dloss(int loss_id, loss_param, p, y):
    """Return (loss (b,), dloss (b, K)) for predictions p (b, K), labels y (b,).

    Same contract as ``fastgd.reference.losses.loss_and_dloss``; the arithmetic
    is done in p's dtype (float32 or float64) by the inline C functions.
    """
    _check_supported(loss_id)
    cdef double param = 0.0 if loss_param is None else float(loss_param)
    p = np.ascontiguousarray(p)
    if p.dtype != np.float32:
        p = p.astype(np.float64, copy=False)
    if p.ndim != 2:
        raise ValueError(f"Invalid p: shape {p.shape}; it must be 2-D (b, K)")
    checks.outputs(loss_id, p.shape[1], "p.shape[1] (K)")
    y = np.ascontiguousarray(y, dtype=p.dtype)
    if y.shape != (p.shape[0],):
        raise ValueError(f"Invalid y: shape {y.shape}; p holds {p.shape[0]} samples, so y must "
                         f"have shape ({p.shape[0]},)")
    if loss_id == LOSS_SOFTMAX:
        checks.class_labels(y, p.shape[1])
    loss = np.empty(p.shape[0], dtype=p.dtype)
    dloss = np.empty(p.shape, dtype=p.dtype)
    if p.dtype == np.float32:
        _batch[float](loss_id, param, p, y, loss, dloss)
    else:
        _batch[double](loss_id, param, p, y, loss, dloss)
    return loss, dloss
