"""Checks made by the kernels' Python entry points before a compiled loop runs.

The compiled loops trust their inputs (docs/kernels.md): a row index outside X, more
batches than the order holds, a state array with fewer rows than the rule keeps, a
softmax label that is not a class index, an array shorter than the parameter vector
would each make a loop read or write outside an array.  So every entry that Python code
calls (``linear_epoch``, ``linear_batch_gradient``, ``mlp_epoch``, ``apply_update``, ...
of every CPU backend, and the CUDA ones given host arrays) first runs the one check of
this module that matches it: the codes are known, the arrays have the shapes and dtypes
docs/kernels.md gives, the indices are integers inside X.  A ``ValueError``/``TypeError``
names the argument, the rule, the value and the fix.  The cost is O(1) but for one pass
over the order or the batch's rows, one over the step sizes and, for softmax, one over
the labels (76 us a W1 epoch at b = 1, 100,000 of each, 48 us at b = 32: under 1 % of the
epoch; 57 and 30 us before the overlap and count checks of the twenty-third session).  The
fit driver's arrays pass by construction.  Kernels called from users' own ``@njit`` code
trust their inputs, as the compiled loops do.
"""
import numbers

import numpy as np

from . import ids

_LOSSES = frozenset(range(10))
_ACTIVATIONS = frozenset((ids.ACT_RELU, ids.ACT_TANH, ids.ACT_SIGMOID))
_EPSILON_LOSSES = frozenset((ids.LOSS_HUBER, ids.LOSS_EPSILON_INSENSITIVE,
                             ids.LOSS_SQUARED_EPSILON_INSENSITIVE))
_MLP_LOSSES = frozenset((ids.LOSS_SQUARED, ids.LOSS_LOGISTIC, ids.LOSS_SOFTMAX))
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)
_INT64_MAX = int(np.iinfo(np.int64).max)


# ---------------------------------------------------------------- building blocks

def index_array(name, a):
    """``a`` as a C-contiguous int64 array: integer entries only (a float or boolean
    array would be truncated or read as 0/1 without a word)."""
    a = np.asarray(a)
    if a.dtype != _INT64:
        if a.dtype.kind not in "iu" and a.size:  # (an empty list is float64 to NumPy)
            raise TypeError(f"Invalid {name}: dtype {a.dtype}; it holds row indices, so it must "
                            f"be an integer array (e.g. np.asarray({name}, dtype=np.int64))")
        a = a.astype(np.int64)
    if a.ndim != 1:
        raise ValueError(f"Invalid {name}: shape {a.shape}; it must be 1-D (row indices)")
    return np.ascontiguousarray(a)


def layer_sizes_array(layer_sizes):
    """An MLP's ``[d, h1, ..., K_out]`` as the kernels take it: an int64 copy (a few
    numbers; a copy, so that no array the kernel writes can be a view of it)."""
    s = np.asarray(layer_sizes)
    if s.dtype.kind not in "iu":
        raise TypeError(f"Invalid layer_sizes: {layer_sizes!r}; it must be an integer array "
                        "[d, h1, ..., K_out]")
    return np.array(s, dtype=np.int64, order="C")


def rows_in_range(name, rows, n):
    """Every entry of ``rows`` (int64, 1-D) is a row of an X with ``n`` rows."""
    rows = np.asarray(rows)
    if rows.size == 0:
        return
    as_unsigned = rows.view(np.uint64) if rows.dtype == np.int64 else rows.astype(np.uint64)
    if as_unsigned.max() >= n:  # a negative index is a huge unsigned one
        k = int(np.argmax(as_unsigned >= n))
        raise ValueError(f"Invalid {name}: it holds {int(rows[k])} at position {k}, but X has "
                         f"{n} rows (indices 0..{n - 1})")


