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


def _checked_param(loss_id, loss_param):
    """The shared checks of the code and epsilon, then the one rule of this backend: no
    custom loss.  Returns loss_param as the double the C functions take."""
    if loss_id == LOSS_CUSTOM:
        raise ValueError("loss_id=LOSS_CUSTOM (-1): user-defined losses are not supported by "
                         "the Cython backend; use backend='numba' (or 'numpy')")
    checks.loss_code(loss_id, loss_param)
    return 0.0 if loss_param is None else float(loss_param)


cdef double _scalar(name, value) except? -1.0:
    return checks.real_scalar(name, value, rule="a real number (one sample's prediction or "
                              "label; softmax's p is the (K,) logits)")


def _logits(p, y):
    """A softmax sample's (K,) logits, and its label checked to be one of the K classes."""
    y = _scalar("y", y)
    p = np.ascontiguousarray(p, dtype=np.float64)
    if p.ndim != 1 or p.shape[0] < 2:
        raise ValueError(f"Invalid p: shape {p.shape}; softmax takes the (K,) logits of one "
                         "sample, K >= 2")
    checks.class_labels(np.array([y]), p.shape[0])
    return p, y


def py_loss(loss_id, loss_param, p, y):
    """Loss of one sample (float64), computed by the inline C function."""
    cdef double param = _checked_param(loss_id, loss_param)
    cdef double[::1] pv, dl
    if loss_id == LOSS_SOFTMAX:
        pv, y = _logits(p, y)
        dl = np.empty(pv.shape[0])
        return softmax_loss_dloss(&pv[0], pv.shape[0], <Py_ssize_t><double>y, &dl[0])
    return loss_value(<int>loss_id, param, _scalar("p", p), _scalar("y", y))


def py_dloss(loss_id, loss_param, p, y):
    """d loss / d p of one sample (float64); a (K,) array for softmax."""
    cdef double param = _checked_param(loss_id, loss_param)
    cdef double[::1] pv
    cdef double[::1] dl
    if loss_id == LOSS_SOFTMAX:
        pv, y = _logits(p, y)
        out = np.empty(pv.shape[0])
        dl = out
        softmax_loss_dloss(&pv[0], pv.shape[0], <Py_ssize_t><double>y, &dl[0])
        return out
    return dloss_value(<int>loss_id, param, _scalar("p", p), _scalar("y", y))


cdef void _batch(int loss_id, double param, const floating[:, ::1] p, const floating[::1] y,
                 floating[::1] loss, floating[:, ::1] dloss) noexcept nogil:
    cdef Py_ssize_t i, b = p.shape[0], K = p.shape[1]
    for i in range(b):
        if loss_id == LOSS_SOFTMAX:
            loss[i] = softmax_loss_dloss(&p[i, 0], K, <Py_ssize_t>y[i], &dloss[i, 0])
        else:
            loss[i] = loss_dloss(loss_id, param, p[i, 0], y[i], &dloss[i, 0])


def loss_and_dloss(loss_id, loss_param, p, y):
    """Return (loss (b,), dloss (b, K)) for predictions p (b, K), labels y (b,).

    Same contract as ``fastgd.reference.losses.loss_and_dloss``; the arithmetic
    is done in p's dtype (float32 or float64) by the inline C functions.
    """
    cdef double param = _checked_param(loss_id, loss_param)
    p = np.asarray(p)
    p = checks.real_array("p", p, np.float32 if p.dtype == np.float32 else np.float64)
    if p.ndim != 2:
        raise ValueError(f"Invalid p: shape {p.shape}; it must be 2-D (b, K)")
    checks.outputs(loss_id, p.shape[1], "p.shape[1] (K)")
    y = checks.real_array("y", y, p.dtype)
    if y.shape != (p.shape[0],):
        raise ValueError(f"Invalid y: shape {y.shape}; p holds {p.shape[0]} samples, so y must "
                         f"have shape ({p.shape[0]},)")
    if loss_id == LOSS_SOFTMAX:
        checks.class_labels(y, p.shape[1])
    loss = np.empty(p.shape[0], dtype=p.dtype)
    dloss = np.empty(p.shape, dtype=p.dtype)
    cdef const float[:, ::1] p32
    cdef const float[::1] y32
    cdef float[:, ::1] dl32
    cdef float[::1] l32
    cdef const double[:, ::1] p64
    cdef const double[::1] y64
    cdef double[:, ::1] dl64
    cdef double[::1] l64
    cdef int lid = loss_id
    if p.dtype == np.float32:
        p32, y32, l32, dl32 = p, y, loss, dloss
        with nogil:
            _batch[float](lid, param, p32, y32, l32, dl32)
    else:
        p64, y64, l64, dl64 = p, y, loss, dloss
        with nogil:
            _batch[double](lid, param, p64, y64, l64, dl64)
    return loss, dloss
