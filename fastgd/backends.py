"""Backend discovery and dispatch.

=========  ====================================================================
numpy      the reference (``fastgd.reference``): always available, the oracle
cython     ``fastgd.kernels.cy``: compiled at install time, imports instantly
numba      ``fastgd.kernels.nb``: JIT-compiled (cached) on first use; the only
           compiled backend for custom losses and models
cuda       ``fastgd.kernels.cuda``: numba.cuda, data resident on the GPU
=========  ====================================================================

``backend="auto"`` follows the rule in docs/benchmarks.md: data already on a
GPU -> cuda; a custom loss or model -> numba; a built-in linear loss or an MLP
-> cython (no JIT on the first fit), then numba, then numpy, whichever is
available first.  An explicit backend is always honoured or raises.
"""
import importlib

from .engines import CPUEngine
from .validation import on_device

BACKENDS = ("numpy", "cython", "numba", "cuda")

_PACKAGES = {"numpy": "fastgd.reference", "cython": "fastgd.kernels.cy", "numba": "fastgd.kernels.nb"}
_FILES = {"linear": "linear_epoch", "mlp": "mlp_epoch", "custom": "custom_epoch"}
_status = {}


def _probe(name):
    """(ok, reason) for a backend, computed once per process."""
    if name not in _status:
        try:
            if name == "cuda":
                cuda = importlib.import_module("fastgd.kernels.cuda")
                ok = bool(cuda.is_available())
                _status[name] = (ok, "" if ok else cuda.unavailable_reason())
            else:
                importlib.import_module(f"{_PACKAGES[name]}.linear_epoch")
                _status[name] = (True, "")
        except Exception as exc:  # a missing build or a missing optional dependency
            hint = {"cython": "reinstall fastgd with a C compiler (pip install --force-reinstall fastgd)",
                    "numba": "pip install numba",
                    "cuda": 'pip install "fastgd[cuda]" on a machine with an NVIDIA GPU'}.get(name, "")
            _status[name] = (False, f"{type(exc).__name__}: {exc}. Fix: {hint}")
    return _status[name]


def available_backends():
    """The backends that work on this machine, in ``BACKENDS`` order (the reference first).

    Not an order of speed or of preference: ``backend="auto"`` picks by the data and
    the loss (:func:`resolve`; on CPU data with a built-in loss, cython before numba)."""
    return [name for name in BACKENDS if _probe(name)[0]]


def kernel_module(backend, kind):
    """The module holding ``backend``'s kernels for a model kind (linear, mlp, custom)."""
    if kind == "custom" and backend == "numpy":
        return importlib.import_module("fastgd.reference.custom_epoch")
    return importlib.import_module(f"{_PACKAGES[backend]}.{_FILES[kind]}")


def supports(backend, kind):
    """Whether ``backend`` works here and has kernels for the model kind."""
    if not _probe(backend)[0]:
        return False
    if backend == "cuda":
        engine_mod = importlib.import_module("fastgd.kernels.cuda.engine")
        return hasattr(engine_mod, {"linear": "LinearEngine", "mlp": "MLPEngine"}.get(kind, "-"))
    try:
        kernel_module(backend, kind)
    except ImportError:
        return False
    return True


def resolve(backend, kind, custom_loss, X):
    """Pick the backend for this fit; raise a clear error if an explicit one cannot run."""
    if not isinstance(backend, str) or (backend != "auto" and backend not in BACKENDS):
        raise ValueError(f"Invalid backend: {backend!r}; it must be 'auto' or one of {list(BACKENDS)}")
    needs_numba = custom_loss or kind == "custom"
    if backend == "auto":
        if on_device(X) and not needs_numba and supports("cuda", kind):
            return "cuda"
        prefs = ("numba", "numpy") if needs_numba else ("cython", "numba", "numpy")
        for name in prefs:
            if supports(name, kind):
                return name
        return "numpy"
    if needs_numba and backend not in ("numba", "numpy"):
        raise ValueError(f"Invalid backend for a custom loss or model: {backend!r}; custom @njit "
                         f"functions run on backend='numba' (or the reference, backend='numpy')")
    ok, reason = _probe(backend)
    if not ok:
        raise RuntimeError(f"backend={backend!r} is not available here: {reason}. "
                           f"Available: {available_backends()}")
    if not supports(backend, kind):
        raise RuntimeError(f"backend={backend!r} has no kernels for this model ({kind}) in this "
                           f"build; use one of {[b for b in available_backends() if supports(b, kind)]}")
    return backend


def make_engine(backend, kind, X, y, sw, spec, theta, state):
    if backend == "cuda":
        engine_mod = importlib.import_module("fastgd.kernels.cuda.engine")
        cls = {"linear": "LinearEngine", "mlp": "MLPEngine"}[kind]
        return getattr(engine_mod, cls)(X, y, sw, spec, theta, state)
    return CPUEngine(kernel_module(backend, kind), X, y, sw, spec, theta, state)
