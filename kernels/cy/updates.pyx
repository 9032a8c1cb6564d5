# cython: language_level=3
"""Fused update rules (PyTorch's formulas), in place: C level and Python level.

Python-callable functions with the reference's names and signatures
(``fastgd/reference/updates.py``), in place on 1-D C-contiguous float32 or
float64 NumPy arrays (all arrays of one call share the dtype):

    sgd_update(theta, grad, buf, lr, momentum, dampening, nesterov, weight_decay, step)
    adam_update(theta, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay,
                decoupled, amsgrad, step)
    adagrad_update(theta, grad, acc, lr, lr_decay, weight_decay, eps, step)
    rmsprop_update(theta, grad, square_avg, buf, grad_avg, lr, alpha, eps,
                   weight_decay, momentum, centered)
    apply_update(rule_id, hyper, theta, grad, state, lr, step)

They release the GIL and call the ``nogil`` C functions declared in
``updates.pxd`` (``c_sgd_update`` ...), which other Cython code can cimport.
"""
import numpy as np

from .. import checks

from cython cimport floating
from libc.math cimport sqrt, pow, fabs, NAN

cdef extern from "fgd_rules.h" nogil:
    # the square-root-and-division rules, compiled for AVX2 and the baseline (why: there)
    void fgd_adam_core_d(double* theta, const double* g, double* m, double* v, double* vmax,
                         Py_ssize_t n, double step_size, double b1, double c1, double b2,
                         double c2, double bias2_sqrt, double eps, double decay, int amsgrad)
    void fgd_adam_core_f(float* theta, const float* g, float* m, float* v, float* vmax,
                         Py_ssize_t n, float step_size, float b1, float c1, float b2,
                         float c2, float bias2_sqrt, float eps, float decay, int amsgrad)
    void fgd_adagrad_core_d(double* theta, const double* g, double* acc, Py_ssize_t n,
                            double clr, double eps)
    void fgd_adagrad_core_f(float* theta, const float* g, float* acc, Py_ssize_t n,
                            float clr, float eps)
    void fgd_rmsprop_core_d(double* theta, const double* g, double* square_avg, double* buf,
                            double* grad_avg, Py_ssize_t n, double lr, double al, double c,
                            double eps, double mom, int has_mom, int centered)
    void fgd_rmsprop_core_f(float* theta, const float* g, float* square_avg, float* buf,
                            float* grad_avg, Py_ssize_t n, float lr, float al, float c,
                            float eps, float mom, int has_mom, int centered)

# Rule codes, equal to fastgd.kernels.ids (the parity tests, which pass the ids, check it).
cdef enum:
    RULE_SGD = 0
    RULE_ADAM = 1
    RULE_ADAMW = 2
    RULE_ADAGRAD = 3
    RULE_RMSPROP = 4





cdef inline floating _pen_grad(floating w, floating alpha, floating r1, floating r) noexcept nogil:
    # alpha * ((1 - r) * w + r * sign(w)), sign(0) = 0, as the reference's add_penalty.
    # The sign as a select of floating values: an int made of two comparisons gave the
    # vectoriser a byte-wide type and kept the loop scalar.
    cdef floating sign = 1 if w > 0 else (-1 if w < 0 else 0)
    return alpha * (r1 * w + r * sign)


# ---------------------------------------------------------------------------
# One rule over a range of n parameters.  ``pa`` (penalty alpha) != 0 adds the
# penalty's gradient computed from the old w and accumulates ||w_new||^2 and
# ||w_new||_1 into s2, s1.
#
# Each rule works through the range in chunks of GRAD_CHUNK: the gradient it steps
# on (the loss's, plus the penalty's from the old w, plus PyTorch's coupled weight
# decay, added in that order) is the caller's grad itself when there is neither, or
# is first formed in a stack buffer (_step_grad); then the rule's formula runs over
# the chunk in a loop of its own (the *_core functions), with no flag tested inside
# it but for a select, and every store unconditional: GCC vectorises each of them.
# With the flags inside one loop, the stores under a flag kept the momentum and Adam
# loops scalar, and the if-converted penalty's selects tripled Adam's instructions
# (b = 1 over 100 features, X in the L3, the whole row loop: momentum 164 -> 128 ns a
# row, Adam 662 -> 379, Adagrad 479 -> 266; the sqrt and the divisions bound the last
# two: SSE2, 2 lanes, as the baseline build has no AVX).  So the loops of Adam, Adagrad
# and RMSprop are C (fgd_rules.h), compiled for AVX2 too; SGD's stay here.

