"""Small typed helpers compiled into the kernels (never called from Python)."""
from numba.extending import overload


def zero_of(a):
    """A zero of ``a``'s dtype (so sums accumulate in the accumulation dtype)."""
    return a.dtype.type(0)


@overload(zero_of, inline="always")
def _ol_zero_of(a):
    dt = a.dtype

    def impl(a):
        return dt(0)

    return impl


def cast_like(a, x):
    """``x`` converted to ``a``'s dtype."""
    return a.dtype.type(x)


@overload(cast_like, inline="always")
def _ol_cast_like(a, x):
    dt = a.dtype

    def impl(a, x):
        return dt(x)

    return impl
