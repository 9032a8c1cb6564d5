# cython: language_level=3
"""Linear models: the per-batch gradient, the penalty and the whole-epoch loop,
C level, ``nogil`` (cimport-able; see docs/kernels.md for the contract).

``xfloat`` is the dtype of X, y and sw (D); ``afloat`` the accumulation dtype of
theta, grad and state (A).  Every (D, A) pair is compiled; (float, double) is
"accumulate float32 data in float64", (double, float) rounds X to float32 as
the reference does.  X is (n, d) row-major; ``sw`` may be NULL (all ones).  Rows are read through
``rows``/``order`` (int64 indices into X's rows); X is never copied.  A batch
holding at least half of X's rows is read in row-index order (the gradient is
a sum), so BGD streams X even when the order is shuffled.

Large batches (see ``chunk_layout``) are split into fixed chunks of rows whose
boundaries depend only on (rows, d, K, P), never on the thread count; chunks
run in an OpenMP loop into per-chunk partial gradients that are then added in
chunk order, so the result is bit-identical for any OMP_NUM_THREADS.  In
``c_linear_epoch``, mid-sized batches (at least 8 rows, one chunk) are the sum of
two fixed halves, run on two threads with one barrier per batch when the halves
are large enough; the same bits on one thread.
"""
from libc.stdint cimport int64_t

ctypedef fused xfloat:
    float
    double

ctypedef fused afloat:
    float
    double


# grad[:P] = scale * sum_{i in rows} sw_i dl_i/dtheta (overwritten, no penalty);
# returns scale * sum sw_i l_i (NaN if the workspace cannot be allocated).
cdef double c_linear_batch_gradient(const xfloat* X, const xfloat* y, const xfloat* sw,
                                    Py_ssize_t n, Py_ssize_t d, const int64_t* rows,
                                    Py_ssize_t n_rows, int loss_id, double loss_param,
                                    Py_ssize_t K, bint fit_intercept, const afloat* theta,
                                    afloat* grad, double scale) noexcept nogil

# grad[:n] += alpha * ((1 - r) w + r sign(w)); returns the penalty value (0 if alpha == 0).
cdef double c_add_penalty(const afloat* theta, afloat* grad, Py_ssize_t n_penalized,
                          double alpha, double l1_ratio) noexcept nogil

# One epoch (docs/kernels.md); returns n_done, or -1 if the workspace cannot be allocated.
# state: (STATE_SLOTS[rule_id], P) row-major.
cdef Py_ssize_t c_linear_epoch(const xfloat* X, const xfloat* y, const xfloat* sw,
                               Py_ssize_t n, Py_ssize_t d, const int64_t* order, Py_ssize_t m,
                               Py_ssize_t batch_size, Py_ssize_t n_batches, int loss_id,
                               double loss_param, Py_ssize_t K, bint fit_intercept,
                               double alpha, double l1_ratio, int rule_id,
                               const double* hyper, const double* lrs, long long step0,
                               afloat* theta, afloat* grad, afloat* state,
                               double* batch_loss) noexcept nogil

# Chunking of a batch of n_rows rows: returns the number of chunks (1 = serial)
# and writes the rows per chunk.  Depends on (n_rows, d, K, P) only.
cdef Py_ssize_t c_chunk_layout(Py_ssize_t n_rows, Py_ssize_t d, Py_ssize_t K, Py_ssize_t P,
                               Py_ssize_t* chunk_rows) noexcept nogil
