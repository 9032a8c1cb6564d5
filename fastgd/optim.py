"""Update rules with PyTorch's formulas and defaults.

Each optimizer is a small value object, in the spirit of Optax's (init, update)
pairs: :meth:`init` makes the state for a flat parameter vector and
:meth:`update` applies one fused step in place.  ``fit`` hands the same numbers
(``rule_id``, ``hyper``, the state array) to whichever backend runs the epoch,
so every backend applies exactly these formulas:

- SGD: ``d = g + wd*w``; momentum buffer ``b = d`` on the first step, then
  ``b = mu*b + (1 - dampening)*d``; ``d = d + mu*b`` (nesterov) or ``d = b``;
  ``w -= lr*d``.
- Adam: L2 ``g += wd*w``; AdamW: ``w *= 1 - lr*wd``; ``m = b1*m + (1-b1)*g``;
  ``v = b2*v + (1-b2)*g²``; ``w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)``
  (``amsgrad`` uses the running max of v).
- Adagrad: ``s += g²``; ``w -= lr/(1+(t-1)*lr_decay) * g/(sqrt(s)+eps)``.
- RMSprop: ``a = alpha*a + (1-alpha)*g²``; centered subtracts the mean gradient
  squared; ``w -= lr*g/(sqrt(a)+eps)`` or through a momentum buffer.
"""
import copy as _copy

import numpy as np

from .kernels import ids
from .kernels.checks import is_real
from .reference import updates as _ref


def _check_lr(lr):
    if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, (int, float, np.integer, np.floating)):
        raise TypeError(f"Invalid learning rate: lr={lr!r}; it must be a positive number, e.g. lr=0.01")
    lr = float(lr)
    if not (lr > 0 and np.isfinite(lr)):
        raise ValueError(f"Invalid learning rate: lr={lr}; it must be finite and > 0, e.g. lr=0.01")
    return lr


def _check_range(name, value, lo, hi=None, lo_open=False, hi_open=True):
    if not is_real(value):
        raise TypeError(f"Invalid {name}: {value!r}; it must be a number")
    value = float(value)
    ok = np.isfinite(value) and (value > lo if lo_open else value >= lo)
    if hi is not None:
        ok = ok and (value < hi if hi_open else value <= hi)
    if not ok:
        interval = ("(" if lo_open else "[") + f"{lo}, " + (f"{hi}" if hi is not None else "inf") + \
            (")" if hi is None or hi_open else "]")
        label = name if name.startswith("beta") else f"{name} value"
        raise ValueError(f"Invalid {label}: {value}; it must lie in {interval}")
    return value


def _check_flag(name, value):
    # bool("no") is True: a string or a number must not switch an option on
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Invalid {name}: {value!r}; it must be True or False")
    return bool(value)


class Optimizer:
    """Base class: ``rule_id``, ``hyper`` (float64 array) and the state layout."""

    rule_id = None
    lr = None

    @property
    def n_slots(self):
        return ids.STATE_SLOTS[self.rule_id]

    def init(self, params):
        """Fresh state, shape (n_slots, P), for the flat parameter vector ``params`` (in its
        dtype when it is float32 or float64, else float64, as a fit's parameters are)."""
        params = np.asarray(params)
        dtype = params.dtype if params.dtype in (np.float32, np.float64) else np.float64
        return np.zeros((self.n_slots, params.size), dtype=dtype)

    def update(self, params, grad, state, step, lr=None):
        """One step in place on flat arrays (the reference formulas); ``step`` is 1-based."""
        _ref.apply_update(self.rule_id, self.hyper, params, grad, state,
                          self.lr if lr is None else lr, step)

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"

    def copy(self, **changes):
        """This optimizer with ``changes``, its settings checked again by the built-in rule
        it is (a subclass may take other arguments): a fit keeps its own copy, so neither
        the caller's later edits nor a result's reach it."""
        unknown = sorted(set(changes) - set(vars(self)))
        if unknown:  # (a typo, momentun=0.9, would have been kept and ignored)
            raise TypeError(f"Invalid {unknown[0]}: {type(self).__name__} has no setting of that "
                            f"name; its settings are {sorted(vars(self))}")
        new = _copy.copy(self)
        vars(new).update(changes)
        rule = next((c for c in type(self).__mro__ if c in OPTIMIZERS.values()), None)
        if rule is not None:
            from .validation import check_settings_again

            check_settings_again(rule, new)
        return new

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self):
        return hash((type(self), tuple(sorted(vars(self).items()))))


