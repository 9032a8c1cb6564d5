"""CUDA kernels (numba.cuda): data resident on the device for a whole fit.

Files follow the calling convention of docs/kernels.md: ``losses``,
``updates``, ``linear_epoch``, plus ``engine`` (the driver's ``LinearEngine``)
and ``config`` (every tunable).  Importing this package never fails: the kernel
modules are imported only when used, and :func:`is_available` says whether
they can run here (a CUDA GPU with a working driver, or Numba's CUDA
simulator when ``NUMBA_ENABLE_CUDASIM=1`` was set before numba was imported).
"""

_INSTALL_HINT = ('install the cuda extra: pip install "fastgd[cuda]" (numba-cuda; or '
                 '"fastgd[cuda12]" or "fastgd[cuda13]" to get the CUDA toolkit libraries from pip), '
                 'or set NUMBA_ENABLE_CUDASIM=1 before importing numba to use the '
                 'CUDA simulator (slow; for tests)')

_status = None


def _probe():
    """(available, reason, simulated); computed once, never raises."""
    try:
        from numba import config as nbconfig
    except Exception as exc:  # pragma: no cover - numba is a core dependency
        return False, f"numba cannot be imported ({exc!r}); {_INSTALL_HINT}", False
    simulated = bool(getattr(nbconfig, "ENABLE_CUDASIM", 0))
    try:
        from numba import cuda
    except Exception as exc:
        return False, f"numba.cuda cannot be imported ({exc!r}); {_INSTALL_HINT}", simulated
    if simulated:
        return True, "", True
    try:
        import numba_cuda  # noqa: F401  (numba >= 0.61 needs the separate numba-cuda)
    except Exception:
        try:
            import numba
            major, minor = (int(v) for v in numba.__version__.split(".")[:2])
        except Exception:
            major, minor = 0, 0
        if (major, minor) >= (0, 61):
            return False, f"numba-cuda is not installed; {_INSTALL_HINT}", False
    try:
        if not cuda.is_available():
            return False, ("no usable CUDA GPU or driver was found (numba.cuda.is_available() "
                           f"is False); {_INSTALL_HINT}"), False
        cuda.get_current_device()
    except Exception as exc:
        return False, f"the CUDA driver or device failed to initialise ({exc!r}); {_INSTALL_HINT}", False
    problem = _compiler_problem()
    if problem:
        return False, problem, False
    return True, "", False


def _compiler_problem(import_module=None):
    """Why numba-cuda's kernel compiler cannot start here ('' when it can).

    The compiler loads its typing registries at the first kernel launch, so a
    broken pairing of numba-cuda and NumPy would otherwise surface as an
    AttributeError from deep inside the first fit.  Importing the module that
    loads them costs what the first launch would pay anyway.
    """
    import importlib

    import numpy as np

    try:
        (import_module or importlib.import_module)("numba.cuda.cudaimpl")
    except ModuleNotFoundError:
        return ""  # another numba-cuda layout: nothing to check ahead of the first launch
    except Exception as exc:
        try:
            from importlib.metadata import version
            ncu = "numba-cuda " + version("numba-cuda")
        except Exception:
            ncu = "numba-cuda"
        msg = f"{ncu} cannot compile kernels beside NumPy {np.__version__} ({exc!r})"
        if "row_stack" in str(exc):
            msg += ('; numba-cuda registers np.row_stack, which NumPy 2.5 removed '
                    '(NVIDIA/numba-cuda#907): pip install "numpy<2.5" (the cuda extra '
                    'asks for it)')
        return msg
    return ""


def _get_status():
    global _status
    if _status is None:
        _status = _probe()
    return _status


def is_available():
    """True where the CUDA kernels can run: a real GPU, or the CUDA simulator."""
    return _get_status()[0]


def is_simulated():
    """True when numba.cuda is Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)."""
    return _get_status()[2]


def unavailable_reason():
    """Why ``is_available()`` is False, with how to fix it ('' when available)."""
    return _get_status()[1]
