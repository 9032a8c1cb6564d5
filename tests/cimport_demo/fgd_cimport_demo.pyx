# cython: language_level=3, boundscheck=False, wraparound=False
"""A tiny third-party Cython module that cimports fastgd's nogil kernels.

tests/test_cy_kernels.py builds it in a temporary directory with
``cythonize(..., include_path=[fastgd.kernels.cy.get_include()])`` and calls it.
"""
from libc.stdint cimport int64_t

from fastgd.kernels.cy.updates cimport c_sgd_update, c_apply_update
from fastgd.kernels.cy.losses cimport loss_dloss, softmax_loss_dloss
from fastgd.kernels.cy.linear_epoch cimport c_linear_batch_gradient


def sgd_momentum_steps(double[::1] theta, const double[:, ::1] grads, double[::1] buf,
                       double lr, double momentum):
    """len(grads) torch.optim.SGD(momentum) steps, in place, without the GIL."""
    cdef Py_ssize_t k
    with nogil:
        for k in range(grads.shape[0]):
            c_sgd_update(&theta[0], &grads[k, 0], &buf[0], theta.shape[0], lr, momentum,
                         0.0, False, 0.0, k + 1)


def apply_update_f32(int rule_id, const double[::1] hyper, float[::1] theta,
                     const float[::1] grad, float[:, ::1] state, double lr, long long step):
    cdef int rc
    with nogil:
        rc = c_apply_update(rule_id, &hyper[0], &theta[0], &grad[0], &state[0, 0],
                            theta.shape[0], lr, step)
    return rc


def logistic(double p, double y):
    cdef double dl = 0.0
    cdef double loss = loss_dloss(1, 0.0, p, y, &dl)
    return loss, dl


def softmax(double[::1] p, Py_ssize_t cls):
    cdef double loss
    with nogil:
        loss = softmax_loss_dloss(&p[0], p.shape[0], cls, &p[0])
    return loss


def batch_gradient(const double[:, ::1] X, const double[::1] y, const int64_t[::1] rows,
                   int loss_id, const double[::1] theta, double[::1] grad):
    cdef double loss
    with nogil:
        loss = c_linear_batch_gradient(&X[0, 0], &y[0], <const double*>NULL, X.shape[0],
                                       X.shape[1], &rows[0], rows.shape[0], loss_id, 0.0, 1,
                                       True, &theta[0], &grad[0], 1.0 / rows.shape[0])
    return loss
