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

from cython cimport floating
from libc.math cimport sqrt, sqrtf, pow, fabs, NAN

# Rule codes and state slots, equal to fastgd.kernels.ids (tests check it).
cdef enum:
    RULE_SGD = 0
    RULE_ADAM = 1
    RULE_ADAMW = 2
    RULE_ADAGRAD = 3
    RULE_RMSPROP = 4

STATE_SLOTS = {RULE_SGD: 1, RULE_ADAM: 3, RULE_ADAMW: 3, RULE_ADAGRAD: 1, RULE_RMSPROP: 3}
HYPER_LEN = {RULE_SGD: 4, RULE_ADAM: 5, RULE_ADAMW: 5, RULE_ADAGRAD: 4, RULE_RMSPROP: 5}


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating _pen_grad(floating w, floating alpha, floating r1, floating r) noexcept nogil:
    # alpha * ((1 - r) * w + r * sign(w)), sign(0) = 0, as the reference's add_penalty.
    return alpha * (r1 * w + r * <floating>((w > 0) - (w < 0)))


# ---------------------------------------------------------------------------
# One rule over a range of n parameters.  ``pa`` (penalty alpha) != 0 adds the
# penalty's gradient computed from the old w and accumulates ||w_new||^2 and
# ||w_new||_1 into s2, s1.

cdef void _sgd(floating* theta, const floating* grad, floating* buf, Py_ssize_t n,
               double lr_, double momentum_, double dampening_, bint nesterov,
               double wd_, long long step, double pa_, double l1_,
               double* s2, double* s1) noexcept nogil:
    cdef floating lr = <floating>lr_, mom = <floating>momentum_
    cdef floating damp1 = <floating>(1.0 - dampening_), wd = <floating>wd_
    cdef floating pa = <floating>pa_, r = <floating>l1_, r1 = <floating>(1.0 - l1_)
    cdef bint pen = pa_ != 0, has_mom = momentum_ != 0, has_wd = wd_ != 0, first = step == 1
    cdef floating w, g, b
    cdef double q2 = 0, q1 = 0
    cdef Py_ssize_t j
    if not pen and not has_mom and not has_wd:
        for j in range(n):
            theta[j] = theta[j] - lr * grad[j]
        return
    for j in range(n):
        w = theta[j]
        g = grad[j]
        if pen:
            g = g + _pen_grad(w, pa, r1, r)
        if has_wd:
            g = g + wd * w
        if has_mom:
            if first:
                b = g  # torch: the buffer starts as the first gradient
            else:
                b = mom * buf[j] + damp1 * g
            buf[j] = b
            if nesterov:
                g = g + mom * b
            else:
                g = b
        w = w - lr * g
        theta[j] = w
        if pen:
            q2 += <double>w * w
            q1 += fabs(w)
    s2[0] += q2
    s1[0] += q1


cdef void _adam(floating* theta, const floating* grad, floating* m, floating* v,
                floating* vmax, Py_ssize_t n, double lr_, double beta1_, double beta2_,
                double eps_, double wd_, bint decoupled, bint amsgrad, long long step,
                double pa_, double l1_, double* s2, double* s1) noexcept nogil:
    cdef double bias1 = 1.0 - pow(beta1_, <double>step)
    cdef floating bias2_sqrt = <floating>sqrt(1.0 - pow(beta2_, <double>step))
    cdef floating step_size = <floating>(lr_ / bias1)
    cdef floating b1 = <floating>beta1_, c1 = <floating>(1.0 - beta1_)
    cdef floating b2 = <floating>beta2_, c2 = <floating>(1.0 - beta2_)
    cdef floating eps = <floating>eps_, wd = <floating>wd_
    cdef floating decay = <floating>(1.0 - lr_ * wd_)
    cdef floating pa = <floating>pa_, r = <floating>l1_, r1 = <floating>(1.0 - l1_)
    cdef bint pen = pa_ != 0, coupled_wd = wd_ != 0 and not decoupled
    cdef bint decoupled_wd = wd_ != 0 and decoupled
    cdef floating w, g, mm, vv, vm, denom
    cdef double q2 = 0, q1 = 0
    cdef Py_ssize_t j
    for j in range(n):
        w = theta[j]
        g = grad[j]
        if pen:
            g = g + _pen_grad(w, pa, r1, r)
        if decoupled_wd:
            w = w * decay
        elif coupled_wd:
            g = g + wd * w
        mm = b1 * m[j] + c1 * g
        vv = b2 * v[j] + c2 * g * g
        m[j] = mm
        v[j] = vv
        if amsgrad:
            vm = vmax[j]
            if vv > vm or vv != vv:
                vm = vv
            vmax[j] = vm
            denom = _sqrt(vm) / bias2_sqrt + eps
        else:
            denom = _sqrt(vv) / bias2_sqrt + eps
        w = w - step_size * (mm / denom)
        theta[j] = w
        if pen:
            q2 += <double>w * w
            q1 += fabs(w)
    s2[0] += q2
    s1[0] += q1


