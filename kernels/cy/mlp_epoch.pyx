# cython: language_level=3
"""Multi-layer perceptrons, one whole epoch per ``nogil`` call (docs/kernels.md, docs/mlp.md).

Python-callable, with the reference's signatures (``fastgd/reference/mlp_epoch.py``):

    mlp_workspace_size(layer_sizes, batch_size) -> int
    mlp_batch_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad,
                       scale, work) -> float
    mlp_add_penalty(theta, grad, layer_sizes, alpha, l1_ratio) -> float
    mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes, activation_id,
              alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss,
              work) -> int n_done

Per batch (all inside one ``nogil`` call, nothing allocated):
- gather the batch's rows into a block of ``work`` (converted to the accumulation dtype);
- forward: per layer one GEMM ``Z = A_prev @ W`` then bias + activation in one pass;
- head loss and d loss / d z, scaled by ``s_i / |B|`` (``losses.pxd``'s per-sample code);
- backward: per layer ``G_prev = (G @ W^T) * act'`` and ``gW = A_prev^T @ G`` (GEMMs);
- penalty on the W's, then ``updates.c_apply_update``.
Plain SGD without penalty or weight decay folds the update into the backward GEMM:
``W <- W - lr * A_prev^T @ G`` (BLAS alpha = -lr, beta = 1), once ``G_prev`` has been
computed with the old W, so ``grad`` is never written.

GEMMs go through ``scipy.linalg.cython_blas`` (column-major): a row-major (r, c) block is
the column-major (c, r) transpose, so row-major ``C = op(A) op(B)`` is the column-major
call ``C^T = op(B)^T op(A)^T`` with the operands swapped and the same transpose flags.
"""
from libc.math cimport exp, expf, tanh, tanhf, fabs, isfinite
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm

from .losses cimport loss_dloss, softmax_loss_dloss
from .updates cimport c_apply_update

cdef enum:
    ACT_RELU = 0
    ACT_TANH = 1
    ACT_SIGMOID = 2
    LOSS_SOFTMAX = 2
    RULE_SGD = 0


# ---------------------------------------------------------------- helpers

cdef inline void _gemm(char ta, char tb, int m, int n, int k, afloat alpha, const afloat* A,
                       int lda, const afloat* B, int ldb, afloat beta, afloat* C,
                       int ldc) noexcept nogil:
    """Row-major C (m, n) = alpha op(A) op(B) + beta C, op(A) (m, k), op(B) (k, n);
    ``ta``/``tb`` are c'N' or c'T' and the leading dimensions are row-major (the row
    length of each stored block)."""
    if afloat is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>B, &ldb, <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>B, &ldb, <double*>A, &lda, &beta, C,
              &ldc)


cdef inline afloat _sigmoid(afloat z) noexcept nogil:
    cdef afloat e
    if afloat is float:
        e = expf(-fabs(z))
    else:
        e = exp(-fabs(z))
    if z >= 0:
        return <afloat>1.0 / (<afloat>1.0 + e)
    return e / (<afloat>1.0 + e)


cdef inline Py_ssize_t _w_off(const int64_t* sizes, Py_ssize_t l) noexcept nogil:
    """Offset of W_l in theta (b_l follows W_l)."""
    cdef Py_ssize_t j, off = 0
    for j in range(l):
        off += sizes[j] * sizes[j + 1] + sizes[j + 1]
    return off


cdef inline Py_ssize_t _n_params(const int64_t* sizes, Py_ssize_t n_layers) noexcept nogil:
    return _w_off(sizes, n_layers)


cdef Py_ssize_t c_mlp_workspace_size(const int64_t* sizes, Py_ssize_t n_layers,
                                     Py_ssize_t batch_size) noexcept nogil:
    cdef Py_ssize_t l, total = sizes[0], widest = 0
    for l in range(1, n_layers + 1):
        total += sizes[l]
        if sizes[l] > widest:
            widest = sizes[l]
    return batch_size * (total + 2 * widest + 1)