cdef enum:
    GRAD_CHUNK = 256    # parameters per chunk: a 2 KiB (float64) stack buffer, in L1


cdef inline const floating* _step_grad(const floating* grad, const floating* theta,
                                       floating* buf, Py_ssize_t n, bint pen, floating pa,
                                       floating r1, floating r, bint has_wd,
                                       floating wd) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating g
    if pen:
        for j in range(n):
            g = grad[j] + _pen_grad(theta[j], pa, r1, r)
            if has_wd:
                g = g + wd * theta[j]
            buf[j] = g
    elif has_wd:  # (a loop of its own: the penalty's selects cost SSE2 code 2x here)
        for j in range(n):
            buf[j] = grad[j] + wd * theta[j]
    else:
        return grad
    return buf


cdef inline void _penalty_sums(const floating* theta, Py_ssize_t n, double* s2,
                               double* s1) noexcept nogil:
    cdef double q2 = 0, q1 = 0
    cdef Py_ssize_t j
    for j in range(n):
        q2 += <double>theta[j] * theta[j]
        q1 += fabs(theta[j])
    s2[0] += q2
    s1[0] += q1


cdef inline void _sgd_core(floating* theta, const floating* g, floating* buf, Py_ssize_t n,
                           floating lr, floating mom, floating damp1, bint nesterov,
                           bint first) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating b
    if mom == 0:
        for j in range(n):
            theta[j] = theta[j] - lr * g[j]
        return
    for j in range(n):
        b = sgd_momentum_buffer(buf[j], g[j], mom, damp1, first)
        buf[j] = b
        theta[j] = theta[j] - lr * (g[j] + mom * b if nesterov else b)


cdef void _sgd(floating* theta, const floating* grad, floating* buf, Py_ssize_t n,
               double lr_, double momentum_, double dampening_, bint nesterov,
               double wd_, long long step, double pa_, double l1_,
               double* s2, double* s1) noexcept nogil:
    cdef floating lr = <floating>lr_, mom = <floating>momentum_
    cdef floating damp1 = <floating>(1.0 - dampening_), wd = <floating>wd_
    cdef floating pa = <floating>pa_, r = <floating>l1_, r1 = <floating>(1.0 - l1_)
    cdef bint pen = pa_ != 0, has_wd = wd_ != 0, first = step == 1
    cdef floating gb[GRAD_CHUNK]
    cdef const floating* g
    cdef Py_ssize_t c0, cn
    c0 = 0
    while c0 < n:
        cn = min(<Py_ssize_t>GRAD_CHUNK, n - c0)
        g = _step_grad(grad + c0, theta + c0, gb, cn, pen, pa, r1, r, has_wd, wd)
        _sgd_core(theta + c0, g, buf + c0 if mom != 0 else buf, cn, lr, mom, damp1, nesterov,
                  first)
        if pen:
            _penalty_sums(theta + c0, cn, s2, s1)
        c0 += cn


cdef inline double _bias_correction(double beta, long long step) noexcept nogil:
    # 1 - beta**step, without the pow once it is exactly 1: from step (1 - beta) >= 38.2
    # on, beta**step <= exp(-step (1 - beta)) < 2**-55 (as -log(beta) >= 1 - beta), and
    # 1 - x rounds to 1.0 for any x under 2**-54 (the same bits as the pow).  Adam's
    # beta1 = 0.9 gets there at step 382, beta2 = 0.999 at 38,200; before that,
    # pow(0.9, step) underflows from step 7,000 on into libm's slow error path
    # (b = 1 over 100 features: 44 ns of a 386 ns row).
    if <double>step * (1.0 - beta) >= 38.2:
        return 1.0
    return 1.0 - pow(beta, <double>step)


