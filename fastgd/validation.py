"""Argument checks: done once, in Python, before any kernel runs.

Every error names the argument, the rule it broke, the value it had and a fix.
Nothing here modifies the caller's arrays: conversions make new arrays and
in-place kernels only ever see those.
"""

import numpy as np

from .batching import SAMPLINGS
from .kernels.checks import is_integer, is_real

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _show(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def on_device(a):
    """True for GPU arrays: Numba device arrays (the CUDA simulator's too) and anything
    with ``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors, ...)."""
    return bool(getattr(a, "__cuda_ndarray__", False)) or hasattr(a, "__cuda_array_interface__")


def device_meta(a):
    """(shape, dtype) of a device array, read from its interface (the data stays put)."""
    cai = getattr(a, "__cuda_array_interface__", None)
    if cai is not None:
        return tuple(int(v) for v in cai["shape"]), np.dtype(cai["typestr"])
    return tuple(int(v) for v in a.shape), np.dtype(a.dtype)


def to_host(name, a):
    """A host copy of a device array (for the host-side backends and the label checks)."""
    copy = getattr(a, "copy_to_host", None)
    if copy is not None:
        return copy()
    try:
        from numba import cuda

        return cuda.as_cuda_array(a).copy_to_host()
    except Exception as exc:
        raise TypeError(f"Invalid {name}: it is a GPU array that could not be copied to the host "
                        f"({exc!r}); move it yourself (CuPy: {name}.get(), PyTorch: "
                        f"{name}.cpu().numpy()) or keep it there with backend='cuda'") from None


def _native_float(dtype):
    """float32 or float64 in native byte order for a float dtype of 4 or 8 bytes (any byte
    order), else None."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return None
    return np.dtype(f"f{dt.itemsize}") if dt.kind == "f" and dt.itemsize in (4, 8) else None


def resolve_dtype(dtype, X):
    """float32 stays float32, everything else becomes float64 unless ``dtype`` says otherwise."""
    if dtype is None:
        x_dtype = device_meta(X)[1] if on_device(X) else getattr(X, "dtype", None)
        if x_dtype is not None and not isinstance(x_dtype, np.dtype):
            x_dtype = None  # a torch tensor's torch.float32: what np.asarray makes of it
        if x_dtype is None:  # a list, a DataFrame (.dtypes): the dtype its array will have
            try:
                x_dtype = np.asarray(X).dtype
            except Exception:  # check_X reports what is wrong with it
                x_dtype = None
        keep = _native_float(x_dtype) if x_dtype is not None else None
        return keep if keep == np.float32 else np.dtype(np.float64)
    # (np.dtype(None) is float64: None must not reach it as if it were a choice)
    dt = _native_float(dtype) if isinstance(dtype, (str, type, np.dtype)) else None
    if dt is None:
        raise TypeError(f"Invalid dtype: {_show(dtype)}; it must be float32 or float64 "
                        f"(or None to keep float32 input and use float64 otherwise)")
    return dt


def _first_nonfinite(A):
    """Flat index of the first NaN/inf, scanning in blocks so no A-sized mask is made."""
    flat = A.reshape(-1)
    block = 1 << 16
    for start in range(0, flat.size, block):
        bad = ~np.isfinite(flat[start:start + block])
        if bad.any():
            return start + int(np.argmax(bad))
    return None


def check_finite(name, A, source=None, overflow_fix="Pass dtype='float64'"):
    """Raise if A holds NaN or inf.

    The common case costs one read of A and no temporary: a NaN or inf makes
    the sum non-finite.  Only when the sum is not finite (bad values, or a
    legitimate overflow) does a blockwise scan locate the offending entry.
    ``source`` is what A was cast from: an entry finite there overflowed in the
    cast (to float32), and the error says so, with ``overflow_fix``.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # a legitimate overflow is handled below
        if A.size == 0 or np.isfinite(A.sum()):
            return
    pos = _first_nonfinite(A)
    if pos is None:
        return  # finite values whose sum overflowed
    where = f"at index {pos}" if A.ndim == 1 else f"at row {pos // A.shape[1]}, column {pos % A.shape[1]}"
    if source is not None and source is not A:
        was = np.asarray(source).reshape(-1)[pos]
        if np.isfinite(was):
            raise ValueError(
                f"Invalid {name}: it holds {float(was):g} {where}, which overflows {A.dtype} (largest "
                f"{np.finfo(A.dtype).max:.4g}). {overflow_fix}, or rescale {name}")
    raise _nonfinite_error(name, A.reshape(-1)[pos], where)


def _nonfinite_error(name, value, where):
    return ValueError(f"Invalid {name}: it must contain only finite values, but holds {value} "
                      f"{where}. Remove or impute the missing/infinite entries first "
                      f"(e.g. with numpy.nan_to_num or sklearn.impute.SimpleImputer)")


def _check_X_shape(shape):
    if len(shape) != 2:
        fix = (" Use X.reshape(-1, 1) for a single feature." if len(shape) == 1 else
               " Flatten each sample's features into one row, e.g. X.reshape(len(X), -1)."
               if len(shape) > 2 else "")
        raise ValueError(f"Invalid X: it must be 2-D (n_samples, n_features), got shape {shape}.{fix}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"Invalid X: it must hold at least one sample and one feature, got shape "
                         f"{shape}. Check that the data loaded correctly")


def _numeric_array(name, a):
    if hasattr(a, "toarray") and hasattr(a, "nnz"):  # NumPy would make a 0-d object array
        raise TypeError(f"Invalid {name}: a SciPy sparse {type(a).__name__}; the kernels read "
                        f"dense rows (sparse input is not supported yet). Pass {name}.toarray() "
                        f"if it fits in memory")
    if isinstance(a, np.ma.MaskedArray) and np.ma.is_masked(a):
        # np.asarray would train on the values under the mask without a word
        raise ValueError(f"Invalid {name}: a masked array with {int(np.ma.count_masked(a))} "
                         f"masked entries; fastgd has no missing values. Fill them "
                         f"({name}.filled(value)) or drop those rows first")
    try:
        arr = np.asarray(a)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"Invalid {name}: it cannot be read as an array ({exc}). Pass a "
                         f"NumPy array, or lists of equal length") from None
    except (TypeError, RuntimeError) as exc:  # e.g. a torch tensor that requires grad, bfloat16
        raise TypeError(f"Invalid {name}: it cannot be read as a NumPy array "
                        f"({type(exc).__name__}: {exc}). Pass a NumPy array (a torch tensor as "
                        f"{name}.detach().cpu().float().numpy())") from None
    if (arr.dtype == object or arr.dtype.kind in "mM"
            or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_)):
        if name == "y" and (arr.dtype.kind in "US" or (arr.dtype == object and arr.size
                                                       and isinstance(arr.flat[0], str))):
            # class names: the fix is an encoding, not a conversion
            raise TypeError(f"Invalid y: it must be a numeric array, got dtype {arr.dtype}. "
                            "Encode class labels as numbers, e.g. classes, y = np.unique(y, "
                            "return_inverse=True) (classes[k] names class k)")
        raise TypeError(f"Invalid {name}: it must be a numeric array, got dtype {arr.dtype}. "
                        f"Convert it with np.asarray({name}, dtype=float)")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"Invalid {name}: complex values are not supported (dtype {arr.dtype}); "
                        f"pass real and imaginary parts as separate features")
    return arr