def is_integer(value):
    """A Python or NumPy integer, not a bool (the one test of the kernels and the API)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value):
    """A Python or NumPy real number (integers too), not a bool and not a string."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def count(name, value, lo, why):
    """An integer >= ``lo`` (a NumPy integer too; not a bool, and not a float, which the
    compiled loops would truncate where the reference refuses or rounds it otherwise) that
    fits in int64, as the loops hold it."""
    if not is_integer(value) or value < lo:
        raise ValueError(f"Invalid {name}: {value!r}; {why}, so it must be an integer >= {lo}")
    if value > _INT64_MAX:
        raise ValueError(f"Invalid {name}: {value!r}; {why}, held as an int64, so it must be "
                         "at most 2**63 - 1")
    return int(value)


def code(name, value, known, fix):
    """A code (``loss_id``, ``rule_id``, ``activation_id``) is an integer of ``known``: a
    float or a bool equal to one (``True == 1``) is refused, not taken for it."""
    if not is_integer(value) or value not in known:
        kind = (f" (an int: a {type(value).__name__} is refused even where it equals one)"
                if isinstance(value, (bool, np.bool_, float, np.floating)) else "")
        raise ValueError(f"Invalid {name}: {value!r}; it must be one of {fix}{kind}")


def real_scalar(name, value, lo=-np.inf, hi=np.inf, rule="a finite real number"):
    """A real number (a Python or NumPy scalar, or a 0-d array; not a bool or a string)
    that is finite and in [lo, hi]; returned as a float."""
    v = value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value
    if not is_real(v):
        raise TypeError(f"Invalid {name}: {value!r}; it must be a real number (a float)")
    try:
        f = float(v)
    except OverflowError:  # an int past float's range
        f = np.inf
    if not (lo <= f <= hi and np.isfinite(f)):  # NaN fails the first
        raise ValueError(f"Invalid {name}: {value!r}; it must be {rule}")
    return f


def first_non_real(a):
    """The flat index of the first value of array ``a`` that is not a real number, or
    None: an object array says nothing by its dtype (``np.frompyfunc`` returns one), so
    its values are looked at one by one; any other non-real dtype fails at 0."""
    if a.dtype.kind in "iuf":
        return None
    if a.dtype.kind != "O":
        return 0 if a.size else None
    return next((k for k, v in enumerate(a.flat) if not is_real(v)), None)


def penalty_strength(alpha, l1_ratio):
    """The penalty's ``alpha`` (finite, >= 0) and ``l1_ratio`` (in [0, 1])."""
    real_scalar("alpha", alpha, 0.0, rule="finite and >= 0 (the penalty's strength; 0: none)")
    real_scalar("l1_ratio", l1_ratio, 0.0, 1.0, rule="in [0, 1] (0: l2, 1: l1)")


