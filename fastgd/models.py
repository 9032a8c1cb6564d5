"""Models: how a flat parameter vector maps to coefficients and predictions.

``Linear`` is the default (``model=None``).  ``MLP`` is public: pass
``model=fastgd.MLP(hidden=(64,), activation="relu")``.  Both keep their
parameters in one flat vector (layouts in docs/kernels.md) so every update rule
runs as one fused pass over it.
"""
import numpy as np

from .kernels import ids
from .kernels.checks import is_integer

ACTIVATIONS = {"relu": ids.ACT_RELU, "tanh": ids.ACT_TANH, "sigmoid": ids.ACT_SIGMOID}


def init_array(value, what):
    """``value`` as a float64 array for ``fit(init=...)``, or a ValueError that says which part
    of init (``what``) could not be read."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nesting
        pair = ("; to give coef and intercept, pass them as a tuple, init=(coef, intercept)"
                if isinstance(value, list) and len(value) == 2 else "")
        raise ValueError(f"Invalid init: {what} cannot be read as an array of numbers "
                         f"({exc}){pair}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"Invalid init: {what} must hold real numbers, got {value!r:.60} "
                         f"(dtype {arr.dtype})")
    return arr.astype(np.float64)


def split_linear_init(init):
    """A linear model's explicit ``init`` as (coef, intercept or None): (coef, intercept),
    a coef array, or a one-layer [(W, b)] list."""
    if isinstance(init, (list, tuple)) and len(init) == 1 and isinstance(init[0], (list, tuple)):
        init = init[0]
    return init if isinstance(init, tuple) and len(init) == 2 else (init, None)


class Linear:
    """f(x) = x·W + b with W of shape (d, K) (K = 1 except for softmax)."""

    kind = "linear"

    def __init__(self, n_features, n_outputs, fit_intercept):
        self.n_features = n_features
        self.n_outputs = n_outputs
        self.fit_intercept = fit_intercept

    @property
    def n_params(self):
        return self.n_features * self.n_outputs + (self.n_outputs if self.fit_intercept else 0)

    def init_theta(self, rng, dtype):
        return np.zeros(self.n_params, dtype=dtype)

    def theta_from_init(self, init, dtype):
        """``init`` as (coef, intercept), a coef array, or a [(W, b)] list."""
        coef, intercept = split_linear_init(init)
        coef = init_array(coef, "coef (init, or init[0] of a (coef, intercept) pair)")
        shape = (self.n_features,) if self.n_outputs == 1 else (self.n_features, self.n_outputs)
        if coef.shape != shape and coef.shape != (self.n_features, self.n_outputs):
            hint = ("; give the intercept apart, init=(coef, intercept)"
                    if coef.shape == (self.n_features + 1,) and self.n_outputs == 1 else "")
            raise ValueError(f"Invalid init: coef must have shape {shape}, got {coef.shape}"
                             f"{hint or '; pass init=coef or init=(coef, intercept)'}")
        theta = self.init_theta(None, dtype)
        theta[:self.n_features * self.n_outputs] = coef.reshape(-1)
        if intercept is not None:
            b = init_array(intercept, "the intercept (init[1])")
            if not self.fit_intercept:
                if b.any():  # a zero is what such a fit reports as its intercept: accepted
                    raise ValueError(f"Invalid init: an intercept {b.tolist()} was given but "
                                     f"fit_intercept=False; pass init=coef alone (or a zero "
                                     f"intercept), or fit_intercept=True")
                intercept = None
        if intercept is not None:
            if b.size not in (1, self.n_outputs) or b.ndim > 1:
                more = "" if self.n_outputs == 1 else f" or {self.n_outputs} numbers (one a class)"
                raise ValueError(f"Invalid init: the intercept (init[1]) must be a number{more}, "
                                 f"got shape {b.shape}")
            b = np.broadcast_to(b.reshape(-1), (self.n_outputs,))
            theta[self.n_features * self.n_outputs:] = b
        if not np.all(np.isfinite(theta)):
            raise ValueError("Invalid init: the initial parameters must be finite")
        return theta

    def coef_intercept(self, theta):
        dk = self.n_features * self.n_outputs
        W = theta[:dk].reshape(self.n_features, self.n_outputs).copy()
        b = theta[dk:].copy() if self.fit_intercept else np.zeros(self.n_outputs, dtype=theta.dtype)
        if self.n_outputs == 1:
            return W[:, 0], b[0]  # a NumPy scalar of theta's dtype (float32 out)
        return W, b

    def unpack(self, theta):
        return [self.coef_intercept(theta)]

    def decision(self, theta, X):
        coef, intercept = self.coef_intercept(theta)
        return X @ coef + intercept

    def signature(self):
        return ("linear", self.n_features, self.n_outputs, self.fit_intercept)


class MLP:
    """A multi-layer perceptron: ``hidden`` layer widths and their ``activation``.

    The head is linear; ``fit``'s ``loss`` picks it: "squared" (one output),
    "logistic" (one output, labels {0, 1}) or "softmax" (K outputs).  Default
    init is PyTorch's nn.Linear (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b),
    drawn from the fit's seed.
    """

    kind = "mlp"
    HEAD_LOSSES = ("squared", "logistic", "softmax")

    def __init__(self, hidden=(100,), activation="relu"):
        if is_integer(hidden):
            hidden = (int(hidden),)
        try:
            hidden = tuple(hidden)
        except TypeError:
            raise TypeError(f"Invalid hidden: {hidden!r}; it must be a tuple of layer widths "
                            f"(or one width), e.g. hidden=(64,)") from None
        if not hidden or not all(is_integer(h) and h >= 1 for h in hidden):
            raise ValueError(f"Invalid hidden: {hidden!r}; it must be a non-empty tuple of layer "
                             f"widths >= 1, e.g. hidden=(64,)")
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(f"Invalid activation: {activation!r}; it must be one of {sorted(ACTIVATIONS)}")
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = activation
        self.n_features = None
        self.n_outputs = None

    def bind(self, n_features, n_outputs):
        """A copy sized for the data (the public object stays reusable)."""
        bound = MLP(self.hidden, self.activation)
        bound.n_features, bound.n_outputs = n_features, n_outputs
        return bound

    @property
    def activation_id(self):
        return ACTIVATIONS[self.activation]

    @property
    def layer_sizes(self):
        return np.array((self.n_features,) + self.hidden + (self.n_outputs,), dtype=np.int64)

    @property
    def n_params(self):
        s = self.layer_sizes
        return int(sum(s[i] * s[i + 1] + s[i + 1] for i in range(len(s) - 1)))

    def init_theta(self, rng, dtype):
        from .reference.mlp_epoch import mlp_init

        return np.asarray(mlp_init(self.layer_sizes, rng, dtype), dtype=dtype)

    def theta_from_init(self, init, dtype):
        sizes = self.layer_sizes
        if not isinstance(init, (list, tuple)) or len(init) != len(sizes) - 1:
            raise ValueError(f"Invalid init: an MLP with layer sizes {sizes.tolist()} needs a list of "
                             f"{len(sizes) - 1} (W, b) pairs")
        parts = []
        for i, pair in enumerate(init):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"Invalid init: layer {i} must be a pair (W, b), got "
                                 f"{pair!r:.60}")
            W, b = init_array(pair[0], f"W of layer {i}"), init_array(pair[1], f"b of layer {i}")
            if W.shape != (sizes[i], sizes[i + 1]) or b.shape != (sizes[i + 1],):
                raise ValueError(f"Invalid init: layer {i} needs W of shape {(int(sizes[i]), int(sizes[i + 1]))} "
                                 f"and b of shape {(int(sizes[i + 1]),)}, got {W.shape} and {b.shape}")
            parts += [W.reshape(-1), b]
        theta = np.concatenate(parts).astype(dtype)
        if not np.all(np.isfinite(theta)):
            raise ValueError("Invalid init: the initial parameters must be finite")
        return theta

    def unpack(self, theta):
        sizes, out, pos = self.layer_sizes, [], 0
        for i in range(len(sizes) - 1):
            n_in, n_out = int(sizes[i]), int(sizes[i + 1])
            W = theta[pos:pos + n_in * n_out].reshape(n_in, n_out).copy()
            pos += n_in * n_out
            out.append((W, theta[pos:pos + n_out].copy()))
            pos += n_out
        return out

    def coef_intercept(self, theta):
        return None, None

    def decision(self, theta, X):
        from .reference.mlp_epoch import mlp_forward

        out = mlp_forward(theta, self.layer_sizes, self.activation_id, X)
        return out[:, 0] if self.n_outputs == 1 else out

    def signature(self):
        return ("mlp", tuple(self.layer_sizes.tolist()), self.activation)

    def __repr__(self):
        return f"MLP(hidden={self.hidden!r}, activation={self.activation!r})"
