# cython: language_level=3
"""Fused update rules with PyTorch's formulas, C level, in place, ``nogil``.

cimport them from your own Cython code::

    from fastgd.kernels.cy.updates cimport c_sgd_update, c_apply_update

(cythonize with ``include_path=[fastgd.kernels.cy.get_include()]``: Cython looks for
``.pxd`` files there, not in the C compiler's ``include_dirs``).  ``floating``
is float or double; all arrays of one call share it.  ``n`` (or ``P``) is the
length of the parameter vector; every pointer is to ``n`` contiguous elements.
``step`` is PyTorch's 1-based ``state["step"]`` after its increment.  Each call
reads theta, grad and the state once and writes theta and the state once.
Hyper-parameters are doubles; the arithmetic is done in ``floating``.
"""
from cython cimport floating


# One parameter's momentum buffer after torch.optim.SGD's step on gradient g (weight
# decay included): it starts as the first gradient (``first``: step 1); ``damp1`` is
# 1 - dampening.  Shared by the rule's loop and the b = 1 row loop of linear_epoch.
cdef inline floating sgd_momentum_buffer(floating b, floating g, floating momentum,
                                         floating damp1, bint first) noexcept nogil:
    return g if first else momentum * b + damp1 * g


cdef void c_sgd_update(floating* theta, const floating* grad, floating* buf, Py_ssize_t n,
                       double lr, double momentum, double dampening, bint nesterov,
                       double weight_decay, long long step) noexcept nogil

cdef void c_adam_update(floating* theta, const floating* grad, floating* m, floating* v,
                        floating* vmax, Py_ssize_t n, double lr, double beta1, double beta2,
                        double eps, double weight_decay, bint decoupled, bint amsgrad,
                        long long step) noexcept nogil

cdef void c_adagrad_update(floating* theta, const floating* grad, floating* acc, Py_ssize_t n,
                           double lr, double lr_decay, double weight_decay, double eps,
                           long long step) noexcept nogil

cdef void c_rmsprop_update(floating* theta, const floating* grad, floating* square_avg,
                           floating* buf, floating* grad_avg, Py_ssize_t n, double lr,
                           double alpha, double eps, double weight_decay, double momentum,
                           bint centered) noexcept nogil

# state: (STATE_SLOTS[rule_id], P) row-major; hyper: ids.py's layout.
# Returns 0, or -1 for an unknown rule_id (theta untouched).
cdef int c_apply_update(int rule_id, const double* hyper, floating* theta,
                        const floating* grad, floating* state, Py_ssize_t P, double lr,
                        long long step) noexcept nogil

# The epoch loops' fused pass: as c_apply_update, but the gradient used for
# theta[:n_pen] is grad + alpha * ((1 - l1_ratio) * w + l1_ratio * sign(w))
# (the penalty's (sub)gradient, sign(0) = 0), added on the fly (grad is not
# written).  Returns the penalty value of the *updated* theta,
# alpha * ((1 - r)/2 ||w||^2 + r ||w||_1) over theta[:n_pen], computed in the
# same pass (0.0 when alpha == 0), or NaN for an unknown rule_id.
cdef double c_update_penalized(int rule_id, const double* hyper, floating* theta,
                               const floating* grad, floating* state, Py_ssize_t P,
                               double lr, long long step, Py_ssize_t n_pen, double alpha,
                               double l1_ratio) noexcept nogil

# The same on the parameters [off, off + n) of a vector of P (state rows P apart), the
# first n_pen of them penalised; returns the penalty value of those n_pen.  Two calls on
# disjoint ranges update the same vector as one call on their union (the elementwise
# bits are the same; the penalty values are partial sums).
cdef double c_update_penalized_range(int rule_id, const double* hyper, floating* theta,
                                     const floating* grad, floating* state, Py_ssize_t P,
                                     Py_ssize_t off, Py_ssize_t n, double lr, long long step,
                                     Py_ssize_t n_pen, double alpha,
                                     double l1_ratio) noexcept nogil

# The penalty value alpha * ((1 - r)/2 ||w||^2 + r ||w||_1) of theta[:n] (0 if alpha == 0).
cdef double c_penalty_value(const floating* theta, Py_ssize_t n, double alpha,
                            double l1_ratio) noexcept nogil