cdef void _bias_act(afloat* Z, const afloat* b, Py_ssize_t nb, Py_ssize_t n, int act,
                    bint hidden) noexcept nogil:
    """Z += b row-wise, then the activation in place for hidden layers."""
    cdef Py_ssize_t i, j
    cdef afloat v
    cdef afloat* z
    for i in range(nb):
        z = Z + i * n
        if not hidden:
            for j in range(n):
                z[j] = z[j] + b[j]
        elif act == ACT_RELU:
            for j in range(n):
                v = z[j] + b[j]
                z[j] = v if v > 0 else 0
        elif act == ACT_TANH:
            for j in range(n):
                if afloat is float:
                    z[j] = tanhf(z[j] + b[j])
                else:
                    z[j] = tanh(z[j] + b[j])
        else:
            for j in range(n):
                z[j] = _sigmoid(z[j] + b[j])


cdef void _times_act_grad(afloat* G, const afloat* A, Py_ssize_t count,
                          int act) noexcept nogil:
    """G *= act'(z), written through the activation's output A (same shape)."""
    cdef Py_ssize_t i
    cdef afloat a
    if act == ACT_RELU:
        for i in range(count):
            if not A[i] > 0:
                G[i] = 0
    elif act == ACT_TANH:
        for i in range(count):
            a = A[i]
            G[i] = G[i] * (1 - a * a)
    else:
        for i in range(count):
            a = A[i]
            G[i] = G[i] * (a * (1 - a))


cdef void _col_sums(const afloat* G, Py_ssize_t nb, Py_ssize_t n, afloat* out) noexcept nogil:
    cdef Py_ssize_t i, j
    memset(out, 0, n * sizeof(afloat))
    for i in range(nb):
        for j in range(n):
            out[j] += G[i * n + j]


cdef double _forward_loss(const xfloat* X, const xfloat* y, const xfloat* sw,
                          const int64_t* rows, Py_ssize_t nb, int loss_id,
                          const int64_t* sizes, Py_ssize_t L, int act, const afloat* theta,
                          double scale, afloat* work) noexcept nogil:
    """Gather, forward, head loss: returns scale * sum s_i l_i and leaves every layer's
    output and the head's delta (scaled by c_i = scale * s_i) in ``work``."""
    cdef Py_ssize_t d = sizes[0], i, j, l, r, K = sizes[L], n_in, n_out, off, woff = 0
    cdef afloat* xb = work
    cdef afloat* prev
    cdef afloat* Z
    cdef afloat* G
    cdef const xfloat* xr
    cdef afloat c, dl, li
    cdef double total = 0.0
    for i in range(nb):
        r = rows[i]
        xr = X + r * d
        if (xfloat is float and afloat is float) or (xfloat is double and afloat is double):
            memcpy(xb + i * d, xr, d * sizeof(afloat))
        else:
            for j in range(d):
                xb[i * d + j] = <afloat>xr[j]
    prev = xb
    off = nb * d
    for l in range(L):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        Z = work + off
        _gemm(c'N', c'N', <int>nb, <int>n_out, <int>n_in, <afloat>1, prev, <int>n_in,
              theta + woff, <int>n_out, <afloat>0, Z, <int>n_out)
        woff += n_in * n_out
        _bias_act(Z, theta + woff, nb, n_out, act, l < L - 1)
        woff += n_out
        prev = Z
        off += nb * n_out
    G = work + off  # the first delta buffer
    for i in range(nb):
        r = rows[i]
        c = <afloat>scale if sw == NULL else <afloat>scale * <afloat>sw[r]
        if loss_id == LOSS_SOFTMAX:
            li = softmax_loss_dloss(prev + i * K, K, <Py_ssize_t>y[r], G + i * K)
            for j in range(K):
                G[i * K + j] = c * G[i * K + j]
        else:
            li = loss_dloss(loss_id, 0.0, prev[i], <afloat>y[r], &dl)
            G[i] = c * dl
        total += <double>(c * li)
    return total