def batches_in_order(order, batch_size, n_batches):
    """``n_batches`` batches of ``batch_size`` rows fit in ``order`` (the last may be short)."""
    m = len(order)
    batch_size = count("batch_size", batch_size, 1, "it is the rows of a batch")
    n_batches = count("n_batches", n_batches, 0, "it is the batches to run")
    most = -(-m // batch_size)
    if not 0 <= n_batches <= most:
        raise ValueError(f"Invalid n_batches: {n_batches}; an order of {m} rows holds 0..{most} "
                         f"batches of {batch_size}")


def epoch_order(order, n, batch_size, n_batches):
    """Both checks for an epoch entry: ``order`` indexes X's ``n`` rows and holds the batches."""
    rows_in_range("order", order, n)
    batches_in_order(order, batch_size, n_batches)


def data(X, y, sw):
    """X is 2-D float32/float64, C-contiguous (read in place, never copied: it is the one
    large array); y has a label per row; sw is empty or a weight per row."""
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype not in _FLOATS:
        raise TypeError(f"Invalid X: {_describe(X)}; it must be a 2-D float32 or float64 "
                        "NumPy array (e.g. np.ascontiguousarray(X, dtype=np.float64))")
    if not X.flags.c_contiguous:
        raise ValueError("Invalid X: the kernels read its rows in place, so it must be "
                         "C-contiguous; pass np.ascontiguousarray(X)")
    n = X.shape[0]
    if np.ndim(y) != 1 or len(y) != n:
        raise ValueError(f"Invalid y: shape {np.shape(y)}; X has {n} rows, so y must have "
                         f"shape ({n},)")
    if sw is not None and (np.ndim(sw) != 1 or len(sw) not in (0, n)):
        raise ValueError(f"Invalid sw: shape {np.shape(sw)}; it must be ({n},) (a weight per "
                         "row of X) or (0,) (all weights 1)")


def data_arrays(X, y, sw):
    """y and sw as the compiled loops read them: C-contiguous arrays of X's dtype (a
    copy where they are not), sw ``None`` or empty for no weights."""
    y = real_array("y", y, X.dtype)
    sw = np.empty(0, X.dtype) if sw is None else real_array("sw", sw, X.dtype)
    return y, sw


def real_array(name, a, dtype):
    """``a`` as a C-contiguous ``dtype`` array, from any real (bool, integer, float) one."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"Invalid {name}: dtype {a.dtype}; it must hold real numbers (e.g. "
                        f"np.asarray({name}, dtype=np.float64))")
    return np.ascontiguousarray(a, dtype=dtype)


def separate(written, read=None):
    """No array the kernel writes (``written``: name -> array) shares memory with another
    one it writes or with one it reads (``read``): the loops read each after writing the
    others, so an alias gives a silently wrong result, and a different one on each
    backend.  (Bounds only, as ``np.may_share_memory``: two interleaved views of one
    buffer are refused too.)"""
    out = [(k, a) for k, a in written.items() if isinstance(a, np.ndarray) and a.size]
    inp = [(k, a) for k, a in (read or {}).items() if isinstance(a, np.ndarray) and a.size]
    for i, (name, a) in enumerate(out):
        for other, b in out[i + 1:] + inp:
            if np.may_share_memory(a, b):
                raise ValueError(f"Invalid {name}: it shares memory with {other}; the kernel "
                                 f"writes {name} while it reads {other}, so they must be "
                                 f"separate arrays (pass a copy, e.g. {name}.copy())")


def loss_code(loss_id, loss_param):
    """A built-in loss code, or LOSS_CUSTOM with the function in loss_param."""
    code("loss_id", loss_id, _LOSSES | {ids.LOSS_CUSTOM},
         "0..9 or -1 (fastgd.kernels.ids.LOSS_*)")
    if loss_id == ids.LOSS_CUSTOM:
        if not callable(loss_param):
            raise TypeError(f"Invalid loss_param: {loss_param!r}; loss_id=LOSS_CUSTOM (-1) "
                            "needs the loss function itself as loss_param")
    elif callable(loss_param):  # (the backends had used it, ignored it or failed on it)
        raise TypeError(f"Invalid loss_param: {loss_param!r} with loss_id={loss_id!r}; a "
                        "function is a custom loss, taken with loss_id=LOSS_CUSTOM (-1) only: "
                        f"pass loss_id=-1, or a number (epsilon) for loss {loss_id}")
    elif loss_id in _EPSILON_LOSSES:
        if loss_param is not None:  # (None: epsilon 0)
            real_scalar("loss_param", loss_param, lo=0.0,
                        rule="None or the loss's epsilon, a finite real number >= 0 (a "
                             "negative one had given negative losses)")
    elif loss_param is not None:
        real_scalar("loss_param", loss_param,
                    rule="None or a finite real number (unused by this loss)")


LOSS_SIGNATURE = "(p, y) -> (loss, dloss)"
MODEL_SIGNATURE = "(params, x, y, grad_out) -> loss"
PREDICT_SIGNATURE = "(params, x) -> float"


def outputs(loss_id, n_outputs, name="n_outputs"):
    """K = 1 for every loss but softmax, K >= 2 (the classes) for softmax."""
    if not is_integer(n_outputs):
        raise ValueError(f"Invalid {name}: {n_outputs!r}; it counts the outputs per row, so it "
                         "must be an integer")
    if loss_id == ids.LOSS_SOFTMAX:
        if not n_outputs >= 2:
            raise ValueError(f"Invalid {name}: {n_outputs!r}; softmax needs the number of "
                             "classes, K >= 2")
    elif n_outputs != 1:
        raise ValueError(f"Invalid {name}: {n_outputs!r}; loss {loss_id} has one output per "
                         "row, so it must be 1 (only softmax has K)")


def class_labels(y, K, name="y"):
    """Softmax labels are class indices stored as floats: integers in [0, K)."""
    y = np.asarray(y)
    bad = ~((y >= 0) & (y < K) & (y == np.floor(y)))  # NaN fails every comparison
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"Invalid {name}: it holds {float(y.flat[k])!r} at position {k}; softmax "
                         f"labels are class indices 0..{K - 1} (stored as floats)")


def param_array(name, a, size, dtype=None, ndim=1, written=True):
    """``a`` is a C-contiguous float array of ``size`` elements (and ``dtype``, when given:
    theta's, the accumulation dtype), writeable unless the kernel only reads it."""
    if not isinstance(a, np.ndarray) or a.dtype not in _FLOATS:
        raise TypeError(f"Invalid {name}: {_describe(a)}; it must be a float32 or float64 "
                        "NumPy array (the accumulation dtype)")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"Invalid {name}: dtype {a.dtype}; it must have theta's dtype {dtype}")
    if a.ndim != ndim or a.shape[-1] != size:
        want = f"({size},)" if ndim == 1 else f"(rows, {size})"
        raise ValueError(f"Invalid {name}: shape {a.shape}; it must be {want} (P = {size} "
                         "parameters)")
    if not written and not a.flags.c_contiguous:
        raise ValueError(f"Invalid {name}: the kernels read it as one block, so it must be "
                         f"C-contiguous (pass np.ascontiguousarray({name}))")
    if written and (not a.flags.c_contiguous or not a.flags.writeable):
        raise ValueError(f"Invalid {name}: the kernels write it in place, so it must be a "
                         f"C-contiguous, writeable array (pass np.ascontiguousarray({name}))")


def rule(rule_id, hyper, state, P, dtype):
    """A known rule, its hyper-parameters, and a state of STATE_SLOTS[rule] rows of P."""
    code("rule_id", rule_id, ids.STATE_SLOTS,
         f"{sorted(ids.STATE_SLOTS)} (fastgd.kernels.ids.RULE_*)")
    need = ids.HYPER_LEN[rule_id]
    real_array("hyper", hyper, np.float64)
    if np.ndim(hyper) != 1 or len(hyper) < need:
        raise ValueError(f"Invalid hyper: shape {np.shape(hyper)}; rule {rule_id} needs {need} "
                         "values (layout in fastgd.kernels.ids)")
    hyper_values(rule_id, np.asarray(hyper, dtype=np.float64))
    slots = ids.STATE_SLOTS[rule_id]
    param_array("state", state, P, dtype, ndim=2)
    if state.shape[0] < slots:
        raise ValueError(f"Invalid state: shape {state.shape}; rule {rule_id} keeps {slots} "
                         f"rows, so it must be ({slots}, {P})")


def _in_range(spec, v):
    """A float within one hyper-parameter's range (``_HYPER_RANGES``)."""
    if spec[1] == _FLAG:
        return v == 0.0 or v == 1.0
    return spec[1] <= v < spec[2] or (not spec[3] and v == spec[2] != np.inf)


#: Each rule's hyper-parameters in ``hyper`` order (fastgd.kernels.ids) with torch.optim's
#: ranges: (name, lowest, highest, highest excluded); a flag is 0 or 1.
_FLAG = "flag"
_HYPER_RANGES = {
    ids.RULE_SGD: (("momentum", 0.0, np.inf, False), ("dampening", 0.0, 1.0, False),
                   ("nesterov", _FLAG), ("weight_decay", 0.0, np.inf, False)),
    ids.RULE_ADAM: (("beta1", 0.0, 1.0, True), ("beta2", 0.0, 1.0, True),
                    ("eps", 0.0, np.inf, False), ("weight_decay", 0.0, np.inf, False),
                    ("amsgrad", _FLAG)),
    ids.RULE_ADAGRAD: (("lr_decay", 0.0, np.inf, False), ("weight_decay", 0.0, np.inf, False),
                       ("eps", 0.0, np.inf, False),
                       ("initial_accumulator_value", 0.0, np.inf, False)),
    ids.RULE_RMSPROP: (("alpha", 0.0, 1.0, False), ("eps", 0.0, np.inf, False),
                       ("weight_decay", 0.0, np.inf, False), ("momentum", 0.0, np.inf, False),
                       ("centered", _FLAG)),
}
_HYPER_RANGES[ids.RULE_ADAMW] = _HYPER_RANGES[ids.RULE_ADAM]


def hyper_values(rule_id, values, where="hyper"):
    """Each hyper-parameter of the rule in its range (a NaN momentum or a beta of 1 would
    make every parameter NaN or inf without an error).  ``values`` in ``hyper`` order: the
    float64 ``hyper`` array (every epoch's entry checks it: one pass over its floats, a
    microsecond or two), or the single-rule entries' arguments, named one by one
    (``where`` "": by name alone, not as hyper[i])."""
    specs = _HYPER_RANGES[int(rule_id)]
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        values = values[:len(specs)].tolist()
        if all(_in_range(sp, v) for sp, v in zip(specs, values)):
            return
    for i, (spec, v) in enumerate(zip(specs, values)):
        label = f"{where}[{i}] ({spec[0]})" if where else spec[0]
        if spec[1] == _FLAG:
            if not (is_real(v) or isinstance(v, (bool, np.bool_))) or float(v) not in (0.0, 1.0):
                raise ValueError(f"Invalid {label}: {v!r}; it is a flag, 0 or 1 (False or True)")
            continue
        name, lo, hi, hi_open = spec
        interval = f"[{lo:g}, {hi:g}{')' if hi_open or hi == np.inf else ']'}"
        f = real_scalar(label, v, lo, hi, rule=f"finite and in {interval}")
        if hi_open and f == hi:
            raise ValueError(f"Invalid {label}: {v!r}; it must be finite and in {interval}")


def step_sizes(name, a):
    """Every step size of the float64 array ``a`` is finite and >= 0 (a schedule may reach
    0; one update's ``lr``: ``learning_rate``)."""
    if a.size and not (a.min() >= 0 and a.max() < np.inf):  # NaN fails the first
        k = int(np.argmax(~(np.isfinite(a) & (a >= 0))))
        raise ValueError(f"Invalid {name}: it holds {float(a[k])!r} at position {k}; step sizes "
                         "must be finite and >= 0")


def per_batch(n_batches, lrs, batch_loss, step0):
    """A step size (finite, >= 0) and a loss slot for each of the epoch's batches; the
    updates done before it (``step0``, so the first is update step0 + 1) >= 0."""
    step0 = count("step0", step0, 0, "it counts the updates done before this epoch (the first "
                  "one here is update step0 + 1, Adam's bias correction reads it)")
    if step0 + int(n_batches) > _INT64_MAX:  # (Python ints: a NumPy sum would wrap)
        raise ValueError(f"Invalid step0: {step0!r}; this epoch's last update is step0 + "
                         f"n_batches = {step0 + n_batches}, held as an int64, so it must be at "
                         "most 2**63 - 1")
    lrs = real_array("lrs", lrs, np.float64)
    if lrs.ndim != 1 or len(lrs) < n_batches:
        raise ValueError(f"Invalid lrs: shape {lrs.shape}; it needs a step size for each "
                         f"of the {n_batches} batches")
    step_sizes("lrs", lrs[:n_batches])
    if (not isinstance(batch_loss, np.ndarray) or batch_loss.dtype != np.float64
            or batch_loss.ndim != 1 or len(batch_loss) < n_batches
            or not batch_loss.flags.writeable or not batch_loss.flags.c_contiguous):
        raise ValueError(f"Invalid batch_loss: {_describe(batch_loss)}; it must be a writeable, "
                         f"C-contiguous float64 array of at least n_batches={n_batches} "
                         f"elements")


def _length(theta):
    """P where theta itself sets it (an update, a penalty, a custom model); 0 for a
    non-array, which param_array then refuses by type."""
    return len(theta) if isinstance(theta, np.ndarray) else 0


def _layer_sizes(layer_sizes):
    s = np.asarray(layer_sizes)
    if s.ndim != 1 or len(s) < 2 or s.dtype.kind not in "iu" or (s < 1).any():
        raise ValueError(f"Invalid layer_sizes: {layer_sizes!r}; it must be an integer array "
                         "[d, h1, ..., K_out] of positive sizes")
    return s


def njit_function(name, fn, signature):
    """``fn`` is a Numba ``@njit`` function (a dispatcher), as the compiled loops need: a
    plain Python function would fail inside the kernel, in Numba's words, not ours."""
    if not (hasattr(fn, "py_func") and hasattr(fn, "compile")):
        raise TypeError(f"Invalid {name}: {fn!r} is not a Numba @njit function; decorate "
                        f"your {signature} function with @numba.njit")


def predict_arrays(theta, X, out):
    """``custom_model_predict``'s arrays: theta and X float (X 2-D), ``out`` a writeable
    float array of one value per row of X, apart from both."""
    param_array("theta", theta, _length(theta), written=False)
    if _length(theta) == 0:
        raise ValueError("Invalid theta: it is empty; a model has at least one parameter (a "
                         "predict function would read outside it)")
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype not in _FLOATS:
        raise TypeError(f"Invalid X: {_describe(X)}; it must be a 2-D float32 or float64 "
                        "NumPy array")
    if (not isinstance(out, np.ndarray) or out.dtype not in _FLOATS or out.ndim != 1
            or len(out) != X.shape[0] or not out.flags.writeable):
        raise ValueError(f"Invalid out: {_describe(out)}; it must be a writeable float32 or "
                         f"float64 array of one value per row of X, shape ({X.shape[0]},)")
    separate(dict(out=out), dict(theta=theta, X=X))


def _model_function(fn):
    if not callable(fn):
        raise TypeError(f"Invalid fn: {fn!r}; it must be the model's per-sample function "
                        "fn(params, x, y, grad_out) -> loss")


def _describe(a):
    if isinstance(a, np.ndarray):
        return f"shape {a.shape}, dtype {a.dtype}"
    return f"a {type(a).__name__}"


# ---------------------------------------------------------------- one check per entry

def linear_params(X, n_outputs, fit_intercept):
    """P for a linear model: d*K + K*fit_intercept."""
    return X.shape[1] * n_outputs + (n_outputs if fit_intercept else 0)


def linear_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs, fit_intercept, theta, grad,
                    scale):
    """``linear_batch_gradient``'s arguments; returns ``rows`` as int64."""
    data(X, y, sw)
    loss_code(loss_id, loss_param)
    outputs(loss_id, n_outputs)
    rows = index_array("rows", rows)
    rows_in_range("rows", rows, X.shape[0])
    P = linear_params(X, n_outputs, fit_intercept)
    param_array("theta", theta, P, written=False)
    param_array("grad", grad, P, theta.dtype)
    gradient_scale(scale)
    separate(dict(grad=grad), dict(theta=theta, X=X, y=y, sw=sw, rows=rows))
    if loss_id == ids.LOSS_SOFTMAX:
        class_labels(np.asarray(y)[rows], n_outputs)
    return rows


