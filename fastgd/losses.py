"""Linear losses: names, codes, label rules and readable reference formulas.

A loss is a small value object: the kernel code (``fastgd.kernels.ids``), its
one parameter (epsilon for the Huber and epsilon-insensitive family), and the
rule its labels follow.  ``py_loss``/``py_dloss`` evaluate the reference
formulas so tests (and users) can reach them directly.

Label rules (checked once by :func:`fastgd.validation`):

==========================  =====================================================
``regression``              any finite real (squared, huber, epsilon_insensitive,
                            squared_epsilon_insensitive)
``binary01``                {0, 1} (logistic)
``binary_pm1``              {-1, +1} or {0, 1}, used internally as ±1 (hinge,
                            squared_hinge, modified_huber, perceptron)
``multiclass``              integers 0..K-1 (softmax)
==========================  =====================================================
"""

import numpy as np

from .kernels import ids
from .kernels.checks import first_non_real, is_real
from .reference.losses import loss_and_dloss
from .validation import builtin_base


class LinearLoss:
    """A built-in loss: ``name``, kernel ``code``, ``param`` and label ``kind``."""

    code = None
    kind = "regression"
    param = 0.0

    @property
    def name(self):
        return _NAME_OF[builtin_base(self, _NAME_OF, ())[0]]

    def py_loss(self, p, y):
        """Per-sample loss for predictions ``p`` (n,) or (n, K) and internal labels ``y``."""
        return self._eval(p, y)[0]

    def py_dloss(self, p, y):
        """Derivative of the per-sample loss with respect to ``p``."""
        return self._eval(p, y)[1]

    def _eval(self, p, y):
        p, y = _real_array("p", p), _real_array("y", y)
        multi = self.code == ids.LOSS_SOFTMAX
        if multi and (p.ndim != 2 or y.shape != p.shape[:1]):
            raise ValueError(f"Invalid p: shape {p.shape} with y of shape {y.shape}; softmax "
                             "takes p of shape (n, K), each sample's K class scores, and y of "
                             "shape (n,)")
        if not multi and p.shape != y.shape:
            raise ValueError(f"Invalid p: shape {p.shape} with y of shape {y.shape}; {self.name} "
                             "takes one prediction per label, so p and y must have one shape")
        self._check_labels(y, p.shape[1] if multi else None)
        P = p if multi else p.reshape(-1, 1)
        loss, dloss = loss_and_dloss(self.code, self.param, P, y.reshape(-1))
        return loss.reshape(y.shape), (dloss if multi else dloss.reshape(p.shape))

    def _check_labels(self, y, K):
        """The internal labels the formulas take (fit converts the caller's to them)."""
        if self.kind == "binary01":
            bad, rule = (y != 0) & (y != 1), "logistic's labels are 0 or 1"
        elif self.kind == "binary_pm1":
            bad, rule = (y != -1) & (y != 1), (f"{self.name}'s internal labels are -1 or +1 "
                                               "(fit maps 0/1 labels to them)")
        elif self.kind == "multiclass":
            bad = ~((y >= 0) & (y < K) & (y == np.floor(y)))  # NaN fails every comparison
            rule = f"softmax labels are class indices 0..{K - 1} (p has K = {K} columns)"
        else:
            bad, rule = ~np.isfinite(y), "regression targets are finite"
        if bad.any():
            k = int(np.argmax(bad.ravel()))
            raise ValueError(f"Invalid y: it holds {float(y.flat[k])!r} at position {k}; {rule}")

    def __eq__(self, other):
        return type(self) is type(other) and self.param == other.param

    def __hash__(self):
        return hash((type(self), self.param))

    def __repr__(self):
        extra = f"(epsilon={self.param})" if isinstance(self, _EpsilonLoss) else "()"
        return type(self).__name__ + extra


def _real_array(name, a):
    a = np.asarray(a)
    if a.dtype.kind != "b" and first_non_real(a) is not None:
        raise TypeError(f"Invalid {name}: dtype {a.dtype}; it must hold real numbers (e.g. "
                        f"np.asarray({name}, dtype=np.float64))")
    return a.astype(np.float64, copy=False)


class _EpsilonLoss(LinearLoss):
    def __init__(self, epsilon=0.1):
        # not float(epsilon): it would take "0.5" and True, and word "a" as a bare float() error
        if not is_real(epsilon):
            raise TypeError(f"Invalid epsilon: {epsilon!r}; {type(self).__name__} needs a number, "
                            f"e.g. epsilon=0.1")
        epsilon = float(epsilon)
        if not (epsilon >= 0 and np.isfinite(epsilon)):
            raise ValueError(
                f"Invalid epsilon: {epsilon!r}; {type(self).__name__} needs a finite "
                f"epsilon >= 0 (scikit-learn's default is 0.1)")
        self.param = epsilon

    @property
    def epsilon(self):
        return self.param


