# cython: language_level=3
"""Per-sample linear losses as inline ``nogil`` C functions (cimport-able).

Definitions are exactly those of ``fastgd/reference/losses.py`` (scikit-learn's
``_sgd_fast`` for the margin losses; exact, overflow-free logistic and softmax
cross-entropies).  ``p`` is the prediction, ``y`` the label in the loss's
internal form ({0,1} logistic, +-1 hinge family, class index for softmax,
reals otherwise), ``param`` the loss's parameter (epsilon for huber and the
epsilon-insensitive losses; unused otherwise).

    loss_dloss(loss_id, param, p, y, &dl) -> loss      (dl = d loss / d p)
    loss_value(loss_id, param, p, y)      -> loss
    dloss_value(loss_id, param, p, y)     -> d loss / d p
    softmax_loss_dloss(p, K, cls, dl)     -> loss      (dl[k] = softmax_k - [k == cls];
                                                         dl may alias p)
    log_sum_exp(p, K)                     -> log sum_k exp(p[k]), stable

``loss_id`` is a code of ``fastgd.kernels.ids`` (0..9; LOSS_SOFTMAX only through
``softmax_loss_dloss``).  An unknown code gives NaN (kernels report numerical
failure only; the Python API validates codes).  LOSS_CUSTOM (-1) is not
supported by the Cython backend: the numba backend compiles user losses.
"""
from cython cimport floating
from libc.math cimport exp, expf, log, logf, log1p, log1pf, fabs, fabsf, NAN

# An optimisation barrier: the value passes through unchanged, but the compiler
# cannot reassociate an expression across it (fastgd builds with
# -fassociative-math so that reductions vectorise; a few loss formulas must keep
# the reference's order of operations to stay accurate).
cdef extern from *:
    """
    #ifndef FGD_OPAQUE_DEFINED
    #define FGD_OPAQUE_DEFINED
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    #define FGD_OPAQUE_ASM(v) __asm__("" : "+x"(v))
    #elif defined(__GNUC__) && defined(__aarch64__)
    #define FGD_OPAQUE_ASM(v) __asm__("" : "+w"(v))
    #elif defined(__GNUC__)
    #define FGD_OPAQUE_ASM(v) __asm__("" : "+m"(v))
    #else
    #define FGD_OPAQUE_ASM(v) ((void)0)
    #endif
    static inline double fgd_opaque_d(double v) { FGD_OPAQUE_ASM(v); return v; }
    static inline float fgd_opaque_f(float v) { FGD_OPAQUE_ASM(v); return v; }
    #endif
    """
    double fgd_opaque_d(double v) noexcept nogil
    float fgd_opaque_f(float v) noexcept nogil

# Codes, kept equal to fastgd.kernels.ids (tests check it).
cdef enum:
    LOSS_SQUARED = 0
    LOSS_LOGISTIC = 1
    LOSS_SOFTMAX = 2
    LOSS_HINGE = 3
    LOSS_SQUARED_HINGE = 4
    LOSS_MODIFIED_HUBER = 5
    LOSS_HUBER = 6
    LOSS_EPSILON_INSENSITIVE = 7
    LOSS_SQUARED_EPSILON_INSENSITIVE = 8
    LOSS_PERCEPTRON = 9


