"""Learning-rate schedules: values of the 0-based global iteration count ``t``.

A schedule is any callable ``t -> lr``; the classes here are vectorised (they
accept an array of iteration counts) and picklable.  ``fit`` turns a schedule
into one float64 array of step sizes per epoch before the kernels run, so the
compiled loops never call back into Python.

``fit(schedule="name")`` builds the named schedule from ``lr`` and the run's
length with the defaults documented on each class; build the object yourself
for other settings.  ``t`` counts updates (iterations), not epochs:
``iterations_per_epoch`` is on the FitResult and from
:func:`fastgd.iterations_per_epoch`.
"""
import copy
import math

import numpy as np

from .kernels.checks import first_non_real, is_integer, is_real, real_scalar
from .optim import _check_lr as _lr
from .optim import _check_range


def _count(name, value, lo=1):
    """An integer >= ``lo`` (no silent truncation of 2.5), or an error naming ``name``."""
    if not is_integer(value):
        raise TypeError(f"Invalid {name}: {value!r}; it must be an integer >= {lo}")
    if value < lo:
        raise ValueError(f"Invalid {name}: {value}; it must be an integer >= {lo}")
    return int(value)


class Schedule:
    """Base class.  Subclasses implement ``__call__(t)`` on arrays of ints."""

    needs_history = False

    def lrs(self, start, count, history=()):
        """Step sizes for iterations ``start .. start + count - 1`` as float64."""
        t = np.arange(start, start + count, dtype=np.int64)
        out = _step_sizes(self(t), t)
        return out if out.shape == (count,) else np.broadcast_to(out, (count,)).copy()

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class Constant(Schedule):
    def __init__(self, lr):
        self.lr = _lr(lr)

    def __call__(self, t):
        return np.full(np.shape(t), self.lr)

    def lrs(self, start, count, history=()):
        return np.full(count, self.lr)