class Squared(LinearLoss):
    """½ (p − y)²"""
    code = ids.LOSS_SQUARED


class Logistic(LinearLoss):
    """Binary cross-entropy on the logit p, labels {0, 1}."""
    code = ids.LOSS_LOGISTIC
    kind = "binary01"


class Softmax(LinearLoss):
    """Multinomial cross-entropy, integer labels 0..K-1, coef of shape (d, K)."""
    code = ids.LOSS_SOFTMAX
    kind = "multiclass"


class Hinge(LinearLoss):
    """max(0, 1 − y p), labels ±1."""
    code = ids.LOSS_HINGE
    kind = "binary_pm1"


class SquaredHinge(LinearLoss):
    """max(0, 1 − y p)², labels ±1."""
    code = ids.LOSS_SQUARED_HINGE
    kind = "binary_pm1"


class ModifiedHuber(LinearLoss):
    """Quadratically smoothed hinge (scikit-learn's ``modified_huber``), labels ±1."""
    code = ids.LOSS_MODIFIED_HUBER
    kind = "binary_pm1"


class Perceptron(LinearLoss):
    """max(0, −y p), labels ±1."""
    code = ids.LOSS_PERCEPTRON
    kind = "binary_pm1"


class Huber(_EpsilonLoss):
    """½ r² for |r| ≤ ε, ε|r| − ½ε² beyond (r = p − y)."""
    code = ids.LOSS_HUBER


class EpsilonInsensitive(_EpsilonLoss):
    """max(0, |y − p| − ε)"""
    code = ids.LOSS_EPSILON_INSENSITIVE


class SquaredEpsilonInsensitive(_EpsilonLoss):
    """max(0, |y − p| − ε)²"""
    code = ids.LOSS_SQUARED_EPSILON_INSENSITIVE


LOSSES = {
    "squared": Squared,
    "logistic": Logistic,
    "softmax": Softmax,
    "hinge": Hinge,
    "squared_hinge": SquaredHinge,
    "modified_huber": ModifiedHuber,
    "huber": Huber,
    "epsilon_insensitive": EpsilonInsensitive,
    "squared_epsilon_insensitive": SquaredEpsilonInsensitive,
    "perceptron": Perceptron,
}
_NAME_OF = {cls: name for name, cls in LOSSES.items()}
# scikit-learn spellings, accepted so its users need not translate.
ALIASES = {"squared_error": "squared", "log_loss": "logistic", "log": "logistic",
           "cross_entropy": "softmax", "multinomial": "softmax"}


#: What the kernels take from a loss object: its code and label rule; the reference
#: formulas the tests and users reach (py_loss, py_dloss) go through _eval.
_KERNEL_FACING = ("code", "kind", "_eval", "py_loss", "py_dloss", "_check_labels")


def _check_builtin(loss):
    """A subclass of a built-in loss runs as that loss, which the kernels compute from its
    code: one that changes the formulas, or derives from none, would be ignored there."""
    base, changed = builtin_base(loss, _NAME_OF, _KERNEL_FACING)
    own = "For a loss of your own pass fastgd.Loss(fn) with an @njit fn(p, y) -> (loss, dloss)"
    if base is None:
        raise TypeError(
            f"Invalid loss: {type(loss).__name__} derives from fastgd.losses.LinearLoss but from "
            f"none of its losses; the compiled kernels compute only the built-in losses, by "
            f"their codes. {own} (backend 'numba' or 'numpy')")
    if changed:
        raise TypeError(
            f"Invalid loss: {type(loss).__name__} overrides {changed} of {base.__name__}, which "
            f"fit would not run: the kernels compute {base.__name__} from its code. {own}")


def get(loss):
    """Resolve a name or a loss object to a loss object (ValueError/TypeError otherwise)."""
    if isinstance(loss, LinearLoss):
        if type(loss) not in _NAME_OF:
            _check_builtin(loss)
        return loss
    if isinstance(loss, str):
        key = ALIASES.get(loss, loss)
        if key in LOSSES:
            return LOSSES[key]()
        raise ValueError(
            f"Invalid loss: {loss!r}; it must be one of {sorted(LOSSES)} (or a "
            f"fastgd.Loss wrapping your own @njit function)")
    if hasattr(loss, "fn") and hasattr(loss, "py_loss_dloss"):
        return loss  # a custom fastgd.Loss
    raise TypeError(
        f"Invalid loss: {loss!r} of type {type(loss).__name__}; pass a loss name such as "
        f"'logistic', a fastgd.losses object, or fastgd.Loss(fn)")