cdef inline void _adam_core(floating* theta, const floating* g, floating* m, floating* v,
                            floating* vmax, Py_ssize_t n, floating step_size, floating b1,
                            floating c1, floating b2, floating c2, floating bias2_sqrt,
                            floating eps, floating decay, bint amsgrad) noexcept nogil:
    if floating is double:
        fgd_adam_core_d(theta, g, m, v, vmax, n, step_size, b1, c1, b2, c2, bias2_sqrt, eps,
                        decay, amsgrad)
    else:
        fgd_adam_core_f(theta, g, m, v, vmax, n, step_size, b1, c1, b2, c2, bias2_sqrt, eps,
                        decay, amsgrad)


cdef void _adam(floating* theta, const floating* grad, floating* m, floating* v,
                floating* vmax, Py_ssize_t n, double lr_, double beta1_, double beta2_,
                double eps_, double wd_, bint decoupled, bint amsgrad, long long step,
                double pa_, double l1_, double* s2, double* s1) noexcept nogil:
    cdef double bias1 = _bias_correction(beta1_, step)
    cdef floating bias2_sqrt = <floating>sqrt(_bias_correction(beta2_, step))
    cdef floating step_size = <floating>(lr_ / bias1)
    cdef floating b1 = <floating>beta1_, c1 = <floating>(1.0 - beta1_)
    cdef floating b2 = <floating>beta2_, c2 = <floating>(1.0 - beta2_)
    cdef floating eps = <floating>eps_, wd = <floating>wd_
    cdef floating decay = <floating>(1.0 - lr_ * wd_) if decoupled else 1
    cdef floating pa = <floating>pa_, r = <floating>l1_, r1 = <floating>(1.0 - l1_)
    cdef bint pen = pa_ != 0, coupled_wd = wd_ != 0 and not decoupled
    cdef floating gb[GRAD_CHUNK]
    cdef const floating* g
    cdef Py_ssize_t c0, cn
    c0 = 0
    while c0 < n:
        cn = min(<Py_ssize_t>GRAD_CHUNK, n - c0)
        g = _step_grad(grad + c0, theta + c0, gb, cn, pen, pa, r1, r, coupled_wd, wd)
        _adam_core(theta + c0, g, m + c0, v + c0, vmax + c0 if amsgrad else vmax, cn,
                   step_size, b1, c1, b2, c2, bias2_sqrt, eps, decay, amsgrad)
        if pen:
            _penalty_sums(theta + c0, cn, s2, s1)
        c0 += cn


cdef void _adagrad(floating* theta, const floating* grad, floating* acc, Py_ssize_t n,
                   double lr_, double lr_decay_, double wd_, double eps_, long long step,
                   double pa_, double l1_, double* s2, double* s1) noexcept nogil:
    cdef floating clr = <floating>(lr_ / (1.0 + <double>(step - 1) * lr_decay_))
    cdef floating wd = <floating>wd_, eps = <floating>eps_
    cdef floating pa = <floating>pa_, r = <floating>l1_, r1 = <floating>(1.0 - l1_)
    cdef bint pen = pa_ != 0, has_wd = wd_ != 0
    cdef floating gb[GRAD_CHUNK]
    cdef const floating* g
    cdef Py_ssize_t c0, cn
    c0 = 0
    while c0 < n:
        cn = min(<Py_ssize_t>GRAD_CHUNK, n - c0)
        g = _step_grad(grad + c0, theta + c0, gb, cn, pen, pa, r1, r, has_wd, wd)
        if floating is double:
            fgd_adagrad_core_d(theta + c0, g, acc + c0, cn, clr, eps)
        else:
            fgd_adagrad_core_f(theta + c0, g, acc + c0, cn, clr, eps)
        if pen:
            _penalty_sums(theta + c0, cn, s2, s1)
        c0 += cn


