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


# --------------------------------------------------------------------------
# A finiteness test that no fast-math flag can fold away.
#
# Numba lowers math.isfinite(x) as ``ord(x - x)``; with the "reassoc" flag
# LLVM's reassociation may cancel ``x - x`` inside a larger expression (it
# did in the plain-SGD loop: an inf loss went unnoticed).  Looking at the
# exponent bits is integer arithmetic, which fast-math never touches.

from numba import types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402
from llvmlite import ir  # noqa: E402


@intrinsic
def _f64_bits(typingctx, x):
    if not isinstance(x, types.Float):
        return None
    sig = types.uint64(types.float64)

    def codegen(context, builder, signature, args):
        val = context.cast(builder, args[0], x, types.float64)
        return builder.bitcast(val, ir.IntType(64))

    return sig, codegen


_EXP_MASK = 0x7FF0000000000000


def is_finite(x):
    """True when ``x`` is neither NaN nor +-inf (exact under any fastmath flags)."""
    import math

    return math.isfinite(x)


@overload(is_finite, inline="always")
def _ol_is_finite(x):
    if isinstance(x, types.Float):
        def impl(x):
            return (_f64_bits(x) & types.uint64(_EXP_MASK)) != types.uint64(_EXP_MASK)
        return impl
    if isinstance(x, types.Integer):
        return lambda x: True