cdef void _adagrad(floating* theta, const floating* grad, floating* acc, Py_ssize_t n,
                   double lr_, double lr_decay_, double wd_, double eps_, long long step,
                   double pa_, double l1_, double* s2, double* s1) noexcept nogil:
    cdef floating clr = <floating>(lr_ / (1.0 + <double>(step - 1) * lr_decay_))
    cdef floating wd = <floating>wd_, eps = <floating>eps_
    cdef floating pa = <floating>pa_, r = <floating>l1_, r1 = <floating>(1.0 - l1_)
    cdef bint pen = pa_ != 0, has_wd = wd_ != 0
    cdef floating w, g, a
    cdef double q2 = 0, q1 = 0
    cdef Py_ssize_t j
    for j in range(n):
        w = theta[j]
        g = grad[j]
        if pen:
            g = g + _pen_grad(w, pa, r1, r)
        if has_wd:
            g = g + wd * w
        a = acc[j] + g * g
        acc[j] = a
        w = w - clr * (g / (_sqrt(a) + eps))
        theta[j] = w
        if pen:
            q2 += <double>w * w
            q1 += fabs(w)
    s2[0] += q2
    s1[0] += q1


cdef void _rmsprop(floating* theta, const floating* grad, floating* square_avg, floating* buf,
                   floating* grad_avg, Py_ssize_t n, double lr_, double alpha_, double eps_,
                   double wd_, double momentum_, bint centered, double pa_, double l1_,
                   double* s2, double* s1) noexcept nogil:
    cdef floating lr = <floating>lr_, al = <floating>alpha_, c = <floating>(1.0 - alpha_)
    cdef floating eps = <floating>eps_, wd = <floating>wd_, mom = <floating>momentum_
    cdef floating pa = <floating>pa_, r = <floating>l1_, r1 = <floating>(1.0 - l1_)
    cdef bint pen = pa_ != 0, has_wd = wd_ != 0, has_mom = momentum_ > 0
    cdef floating w, g, sa, ga, avg, b
    cdef double q2 = 0, q1 = 0
    cdef Py_ssize_t j
    for j in range(n):
        w = theta[j]
        g = grad[j]
        if pen:
            g = g + _pen_grad(w, pa, r1, r)
        if has_wd:
            g = g + wd * w
        sa = al * square_avg[j] + c * g * g
        square_avg[j] = sa
        if centered:
            ga = al * grad_avg[j] + c * g
            grad_avg[j] = ga
            avg = _sqrt(sa - ga * ga) + eps
        else:
            avg = _sqrt(sa) + eps
        if has_mom:
            b = mom * buf[j] + g / avg
            buf[j] = b
            w = w - lr * b
        else:
            w = w - lr * (g / avg)
        theta[j] = w
        if pen:
            q2 += <double>w * w
            q1 += fabs(w)
    s2[0] += q2
    s1[0] += q1


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


def _one_dtype(theta, **arrays):
    # Checked before the fused-type dispatch, whose own error names no argument.
    dt = getattr(theta, "dtype", None)
    if dt is None or dt not in (np.float32, np.float64):
        raise TypeError(f"theta must be a float32 or float64 NumPy array; got "
                        f"{type(theta).__name__} of dtype {dt}")
    for name, a in arrays.items():
        if getattr(a, "dtype", None) != dt:
            raise TypeError(f"{name} has dtype {getattr(a, 'dtype', type(a).__name__)} but theta "
                            f"has {dt}: pass every array of an update in theta's dtype")


def sgd_update(theta, grad, buf, lr, momentum, dampening, nesterov, weight_decay, step):
    """torch.optim.SGD step in place (buf: momentum buffer, used when momentum != 0)."""
    _one_dtype(theta, grad=grad, buf=buf)
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
    _adam_update(theta, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled,
                 amsgrad, step)


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
    if rule_id not in STATE_SLOTS:
        raise ValueError(f"rule_id={rule_id}: unknown update rule code; expected one of "
                         f"{sorted(STATE_SLOTS)} (fastgd.kernels.ids.RULE_*)")
    if hyper.shape[0] < HYPER_LEN[rule_id]:
        raise ValueError(f"hyper has {hyper.shape[0]} values, rule {rule_id} needs "
                         f"{HYPER_LEN[rule_id]} (layout in fastgd.kernels.ids)")
    _need("grad", grad.shape[0], P)
    if state.shape[0] < STATE_SLOTS[rule_id] or state.shape[1] != P:
        raise ValueError(f"state has shape {tuple(state.shape)[:2]}, rule {rule_id} needs "
                         f"({STATE_SLOTS[rule_id]}, {P})")
    if P == 0:
        return
    with nogil:
        rc = c_apply_update(rule_id, &hyper[0], &theta[0], &grad[0], &state[0, 0], P, lr,
                            step)


def apply_update(rule_id, hyper, theta, grad, state, lr, step):
    """Dispatch on the rule code; ``state`` is (STATE_SLOTS[rule_id], P), in place."""
    _one_dtype(theta, grad=grad, state=state)
    _apply(int(rule_id), np.ascontiguousarray(hyper, dtype=np.float64), theta, grad, state,
           float(lr), int(step))