cdef inline void _rmsprop_core(floating* theta, const floating* g, floating* square_avg,
                               floating* buf, floating* grad_avg, Py_ssize_t n, floating lr,
                               floating al, floating c, floating eps, floating mom,
                               bint has_mom, bint centered) noexcept nogil:
    if floating is double:
        fgd_rmsprop_core_d(theta, g, square_avg, buf, grad_avg, n, lr, al, c, eps, mom,
                           has_mom, centered)
    else:
        fgd_rmsprop_core_f(theta, g, square_avg, buf, grad_avg, n, lr, al, c, eps, mom,
                           has_mom, centered)


cdef void _rmsprop(floating* theta, const floating* grad, floating* square_avg, floating* buf,
                   floating* grad_avg, Py_ssize_t n, double lr_, double alpha_, double eps_,
                   double wd_, double momentum_, bint centered, double pa_, double l1_,
                   double* s2, double* s1) noexcept nogil:
    cdef floating lr = <floating>lr_, al = <floating>alpha_, c = <floating>(1.0 - alpha_)
    cdef floating eps = <floating>eps_, wd = <floating>wd_, mom = <floating>momentum_
    cdef floating pa = <floating>pa_, r = <floating>l1_, r1 = <floating>(1.0 - l1_)
    cdef bint pen = pa_ != 0, has_wd = wd_ != 0, has_mom = momentum_ > 0
    cdef floating gb[GRAD_CHUNK]
    cdef const floating* g
    cdef Py_ssize_t c0, cn
    c0 = 0
    while c0 < n:
        cn = min(<Py_ssize_t>GRAD_CHUNK, n - c0)
        g = _step_grad(grad + c0, theta + c0, gb, cn, pen, pa, r1, r, has_wd, wd)
        _rmsprop_core(theta + c0, g, square_avg + c0, buf + c0 if has_mom else buf,
                      grad_avg + c0 if centered else grad_avg, cn, lr, al, c, eps, mom,
                      has_mom, centered)
        if pen:
            _penalty_sums(theta + c0, cn, s2, s1)
        c0 += cn


cdef int _rule_range(int rule_id, const double* h, floating* theta, const floating* grad,
                     floating* state, Py_ssize_t stride, Py_ssize_t off, Py_ssize_t n,
                     double lr, long long step, double pa, double l1,
                     double* s2, double* s1) noexcept nogil:
    """Apply the rule to parameters [off, off + n); state rows are ``stride`` apart."""
    if n <= 0:
        return 0
    theta += off
    grad += off
    state += off
    if rule_id == RULE_SGD:
        _sgd(theta, grad, state, n, lr, h[0], h[1], h[2] != 0, h[3], step, pa, l1, s2, s1)
    elif rule_id == RULE_ADAM or rule_id == RULE_ADAMW:
        _adam(theta, grad, state, state + stride, state + 2 * stride, n, lr, h[0], h[1], h[2],
              h[3], rule_id == RULE_ADAMW, h[4] != 0, step, pa, l1, s2, s1)
    elif rule_id == RULE_ADAGRAD:
        _adagrad(theta, grad, state, n, lr, h[0], h[1], h[2], step, pa, l1, s2, s1)
    elif rule_id == RULE_RMSPROP:
        _rmsprop(theta, grad, state, state + stride, state + 2 * stride, n, lr, h[0], h[1],
                 h[2], h[3], h[4] != 0, pa, l1, s2, s1)
    else:
        return -1
    return 0


# ---------------------------------------------------------------------------
# The C-level API declared in updates.pxd.

cdef void c_sgd_update(floating* theta, const floating* grad, floating* buf, Py_ssize_t n,
                       double lr, double momentum, double dampening, bint nesterov,
                       double weight_decay, long long step) noexcept nogil:
    cdef double s2 = 0, s1 = 0
    _sgd(theta, grad, buf, n, lr, momentum, dampening, nesterov, weight_decay, step,
         0.0, 0.0, &s2, &s1)


