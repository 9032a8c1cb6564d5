"""Your own losses and models, compiled into the epoch loop (``backend="numba"``).

A custom **loss** for a linear model, ``fastgd.Loss(fn)``: ``fn`` is an
``@njit`` function ``(p, y) -> (loss, dloss)`` of one sample, with ``p`` the
prediction ``x.w + b`` and ``y`` the label (both float64 scalars, float32 data
included) and ``dloss = d loss / d p``.  The Numba backend compiles it straight
into the epoch loop; the reference backend (``backend="numpy"``) evaluates it with
``py_loss_dloss``: your NumPy version if you give ``py_fn``, else ``fn`` itself,
compiled, sample by sample (so overflow, NaN and ``error_model`` behave as in the
Numba epoch; to step through it as Python, call ``fn.py_func`` yourself, or give a
NumPy ``py_fn``)::

    from numba import njit
    import math, fastgd

    @njit
    def poisson(p, y):              # log link: mean = exp(p)
        mu = math.exp(p)
        return mu - y * p, mu - y

    res = fastgd.sgd(X, counts, loss=fastgd.Loss(poisson), lr=0.01, backend="numba")

A custom **model**, ``fastgd.CustomModel(fn, init)``: ``fn`` is an ``@njit``
function ``(params, x, y, grad_out) -> loss`` of one sample; ``grad_out`` (same
length and dtype as ``params``) arrives zeroed and ``fn`` writes d loss /
d params into it.  ``init`` is the 1-D array of initial parameters.  The batch
gradient is ``(1/|B|) sum s_i grad_i``, as everywhere in fastgd.  Give
``predict=`` (an ``@njit`` ``(params, x) -> float``) to use
``FitResult.predict``.  Both backends call ``fn`` compiled.
"""
import numbers

import numpy as np

from .kernels import checks
from .kernels.checks import is_real
from .models import init_array

_KINDS = ("regression", "binary01", "binary_pm1")


def _every_path_returns(fn, args, what, fix):
    """Numba types a function that falls off its end on some branch as returning an
    Optional (None on that branch): it passes a probe call that takes another branch and
    fails inside the epoch loop, in Numba's words.  Refused here, once it is compiled for
    ``args``."""
    import numba
    from numba.core import types

    cres = fn.overloads.get(tuple(numba.typeof(a) for a in args))
    ret = None if cres is None else cres.signature.return_type
    if isinstance(ret, types.Optional):
        raise TypeError(f"Invalid {what}: Numba typed its result as {ret} (None on a path "
                        f"that ends without a return statement); {fix} on every path")