cdef void _backward(const int64_t* sizes, Py_ssize_t L, int act, afloat* theta,
                    afloat* grad, Py_ssize_t nb, afloat* work, double lr,
                    bint fused) noexcept nogil:
    """Backward pass from the head delta left by ``_forward_loss``.  ``fused``: plain SGD
    applied to each layer inside its gradient GEMM (grad only holds the bias sums)."""
    cdef Py_ssize_t l, j, n_in, n_out, woff, cum = 0, widest = 0, cur = 0
    cdef Py_ssize_t a_off[2]
    cdef Py_ssize_t d_off[2]
    cdef afloat* G
    cdef afloat* Gp
    cdef afloat* A
    cdef afloat* W
    cdef afloat* gb
    for l in range(L + 1):
        cum += sizes[l]
        if l > 0 and sizes[l] > widest:
            widest = sizes[l]
    d_off[0] = nb * cum
    d_off[1] = nb * (cum + widest)
    cum -= sizes[L]  # offset (per row) of z_L; a_l's offset is found walking back
    for l in range(L - 1, -1, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        cum -= n_in
        A = work + nb * cum
        G = work + d_off[cur]
        woff = _w_off(sizes, l)
        W = theta + woff
        if l > 0:  # G_prev with the W of before the update
            Gp = work + d_off[1 - cur]
            _gemm(c'N', c'T', <int>nb, <int>n_in, <int>n_out, <afloat>1, G, <int>n_out, W,
                  <int>n_out, <afloat>0, Gp, <int>n_in)
            _times_act_grad(Gp, A, nb * n_in, act)
        gb = grad + woff + n_in * n_out
        _col_sums(G, nb, n_out, gb)
        if fused:
            _gemm(c'T', c'N', <int>n_in, <int>n_out, <int>nb, <afloat>(-lr), A, <int>n_in,
                  G, <int>n_out, <afloat>1, W, <int>n_out)
            for j in range(n_out):
                W[n_in * n_out + j] -= <afloat>lr * gb[j]
        else:
            _gemm(c'T', c'N', <int>n_in, <int>n_out, <int>nb, <afloat>1, A, <int>n_in, G,
                  <int>n_out, <afloat>0, grad + woff, <int>n_out)
        cur = 1 - cur


# ---------------------------------------------------------------- C-level API

cdef double c_mlp_batch_gradient(const xfloat* X, const xfloat* y, const xfloat* sw,
                                 const int64_t* rows, Py_ssize_t n_rows, int loss_id,
                                 const int64_t* sizes, Py_ssize_t n_layers, int activation_id,
                                 afloat* theta, afloat* grad, double scale,
                                 afloat* work) noexcept nogil:
    cdef double loss = _forward_loss(X, y, sw, rows, n_rows, loss_id, sizes, n_layers,
                                     activation_id, theta, scale, work)
    _backward(sizes, n_layers, activation_id, theta, grad, n_rows, work, 0.0, False)
    return loss


cdef double c_mlp_add_penalty(const afloat* theta, afloat* grad, const int64_t* sizes,
                              Py_ssize_t n_layers, double alpha,
                              double l1_ratio) noexcept nogil:
    cdef Py_ssize_t l, i, off = 0, n
    cdef double a2 = alpha * (1.0 - l1_ratio), a1 = alpha * l1_ratio, total = 0.0
    cdef double sq, ab, w, sgn
    if alpha == 0:
        return 0.0
    for l in range(n_layers):
        n = sizes[l] * sizes[l + 1]
        sq = 0.0
        ab = 0.0
        for i in range(off, off + n):
            w = theta[i]
            sq += w * w
            ab += fabs(w)
            sgn = 1.0 if w > 0 else (-1.0 if w < 0 else 0.0)
            grad[i] += <afloat>(a2 * w + a1 * sgn)
        total += 0.5 * a2 * sq + a1 * ab
        off += n + sizes[l + 1]
    return total


cdef Py_ssize_t c_mlp_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                            const int64_t* order, Py_ssize_t m, Py_ssize_t batch_size,
                            Py_ssize_t n_batches, int loss_id, const int64_t* sizes,
                            Py_ssize_t n_layers, int activation_id, double alpha,
                            double l1_ratio, int rule_id, const double* hyper,
                            const double* lrs, long long step0, afloat* theta, afloat* grad,
                            afloat* state, double* batch_loss, afloat* work) noexcept nogil:
    cdef Py_ssize_t k, start, nb, P = _n_params(sizes, n_layers)
    cdef double loss
    # plain SGD, no penalty, no weight decay: the update rides on the backward GEMMs
    cdef bint fused = (rule_id == RULE_SGD and hyper[0] == 0 and hyper[3] == 0
                       and alpha == 0)
    for k in range(n_batches):
        start = k * batch_size
        nb = m - start if m - start < batch_size else batch_size
        loss = _forward_loss(X, y, sw, order + start, nb, loss_id, sizes, n_layers,
                             activation_id, theta, 1.0 / nb, work)
        if fused:
            batch_loss[k] = loss
            if not isfinite(loss):
                return k
            _backward(sizes, n_layers, activation_id, theta, grad, nb, work, lrs[k], True)
            continue
        _backward(sizes, n_layers, activation_id, theta, grad, nb, work, 0.0, False)
        loss += c_mlp_add_penalty(theta, grad, sizes, n_layers, alpha, l1_ratio)
        batch_loss[k] = loss
        if not isfinite(loss):
            return k
        c_apply_update(rule_id, hyper, theta, grad, state, P, lrs[k], step0 + k + 1)
    return n_batches