def gradient_scale(scale):
    real_scalar("scale", scale, rule="a finite real number (e.g. 1 / batch size)")


def linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param, n_outputs,
                 fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state,
                 batch_loss):
    """``linear_epoch``'s arguments; returns ``order`` as int64."""
    data(X, y, sw)
    loss_code(loss_id, loss_param)
    outputs(loss_id, n_outputs)
    order = index_array("order", order)
    epoch_order(order, X.shape[0], batch_size, n_batches)
    P = linear_params(X, n_outputs, fit_intercept)
    param_array("theta", theta, P)
    param_array("grad", grad, P, theta.dtype)
    penalty_strength(alpha, l1_ratio)
    rule(rule_id, hyper, state, P, theta.dtype)
    per_batch(n_batches, lrs, batch_loss, step0)
    _epoch_separate(X, y, sw, order, hyper, lrs, theta, grad, state, batch_loss)
    if loss_id == ids.LOSS_SOFTMAX:
        class_labels(y, n_outputs)
    return order


def _epoch_separate(X, y, sw, order, hyper, lrs, theta, grad, state, batch_loss, **scratch):
    separate(dict(theta=theta, grad=grad, state=state, batch_loss=batch_loss, **scratch),
             dict(X=X, y=y, sw=sw, order=order, hyper=hyper, lrs=lrs))