cdef inline floating opaque(floating x) noexcept nogil:
    if floating is float:
        return fgd_opaque_f(x)
    else:
        return fgd_opaque_d(x)


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating _log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline floating _fabs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline floating loss_dloss(int loss_id, double param, floating p, floating y,
                                floating* dl) noexcept nogil:
    """Loss of one sample; writes d loss / d p to dl[0]."""
    cdef floating z, r, a, e, eps = <floating>param
    if loss_id == LOSS_LOGISTIC:
        # softplus(p) - y p = max(p, 0) - p y + log1p(exp(-|p|)) and sigmoid(p) - y,
        # stable for any |p|.  The loss is a sum of two terms, (1 - y) p (or -y p)
        # and log1p(...), so no reassociation can cancel the small log1p term
        # against p (for y in {0, 1} it equals the reference's bit for bit).
        e = _exp(-_fabs(p))
        if p >= 0:
            dl[0] = <floating>1.0 / (<floating>1.0 + e) - y
            return (<floating>1.0 - y) * p + _log1p(e)
        dl[0] = e / (<floating>1.0 + e) - y
        return (<floating>0.0 - y * p) + _log1p(e)
    if loss_id == LOSS_SQUARED:
        r = p - y
        dl[0] = r
        # (0.5 r) r, the reference's order: reassociated into 0.5 (r r) it overflows for
        # |r| in [sqrt(max), sqrt(2 max)) where the reference's does not, and a diverging
        # fit stopped about 100 updates before the reference's (review)
        return opaque(<floating>0.5 * r) * r
    if loss_id == LOSS_HINGE or loss_id == LOSS_PERCEPTRON:
        a = 1.0 if loss_id == LOSS_HINGE else 0.0
        z = p * y
        dl[0] = -y if z <= a else 0.0
        # max(0, a - z) written so that a NaN margin keeps a NaN loss (as NumPy's
        # np.maximum does): the kernels stop a fit at the first non-finite batch loss.
        r = a - z
        if r < 0:
            r = 0.0
        return r
    if loss_id == LOSS_SQUARED_HINGE:
        z = 1.0 - p * y
        if z > 0:
            dl[0] = -2.0 * y * z
            return z * z
        dl[0] = 0.0
        return 0.0
    if loss_id == LOSS_MODIFIED_HUBER:
        z = p * y
        if z >= -1.0 and z < 1.0:
            dl[0] = -2.0 * (1.0 - z) * y
            return (1.0 - z) * (1.0 - z)
        if z < -1.0:
            dl[0] = -4.0 * y
            return -4.0 * z
        dl[0] = 0.0
        return 0.0
    if loss_id == LOSS_HUBER:
        r = p - y
        a = _fabs(r)
        if a <= eps:
            dl[0] = r
            return opaque(<floating>0.5 * r) * r
        dl[0] = eps if r > 0 else -eps
        return eps * a - <floating>0.5 * eps * eps
    if loss_id == LOSS_EPSILON_INSENSITIVE:
        z = y - p
        if z > eps:
            dl[0] = -1.0
        elif -z > eps:
            dl[0] = 1.0
        else:
            dl[0] = 0.0
        a = _fabs(z) - eps
        if a < 0:  # not `a if a > 0 else 0`: a NaN residual keeps a NaN loss
            a = 0.0
        return a
    if loss_id == LOSS_SQUARED_EPSILON_INSENSITIVE:
        z = y - p
        if z > eps:
            dl[0] = -2.0 * (z - eps)
        elif -z > eps:
            dl[0] = 2.0 * (-z - eps)
        else:
            dl[0] = 0.0
        a = _fabs(z) - eps
        if a < 0:
            a = 0.0
        return a * a
    dl[0] = NAN
    return NAN


cdef inline floating loss_value(int loss_id, double param, floating p, floating y) noexcept nogil:
    cdef floating dl
    return loss_dloss(loss_id, param, p, y, &dl)


cdef inline floating dloss_value(int loss_id, double param, floating p, floating y) noexcept nogil:
    cdef floating dl
    loss_dloss(loss_id, param, p, y, &dl)
    return dl


cdef inline floating log_sum_exp(const floating* p, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t k
    cdef floating m = p[0], s = 0
    for k in range(1, K):
        if p[k] > m:
            m = p[k]
    for k in range(K):
        s += _exp(p[k] - m)
    return m + _log(s)


cdef inline floating softmax_loss_dloss(const floating* p, Py_ssize_t K, Py_ssize_t cls,
                                        floating* dl) noexcept nogil:
    """Multinomial cross-entropy of one sample with logits p[0:K] and class cls.

    loss = (max p + log sum exp(p - max p)) - p[cls]; dl[k] = softmax(p)_k - [k == cls].
    dl may be the same array as p.
    """
    cdef Py_ssize_t k
    cdef floating m = p[0], s = 0, pc = p[cls], loss
    for k in range(1, K):
        if p[k] > m:
            m = p[k]
    for k in range(K):
        dl[k] = _exp(p[k] - m)
        s += dl[k]
    loss = opaque(m + _log(s)) - pc     # the reference's order: (m + log s) - p[cls]
    for k in range(K):
        dl[k] = dl[k] / s
    dl[cls] -= 1.0
    return loss
