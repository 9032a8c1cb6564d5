# cython: language_level=3
"""Multi-layer perceptrons: per-batch gradient, penalty and the whole-epoch loop, C level,
``nogil`` (cimport-able; the contract is docs/kernels.md, the design docs/mlp.md).

``xfloat`` is the dtype of X, y and sw (D); ``afloat`` the accumulation dtype of theta,
grad, state and work (A).  ``sizes`` is ``layer_sizes`` (``n_layers + 1`` int64 values
``[d, h1, ..., K_out]``), ``sw`` may be NULL (all ones), rows are read through
``rows``/``order``.  Forward and backward are BLAS GEMMs (scipy.linalg.cython_blas) on
blocks of ``work``, which must hold ``c_mlp_workspace_size(sizes, n_layers, b)``
elements for batches of up to b rows; nothing is allocated.
"""
from libc.stdint cimport int64_t

ctypedef fused xfloat:
    float
    double

ctypedef fused afloat:
    float
    double


# b * (d + h1 + ... + K_out + 2 * max(h1, ..., K_out) + 1), as on every backend.
cdef Py_ssize_t c_mlp_workspace_size(const int64_t* sizes, Py_ssize_t n_layers,
                                     Py_ssize_t batch_size) noexcept nogil

# grad = scale * sum_{i in rows} sw_i dl_i/dtheta (all of grad overwritten, no penalty);
# returns scale * sum sw_i l_i.
cdef double c_mlp_batch_gradient(const xfloat* X, const xfloat* y, const xfloat* sw,
                                 const int64_t* rows, Py_ssize_t n_rows, int loss_id,
                                 const int64_t* sizes, Py_ssize_t n_layers, int activation_id,
                                 const afloat* theta, afloat* grad, double scale,
                                 afloat* work) noexcept nogil

# Adds alpha * ((1 - r) W + r sign(W)) to the W parts of grad (sign(0) = 0); returns
# alpha * ((1 - r)/2 ||W||^2 + r ||W||_1) over the W's (0 when alpha == 0).
cdef double c_mlp_add_penalty(const afloat* theta, afloat* grad, const int64_t* sizes,
                              Py_ssize_t n_layers, double alpha,
                              double l1_ratio) noexcept nogil

# One epoch (docs/kernels.md); returns n_done.  state: (STATE_SLOTS[rule_id], P) row-major.
cdef Py_ssize_t c_mlp_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                            const int64_t* order, Py_ssize_t m, Py_ssize_t batch_size,
                            Py_ssize_t n_batches, int loss_id, const int64_t* sizes,
                            Py_ssize_t n_layers, int activation_id, double alpha,
                            double l1_ratio, int rule_id, const double* hyper,
                            const double* lrs, long long step0, afloat* theta, afloat* grad,
                            afloat* state, double* batch_loss, afloat* work) noexcept nogil