# ---------------------------------------------------------------- Python API

def mlp_workspace_size(layer_sizes, batch_size):
    """Elements of dtype A the kernels need for batches of up to ``batch_size`` rows:
    ``b * (d + h1 + ... + K_out + 2 * max(h1, ..., K_out) + 1)``."""
    s = [int(v) for v in layer_sizes]
    return int(batch_size) * (sum(s) + 2 * max(s[1:]) + 1)


def mlp_batch_gradient(const xfloat[:, ::1] X, const xfloat[::1] y, const xfloat[::1] sw,
                       const int64_t[::1] rows, int loss_id, const int64_t[::1] layer_sizes,
                       int activation_id, afloat[::1] theta, afloat[::1] grad, double scale,
                       afloat[::1] work):
    """grad = scale * sum_{i in rows} s_i dl_i/dtheta; returns scale * sum s_i l_i.
    ``work`` holds at least ``mlp_workspace_size(layer_sizes, len(rows))`` elements."""
    cdef const xfloat* swp = &sw[0] if sw.shape[0] > 0 else NULL
    cdef double loss
    with nogil:
        loss = c_mlp_batch_gradient(&X[0, 0], &y[0], swp, &rows[0], rows.shape[0], loss_id,
                                    &layer_sizes[0], layer_sizes.shape[0] - 1, activation_id,
                                    &theta[0], &grad[0], scale, &work[0])
    return loss


def mlp_add_penalty(const afloat[::1] theta, afloat[::1] grad,
                    const int64_t[::1] layer_sizes, double alpha, double l1_ratio):
    """Add the penalty's (sub)gradient to the W parts of grad; return its value."""
    cdef double pen
    with nogil:
        pen = c_mlp_add_penalty(&theta[0], &grad[0], &layer_sizes[0],
                                layer_sizes.shape[0] - 1, alpha, l1_ratio)
    return pen


def mlp_epoch(const xfloat[:, ::1] X, const xfloat[::1] y, const xfloat[::1] sw,
              const int64_t[::1] order, Py_ssize_t batch_size, Py_ssize_t n_batches,
              int loss_id, const int64_t[::1] layer_sizes, int activation_id, double alpha,
              double l1_ratio, int rule_id, const double[::1] hyper, const double[::1] lrs,
              long long step0, afloat[::1] theta, afloat[::1] grad, afloat[:, ::1] state,
              double[::1] batch_loss, afloat[::1] work):
    """See ``fastgd.reference.mlp_epoch.mlp_epoch``; returns the number of batches applied."""
    cdef const xfloat* swp = &sw[0] if sw.shape[0] > 0 else NULL
    cdef Py_ssize_t done
    if n_batches == 0:
        return 0
    with nogil:
        done = c_mlp_epoch(&X[0, 0], &y[0], swp, &order[0], order.shape[0], batch_size,
                           n_batches, loss_id, &layer_sizes[0], layer_sizes.shape[0] - 1,
                           activation_id, alpha, l1_ratio, rule_id, &hyper[0], &lrs[0], step0,
                           &theta[0], &grad[0], &state[0, 0], &batch_loss[0], &work[0])
    return done
