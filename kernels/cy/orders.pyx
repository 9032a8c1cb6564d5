# cython: language_level=3, boundscheck=False, wraparound=False
"""Epoch orders drawn in C: ``permutation(rng, out)`` is ``rng.permutation(n)``, bit for bit.

NumPy's ``Generator.shuffle`` calls its bit generator through a function pointer for
every draw (0.9 ms for 100,000 rows here, a sixth of a W1 mini-batch epoch); the same
algorithm with PCG64 inlined (``fgd_pcg64.h``) takes a third of that.  The generator
is read from and written back to ``rng.bit_generator.state``, so the stream goes on
exactly as after ``rng.permutation(n)``.  ``fastgd.batching`` checks the result against
NumPy once per process before it relies on it.
"""
from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef extern from "fgd_pcg64.h" nogil:
    int FGD_HAVE_PCG64
    ctypedef struct fgd_pcg64:
        int has_uint32
        uint32_t uinteger
    void fgd_pcg64_load(fgd_pcg64* g, const uint64_t* s, int has_uint32, uint32_t uinteger)
    void fgd_pcg64_store(const fgd_pcg64* g, uint64_t* s)
    void fgd_pcg64_permutation(fgd_pcg64* g, int64_t* x, int64_t n)
    void fgd_pcg64_permutation_simple(fgd_pcg64* g, int64_t* x, int64_t n)

#: Whether this build has the inlined generator (a C compiler with 128-bit integers).
AVAILABLE = bool(FGD_HAVE_PCG64)

_M64 = (1 << 64) - 1


def permutation(rng, int64_t[::1] out):
    """Fill ``out`` (int64, length n) with ``rng.permutation(n)`` and advance ``rng``
    exactly as that call would.  ``rng``: a ``numpy.random.Generator`` on PCG64
    (anything else: TypeError; the caller falls back to NumPy)."""
    _draw(rng, out, False)


def _permutation_one_at_a_time(rng, int64_t[::1] out):
    """``permutation`` by the loop that rows beyond 2**32 take (one draw at a time, as
    NumPy writes it), for the tests."""
    _draw(rng, out, True)


cdef _draw(rng, int64_t[::1] out, bint simple):
    cdef fgd_pcg64 g
    cdef uint64_t s[4]
    cdef int64_t n = out.shape[0]
    cdef int64_t* x = &out[0] if n > 0 else NULL
    if not FGD_HAVE_PCG64:
        raise TypeError("permutation: this build has no 128-bit integer type; use rng.permutation")
    bitgen = rng.bit_generator
    with bitgen.lock:  # as NumPy's own draws: the state is read, advanced and written back whole
        st = bitgen.state
        if st.get("bit_generator") != "PCG64":
            raise TypeError(f"permutation: rng must run on PCG64, not "
                            f"{st.get('bit_generator')!r}; use rng.permutation")
        state, inc = st["state"]["state"], st["state"]["inc"]
        s[0], s[1], s[2], s[3] = state >> 64, state & _M64, inc >> 64, inc & _M64
        fgd_pcg64_load(&g, s, st["has_uint32"], st["uinteger"])
        with nogil:
            if simple:
                fgd_pcg64_permutation_simple(&g, x, n)
            else:
                fgd_pcg64_permutation(&g, x, n)
        fgd_pcg64_store(&g, s)
        bitgen.state = {"bit_generator": "PCG64",
                        "state": {"state": (<object>s[0] << 64) | s[1],
                                  "inc": (<object>s[2] << 64) | s[3]},
                        "has_uint32": g.has_uint32, "uinteger": g.uinteger}