class StepDecay(Schedule):
    """``lr * gamma ** (t // step_size)`` (torch's StepLR, counted in iterations).

    String default: ``step_size`` = a third of the run, ``gamma`` = 0.1.
    """

    def __init__(self, lr, step_size, gamma=0.1):
        self.lr, self.step_size = _lr(lr), _count("step_size", step_size)
        self.gamma = _check_range("gamma", gamma, 0.0, lo_open=True)

    def __call__(self, t):
        return self.lr * self.gamma ** (np.asarray(t) // self.step_size)


class Exponential(Schedule):
    """``lr * decay_rate ** (t / transition_steps)`` (Optax's exponential_decay).

    String default: decays to lr/10 over the run.
    """

    def __init__(self, lr, decay_rate, transition_steps=1):
        self.lr = _lr(lr)
        self.decay_rate = _check_range("decay_rate", decay_rate, 0.0, lo_open=True)
        self.transition_steps = _check_range("transition_steps", transition_steps, 0.0, lo_open=True)

    def __call__(self, t):
        return self.lr * self.decay_rate ** (np.asarray(t) / self.transition_steps)


class InverseScaling(Schedule):
    """``lr / (t + 1) ** power_t`` (scikit-learn's ``invscaling``; its t starts at 1)."""

    def __init__(self, lr, power_t=0.25):
        self.lr, self.power_t = _lr(lr), _check_range("power_t", power_t, -math.inf)

    def __call__(self, t):
        return self.lr / (np.asarray(t) + 1.0) ** self.power_t


class Cosine(Schedule):
    """Cosine decay from ``lr`` to ``lr * alpha`` over ``decay_steps`` (Optax's cosine_decay_schedule).

    String default: ``decay_steps`` = the whole run, ``alpha`` = 0 (the last
    update of the run still has a positive step; the rate reaches zero after it).
    """

    def __init__(self, lr, decay_steps, alpha=0.0):
        self.lr, self.decay_steps = _lr(lr), _count("decay_steps", decay_steps)
        self.alpha = _check_range("alpha", alpha, 0.0)

    def __call__(self, t):
        frac = np.minimum(np.asarray(t), self.decay_steps) / self.decay_steps
        return self.lr * ((1.0 - self.alpha) * 0.5 * (1.0 + np.cos(np.pi * frac)) + self.alpha)


class Warmup(Schedule):
    """Linear warm-up ``lr * (t + 1) / warmup_steps`` then ``after`` (default: constant lr).

    ``after`` is another schedule, evaluated at ``t - warmup_steps`` (Optax's join).
    String default: warm up over the first tenth of the run, then constant.
    """

    def __init__(self, lr, warmup_steps, after=None):
        self.lr, self.warmup_steps = _lr(lr), _count("warmup_steps", warmup_steps)
        if after is not None and not callable(after):
            raise TypeError(f"Invalid after: {after!r}; it must be None (constant lr after the "
                            f"warm-up), a fastgd.schedules object or a callable t -> lr")
        self.after = after

    @property
    def needs_history(self):
        return getattr(self.after, "needs_history", False)

    def __call__(self, t):
        if self.needs_history:
            raise TypeError("This Warmup's after= depends on the loss history, not on t alone: "
                            "fit evaluates it through lrs(start, count, history)")
        t = np.asarray(t)
        ramp = self.lr * (t + 1.0) / self.warmup_steps
        rest = (np.full(t.shape, self.lr) if self.after is None
                else _evaluate(self.after, np.maximum(t - self.warmup_steps, 0)))
        return np.where(t < self.warmup_steps, ramp, rest)

    def lrs(self, start, count, history=()):
        if not self.needs_history:
            return super().lrs(start, count, history)
        # an `after` that reads the loss history (Adaptive) is asked through its lrs
        t = np.arange(start, start + count, dtype=np.int64)
        out = self.lr * (t + 1.0) / self.warmup_steps
        k = int(np.searchsorted(t, self.warmup_steps))  # the first step after the warm-up
        if k < count:
            out[k:] = self.after.lrs(int(t[k]) - self.warmup_steps, count - k, history)
        return out


class Optimal(Schedule):
    """scikit-learn's ``optimal``: ``1 / (alpha * (t0 + t))`` with Bottou's heuristic t0.

    Needs the penalty strength ``alpha > 0``; ``dloss`` is the loss's derivative
    (the heuristic reads it at p = -typw, y = 1 as scikit-learn does).
    """

    def __init__(self, alpha, dloss=None):
        self.alpha = _check_range("alpha", alpha, -math.inf)
        if not (self.alpha > 0):
            raise ValueError(
                f"Invalid alpha for schedule 'optimal': {alpha!r}; it sets eta = 1/(alpha (t0 + t)), "
                f"so it needs alpha > 0 (pass e.g. penalty='l2', alpha=1e-4)")
        typw = math.sqrt(1.0 / math.sqrt(self.alpha))
        d = 1.0 if dloss is None else float(np.ravel(dloss(np.array([-typw]), np.array([1.0])))[0])
        eta0 = typw / max(1.0, d)
        self.t0 = 1.0 / (eta0 * self.alpha)

    def __call__(self, t):
        return 1.0 / (self.alpha * (self.t0 + np.asarray(t)))


class Adaptive(Schedule):
    """scikit-learn's ``adaptive``: ``lr`` until the epoch loss stalls, then /5 each time.

    After every epoch, if the loss has not improved on the best so far by at
    least ``tol`` for ``n_iter_no_change`` epochs in a row, the rate is divided
    by 5 and the count restarts.  The rate is a pure function of the loss
    history, so continuing a fit from its result reproduces it exactly.  The
    loss is the fit's objective (sample weights and penalty included), where
    scikit-learn watches unweighted losses, and the rate keeps falling where
    scikit-learn stops at 1e-6 (docs/decisions.md).
    """

    needs_history = True

    def __init__(self, lr, n_iter_no_change=5, tol=1e-3):
        self.lr, self.n_iter_no_change = _lr(lr), _count("n_iter_no_change", n_iter_no_change)
        self.tol = _check_range("tol", tol, 0.0)

    def factor(self, history):
        best, bad, factor = np.inf, 0, 1.0
        for loss in history:
            bad = bad + 1 if loss > best - self.tol else 0
            best = min(best, loss)
            if bad >= self.n_iter_no_change:
                factor, bad = factor / 5.0, 0
        return factor

    def __call__(self, t):
        raise TypeError("Adaptive's step size depends on the loss history, not on t alone: "
                        "fit evaluates it through lrs(start, count, history); to combine it, "
                        "use it as Warmup's after= (which passes the history on)")

    def lrs(self, start, count, history=()):
        return np.full(count, self.lr * self.factor(history))


class Shifted(Schedule):
    """``inner`` started at iteration ``offset``: ``inner(t - offset)``.

    A schedule named by the run's length ("step", "exponential", "cosine", "warmup")
    given to a continued fit is built over that run and starts with it, as it would
    in a fresh fit, not where the overall iteration count already stands.
    """

    def __init__(self, inner, offset):
        self.inner, self.offset = inner, _count("offset", offset, lo=0)

    @property
    def needs_history(self):
        return getattr(self.inner, "needs_history", False)

    def __call__(self, t):
        return self.inner(np.asarray(t) - self.offset)

    def lrs(self, start, count, history=()):
        return self.inner.lrs(start - self.offset, count, history)


class FromCallable(Schedule):
    """Wraps a plain ``t -> lr`` callable (vectorised when it accepts arrays)."""

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError(f"Invalid schedule: {fn!r} is not callable; pass a callable t -> lr")
        self.fn = fn

    def __call__(self, t):
        return _evaluate(self.fn, t)


def _step_sizes(out, t):
    """A schedule's values as float64, refused unless real numbers: a bool, string or
    complex array had been cast to step sizes without a word (``t < 3`` as lr 1, 0)."""
    out = np.asarray(out)
    k = first_non_real(out)
    if k is not None:
        bad = out.flat[k]
        bad = bad.item() if isinstance(bad, np.generic) else bad
        at = int(np.ravel(t)[min(k, np.size(t) - 1)])
        raise TypeError(f"Invalid schedule: it gave {out.dtype} values ({bad!r} at iteration "
                        f"{at}); a schedule must return real numbers (the step sizes)")
    return out.astype(np.float64, copy=False)


def _evaluate(fn, t):
    t = np.asarray(t)
    try:
        out = np.asarray(fn(t))
    except Exception:  # a scalar-only callable: fall back to one call per iteration
        out = None
    if out is not None and out.shape == t.shape:
        return _step_sizes(out, t)
    out = np.empty(t.size)
    for k, i in enumerate(t.ravel()):
        lr = fn(int(i))
        if np.asarray(lr).ndim != 0 or np.asarray(lr).dtype.kind not in "iuf":
            raise TypeError(f"Invalid schedule: at iteration {int(i)} it gave {lr!r}; a schedule "
                            f"must return a real number (the step size)")
        out[k] = lr
    return out.reshape(t.shape)


NAMES = ("constant", "step", "exponential", "inverse_scaling", "cosine", "warmup", "optimal", "adaptive")


RUN_LENGTH_NAMES = ("step", "exponential", "cosine", "warmup")

_BUILT_IN = (Constant, StepDecay, Exponential, InverseScaling, Cosine, Warmup, Optimal, Adaptive,
             Shifted, FromCallable)


def _own_copy(schedule):
    """A fit's own copy of ``schedule``: the schedules inside it (Warmup's ``after``,
    Shifted's ``inner``) copied too, and a built-in class's settings checked again, as
    its constructor checks them (the caller may have edited them since: a step_size of 0
    had run as a division by zero).  Functions are kept as they are."""
    new = copy.copy(schedule)
    for name, value in getattr(new, "__dict__", {}).items():  # (none with __slots__)
        if isinstance(value, Schedule):
            setattr(new, name, _own_copy(value))
    cls = next((c for c in type(new).__mro__ if c in _BUILT_IN), None)
    if cls is not None:
        from .validation import check_settings_again

        check_settings_again(cls, new)
    return new


def user_function_inside(schedule):
    """True if the schedule is, or holds, a callable of the user's (not a built-in class)."""
    if isinstance(schedule, FromCallable) or not isinstance(schedule, Schedule):
        return True
    return any(user_function_inside(v) for v in getattr(schedule, "__dict__", {}).values()
               if isinstance(v, Schedule) or callable(v))


def constant_step(schedule):
    """A number given as the schedule: the constant step size, finite and > 0."""
    rule = "finite and > 0: a number is a constant step size (e.g. schedule=0.01)"
    lr = real_scalar("schedule", schedule, 0.0, rule=rule)
    if lr == 0:
        raise ValueError(f"Invalid schedule: {schedule!r}; it must be {rule}")
    return lr


def get(schedule, lr, total_iterations, alpha=0.0, dloss=None, start=0):
    """Resolve ``fit``'s ``schedule`` argument to a Schedule.

    A name that is sized by the run (``RUN_LENGTH_NAMES``) covers the
    ``total_iterations`` from iteration ``start`` on (a continued fit's); the
    others, objects and callables are functions of the overall count ``t``.
    """
    if start and isinstance(schedule, str) and schedule in RUN_LENGTH_NAMES:
        return Shifted(get(schedule, lr, total_iterations, alpha, dloss), start)
    if schedule is None:
        return Constant(lr)
    if isinstance(schedule, type):  # (callable, so it would be called with t)
        raise TypeError(f"Invalid schedule: {schedule.__name__} is a class; pass an instance, "
                        f"e.g. schedule=fastgd.schedules.{schedule.__name__}(...), or a name")
    if isinstance(schedule, Schedule):
        return _own_copy(schedule)  # the fit's own: the caller may go on editing theirs
    if isinstance(schedule, str):
        name = {"invscaling": "inverse_scaling"}.get(schedule, schedule)
        total = max(1, int(total_iterations))
        if name == "constant":
            return Constant(lr)
        if name == "step":
            return StepDecay(lr, step_size=max(1, math.ceil(total / 3)), gamma=0.1)
        if name == "exponential":
            return Exponential(lr, decay_rate=0.1, transition_steps=total)
        if name == "inverse_scaling":
            return InverseScaling(lr)
        if name == "cosine":
            return Cosine(lr, decay_steps=total)
        if name == "warmup":
            return Warmup(lr, warmup_steps=max(1, total // 10))
        if name == "optimal":
            return Optimal(alpha, dloss)
        if name == "adaptive":
            return Adaptive(lr)
        raise ValueError(f"Invalid schedule: {schedule!r}; it must be one of {list(NAMES)}, "
                         f"a fastgd.schedules object or a callable t -> lr")
    if callable(schedule):
        return FromCallable(schedule)
    if is_real(schedule):  # NumPy scalars too
        return Constant(constant_step(schedule))
    raise TypeError(f"Invalid schedule: {schedule!r} of type {type(schedule).__name__}; pass a "
                    f"name such as 'cosine', a fastgd.schedules object or a callable t -> lr")
