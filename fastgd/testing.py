"""The one registry of cases that drives the parity tests and the benchmarks.

A :class:`Case` names a model, loss, optimizer, batch size and dtype (plus the
few options that change the kernels' path).  ``make_data`` builds its data
deterministically at any size, ``run`` fits it on a backend.  The parity tests
run every case on every available backend against ``backend="numpy"``; the
benchmarks time the ``bench`` cases at large sizes.  A new backend is checked
and measured by adding it to ``fastgd.backends`` once.

Tolerances (DESIGN §3): float64 rtol 1e-9; float32 rtol 1e-4 against the
float64 reference.  float64 elementwise, with no absolute floor; float32 with a
floor of rtol times the array's largest magnitude.  (Until the twenty-ninth session
both had a floor of rtol * max(1, max |entry|), which let an intercept of 1e-4 be off
by 7,000 times the contract; no float64 case needed a floor.)
"""
from dataclasses import dataclass, field, replace

import numpy as np

RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}


@dataclass(frozen=True)
class Case:
    loss: str = "squared"
    optimizer: tuple = ("sgd", {})
    batch_size: object = 7            # int, or None for BGD
    dtype: str = "float64"
    model: tuple = None               # None (linear) or ("mlp", hidden, activation)
    n: int = 40
    d: int = 5
    k: int = 3                        # classes for softmax
    epochs: int = 2
    lr: float = 0.05
    options: dict = field(default_factory=dict, hash=False, compare=False)
    tags: tuple = ()                  # "cuda" marks cases small enough for the simulator

    @property
    def id(self):
        opt = self.optimizer[0] + "".join(f"-{k}{v}" for k, v in sorted(self.optimizer[1].items()))
        model = "linear" if self.model is None else f"mlp{self.model[1]}-{self.model[2]}"
        extra = "".join(f"-{k}={v}" for k, v in sorted(self.options.items()))
        b = "n" if self.batch_size is None else self.batch_size
        size = "" if (self.n, self.d) == (40, 5) else f"-{self.n}x{self.d}"
        grid = "-labels-on-0.1" if "epsilon-grid" in self.tags else ""
        return f"{model}-{self.loss}-{opt}-b{b}-{self.dtype}{size}{extra}{grid}"

    def at(self, **changes):
        return replace(self, **changes)


def make_data(case, seed=1234):
    """X (n, d) standard normal and labels suited to the case's loss (seeded)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((case.n, case.d))
    w = rng.standard_normal(case.d) / np.sqrt(case.d)
    score = X @ w + 0.1 * rng.standard_normal(case.n)
    if case.loss == "logistic":
        y = (score > 0).astype(np.int64)
    elif case.loss in ("hinge", "squared_hinge", "modified_huber", "perceptron"):
        y = np.where(score > 0, 1, -1)
    elif case.loss == "softmax":
        W = rng.standard_normal((case.d, case.k))
        y = np.argmax(X @ W + 0.3 * rng.standard_normal((case.n, case.k)), axis=1)
    elif "epsilon-grid" in case.tags:
        # labels on a 0.1 grid: at the zero start every |y| = 0.1 ties with the default
        # epsilon 0.1, in float32 too (0.1f against 0.1f: docs/decisions.md, "Types")
        y = np.round(0.3 * score, 1)
    else:
        y = 2.0 * score + 0.5
    sw = rng.uniform(0.5, 2.0, case.n) if case.options.get("sample_weight") else None
    return X.astype(case.dtype), y, sw


def optimizer_of(case):
    from . import optim

    name, kw = case.optimizer
    return optim.OPTIMIZERS[name](lr=case.lr, **kw)


def fit_kwargs(case, backend, sw=None, **overrides):
    """The keyword arguments of ``fastgd.fit`` that a case stands for."""
    from . import MLP

    model = None if case.model is None else MLP(hidden=case.model[1], activation=case.model[2])
    kw = dict(loss=case.loss, model=model, batch_size=case.batch_size, epochs=case.epochs,
              optimizer=optimizer_of(case), sample_weight=sw, seed=0, backend=backend)
    kw.update({k: v for k, v in case.options.items() if k != "sample_weight"})
    kw.update(overrides)
    return kw


def run(case, backend, X=None, y=None, sw=None, **overrides):
    """Fit ``case`` on ``backend`` (data from make_data unless given)."""
    from . import fit

    if X is None:
        X, y, sw = make_data(case)
    return fit(X, y, **fit_kwargs(case, backend, sw, **overrides))


def prepared_run(case, backend, X, y, sw=None, **overrides):
    """A validated :class:`fastgd.api.Run`: ``.train(1)`` times one epoch without re-validation."""
    import inspect

    from .api import Run, fit

    defaults = {p.name: p.default for p in inspect.signature(fit).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "callback"}
    return Run(X, y, **{**defaults, **fit_kwargs(case, backend, sw, **overrides)})


def compiled_backends():
    """The backends other than the reference that work here: the parity tests' subjects."""
    from .backends import available_backends

    return [b for b in available_backends() if b != "numpy"]