class SGD(Optimizer):
    rule_id = ids.RULE_SGD

    def __init__(self, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        self.lr = _check_lr(lr)
        self.momentum = _check_range("momentum", momentum, 0.0)
        self.dampening = _check_range("dampening", dampening, 0.0, 1.0, hi_open=False)
        self.weight_decay = _check_range("weight_decay", weight_decay, 0.0)
        self.nesterov = _check_flag("nesterov", nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"Nesterov momentum requires a momentum > 0 and zero dampening; got "
                f"momentum={self.momentum}, dampening={self.dampening}")

    @property
    def hyper(self):
        return np.array([self.momentum, self.dampening, float(self.nesterov), self.weight_decay])


class Adam(Optimizer):
    rule_id = ids.RULE_ADAM
    _default_wd = 0.0

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=None, amsgrad=False):
        self.lr = _check_lr(lr)
        if not isinstance(betas, (tuple, list)):
            raise TypeError(f"Invalid betas: {betas!r}; it must be a pair (beta1, beta2), e.g. (0.9, 0.999)")
        if len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas!r}; it must be a pair (beta1, beta2), e.g. (0.9, 0.999)")
        self.betas = (_check_range("beta parameter at index 0", betas[0], 0.0, 1.0),
                      _check_range("beta parameter at index 1", betas[1], 0.0, 1.0))
        self.eps = _check_range("epsilon", eps, 0.0)
        self.weight_decay = _check_range(
            "weight_decay", self._default_wd if weight_decay is None else weight_decay, 0.0)
        self.amsgrad = _check_flag("amsgrad", amsgrad)

    @property
    def hyper(self):
        return np.array([self.betas[0], self.betas[1], self.eps, self.weight_decay, float(self.amsgrad)])


class AdamW(Adam):
    """Adam with decoupled weight decay (default weight_decay=0.01, as in PyTorch)."""
    rule_id = ids.RULE_ADAMW
    _default_wd = 1e-2


class Adagrad(Optimizer):
    rule_id = ids.RULE_ADAGRAD

    def __init__(self, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        self.lr = _check_lr(lr)
        self.lr_decay = _check_range("lr_decay", lr_decay, 0.0)
        self.weight_decay = _check_range("weight_decay", weight_decay, 0.0)
        self.initial_accumulator_value = _check_range(
            "initial_accumulator_value", initial_accumulator_value, 0.0)
        self.eps = _check_range("epsilon", eps, 0.0)

    @property
    def hyper(self):
        return np.array([self.lr_decay, self.weight_decay, self.eps, self.initial_accumulator_value])

    def init(self, params):
        state = super().init(params)
        state[0] = self.initial_accumulator_value
        return state


class RMSprop(Optimizer):
    rule_id = ids.RULE_RMSPROP

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        self.lr = _check_lr(lr)
        self.alpha = _check_range("alpha", alpha, 0.0, 1.0, hi_open=False)
        self.eps = _check_range("epsilon", eps, 0.0)
        self.weight_decay = _check_range("weight_decay", weight_decay, 0.0)
        self.momentum = _check_range("momentum", momentum, 0.0)
        self.centered = _check_flag("centered", centered)

    @property
    def hyper(self):
        return np.array([self.alpha, self.eps, self.weight_decay, self.momentum, float(self.centered)])


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "adagrad": Adagrad, "rmsprop": RMSprop}


#: What the kernels take from an optimizer: its rule code, hyper-parameters and state
#: layout; ``update`` is the reference formula (for tests and users), never run by fit.
_KERNEL_FACING = ("rule_id", "hyper", "n_slots", "init", "update")


def _check_builtin(opt):
    """A subclass of a built-in rule runs as that rule, from its hyper-parameters alone:
    one that changes the formulas or the state, or derives from no rule, would be
    ignored by the kernels (silently, had it not been refused)."""
    from .validation import builtin_base

    rule, changed = builtin_base(opt, set(OPTIMIZERS.values()), _KERNEL_FACING)
    if rule is None:
        names = ", ".join(sorted(c.__name__ for c in OPTIMIZERS.values()))
        raise TypeError(
            f"Invalid optimizer: {type(opt).__name__} derives from fastgd.optim.Optimizer but "
            f"from none of its rules; the compiled kernels apply only {names}. Derive from one "
            f"of them only to change its settings")
    if changed:
        raise TypeError(
            f"Invalid optimizer: {type(opt).__name__} overrides {changed} of {rule.__name__}, "
            f"which fit would not run: the kernels apply {rule.__name__}'s formulas from its "
            f"hyper-parameters alone. Derive from it only to change its settings")


def get(optimizer, lr):
    """``None`` -> SGD(lr); a name -> that rule with ``lr``; an Optimizer as is (a copy)."""
    if optimizer is None:
        return SGD(lr=lr)
    if isinstance(optimizer, Optimizer):
        if type(optimizer) not in OPTIMIZERS.values():
            _check_builtin(optimizer)
        return optimizer.copy()
    if isinstance(optimizer, str):
        cls = OPTIMIZERS.get(optimizer.lower())
        if cls is None:
            raise ValueError(
                f"Invalid optimizer: {optimizer!r}; it must be one of {sorted(OPTIMIZERS)} "
                f"or an instance such as fastgd.optim.Adam(lr=1e-3)")
        return cls(lr=lr)
    raise TypeError(
        f"Invalid optimizer: {optimizer!r} of type {type(optimizer).__name__}; pass a name "
        f"such as 'adam' or an instance such as fastgd.optim.SGD(lr=0.1, momentum=0.9)")
