# cython: language_level=3
"""The barrier of an epoch's OpenMP team (``fgd_team.h``), shared by the MLP and the
linear epochs.  Each module that cimports it declares ``fgd_contended_wait`` itself
(a static of the header: one per module, with its own test knob)."""

cdef extern from "fgd_team.h" nogil:
    enum: FGD_TEAM_MAX
    ctypedef struct fgd_team_barrier:
        pass
    ctypedef struct fgd_thread_state:
        pass
    void fgd_barrier_init(fgd_team_barrier* b, int n) noexcept nogil
    void fgd_thread_init(fgd_thread_state* t) noexcept nogil
    void fgd_batch_start(fgd_team_barrier* b, fgd_thread_state* t) noexcept nogil
    void fgd_barrier_wait(fgd_team_barrier* b, fgd_thread_state* t) noexcept nogil
    int fgd_contended(fgd_team_barrier* b) noexcept nogil
    void fgd_barrier_solo(fgd_team_barrier* b) noexcept nogil
    void fgd_omp_barrier() noexcept nogil