def check_X(X, dtype, overflow_fix="Pass dtype='float64'"):
    """Return X as a C-contiguous float array of ``dtype`` (a copy only when needed);
    ``overflow_fix``: what the error suggests when an entry overflows ``dtype``."""
    if X is None:
        raise TypeError("Invalid X: got None; pass a 2-D array of shape (n_samples, n_features)")
    arr = _numeric_array("X", X)
    _check_X_shape(arr.shape)
    with np.errstate(over="ignore"):  # named below, with the value that overflowed
        out = np.ascontiguousarray(arr, dtype=dtype)
    check_finite("X", out, source=arr, overflow_fix=overflow_fix)
    return out


def check_device_X(X, dtype):
    """Check X where it is, on the GPU (no host copy): 2-D, not empty, float32/float64 equal
    to ``dtype`` (a converted copy would be a second X on the device), finite values (one
    pass of a device kernel).  Returns X itself."""
    shape, dt = device_meta(X)
    _check_X_shape(shape)
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"Invalid X: a GPU array must be float32 or float64, got {dt}; convert it "
                        f"on the device (e.g. X.astype('float32')) or pass a host array")
    if dt != dtype:
        raise ValueError(f"Invalid dtype: X is a {dt} GPU array but dtype={dtype}; converting it "
                         f"would make a second X on the device. Pass dtype=None (or {dt}), or "
                         f"convert X on the device first")
    from .kernels.cuda.checks import first_nonfinite, value_at

    pos = first_nonfinite(X)
    if pos is not None:
        r, c = divmod(pos, shape[1])
        raise _nonfinite_error("X", value_at(X, r, c), f"at row {r}, column {c}")
    return X