def penalty(theta, grad, n_penalized, alpha, l1_ratio):
    """``add_penalty``'s arguments: the penalised part lies inside theta and grad."""
    P = _length(theta)
    param_array("theta", theta, P, written=False)
    param_array("grad", grad, P, theta.dtype)
    penalty_strength(alpha, l1_ratio)
    count("n_penalized", n_penalized, 0, "it is the number of weights before the intercept")
    if not n_penalized <= P:
        raise ValueError(f"Invalid n_penalized: {n_penalized!r}; it must be in 0..{P} (d*K, "
                         "the weights before the intercept)")
    separate(dict(grad=grad), dict(theta=theta))


def update(rule_id, hyper, theta, grad, state, lr, step):
    """``apply_update``'s arguments (``step``: PyTorch's 1-based count of this update)."""
    P = _length(theta)
    param_array("theta", theta, P)
    param_array("grad", grad, P, theta.dtype, written=False)
    rule(rule_id, hyper, state, P, theta.dtype)
    learning_rate(lr)
    step_count(step)
    separate(dict(theta=theta, state=state), dict(grad=grad, hyper=hyper))


def learning_rate(lr):
    """One update's step size: a real number, finite and >= 0."""
    real_scalar("lr", lr, 0.0, rule="finite and >= 0 (a step size)")


