"""The one place for the Numba compilation options of ``fastgd.kernels.nb``.

- ``fastmath={"reassoc", "contract", "nsz"}`` only: reductions may be
  reassociated (so dot products vectorise) and multiply-adds contracted, but
  ``nnan``/``ninf`` are never assumed, so a NaN or inf loss stays detectable
  (``fastmath=True`` would let LLVM fold ``isfinite(x)`` to ``True``).  Even
  so, ``math.isfinite`` (lowered as ``ord(x - x)``) is not safe under
  "reassoc"; the kernels use ``_util.is_finite`` (exponent bits) instead.
- ``nogil=True``: several fits can run in threads.
- ``error_model="numpy"``: a division by zero gives inf/nan (then caught as a
  non-finite batch loss) instead of raising inside the kernel.
- ``cache=True`` only when Numba can actually write a cache for this folder,
  in its locators' order: ``NUMBA_CACHE_DIR`` (if set), the package's own
  ``__pycache__``, or the user-wide cache (``$XDG_CACHE_HOME/numba``, by
  default ``~/.cache/numba``).  In a read-only install with none of them
  writable the kernels are compiled in memory (``cache=False``) instead of
  failing at import.  ``FASTGD_NUMBA_CACHE=0`` turns caching off explicitly.

Only kernels whose argument types are plain arrays and scalars (and None: softmax's
loss_param) are cached.
Kernels specialised on a user's ``@njit`` function (custom losses and models)
are never cached: Numba would key the cache entry on that function's identity
and write a new, never-reused entry on every run.

Numba invalidates a cached function only when *its own* source file changes,
not when a kernel it calls (in another file) does.  Kernels made with
:func:`kernel` therefore add a hash of the shared source files of this folder
(``SHARED_MODULES``, and ``ids.py``) to their cache key, so editing ``losses.py`` can never leave a
stale ``linear_epoch`` in the cache.
"""
import contextlib
import hashlib
import os

from numba import njit

FASTMATH = {"reassoc", "contract", "nsz"}

#: Rows per chunk of the deterministic parallel reduction.  Fixed, so the
#: chunk boundaries (and therefore the rounding) never depend on the number
#: of threads.
CHUNK_ROWS = 512

#: A batch is reduced with ``prange`` (over its chunks) when it has at least
#: this many rows * features; smaller batches run the same chunked sum serially
#: (bit-identical: the choice only changes who computes each chunk).
PARALLEL_MIN_WORK = 1 << 17


def _probe():  # pragma: no cover - only its source location matters
    return 0