cdef void c_adam_update(floating* theta, const floating* grad, floating* m, floating* v,
                        floating* vmax, Py_ssize_t n, double lr, double beta1, double beta2,
                        double eps, double weight_decay, bint decoupled, bint amsgrad,
                        long long step) noexcept nogil:
    cdef double s2 = 0, s1 = 0
    _adam(theta, grad, m, v, vmax, n, lr, beta1, beta2, eps, weight_decay, decoupled,
          amsgrad, step, 0.0, 0.0, &s2, &s1)


cdef void c_adagrad_update(floating* theta, const floating* grad, floating* acc, Py_ssize_t n,
                           double lr, double lr_decay, double weight_decay, double eps,
                           long long step) noexcept nogil:
    cdef double s2 = 0, s1 = 0
    _adagrad(theta, grad, acc, n, lr, lr_decay, weight_decay, eps, step, 0.0, 0.0, &s2, &s1)


cdef void c_rmsprop_update(floating* theta, const floating* grad, floating* square_avg,
                           floating* buf, floating* grad_avg, Py_ssize_t n, double lr,
                           double alpha, double eps, double weight_decay, double momentum,
                           bint centered) noexcept nogil:
    cdef double s2 = 0, s1 = 0
    _rmsprop(theta, grad, square_avg, buf, grad_avg, n, lr, alpha, eps, weight_decay,
             momentum, centered, 0.0, 0.0, &s2, &s1)


cdef int c_apply_update(int rule_id, const double* hyper, floating* theta,
                        const floating* grad, floating* state, Py_ssize_t P, double lr,
                        long long step) noexcept nogil:
    cdef double s2 = 0, s1 = 0
    return _rule_range(rule_id, hyper, theta, grad, state, P, 0, P, lr, step, 0.0, 0.0,
                       &s2, &s1)


cdef double c_update_penalized(int rule_id, const double* hyper, floating* theta,
                               const floating* grad, floating* state, Py_ssize_t P,
                               double lr, long long step, Py_ssize_t n_pen, double alpha,
                               double l1_ratio) noexcept nogil:
    return c_update_penalized_range(rule_id, hyper, theta, grad, state, P, 0, P, lr, step,
                                    n_pen, alpha, l1_ratio)


cdef double c_update_penalized_range(int rule_id, const double* hyper, floating* theta,
                                     const floating* grad, floating* state, Py_ssize_t P,
                                     Py_ssize_t off, Py_ssize_t n, double lr, long long step,
                                     Py_ssize_t n_pen, double alpha,
                                     double l1_ratio) noexcept nogil:
    cdef double s2 = 0, s1 = 0
    if alpha == 0 or n_pen < 0:
        n_pen = 0
    if n_pen > n:
        n_pen = n
    if _rule_range(rule_id, hyper, theta, grad, state, P, off, n_pen, lr, step, alpha,
                   l1_ratio, &s2, &s1) != 0:
        return NAN
    if _rule_range(rule_id, hyper, theta, grad, state, P, off + n_pen, n - n_pen, lr, step,
                   0.0, 0.0, &s2, &s1) != 0:
        return NAN
    if alpha == 0:
        return 0.0
    return alpha * (0.5 * (1.0 - l1_ratio) * s2 + l1_ratio * s1)


cdef double c_penalty_value(const floating* theta, Py_ssize_t n, double alpha,
                            double l1_ratio) noexcept nogil:
    cdef double s2 = 0, s1 = 0, w
    cdef Py_ssize_t j
    if alpha == 0:
        return 0.0
    for j in range(n):
        w = theta[j]
        s2 += w * w
        s1 += fabs(w)
    return alpha * (0.5 * (1.0 - l1_ratio) * s2 + l1_ratio * s1)


# ---------------------------------------------------------------------------
# Python-callable wrappers (in place on NumPy arrays), the reference's signatures.

cdef _need(str name, Py_ssize_t got, Py_ssize_t want):
    if got < want:
        raise ValueError(f"{name} has {got} elements, the parameter vector has {want}: "
                         f"pass an array of the same length as theta")