class Loss:
    """A per-sample loss ``fn(p, y) -> (loss, dloss)`` written as an ``@njit`` function.

    Parameters
    ----------
    fn : numba ``@njit`` function of two float64 scalars returning
        ``(loss, d loss / d p)``.
    name : shown in messages and reprs (default: ``fn``'s name).
    py_fn : optional NumPy version ``(p array, y array) -> (loss array, dloss
        array)`` for the reference backend; by default it calls ``fn`` (compiled)
        sample by sample.
    kind : the labels it takes: "regression" (any real, default), "binary01"
        ({0, 1}) or "binary_pm1" (given as -1/+1 or 0/1, passed as -1/+1).

    Attributes ``fn`` (the dispatcher the Numba kernels compile in) and
    ``py_loss_dloss`` (what the reference backend calls).
    """

    def __init__(self, fn, name=None, py_fn=None, kind="regression"):
        checks.njit_function("fn", fn, checks.LOSS_SIGNATURE)
        if kind not in _KINDS:
            raise ValueError(f"Invalid kind: {kind!r}; it must be one of {list(_KINDS)}")
        if py_fn is not None and not callable(py_fn):
            raise TypeError(f"Invalid py_fn: {py_fn!r}; it must be a callable (p, y) -> (loss, dloss)")
        try:
            out = fn(0.5, 1.0)
        except Exception as exc:  # a typing error: say what the function must look like
            raise TypeError(f"Invalid loss function {getattr(fn, '__name__', fn)!r}: calling it as "
                            f"fn(0.5, 1.0) with two float64 scalars failed ({type(exc).__name__}: "
                            f"{exc}); it must be @njit (p, y) -> (loss, dloss)") from exc
        if not (isinstance(out, tuple) and len(out) == 2
                and all(is_real(v) for v in out)):
            raise TypeError(f"Invalid loss function {getattr(fn, '__name__', fn)!r}: fn(0.5, 1.0) "
                            f"returned {out!r}; it must return a pair of numbers (loss, dloss)")
        _every_path_returns(fn, (0.5, 1.0), f"loss function {getattr(fn, '__name__', fn)!r}",
                            "return (loss, dloss)")
        self.fn = fn
        self.py_fn = py_fn
        self.name = name if name is not None else getattr(fn, "__name__", "custom")
        self.kind = kind

    def py_loss_dloss(self, p, y):
        """Vectorised (loss, dloss) for arrays ``p`` and ``y`` (the reference backend's call)."""
        p = np.asarray(p, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self.py_fn is not None:
            return self._py_fn_pair(self.py_fn(p, y), p.shape)
        # fn compiled, not its Python code: Python's math raises OverflowError and
        # ZeroDivisionError where the compiled code gives inf or NaN (or follows the
        # function's error_model), which would stop one backend's fit and not the other's
        f = self.fn
        loss = np.empty(p.shape)
        dloss = np.empty(p.shape)
        for idx in np.ndindex(p.shape):
            loss[idx], dloss[idx] = f(float(p[idx]), float(y[idx]))
        return loss, dloss

    def _py_fn_pair(self, out, shape):
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"Invalid py_fn of {self!r}: it returned {type(out).__name__} "
                            f"{_short(out)}; it must return a pair (loss, dloss) of arrays shaped "
                            f"like p, {shape}, or scalars")
        pair = []
        for name, v in zip(("loss", "dloss"), out):
            a = np.asarray(v)
            if a.dtype.kind not in "biuf" or not (a.ndim == 0 or a.shape == shape):
                raise TypeError(f"Invalid py_fn of {self!r}: its {name} has shape {a.shape} "
                                f"and dtype {a.dtype}; it must be real numbers shaped like p, "
                                f"{shape} (or a scalar)")
            pair.append(np.broadcast_to(a.astype(np.float64, copy=False), shape))
        return tuple(pair)

    def py_loss(self, p, y):
        return self.py_loss_dloss(p, y)[0]

    def py_dloss(self, p, y):
        return self.py_loss_dloss(p, y)[1]

    def __eq__(self, other):
        # Same function, same reference version, same labels: the same loss (so a
        # fit can be continued with a new Loss wrapping the same function).
        return (type(other) is Loss and other.fn is self.fn and other.py_fn is self.py_fn
                and other.kind == self.kind)

    def __hash__(self):
        return hash((id(self.fn), id(self.py_fn), self.kind))

    def __repr__(self):
        return f"Loss({self.name})"


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class CustomModel:
    """A model given by its per-sample loss and gradient, ``fn(params, x, y, grad_out) -> loss``.

    Parameters
    ----------
    fn : numba ``@njit`` function.  ``params`` (P,), ``x`` one row of X (d,),
        ``y`` a float64 scalar, ``grad_out`` (P,) zeroed before the call: write
        d loss / d params of this sample into it and return the loss.  Every
        backend calls it compiled (call ``fn.py_func`` to step through it as Python).
    init : 1-D array of the P initial parameters (``fit(init=...)`` overrides it).
    predict : optional ``@njit`` ``(params, x) -> float`` for ``FitResult.predict``.
    name : shown in messages.

    Attributes ``fn`` (what every backend calls) and ``py_fn`` (``fn``'s Python
    code: ``bind`` runs it once on a zero row, where NumPy checks the indices).
    """

    kind = "custom"

    def __init__(self, fn, init, predict=None, name=None):
        checks.njit_function("model function", fn, checks.MODEL_SIGNATURE)
        if predict is not None:
            checks.njit_function("predict", predict, checks.PREDICT_SIGNATURE)
        init = np.asarray(init)
        if init.ndim != 1 or init.size == 0 or not np.issubdtype(init.dtype, np.number) \
                or np.issubdtype(init.dtype, np.complexfloating):
            raise ValueError(f"Invalid init: it must be a non-empty 1-D array of real numbers "
                             f"(the initial parameters), got shape {init.shape} dtype {init.dtype}")
        init = init.astype(np.float64)
        if not np.all(np.isfinite(init)):
            raise ValueError("Invalid init: the initial parameters must be finite")
        self.fn = fn
        self.py_fn = fn.py_func
        self.init = init
        self.predict = predict
        self.name = name if name is not None else getattr(fn, "__name__", "custom")
        self.n_features = None

    # -- what fit() needs ---------------------------------------------------------
    def bind(self, n_features):
        """A copy sized for the data; checks ``fn`` once on a zero row."""
        bound = CustomModel.__new__(CustomModel)
        bound.__dict__.update(self.__dict__)
        bound.n_features = int(n_features)
        args = (self.init.copy(), np.zeros(bound.n_features), 0.0, np.zeros(self.init.size))
        try:  # fn's Python code first: compiled code does not check its indices
            self.py_fn(*(a.copy() if isinstance(a, np.ndarray) else a for a in args))
        except IndexError as exc:
            raise ValueError(
                f"Invalid model function {self.name!r}: called with params and grad_out of "
                f"P={self.init.size} elements (init's length) and x of d={bound.n_features}, it "
                f"indexes outside them ({exc}); check init's length against what fn reads and "
                f"writes") from exc
        except Exception:  # code only Numba runs (the compiled call below says what fails)
            pass
        if self.predict is not None:
            try:
                p = self.predict(self.init.copy(), np.zeros(bound.n_features))
            except Exception as exc:
                raise TypeError(f"Invalid predict: calling it as predict(params (P,), x (d,)) "
                                f"failed ({type(exc).__name__}: {exc}); it must be @njit "
                                f"(params, x) -> float") from exc
            if not is_real(p):
                raise TypeError(f"Invalid predict: it returned {p!r}; it must return one number "
                                f"(the prediction for x)")
        try:
            out = self.fn(*args)
        except Exception as exc:
            raise TypeError(f"Invalid model function {self.name!r}: calling it as fn(params (P,), "
                            f"x (d,), y float, grad_out (P,)) failed ({type(exc).__name__}: {exc}); "
                            f"it must be @njit (params, x, y, grad_out) -> loss") from exc
        if not isinstance(out, numbers.Real):
            raise TypeError(f"Invalid model function {self.name!r}: it returned {out!r}; it must "
                            f"return the sample's loss as a float")
        _every_path_returns(self.fn, args, f"model function {self.name!r}", "return the loss")
        return bound

    @property
    def n_params(self):
        return int(self.init.size)

    def init_theta(self, rng, dtype):
        return self.init.astype(dtype, copy=True)

    def theta_from_init(self, init, dtype):
        theta = init_array(init, f"the parameters of {self.name!r}").reshape(-1)
        if theta.size != self.n_params:
            raise ValueError(f"Invalid init: {self.name!r} has {self.n_params} parameters, got "
                             f"{theta.size}")
        if not np.all(np.isfinite(theta)):
            raise ValueError("Invalid init: the initial parameters must be finite")
        return theta.astype(dtype)

    def unpack(self, theta):
        return [np.array(theta, copy=True)]

    def coef_intercept(self, theta):
        return None, None

    def decision(self, theta, X):
        if self.predict is None:
            raise AttributeError(f"CustomModel {self.name!r} has no predict function; pass "
                                 f"predict=@njit (params, x) -> float to CustomModel")
        from .kernels.nb.custom_epoch import custom_model_predict

        out = np.empty(X.shape[0], dtype=theta.dtype)  # float32 parameters predict in float32
        custom_model_predict(self.predict, theta, X, out)
        return out

    def signature(self):
        # fn itself, not only its name: closures made by one factory share a name, and a
        # fit continued with another one would carry parameters into another model
        return ("custom", self.name, self.n_params, self.n_features, self.fn)

    def __repr__(self):
        return f"CustomModel({self.name}, P={self.n_params})"