def step_count(step):
    """An update's ``step``: PyTorch's 1-based count (Adam divides by 1 - beta^step)."""
    count("step", step, 1, "it is the 1-based count of this update (PyTorch's state['step'] "
          "after its increment)")


def mlp_params(layer_sizes):
    """P for an MLP: sum over layers of n_in * n_out + n_out."""
    s = [int(v) for v in layer_sizes]
    return sum(a * c + c for a, c in zip(s[:-1], s[1:]))


def mlp_layers(X, layer_sizes, loss_id, activation_id):
    """``layer_sizes`` = [d, h1, ..., K_out] for this X and loss; known codes."""
    s = _layer_sizes(layer_sizes)
    if s[0] != X.shape[1]:
        raise ValueError(f"Invalid layer_sizes: it starts with {int(s[0])}, but X has "
                         f"{X.shape[1]} features; layer_sizes[0] must be X.shape[1]")
    if not is_integer(loss_id) or loss_id not in _MLP_LOSSES:
        raise ValueError(f"Invalid loss_id: {loss_id!r}; an MLP's head takes LOSS_SQUARED, "
                         "LOSS_LOGISTIC or LOSS_SOFTMAX")
    outputs(loss_id, int(s[-1]), "layer_sizes[-1] (the head's outputs)")
    code("activation_id", activation_id, _ACTIVATIONS,
         f"{sorted(_ACTIVATIONS)} (fastgd.kernels.ids.ACT_*)")