def _one_dtype(theta, grad, **state):
    # Checked before the fused-type dispatch and the buffers, whose own errors name no
    # argument: one float dtype, 1-D C-contiguous arrays, theta and the state written in
    # place (writeable, none sharing memory with another or with grad), grad only read.
    dt = getattr(theta, "dtype", None)
    if dt is None or dt not in (np.float32, np.float64):
        raise TypeError(f"theta must be a float32 or float64 NumPy array; got "
                        f"{type(theta).__name__} of dtype {dt}")
    arrays = dict(theta=theta, grad=grad, **state)
    for name, a in arrays.items():
        if getattr(a, "dtype", None) != dt:
            raise TypeError(f"{name} has dtype {getattr(a, 'dtype', type(a).__name__)} but theta "
                            f"has {dt}: pass every array of an update in theta's dtype")
        written = name != "grad"
        if a.ndim != 1 or not a.flags.c_contiguous or (written and a.size
                                                        and not a.flags.writeable):
            what = "a 1-D C-contiguous, writeable array (the update writes it in place)"
            raise ValueError(f"Invalid {name}: shape {a.shape}"
                             f"{'' if a.flags.c_contiguous else ', strided'}"
                             f"{'' if a.flags.writeable else ', read-only'}; it must be "
                             f"{what if written else 'a 1-D C-contiguous array'} (e.g. "
                             f"np.ascontiguousarray({name}).ravel(), or a copy)")
    checks.separate(dict(theta=theta, **state), dict(grad=grad))


def sgd_update(theta, grad, buf, lr, momentum, dampening, nesterov, weight_decay, step):
    """torch.optim.SGD step in place (buf: momentum buffer, used when momentum != 0)."""
    _one_dtype(theta, grad=grad, buf=buf)
    checks.learning_rate(lr)
    checks.step_count(step)
    checks.hyper_values(RULE_SGD, (momentum, dampening, nesterov, weight_decay), "")
    _sgd_update(theta, grad, buf, lr, momentum, dampening, nesterov, weight_decay, step)


def _sgd_update(floating[::1] theta, const floating[::1] grad, floating[::1] buf, double lr,
                double momentum, double dampening, bint nesterov, double weight_decay,
                long long step):
    """sgd_update on arrays of one dtype (``_one_dtype`` checked)."""
    cdef Py_ssize_t n = theta.shape[0]
    _need("grad", grad.shape[0], n)
    if momentum != 0:
        _need("buf", buf.shape[0], n)
    if n == 0:
        return
    with nogil:
        c_sgd_update(&theta[0], &grad[0], &buf[0] if buf.shape[0] else <floating*>NULL, n,
                     lr, momentum, dampening, nesterov, weight_decay, step)


def adam_update(theta, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled,
                amsgrad, step):
    """torch.optim.Adam (decoupled=False) / AdamW (decoupled=True) step in place."""
    _one_dtype(theta, grad=grad, m=m, v=v, vmax=vmax)
    checks.learning_rate(lr)
    checks.step_count(step)
    checks.hyper_values(RULE_ADAM, (beta1, beta2, eps, weight_decay, amsgrad), "")
    if not isinstance(decoupled, (bool, np.bool_, int, np.integer)) or decoupled not in (0, 1):
        raise ValueError(f"Invalid decoupled: {decoupled!r}; it is a flag, False (Adam) or "
                         "True (AdamW)")
    _adam_update(theta, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled,
                 amsgrad, step)


def bias_correction(double beta, long long step):
    """Adam's ``1 - beta**step`` as the Adam kernels compute it (1.0 without a pow once
    it is exactly 1; the tests check the same bits as the pow)."""
    return _bias_correction(beta, step)