def _cache_usable():
    if os.environ.get("FASTGD_NUMBA_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        from numba.core.caching import FunctionCache

        cache = FunctionCache(_probe)  # raises RuntimeError: no writable locator
        cache._impl.locator.ensure_cache_path()
    except Exception:
        return False
    return True


#: Whether compiled kernels are cached on disk (decided once, at import).
CACHE = _cache_usable()

#: Options of every public kernel with plain array/scalar arguments.
JIT = dict(nogil=True, fastmath=FASTMATH, error_model="numpy", cache=CACHE)
#: Same, never cached: kernels specialised on a user's function.
JIT_NOCACHE = dict(nogil=True, fastmath=FASTMATH, error_model="numpy", cache=False)
#: Options for the parallel (prange) reductions.
JIT_PAR = dict(JIT, parallel=True)
JIT_PAR_NOCACHE = dict(JIT_NOCACHE, parallel=True)


#: Modules of this folder that other kernels import (their changes must
#: invalidate every cached kernel).  A module nothing imports (mlp_epoch,
#: custom_epoch) need not be here: Numba already watches a kernel's own file.
SHARED_MODULES = ("config.py", "_util.py", "losses.py", "simd.py", "updates.py",
                  "linear_epoch.py")


def _sources_hash():
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for name in SHARED_MODULES:
        with open(os.path.join(here, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read())
    with open(os.path.join(os.path.dirname(here), "ids.py"), "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def _make_cache_class():
    from numba.core.caching import FunctionCache

    digest = _sources_hash()

    class KernelCache(FunctionCache):
        """Numba's function cache, keyed also on this folder's sources."""

        def _index_key(self, sig, codegen):
            return super()._index_key(sig, codegen) + (digest,)

    return KernelCache


_CACHE_CLASS = None
if CACHE:
    try:
        _CACHE_CLASS = _make_cache_class()
    except Exception:  # a Numba without this (private) hook: plain caching
        _CACHE_CLASS = None


def kernel(fn=None, *, parallel=False, cache=True, inline=False, reassoc=True):
    """``njit`` with this package's options; ``cache`` only where it can work.

    ``cache=False`` is for kernels specialised on a user's function.  ``inline=True``:
    Numba inlines the function's IR into every ``@njit`` caller.  (A callee compiled on
    its own is linked into its caller's module, which LLVM then optimises as a whole, so
    it may inline it, but by its cost model: a large callee stays a call, which passes
    every array as seven values, tens of nanoseconds paid per batch.)  Called from Python
    it is an ordinary kernel.  ``reassoc=False`` drops "reassoc" from the
    fast-math flags, for elementwise formulas that must keep their order (the update
    rules: with it LLVM turned Adam's ``step_size * (m / denom)`` into
    ``(step_size * m) / denom``, which overflows where the formula does not); loops
    without a reduction vectorise without it.
    """
    def wrap(f):
        opts = JIT_PAR_NOCACHE if parallel else JIT_NOCACHE
        if not reassoc:
            opts = dict(opts, fastmath=FASTMATH - {"reassoc"})
        if inline:
            opts = dict(opts, inline="always")
        disp = njit(**opts)(f)
        if cache and CACHE and hasattr(disp, "enable_caching"):  # not under NUMBA_DISABLE_JIT
            if _CACHE_CLASS is not None:
                disp._cache = _CACHE_CLASS(disp.py_func)
            else:
                disp.enable_caching()
        return disp

    return wrap(fn) if fn is not None else wrap


# --------------------------------------------------------------------------
# Several fits in threads.
#
# The kernels release the GIL, and large batches run ``prange`` loops.  The
# "omp" and "tbb" threading layers accept parallel launches from several
# threads at once; "workqueue" (Numba's fallback where neither OpenMP nor TBB
# is available) aborts the process instead.  The Python entry points therefore
# serialise their calls where the layer is workqueue.  Calls made from your own
# @njit code bypass this: with workqueue, do not launch large-batch kernels from
# several threads.

import threading  # noqa: E402

_LAUNCH_LOCK = threading.RLock()
_THREADSAFE = None


def _layer_is_threadsafe():
    """Decided once: ``numba.get_num_threads()`` starts the thread pool, which chooses
    the layer.  (Numba chooses it at the first parallel launch otherwise, which b = 1
    and small batches never make: every call had been serialised until one did, and
    two b = 1 fits in threads took twice as long as one; review.)"""
    global _THREADSAFE
    if _THREADSAFE is None:
        import numba

        numba.get_num_threads()
        _THREADSAFE = numba.threading_layer() in ("omp", "tbb")
    return _THREADSAFE


def guarded(call, *args):
    """``call(*args)``, serialised unless the threading layer is thread-safe.

    An exception that a user's function (a custom loss or model) raises inside a
    parallel region reaches Python as a SystemError ("... returned a result with an
    exception set") caused by it; the user's own exception is raised instead, as on
    the serial paths."""
    try:
        if _layer_is_threadsafe():
            return call(*args)
        with _LAUNCH_LOCK:
            return call(*args)
    except SystemError as e:
        if e.__cause__ is not None and "with an exception set" in str(e):
            raise e.__cause__ from None
        raise


class FunctionNotCompiled(TypeError):
    """A user's function that Numba could not compile into a kernel: nothing ran."""


@contextlib.contextmanager
def user_function(name, fn, signature, returns):
    """A user's function that Numba cannot compile into a kernel is a ``TypeError``
    (``FunctionNotCompiled``) that names the argument and the call the kernel makes, with
    Numba's error as its cause.  Without this it was Numba's ``TypingError``, tens of lines
    from inside the kernel that never named ``fn``.  ``signature()`` gives ``(call text,
    argument types)``, asked for only on a failure (the entries run every epoch).  The
    blame is checked: ``fn`` is compiled alone for those types and its result type checked
    (``returns(type) -> bool``); where both pass, the kernel's own error is raised as it is."""
    from numba.core.errors import TypingError

    try:
        yield
    except TypingError as exc:
        call, arg_types = signature()
        try:
            fn.compile(tuple(arg_types))
            result = fn.overloads[tuple(arg_types)].signature.return_type
        except Exception as own:  # noqa: BLE001 - typing, arity (a TypeError), a fixed signature
            exc = own  # the function's own error: shorter, and about it alone
        else:
            if returns(result):
                raise
        raise FunctionNotCompiled(f"Invalid {name}: Numba could not compile "
                                  f"{getattr(fn, '__name__', fn)!r} into the kernel, which "
                                  f"calls it as {call}; make it compile for these types "
                                  f"(Numba's error, above, says where it failed)") from exc


def returns_number(t):
    """A Numba type a kernel can use as a loss or a prediction."""
    from numba.core import types

    return isinstance(t, (types.Float, types.Integer, types.Boolean))


def returns_pair(t):
    """A Numba type a kernel can unpack as ``(loss, dloss)``."""
    from numba.core import types

    return isinstance(t, types.BaseTuple) and len(t) == 2 and all(map(returns_number, t))


@contextlib.contextmanager
def on_calling_thread(user_code):
    """Numba threads set to 1 for the kernels run inside, when they call a user's function
    (``user_code``: a custom loss or model).  Numba drops an exception raised on a worker
    thread of a parallel region, and the batch's values are then garbage, so a user's
    function runs on the calling thread only: its exception comes out, and the results are
    the same bits (the chunked reductions do not depend on the thread count).  Numba's
    thread count is per calling thread, so concurrent fits do not see it."""
    if not user_code:
        yield
        return
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)