def mlp_work(work, layer_sizes, rows, dtype):
    """The compiled backends' workspace for batches of ``rows`` rows: at least
    mlp_workspace_size(layer_sizes, rows) elements (the formula every backend shares)."""
    s = [int(v) for v in layer_sizes]
    size = rows * (sum(s) + 2 * max(s[1:]) + 1)
    if (not isinstance(work, np.ndarray) or work.dtype != dtype or work.ndim != 1
            or len(work) < size or not work.flags.c_contiguous or not work.flags.writeable):
        raise ValueError(f"Invalid work: {_describe(work)}; it must be a writeable, C-contiguous "
                         f"{dtype} array of at least mlp_workspace_size(layer_sizes, "
                         f"batch_size) = {size} elements")


def mlp_gradient(X, y, sw, rows, loss_id, layer_sizes, activation_id, theta, grad, scale, work,
                 needs_work=True):
    """``mlp_batch_gradient``'s arguments (``needs_work``: False for the reference, which
    ignores ``work``); returns ``rows`` as int64."""
    data(X, y, sw)
    mlp_layers(X, layer_sizes, loss_id, activation_id)
    rows = index_array("rows", rows)
    rows_in_range("rows", rows, X.shape[0])
    P = mlp_params(layer_sizes)
    param_array("theta", theta, P, written=False)
    param_array("grad", grad, P, theta.dtype)
    gradient_scale(scale)
    if needs_work:
        mlp_work(work, layer_sizes, len(rows), theta.dtype)
    separate(dict(grad=grad, work=work if needs_work else None),
             dict(theta=theta, X=X, y=y, sw=sw, rows=rows))
    if loss_id == ids.LOSS_SOFTMAX:
        class_labels(np.asarray(y)[rows], int(layer_sizes[-1]))
    return rows


