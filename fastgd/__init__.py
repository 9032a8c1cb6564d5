"""fastgd: batch, stochastic and mini-batch gradient descent with compiled kernels.

BGD, SGD and MBGD are one algorithm with batch sizes n, 1 and b::

    import fastgd
    res = fastgd.mbgd(X, y, batch_size=32, loss="logistic", epochs=5, lr=0.05, seed=0)
    res.predict(X)

See ``fastgd.fit`` for every option.
"""
try:
    from .kernels import ids as _ids  # noqa: F401  (installed from kernels/ by setup.py)
except ModuleNotFoundError as exc:  # pragma: no cover - only in a misused source checkout
    raise ImportError(
        f"fastgd was imported from its source tree ({__path__[0]}), where fastgd.kernels does not "
        f"exist: the kernels are installed from the top-level kernels/ folder. Run from another "
        f"directory, use the `fastgd` console script, or install in development mode with "
        f"`pip install -e .`") from exc

from . import losses, optim, schedules
from .api import bgd, fit, mbgd, sgd
from .backends import available_backends
from .batching import batch_order, iterations_per_epoch
from .models import MLP
from .results import DivergenceError, FitResult

__version__ = "0.1.0"

__all__ = ["fit", "bgd", "sgd", "mbgd", "MLP", "FitResult", "DivergenceError", "batch_order",
           "iterations_per_epoch", "available_backends", "losses", "optim", "schedules",
           "Loss", "CustomModel"]


def __getattr__(name):
    # Custom losses/models pull in numba; import them only when asked for so that
    # `import fastgd` stays fast.
    if name in ("Loss", "CustomModel"):
        from . import custom

        return getattr(custom, name)
    raise AttributeError(f"module 'fastgd' has no attribute {name!r}")


def __dir__():
    # the lazily imported names too, so tab completion and dir() list them
    return sorted(set(globals()) | {"Loss", "CustomModel"})