def _adam_update(floating[::1] theta, const floating[::1] grad, floating[::1] m,
                 floating[::1] v, floating[::1] vmax, double lr, double beta1, double beta2,
                 double eps, double weight_decay, bint decoupled, bint amsgrad, long long step):
    """adam_update on arrays of one dtype (``_one_dtype`` checked)."""
    cdef Py_ssize_t n = theta.shape[0]
    _need("grad", grad.shape[0], n)
    _need("m", m.shape[0], n)
    _need("v", v.shape[0], n)
    if amsgrad:
        _need("vmax", vmax.shape[0], n)
    if n == 0:
        return
    with nogil:
        c_adam_update(&theta[0], &grad[0], &m[0], &v[0],
                      &vmax[0] if vmax.shape[0] else <floating*>NULL, n, lr, beta1, beta2,
                      eps, weight_decay, decoupled, amsgrad, step)


def adagrad_update(theta, grad, acc, lr, lr_decay, weight_decay, eps, step):
    """torch.optim.Adagrad step in place (acc: the running sum of squares)."""
    _one_dtype(theta, grad=grad, acc=acc)
    checks.learning_rate(lr)
    checks.step_count(step)
    checks.hyper_values(RULE_ADAGRAD, (lr_decay, weight_decay, eps, 0.0), "")
    _adagrad_update(theta, grad, acc, lr, lr_decay, weight_decay, eps, step)


def _adagrad_update(floating[::1] theta, const floating[::1] grad, floating[::1] acc,
                    double lr, double lr_decay, double weight_decay, double eps,
                    long long step):
    """adagrad_update on arrays of one dtype (``_one_dtype`` checked)."""
    cdef Py_ssize_t n = theta.shape[0]
    _need("grad", grad.shape[0], n)
    _need("acc", acc.shape[0], n)
    if n == 0:
        return
    with nogil:
        c_adagrad_update(&theta[0], &grad[0], &acc[0], n, lr, lr_decay, weight_decay, eps,
                         step)


def rmsprop_update(theta, grad, square_avg, buf, grad_avg, lr, alpha, eps, weight_decay,
                   momentum, centered):
    """torch.optim.RMSprop step in place."""
    _one_dtype(theta, grad=grad, square_avg=square_avg, buf=buf, grad_avg=grad_avg)
    checks.learning_rate(lr)
    checks.hyper_values(RULE_RMSPROP, (alpha, eps, weight_decay, momentum, centered), "")
    _rmsprop_update(theta, grad, square_avg, buf, grad_avg, lr, alpha, eps, weight_decay,
                    momentum, centered)


def _rmsprop_update(floating[::1] theta, const floating[::1] grad, floating[::1] square_avg,
                    floating[::1] buf, floating[::1] grad_avg, double lr, double alpha,
                    double eps, double weight_decay, double momentum, bint centered):
    """rmsprop_update on arrays of one dtype (``_one_dtype`` checked)."""
    cdef Py_ssize_t n = theta.shape[0]
    _need("grad", grad.shape[0], n)
    _need("square_avg", square_avg.shape[0], n)
    if momentum > 0:
        _need("buf", buf.shape[0], n)
    if centered:
        _need("grad_avg", grad_avg.shape[0], n)
    if n == 0:
        return
    with nogil:
        c_rmsprop_update(&theta[0], &grad[0], &square_avg[0],
                         &buf[0] if buf.shape[0] else <floating*>NULL,
                         &grad_avg[0] if grad_avg.shape[0] else <floating*>NULL,
                         n, lr, alpha, eps, weight_decay, momentum, centered)


def _apply(int rule_id, const double[::1] hyper, floating[::1] theta,
           const floating[::1] grad, floating[:, ::1] state, double lr, long long step):
    cdef Py_ssize_t P = theta.shape[0]
    cdef int rc
    if P == 0:
        return
    with nogil:
        rc = c_apply_update(rule_id, &hyper[0], &theta[0], &grad[0], &state[0, 0], P, lr,
                            step)


def apply_update(rule_id, hyper, theta, grad, state, lr, step):
    """Dispatch on the rule code; ``state`` is (STATE_SLOTS[rule_id], P), in place."""
    checks.update(rule_id, hyper, theta, grad, state, lr, step)
    _apply(int(rule_id), checks.real_array("hyper", hyper, np.float64), theta, grad, state,
           float(lr), int(step))