def check_targets(y, n):
    """Return y as a new float64 array (labels are converted per loss afterwards)."""
    if y is None:
        raise TypeError("Invalid y: got None; pass a 1-D array of n_samples targets")
    arr = _numeric_array("y", y)
    if arr.ndim != 1:
        fix = " Use y.ravel() for a column vector." if arr.ndim == 2 and arr.shape[1] == 1 else ""
        raise ValueError(f"Invalid y: it must be 1-D (n_samples,), got shape {arr.shape}.{fix}")
    if arr.shape[0] != n:
        raise ValueError(f"Invalid y: its length must equal the number of rows of X ({n}), "
                         f"got {arr.shape[0]}. Pass the targets that belong to X")
    out = np.array(arr, dtype=np.float64)
    check_finite("y", out)
    return out


def check_labels(y, kind, loss_name, known=None):
    """Convert validated float64 targets to the loss's internal labels.

    Returns (y_internal, encoding) where encoding records how to map
    predictions back to the caller's labels.  ``known``: the encoding of the fit
    being continued (labels that fit it keep it: a hinge fit on 0/1 labels goes on
    predicting 0/1 from a batch of 1s, softmax keeps its K classes).
    """
    if kind == "regression":
        return y, None
    # Elementwise passes, no sort: np.unique (a sort of n labels) only to word an error.
    if kind == "binary01":
        if not _all_in(y, 0.0, 1.0):
            raise ValueError(
                f"Invalid y for loss={loss_name!r}: labels must be 0 or 1, got values "
                f"{_show(np.unique(y).tolist())}. Map them, e.g. y = (y == positive_class).astype(int)")
        return y, "01"
    if kind == "binary_pm1":
        if known == "01" and _all_in(y, 0.0, 1.0):  # (all 1s: either encoding)
            return 2.0 * y - 1.0, "01"
        if _all_in(y, -1.0, 1.0):
            return y, "pm1"
        if _all_in(y, 0.0, 1.0):
            return 2.0 * y - 1.0, "01"
        raise ValueError(
            f"Invalid y for loss={loss_name!r}: labels must be -1/+1 or 0/1, got values "
            f"{_show(np.unique(y).tolist())}. Map them, e.g. y = np.where(y == positive_class, 1, -1)")
    if kind == "multiclass":
        if y.min() < 0 or not np.array_equal(y, np.round(y)):
            raise ValueError(
                f"Invalid y for loss={loss_name!r}: labels must be integers 0..K-1, got values "
                f"{_show(np.unique(y).tolist())}. Encode them, e.g. classes, y = np.unique(y, return_inverse=True)")
        K = int(y.max()) + 1
        if K > max(y.shape[0], 2, known if isinstance(known, int) else 0):
            raise ValueError(
                f"Invalid y for loss={loss_name!r}: the largest label, {int(y.max())}, asks for "
                f"{K} classes, more than the {y.shape[0]} samples; labels must be 0..K-1. Encode "
                f"them, e.g. classes, y = np.unique(y, return_inverse=True)")
        return y, K
    raise AssertionError(kind)


def _all_in(y, a, b):
    return bool(np.logical_or(y == a, y == b).all())


def check_sample_weight(sample_weight, n, dtype):
    if sample_weight is None:
        return None
    arr = _numeric_array("sample_weight", sample_weight)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"Invalid sample_weight: it must be 1-D with one weight per sample "
                         f"({n}), got shape {arr.shape}")
    with np.errstate(over="ignore", under="ignore"):
        out = np.array(arr, dtype=dtype)
    check_finite("sample_weight", out, source=arr)
    if (out < 0).any():
        i = int(np.argmax(out < 0))
        raise ValueError(f"Invalid sample_weight: weights must be >= 0, got {out[i]} at index {i}. "
                         f"Drop the sample or use a zero weight")
    if not out.any():
        if arr.any():  # positive weights, all below float32's smallest subnormal
            raise ValueError(
                f"Invalid sample_weight: every weight is 0 in {out.dtype} (the largest given, "
                f"{float(arr.max()):g}, underflows). Multiply the weights by a common factor (and divide "
                f"lr by it), or pass dtype='float64'")
        raise ValueError("Invalid sample_weight: every weight is 0, so there is nothing to fit. "
                         "Give at least one sample a positive weight")
    return out


def check_n_samples(n):
    if not is_integer(n):
        raise TypeError(f"Invalid n: {_show(n)}; it must be an integer >= 1 (the number of samples)")
    if n < 1:
        raise ValueError(f"Invalid n: {n}; it must be >= 1 (the number of samples)")