def benchmarked_backends(kind="linear"):
    """The CPU backends that have kernels for ``kind`` here, the reference last: the
    benchmarks' subjects."""
    from .backends import supports

    return [b for b in ("cython", "numba", "numpy") if supports(b, kind)]


def assert_params_close(actual, desired, dtype):
    """Compare two FitResults' parameters with the registry's tolerance for ``dtype``."""
    rtol = RTOL[np.dtype(dtype)]
    single = np.dtype(dtype) == np.float32
    for (Wa, ba), (Wd, bd) in zip(actual.params, desired.params):
        for a, d in ((Wa, Wd), (ba, bd)):
            a, d = np.asarray(a, dtype=np.float64), np.asarray(d, dtype=np.float64)
            # float32: a floor of rtol times the array's largest magnitude, for an element
            # that is a small difference of large float32 terms (whose rounding follows the
            # vector width the sums ran in); float64: elementwise, no floor
            atol = rtol * float(np.max(np.abs(d), initial=0.0)) if single else 0.0
            np.testing.assert_allclose(a, d, rtol=rtol, atol=atol)


LINEAR_LOSSES = ("squared", "logistic", "softmax", "hinge", "squared_hinge", "modified_huber",
                 "huber", "epsilon_insensitive", "squared_epsilon_insensitive", "perceptron")