def mlp_penalty(theta, grad, layer_sizes, alpha, l1_ratio):
    """``mlp_add_penalty``'s arguments."""
    _layer_sizes(layer_sizes)
    P = mlp_params(layer_sizes)
    param_array("theta", theta, P, written=False)
    param_array("grad", grad, P, theta.dtype)
    penalty_strength(alpha, l1_ratio)
    separate(dict(grad=grad), dict(theta=theta))


def mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes, activation_id,
              alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state, batch_loss, work,
              needs_work=True):
    """``mlp_epoch``'s arguments (``needs_work`` as for mlp_gradient); returns ``order`` as
    int64."""
    data(X, y, sw)
    mlp_layers(X, layer_sizes, loss_id, activation_id)
    order = index_array("order", order)
    epoch_order(order, X.shape[0], batch_size, n_batches)
    P = mlp_params(layer_sizes)
    param_array("theta", theta, P)
    param_array("grad", grad, P, theta.dtype)
    penalty_strength(alpha, l1_ratio)
    rule(rule_id, hyper, state, P, theta.dtype)
    per_batch(n_batches, lrs, batch_loss, step0)
    if needs_work:
        mlp_work(work, layer_sizes, min(batch_size, len(order)), theta.dtype)
    _epoch_separate(X, y, sw, order, hyper, lrs, theta, grad, state, batch_loss,
                    work=work if needs_work else None)
    if loss_id == ids.LOSS_SOFTMAX:
        class_labels(y, int(layer_sizes[-1]))
    return order


def custom_gradient(fn, X, y, sw, rows, theta, grad, gbuf, scale):
    """``custom_model_batch_gradient``'s arguments; returns ``rows`` as int64."""
    _model_function(fn)
    data(X, y, sw)
    rows = index_array("rows", rows)
    rows_in_range("rows", rows, X.shape[0])
    P = _length(theta)
    param_array("theta", theta, P, written=False)
    param_array("grad", grad, P, theta.dtype)
    param_array("gbuf", gbuf, P, theta.dtype)
    gradient_scale(scale)
    separate(dict(grad=grad, gbuf=gbuf), dict(theta=theta, X=X, y=y, sw=sw, rows=rows))
    return rows


def custom_epoch(fn, X, y, sw, order, batch_size, n_batches, rule_id, hyper, lrs, step0, theta,
                 grad, state, batch_loss, gbuf):
    """``custom_model_epoch``'s arguments; returns ``order`` as int64."""
    _model_function(fn)
    data(X, y, sw)
    order = index_array("order", order)
    epoch_order(order, X.shape[0], batch_size, n_batches)
    P = _length(theta)
    param_array("theta", theta, P)
    param_array("grad", grad, P, theta.dtype)
    param_array("gbuf", gbuf, P, theta.dtype)
    rule(rule_id, hyper, state, P, theta.dtype)
    per_batch(n_batches, lrs, batch_loss, step0)
    _epoch_separate(X, y, sw, order, hyper, lrs, theta, grad, state, batch_loss, gbuf=gbuf)
    return order
