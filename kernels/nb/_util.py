"""Small typed helpers compiled into the kernels (never called from Python)."""
import numpy as np
from numba.extending import overload


# Numba types a literal argument (a 0 or True written at the call, or a module-level int)
# as a type of its own, Literal[int](0) or Literal[bool](True): a callee called with a
# literal from one kernel and with a variable from another compiled twice (the halves loop
# 20 s, the batch gradient 23 s, in a slow hour).  Kernels pass these NumPy scalars
# instead, which type as int64 and bool.  (The MLP's one-thread entry keeps its literal
# thread id and team size: the folded team code measured 2-4 % faster on small MLPs.)
ZERO = np.int64(0)
TRUE = np.bool_(True)


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


@intrinsic
def bits_to_f64(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 ``bits``."""
    if not isinstance(bits, types.Integer):
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        val = context.cast(builder, args[0], bits, types.int64)
        return builder.bitcast(val, ir.DoubleType())

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


# --------------------------------------------------------------------------
# Software prefetch of a row of X (rows are read in shuffled order, which the
# hardware prefetcher cannot predict).

from numba.core import cgutils  # noqa: E402


@intrinsic
def _prefetch_elem(typingctx, arr, i, j):
    """Prefetch the cache line holding arr[i, j] (2-D) or arr[i] (1-D, j ignored); no
    effect on results."""
    if not (isinstance(arr, types.Array) and arr.ndim in (1, 2)):
        return None
    sig = types.void(arr, types.intp, types.intp)  # any integer index, taken as intp

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = [args[1], args[2]] if aryty.ndim == 2 else [args[1]]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx, wraparound=False)
        i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # read, locality 2 (prefetcht1: into L2, leaving the L1 miss buffers to the
        # demand loads; measured best with rows fetched 8 ahead), data cache
        builder.call(fn, [i8p, ir.Constant(i32, 0), ir.Constant(i32, 2), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


def prefetch_item(a, i):
    """Hint the CPU to load a[i] of the 1-D array ``a``."""


@overload(prefetch_item, inline="always")
def _ol_prefetch_item(a, i):
    def impl(a, i):
        _prefetch_elem(a, i, 0)

    return impl


@intrinsic
def touch(typingctx, arr, i, j):
    """A one-byte (relaxed atomic) load of arr[i, j] (2-D) or arr[i] (1-D, j ignored): brings its
    line into this core's caches, and the compiler can neither delete it nor make
    anything wait for its value (a reader's sum of the loaded values was a chain of
    dependent additions that filled the scheduler while the misses were in flight)."""
    if not (isinstance(arr, types.Array) and arr.ndim in (1, 2)):
        return None
    sig = types.void(arr, types.intp, types.intp)  # any integer index, taken as intp

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = [args[1], args[2]] if aryty.ndim == 2 else [args[1]]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx, wraparound=False)
        i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        # a relaxed atomic load: not a simple load, so LLVM keeps it though it is unused
        builder.load_atomic(i8p, ordering="monotonic", align=1)
        return context.get_dummy_value()

    return sig, codegen


def prefetch_row(X, i):
    """Hint the CPU to load row ``i`` of the C-contiguous 2-D array ``X``."""


def prefetch_part(X, i, lo, hi):
    """Hint the CPU to load the lines of elements lo..hi-1 of row ``i`` of ``X``."""


@overload(prefetch_part, inline="always")
def _ol_prefetch_part(X, i, lo, hi):
    step = max(1, 512 // X.dtype.bitwidth)

    def impl(X, i, lo, hi):
        for j in range(lo, hi, step):
            _prefetch_elem(X, i, j)
        if hi > lo:
            _prefetch_elem(X, i, hi - 1)

    return impl


@overload(prefetch_row, inline="always")
def _ol_prefetch_row(X, i):
    def impl(X, i):
        # through the last element: one element a line from the first stops a line
        # short of the end of a row that starts late in a line (every other W1 row); a
        # reader that skipped that line took a demand miss there and ran 25-30 % slower
        prefetch_part(X, i, 0, X.shape[1])

    return impl


# --------------------------------------------------------------------------
# Atomics on int64 arrays and a spin-wait hint, for the two threads of a
# mid-sized-batch epoch (linear_epoch._pair_batches): plain loads and stores
# with acquire/release ordering and one compare-and-swap.

def _int64_slot(context, builder, aryty, ary, i):
    arr = context.make_array(aryty)(context, builder, ary)
    return cgutils.get_item_pointer(context, builder, aryty, arr, [i], wraparound=False)


def _is_int64_vector(a):
    return isinstance(a, types.Array) and a.ndim == 1 and a.dtype == types.int64


@intrinsic
def load_acquire(typingctx, a, i):
    """a[i] read with acquire ordering (sees what the writer stored before its release)."""
    if not _is_int64_vector(a):
        return None
    sig = types.int64(a, types.intp)

    def codegen(context, builder, signature, args):
        ptr = _int64_slot(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, ordering="acquire", align=8)

    return sig, codegen


@intrinsic
def store_release(typingctx, a, i, v):
    """a[i] = v with release ordering (everything stored before is seen with it)."""
    if not _is_int64_vector(a):
        return None
    sig = types.void(a, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _int64_slot(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, ordering="release", align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def compare_and_swap(typingctx, a, i, expected, new):
    """Atomically: if a[i] == expected, a[i] = new.  True when it did."""
    if not _is_int64_vector(a):
        return None
    sig = types.boolean(a, types.intp, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _int64_slot(context, builder, signature.args[0], args[0], args[1])
        pair = builder.cmpxchg(ptr, args[2], args[3], ordering="acq_rel",
                               failordering="acquire")
        return builder.extract_value(pair, 1)

    return sig, codegen


@intrinsic
def spin_pause(typingctx):
    """The CPU's spin-wait hint (x86 ``pause``); nothing elsewhere."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        import platform

        if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
            fnty = ir.FunctionType(ir.VoidType(), [])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def cycle_count(typingctx):
    """The CPU's cycle counter (``llvm.readcyclecounter``: rdtsc on x86-64), for
    coarse timing inside kernels; its rate is the machine's."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.readcyclecounter")
        return builder.call(fn, [])

    return sig, codegen