def check_seed(seed):
    """The fit's numpy.random.SeedSequence from ``seed`` (None, an integer >= 0, a sequence
    of them, or a SeedSequence)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (bool, np.bool_)):  # True would seed as 1: a slip, not a seed
        raise TypeError(f"Invalid seed: {seed!r}; it must be None, an integer >= 0, a sequence "
                        f"of them or a numpy.random.SeedSequence")
    try:
        return np.random.SeedSequence(seed)
    except (TypeError, ValueError) as exc:
        why = (" (a Generator is refused: the fit draws from its own generator so that a "
               "result can be continued and reproduced; pass the integer you seeded it with)"
               if isinstance(seed, np.random.Generator) else f" ({exc})")
        raise type(exc)(f"Invalid seed: {_show(seed)}; it must be None, an integer >= 0, a "
                        f"sequence of them or a numpy.random.SeedSequence{why}") from None


def check_batch_options(n, batch_size, epochs, sampling, drop_last, shuffle=True):
    if not is_integer(batch_size):
        raise TypeError(f"Invalid batch_size: {_show(batch_size)}; it must be an integer in "
                        f"[1, n_samples={n}] (1 for SGD) or None for the full batch (BGD)")
    if not 1 <= batch_size <= n:
        raise ValueError(f"Invalid batch_size: {batch_size}; it must lie in [1, n_samples={n}]. "
                         f"Use batch_size=None for BGD, 1 for SGD")
    if not is_integer(epochs):
        raise TypeError(f"Invalid epochs: {_show(epochs)}; it must be an integer >= 1")
    if epochs < 1:
        raise ValueError(f"Invalid epochs: {epochs}; it must be >= 1 (one pass over the data "
                         f"is epochs=1)")
    if not isinstance(sampling, str) or sampling not in SAMPLINGS:
        raise ValueError(f"Invalid sampling: {_show(sampling)}; it must be one of {list(SAMPLINGS)} "
                         f"('shuffle', the default: a permutation per epoch; 'replacement': "
                         f"each batch drawn at random, as classic SGD)")
    if not isinstance(drop_last, (bool, np.bool_)):
        raise TypeError(f"Invalid drop_last: {_show(drop_last)}; it must be True or False")
    if sampling == "replacement" and (drop_last or not shuffle):
        what = "drop_last=True" if drop_last else "shuffle=False"
        raise ValueError(f"Invalid {what} with sampling='replacement': each iteration draws its "
                         f"b rows at random and an epoch is always ceil(n / b) iterations, so it "
                         f"would be ignored. Leave it out, or use sampling='shuffle'")


def builtin_base(obj, builtins, kernel_facing):
    """(the class of ``builtins`` that ``obj``'s class is or derives from, or None; the first
    of the members ``kernel_facing`` that its class overrides there, or None).  The kernels
    run built-in optimizers and losses by their codes, so a subclass may change settings
    but not formulas (optim.get, losses.get)."""
    base = next((c for c in type(obj).__mro__ if c in builtins), None)
    if base is None:
        return None, None
    changed = [n for n in kernel_facing if getattr(type(obj), n) != getattr(base, n)]
    return base, (changed[0] if changed else None)


def check_settings_again(cls, obj):
    """Build ``cls`` from ``obj``'s settings (its attributes, or properties, named as the
    parameters of ``cls``'s constructor) to check them again, as the constructor does: a
    fit's copy of an optimizer or schedule that the caller edited after building it.  Not
    done when a parameter without a default is missing (a subclass that takes other
    arguments: its own constructor checked them)."""
    import inspect

    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    given = {p.name: getattr(obj, p.name) for p in params if hasattr(obj, p.name)}
    if all(p.name in given or p.default is not p.empty for p in params):
        cls(**given)


PENALTIES = ("l2", "l1", "elasticnet")


def check_penalty(penalty, alpha, l1_ratio):
    """Return (alpha, r) for the kernels: alpha * ((1-r)/2 ||w||^2 + r ||w||_1)."""
    if penalty is not None and (not isinstance(penalty, str)
                                or penalty not in PENALTIES and penalty != "none"):
        raise ValueError(f"Invalid penalty: {_show(penalty)}; it must be None (or 'none'), 'l2', "
                         f"'l1' or 'elasticnet'")
    for name, value in (("alpha", alpha), ("l1_ratio", l1_ratio)):
        if not is_real(value):
            raise TypeError(f"Invalid {name}: {_show(value)}; it must be a finite number")
        if not np.isfinite(value):
            raise ValueError(f"Invalid {name}: {_show(value)}; it must be a finite number")
    if alpha < 0:
        raise ValueError(f"Invalid alpha: {alpha}; it must be >= 0, the penalty's strength "
                         f"(e.g. alpha=1e-4, scikit-learn's default; 0 or penalty=None for none)")
    if not 0 <= l1_ratio <= 1:
        raise ValueError(f"Invalid l1_ratio: {l1_ratio}; it must lie in [0, 1], the l1 share "
                         f"of the elasticnet penalty (0: all l2, 1: all l1; default 0.15)")
    if penalty in (None, "none"):
        return 0.0, 0.0
    r = {"l2": 0.0, "l1": 1.0, "elasticnet": float(l1_ratio)}[penalty]
    return float(alpha), r