OPTIMIZERS = (
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("sgd", {"momentum": 0.5, "dampening": 0.3}),
    ("adam", {}),
    ("adam", {"amsgrad": True, "weight_decay": 0.01}),
    ("adamw", {}),
    ("adagrad", {"lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.5, "centered": True, "weight_decay": 0.01}),
)


def _linear_cases():
    cases = []
    for dtype in ("float64", "float32"):
        for loss in LINEAR_LOSSES:
            for b in (1, 7, None):
                cases.append(Case(loss=loss, batch_size=b, dtype=dtype,
                                  tags=("cuda",) if b != 1 else ()))
        for opt in OPTIMIZERS[1:]:  # plain SGD is covered by the loop above
            for loss in ("logistic", "softmax", "squared"):
                cases.append(Case(loss=loss, optimizer=opt, batch_size=7, dtype=dtype, lr=0.01,
                                  tags=("cuda",)))
    # Mid-sized batches (8 <= b < n/2): the Cython kernel sums them as two halves, on two
    # threads when the halves are big enough (docs/cython.md).
    for loss in LINEAR_LOSSES:
        cases.append(Case(loss=loss, batch_size=12, n=60))
    for opt in OPTIMIZERS[1:]:
        cases.append(Case(loss="logistic", optimizer=opt, batch_size=12, n=60, lr=0.01))
    cases += [Case(loss="softmax", batch_size=9, n=50, dtype="float32"),
              # d = 29: the float32 four-row dots' 16- and 8-wide steps and their tail
              Case(loss="softmax", batch_size=16, n=64, d=29, dtype="float32"),
              Case(loss="softmax", batch_size=16, n=64, d=29, dtype="float32",
                   options={"accumulate": "float64"}),
              Case(loss="squared", batch_size=9, n=50, options={"penalty": "elasticnet", "alpha": 0.01,
                                                                "sample_weight": True}),
              Case(loss="softmax", batch_size=12, n=60, optimizer=OPTIMIZERS[4], lr=0.01,
                   tags=("cuda",))]
    for penalty in ("l2", "l1", "elasticnet"):
        for loss in ("squared", "hinge", "softmax"):
            cases.append(Case(loss=loss, options={"penalty": penalty, "alpha": 0.01}, tags=("cuda",)))
        # batch size 1: the Cython and numba plain-SGD row loops carry the penalty themselves
        for loss, dtype in (("logistic", "float64"), ("hinge", "float32")):
            cases.append(Case(loss=loss, batch_size=1, dtype=dtype,
                              options={"penalty": penalty, "alpha": 0.01}))
    cases.append(Case(loss="squared", batch_size=1, options={"penalty": "elasticnet", "alpha": 0.02,
                                                             "sample_weight": True,
                                                             "fit_intercept": False}))
    # batch size 1 with every other rule: the row loops of both compiled backends for them
    for opt in OPTIMIZERS[1:]:
        cases.append(Case(loss="logistic", optimizer=opt, batch_size=1, lr=0.01))
    cases += [Case(loss="hinge", optimizer=OPTIMIZERS[2], batch_size=1, dtype="float32", lr=0.01,
                   options={"sample_weight": True}),
              Case(loss="logistic", optimizer=OPTIMIZERS[3], batch_size=1, dtype="float32",
                   lr=0.01, options={"accumulate": "float64"}),
              Case(loss="squared", optimizer=("sgd", {"weight_decay": 0.01}), batch_size=1,
                   lr=0.01, options={"fit_intercept": False})]
    # batch size 1, softmax: both compiled backends train on W transposed for the epoch
    for opt in (OPTIMIZERS[1], OPTIMIZERS[5], OPTIMIZERS[7]):
        cases.append(Case(loss="softmax", optimizer=opt, batch_size=1, lr=0.01))
    cases += [Case(loss="softmax", batch_size=1, options={"penalty": "elasticnet", "alpha": 0.01,
                                                          "sample_weight": True}),
              Case(loss="softmax", optimizer=OPTIMIZERS[9], batch_size=1, k=4, dtype="float32",
                   lr=0.01, options={"accumulate": "float64", "fit_intercept": False})]
    for opt in (OPTIMIZERS[2], OPTIMIZERS[5], OPTIMIZERS[9]):
        cases.append(Case(loss="squared", optimizer=opt, batch_size=1, dtype="float32", lr=0.01,
                          options={"penalty": "elasticnet", "alpha": 0.01,
                                   "sample_weight": True}))
    extras = [
        Case(loss="logistic", options={"sample_weight": True}, tags=("cuda",)),
        Case(loss="softmax", options={"sample_weight": True}, batch_size=None),
        Case(loss="squared", options={"sample_weight": True, "fit_intercept": False}),
        Case(loss="huber", options={"fit_intercept": False}, tags=("cuda",)),
        # labels that tie with epsilon, in float32: every backend takes the same branch
        *(Case(loss=loss, batch_size=b, dtype="float32",
               tags=("epsilon-grid",) + (("cuda",) if b != 1 else ()))
          for loss in ("huber", "epsilon_insensitive", "squared_epsilon_insensitive")
          for b in (1, None)),
        Case(loss="logistic", batch_size=6, options={"drop_last": True}, tags=("cuda",)),
        Case(loss="squared", batch_size=4, options={"sampling": "replacement"}, tags=("cuda",)),
        Case(loss="logistic", batch_size=5, options={"shuffle": False}, tags=("cuda",)),
        Case(loss="squared", batch_size=5, options={"schedule": "cosine"}, tags=("cuda",)),
        Case(loss="logistic", batch_size=5, options={"schedule": "inverse_scaling"}),
        Case(loss="hinge", batch_size=5, options={"schedule": "optimal", "penalty": "l2", "alpha": 1e-3}),
        Case(loss="squared", batch_size=1, n=30, epochs=8, options={"schedule": "adaptive"}),
        Case(loss="softmax", batch_size=7, k=4, dtype="float32", options={"accumulate": "float64"},
             tags=("cuda",)),
        # large batches, cut into fixed chunks (Cython: 2 of 752 rows, 4 of 376 for
        # softmax; numba: 512-row chunks) summed in chunk order
        Case(loss="logistic", batch_size=None, n=1500, d=100, tags=("large-batch",)),
        Case(loss="softmax", batch_size=None, n=1500, d=100, tags=("large-batch",)),
        Case(loss="hinge", batch_size=1400, n=1500, d=100, dtype="float32",
             options={"sample_weight": True, "penalty": "l2", "alpha": 0.01},
             tags=("large-batch",)),
        # the other named schedules (their per-iteration step sizes reach every kernel)
        Case(loss="squared", batch_size=5, options={"schedule": "step"}),
        Case(loss="logistic", batch_size=1, options={"schedule": "exponential"}),
        Case(loss="hinge", batch_size=5, optimizer=OPTIMIZERS[1], lr=0.01,
             options={"schedule": "warmup"}),
        Case(loss="softmax", batch_size=5, optimizer=OPTIMIZERS[4], lr=0.01,
             options={"schedule": "cosine"}),
    ]
    return cases + extras + _linear_combinations()


def _linear_combinations():
    """Combinations a review found no case for (twenty-ninth session)."""
    cuda = ("cuda",)
    cases = []
    for penalty in ("l2", "l1", "elasticnet"):  # the penalties at BGD
        for loss in ("squared", "logistic", "softmax"):
            cases.append(Case(loss=loss, batch_size=None, tags=cuda,
                              options={"penalty": penalty, "alpha": 0.01}))
    for opt in (OPTIMIZERS[1], OPTIMIZERS[5], OPTIMIZERS[7], OPTIMIZERS[9]):  # rules at BGD
        for loss in ("logistic", "softmax"):
            cases.append(Case(loss=loss, optimizer=opt, batch_size=None, lr=0.01, tags=cuda))
    cases += [Case(loss="logistic", batch_size=7, options={"fit_intercept": False}, tags=cuda),
              Case(loss="logistic", batch_size=None, options={"fit_intercept": False},
                   tags=cuda),
              Case(loss="hinge", batch_size=1, options={"fit_intercept": False}),
              Case(loss="modified_huber", batch_size=7, dtype="float32",
                   options={"fit_intercept": False, "sample_weight": True}, tags=cuda)]
    # sample weights on every loss
    for loss in ("hinge", "squared_hinge", "modified_huber", "huber", "epsilon_insensitive",
                 "squared_epsilon_insensitive", "perceptron"):
        cases.append(Case(loss=loss, batch_size=7, options={"sample_weight": True}, tags=cuda))
    for loss, dtype in (("huber", "float64"), ("epsilon_insensitive", "float32"),
                        ("squared_hinge", "float32")):
        cases.append(Case(loss=loss, batch_size=1, dtype=dtype, options={"sample_weight": True}))
    cases += [Case(loss="perceptron", batch_size=None, options={"sample_weight": True}),
              # float32 at b = 1 on CUDA (its b = 1 cases were float64 only)
              Case(loss="logistic", batch_size=1, n=24, dtype="float32", tags=cuda),
              Case(loss="softmax", batch_size=1, n=24, dtype="float32", tags=cuda),
              # schedules at BGD
              Case(loss="squared", batch_size=None, epochs=4, options={"schedule": "step"},
                   tags=cuda),
              Case(loss="logistic", batch_size=None, epochs=3, optimizer=OPTIMIZERS[4],
                   lr=0.01, options={"schedule": "cosine"}),
              Case(loss="hinge", batch_size=None, epochs=3,
                   options={"schedule": "optimal", "penalty": "l2", "alpha": 1e-3}),
              Case(loss="squared", batch_size=None, n=30, epochs=8,
                   options={"schedule": "adaptive"})]
    return cases


def _mlp_cases():
    cases = []
    for act in ("relu", "tanh", "sigmoid"):
        for loss in ("squared", "logistic", "softmax"):
            for b in (1, 7, None):
                cases.append(Case(loss=loss, model=("mlp", (6,), act), batch_size=b, lr=0.05,
                                  tags=("cuda",) if b == 7 else ()))
    for i, opt in enumerate(OPTIMIZERS):
        cases.append(Case(loss="softmax", model=("mlp", (6, 4), "tanh"), optimizer=opt, lr=0.01,
                          tags=("cuda",) if i % 3 == 0 else ()))
    cases.append(Case(loss="softmax", model=("mlp", (6,), "relu"), dtype="float32"))
    cases.append(Case(loss="logistic", model=("mlp", (6,), "tanh"), options={"sample_weight": True,
                                                                              "penalty": "l2", "alpha": 0.01}))
    # combinations a review found no case for (twenty-ninth session): float32 beyond one
    # case, l1 and elasticnet, schedules, accumulate, CUDA beyond float64 at b = 7
    cuda = ("cuda",)
    cases += [Case(loss="logistic", model=("mlp", (6,), "tanh"), batch_size=1, dtype="float32"),
              Case(loss="squared", model=("mlp", (6,), "sigmoid"), batch_size=None,
                   dtype="float32", tags=cuda),
              Case(loss="softmax", model=("mlp", (6,), "relu"), dtype="float32", tags=cuda,
                   options={"accumulate": "float64"}),
              Case(loss="squared", model=("mlp", (6,), "tanh"), tags=cuda,
                   options={"penalty": "l1", "alpha": 0.01}),
              Case(loss="softmax", model=("mlp", (5, 3), "relu"), batch_size=4,
                   options={"penalty": "elasticnet", "alpha": 0.01, "sample_weight": True}),
              Case(loss="logistic", model=("mlp", (6,), "tanh"), tags=cuda,
                   options={"schedule": "cosine"}),
              Case(loss="squared", model=("mlp", (5,), "relu"), batch_size=None,
                   optimizer=OPTIMIZERS[4], lr=0.01, options={"sample_weight": True}, tags=cuda)]
    return cases


LINEAR_CASES = _linear_cases()
MLP_CASES = _mlp_cases()
CASES = LINEAR_CASES + MLP_CASES

# Benchmark workloads (issue W1/W2): the same Case type at large sizes.
W1 = Case(loss="logistic", n=100_000, d=100, lr=0.05, epochs=1)
W2 = Case(loss="softmax", model=("mlp", (128,), "relu"), n=20_000, d=784, k=10, dtype="float32",
          epochs=1, lr=0.05)
