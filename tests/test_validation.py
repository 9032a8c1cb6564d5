"""Bad input: one table, a clear error naming the argument, nothing modified."""
import copy
import importlib

import numpy as np
import pytest

import fastgd

rng = np.random.default_rng(0)
X0 = rng.standard_normal((20, 3))
Y_REG = rng.standard_normal(20)
Y_01 = (X0[:, 0] > 0).astype(int)


def with_value(a, index, value):
    a = np.array(a, dtype=float)
    a[index] = value
    return a


# (id, X, y, kwargs, exception, words that the message must contain)
BAD = [
    ("X-nan", with_value(X0, (4, 1), np.nan), Y_REG, {}, ValueError, ["X", "finite", "row 4, column 1"]),
    ("X-inf", with_value(X0, (0, 2), np.inf), Y_REG, {}, ValueError, ["X", "finite", "inf"]),
    ("X-1d", X0[:, 0], Y_REG, {}, ValueError, ["X", "2-D", "reshape"]),
    ("X-empty", np.empty((0, 3)), np.empty(0), {}, ValueError, ["X", "at least one sample"]),
    ("X-no-features", np.empty((20, 0)), Y_REG, {}, ValueError, ["X", "at least one", "feature"]),
    ("X-strings", np.array([["a", "b"]] * 20), Y_REG, {}, TypeError, ["X", "numeric"]),
    ("X-None", None, Y_REG, {}, TypeError, ["X", "None"]),
    ("y-nan", X0, with_value(Y_REG, 3, np.nan), {}, ValueError, ["y", "finite", "index 3"]),
    ("y-length", X0, Y_REG[:-1], {}, ValueError, ["y", "length", "20", "19"]),
    ("y-2d", X0, Y_REG[:, None], {}, ValueError, ["y", "1-D", "ravel"]),
    ("batch-zero", X0, Y_REG, {"batch_size": 0}, ValueError, ["batch_size", "[1, n_samples=20]", "0"]),
    ("batch-above-n", X0, Y_REG, {"batch_size": 21}, ValueError, ["batch_size", "21"]),
    ("batch-float", X0, Y_REG, {"batch_size": 2.5}, TypeError, ["batch_size", "integer", "2.5"]),
    ("lr-zero", X0, Y_REG, {"lr": 0.0}, ValueError, ["learning rate", "lr=0.0", "> 0"]),
    ("lr-negative", X0, Y_REG, {"lr": -1.0}, ValueError, ["learning rate", "-1.0"]),
    ("lr-nan", X0, Y_REG, {"lr": float("nan")}, ValueError, ["learning rate", "nan"]),
    ("epochs-zero", X0, Y_REG, {"epochs": 0}, ValueError, ["epochs", ">= 1", "0", "epochs=1"]),
    ("epochs-float", X0, Y_REG, {"epochs": 1.5}, TypeError, ["epochs", "integer"]),
    ("loss-unknown", X0, Y_REG, {"loss": "cubic"}, ValueError, ["loss", "'cubic'", "logistic"]),
    ("backend-unknown", X0, Y_REG, {"backend": "fortran"}, ValueError, ["backend", "'fortran'", "cython"]),
    ("optimizer-unknown", X0, Y_REG, {"optimizer": "lbfgs"}, ValueError, ["optimizer", "'lbfgs'", "adam"]),
    ("optimizer-type", X0, Y_REG, {"optimizer": 3}, TypeError, ["optimizer", "int"]),
    ("logistic-labels", X0, 2 * Y_01 - 1, {"loss": "logistic"}, ValueError, ["y", "logistic", "0 or 1", "-1"]),
    ("softmax-negative", X0, Y_01 - 1, {"loss": "softmax"}, ValueError, ["y", "softmax", "0..K-1"]),
    ("softmax-fraction", X0, Y_01 + 0.5, {"loss": "softmax"}, ValueError, ["y", "integers"]),
    ("hinge-labels", X0, 2 * Y_01, {"loss": "hinge"}, ValueError, ["y", "hinge", "-1/+1 or 0/1"]),
    ("weights-negative", X0, Y_REG, {"sample_weight": with_value(np.ones(20), 5, -1.0)}, ValueError,
     ["sample_weight", ">= 0", "index 5"]),
    ("weights-length", X0, Y_REG, {"sample_weight": np.ones(19)}, ValueError, ["sample_weight", "(19,)"]),
    ("weights-nan", X0, Y_REG, {"sample_weight": with_value(np.ones(20), 0, np.nan)}, ValueError,
     ["sample_weight", "finite"]),
    ("penalty-unknown", X0, Y_REG, {"penalty": "l3"}, ValueError, ["penalty", "'l3'", "elasticnet"]),
    ("alpha-negative", X0, Y_REG, {"penalty": "l2", "alpha": -0.1}, ValueError,
     ["alpha", "-0.1", ">= 0", "alpha=1e-4"]),
    ("alpha-inf", X0, Y_REG, {"penalty": "l2", "alpha": np.inf}, ValueError, ["alpha", "inf", "finite"]),
    ("init-list-pair", X0, Y_REG, {"init": [np.zeros(3), 0.5]}, ValueError,
     ["init", "tuple", "init=(coef, intercept)"]),
    ("alpha-missing", X0, Y_REG, {"penalty": "l2"}, ValueError,
     ["alpha", "None", "penalty='l2'", "nothing", "alpha=1e-4"]),
    ("l1-ratio", X0, Y_REG, {"penalty": "elasticnet", "l1_ratio": 2.0}, ValueError,
     ["l1_ratio", "2.0", "[0, 1]", "0: all l2, 1: all l1"]),
    ("sampling-unknown", X0, Y_REG, {"sampling": "stratified"}, ValueError,
     ["sampling", "'stratified'", "replacement", "the default"]),
    ("replacement-drop-last", X0, Y_REG, {"sampling": "replacement", "batch_size": 3, "drop_last": True},
     ValueError, ["drop_last=True", "sampling='replacement'", "ignored"]),
    ("replacement-no-shuffle", X0, Y_REG, {"sampling": "replacement", "shuffle": False}, ValueError,
     ["shuffle=False", "sampling='replacement'"]),
    ("dtype-int", X0, Y_REG, {"dtype": np.int32}, TypeError, ["dtype", "float32 or float64"]),
    ("schedule-unknown", X0, Y_REG, {"schedule": "linear"}, ValueError, ["schedule", "'linear'", "cosine"]),
    ("schedule-negative", X0, Y_REG, {"schedule": lambda t: 1.0 - 0.25 * t, "batch_size": 1}, ValueError,
     ["schedule", "lr=-0.25", "iteration 5", ">= 0"]),
    ("optimal-needs-alpha", X0, Y_REG, {"schedule": "optimal"}, ValueError,
     ["alpha", "not given", "optimal", "> 0", "alpha=1e-4"]),
    ("optimal-alpha-zero", X0, Y_REG, {"schedule": "optimal", "alpha": 0.0}, ValueError,
     ["alpha", "0.0", "optimal", "> 0"]),
    ("model-type", X0, Y_REG, {"model": "mlp"}, TypeError, ["model", "fastgd.MLP"]),
    ("mlp-loss", X0, Y_REG, {"model": fastgd.MLP((3,)), "loss": "hinge"}, ValueError, ["loss", "MLP"]),
    ("init-shape", X0, Y_REG, {"init": np.zeros(5)}, ValueError,
     ["init", "shape", "(3,)", "(5,)", "init=(coef, intercept)"]),
    ("init-with-intercept", X0, Y_REG, {"init": np.zeros(4)}, ValueError,
     ["init", "(3,)", "(4,)", "intercept apart", "init=(coef, intercept)"]),
    ("X-3d", X0.reshape(20, 3, 1), Y_REG, {}, ValueError, ["X", "2-D", "(20, 3, 1)", "reshape"]),
    ("init-text", X0, Y_REG, {"init": "abc"}, ValueError, ["init", "real numbers"]),
    ("init-ragged", X0, Y_REG, {"init": [np.zeros(3), 0.0]}, ValueError, ["init", "coef", "cannot be read"]),
    ("init-intercept-shape", X0, Y_REG, {"init": (np.zeros(3), np.zeros(3))}, ValueError,
     ["init", "intercept", "(3,)"]),
    ("init-complex", X0, Y_REG, {"init": np.zeros(3) + 1j}, ValueError, ["init", "real numbers"]),
    ("mlp-init-pair", X0, Y_REG, {"model": fastgd.MLP((4,)), "init": [(np.zeros((3, 4)),),
                                                                       (np.zeros((4, 1)), np.zeros(1))]},
     ValueError, ["init", "layer 0", "pair (W, b)"]),
    ("mlp-no-intercept", X0, Y_REG, {"model": fastgd.MLP((3,)), "fit_intercept": False}, ValueError,
     ["fit_intercept", "MLP", "bias"]),
    ("X-ragged", [[1.0, 2.0], [3.0]], [1.0, 2.0], {}, ValueError, ["X", "cannot be read", "equal length"]),
    ("X-timedelta", np.ones((20, 3), "timedelta64[s]"), Y_REG, {}, TypeError, ["X", "numeric", "timedelta"]),
    ("dtype-unknown", X0, Y_REG, {"dtype": "foo"}, TypeError, ["dtype", "'foo'", "float32 or float64"]),
    ("dtype-number", X0, Y_REG, {"dtype": 1.5}, TypeError, ["dtype", "1.5"]),
    ("seed-negative", X0, Y_REG, {"seed": -1}, ValueError, ["seed", "-1", "integer >= 0"]),
    ("seed-generator", X0, Y_REG, {"seed": np.random.default_rng(0)}, TypeError,
     ["seed", "Generator", "SeedSequence", "is refused", "the integer you seeded it with"]),
    ("softmax-huge-label", X0, with_value(Y_01, 0, 1e9), {"loss": "softmax"}, ValueError,
     ["y", "1000000000", "classes", "20 samples", "0..K-1"]),
    ("weights-all-zero", X0, Y_REG, {"sample_weight": np.zeros(20)}, ValueError,
     ["sample_weight", "every weight is 0"]),
    ("schedule-zero", X0, Y_REG, {"schedule": 0}, ValueError, ["schedule", "0", "> 0"]),
    ("schedule-text", X0, Y_REG, {"schedule": lambda t: "a"}, TypeError,
     ["schedule", "iteration 0", "'a'", "real number"]),
    # a vectorised schedule's values had been cast: t < 3 ran as step sizes 1.0 and 0.0
    ("schedule-bools", X0, Y_REG, {"schedule": lambda t: t < 3, "batch_size": 4}, TypeError,
     ["schedule", "bool", "True", "iteration 0", "real numbers"]),
    ("schedule-complex", X0, Y_REG, {"schedule": lambda t: np.full(np.shape(t), 0.1 + 1j)},
     TypeError, ["schedule", "complex128", "real numbers"]),
    ("schedule-class", X0, Y_REG, {"schedule": fastgd.schedules.Cosine}, TypeError,
     ["schedule", "Cosine is a class", "schedule=fastgd.schedules.Cosine(...)"]),
    ("penalty-array", X0, Y_REG, {"penalty": np.array(["l2", "l1"])}, ValueError,
     ["penalty", "'l2', 'l1' or 'elasticnet'"]),
    ("sampling-array", X0, Y_REG, {"sampling": np.array(["shuffle", "replacement"])}, ValueError,
     ["sampling", "['shuffle', 'replacement']"]),
    ("X-masked", np.ma.masked_array(X0, mask=X0 > 1.5), Y_REG, {}, ValueError,
     ["X", "masked entries", "X.filled(value)"]),
]


@pytest.mark.parametrize("X,y,kwargs,exc,words", [pytest.param(*row[1:], id=row[0]) for row in BAD])
def test_bad_input_gets_a_clear_error_and_nothing_is_modified(X, y, kwargs, exc, words):
    copies = [copy.deepcopy(a) for a in (X, y, kwargs.get("sample_weight")) if a is not None]
    with pytest.raises(exc) as info:
        fastgd.fit(X, y, **{"backend": "numpy", **kwargs})
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"
    after = [a for a in (X, y, kwargs.get("sample_weight")) if a is not None]
    for before, now in zip(copies, after):
        if isinstance(before, list):  # a ragged list: compared as the list it is
            assert now == before
        else:
            np.testing.assert_array_equal(np.asarray(now), before)


def test_an_explicit_softmax_init_keeps_its_classes_on_data_that_lacks_some():
    coef, intercept = np.arange(9.0).reshape(3, 3) / 10, np.array([0.1, -0.2, 0.3])
    y = Y_01  # classes 0 and 1 only
    r = fastgd.fit(X0, y, loss="softmax", init=(coef, intercept), epochs=1, batch_size=5,
                   seed=0, backend="numpy")
    assert r.coef.shape == (3, 3) and r.predict_proba(X0).shape == (20, 3)
    # a class-2 column from init keeps moving: its softmax probability is pushed down
    assert not np.array_equal(r.coef[:, 2], coef[:, 2])
    with pytest.raises(ValueError, match=r"coef must have shape \(3, 4\)"):
        fastgd.fit(X0, np.arange(20) % 4, loss="softmax", init=coef, backend="numpy")


def test_a_schedule_may_return_an_object_array_of_numbers():
    """np.frompyfunc vectorises a scalar function into object arrays: real numbers in one
    are step sizes, anything else is named (a bare AttributeError had come out)."""
    step = np.frompyfunc(lambda t: 0.01 / (1 + t), 1, 1)
    a = fastgd.fit(X0, Y_REG, schedule=step, batch_size=4, seed=0, backend="numpy")
    b = fastgd.fit(X0, Y_REG, schedule=lambda t: 0.01 / (1 + np.asarray(t)), batch_size=4,
                   seed=0, backend="numpy")
    np.testing.assert_array_equal(a.coef, b.coef)
    with pytest.raises(TypeError, match=r"None at iteration 2"):
        fastgd.fit(X0, Y_REG, schedule=np.frompyfunc(lambda t: 0.1 if t < 2 else None, 1, 1),
                   batch_size=4, backend="numpy")


def test_optimizer_copy_refuses_a_setting_it_does_not_have():
    sgd = fastgd.optim.SGD(lr=0.1)
    assert sgd.copy(momentum=0.9).momentum == 0.9
    with pytest.raises(TypeError) as info:
        sgd.copy(momentun=0.9)  # a typo had been kept and ignored
    for word in ("momentun", "SGD", "'momentum'"):
        assert word in str(info.value)


def test_callers_arrays_are_untouched_by_a_fit():
    X = X0.astype(np.float64)  # already the kernel's dtype and layout: no conversion copy
    y, sw = Y_REG.copy(), np.linspace(0.5, 2, 20)
    before = (X.copy(), y.copy(), sw.copy())
    for backend in fastgd.available_backends():
        if backend == "cuda":
            continue
        fastgd.fit(X, y, sample_weight=sw, batch_size=3, epochs=2, lr=0.1, backend=backend)
        for a, b in zip((X, y, sw), before):
            np.testing.assert_array_equal(a, b)


def test_nan_check_reads_x_once_without_a_temporary(monkeypatch):
    """The finite check uses X.sum(); the blockwise scan runs only when the sum is not finite."""
    from fastgd import validation

    calls = []
    monkeypatch.setattr(validation, "_first_nonfinite", lambda A: calls.append(A.shape))
    validation.check_finite("X", np.ones((1000, 10)))
    assert calls == []


def _custom_model():
    from numba import njit

    @njit
    def line(params, x, y, grad_out):
        r = params[0] * x[0] + params[1] - y
        grad_out[0] = r * x[0]
        grad_out[1] = r
        return 0.5 * r * r

    @njit
    def line_predict(params, x):
        return params[0] * x[0] + params[1]

    return fastgd.CustomModel(line, init=np.zeros(2), predict=line_predict)


@pytest.mark.parametrize("kwargs,words", [
    ({"penalty": "l2", "alpha": 1.0}, ["penalty", "CustomModel", "fn"]),
    ({"fit_intercept": False}, ["fit_intercept", "CustomModel"]),
    ({"loss": "softmax"}, ["loss", "CustomModel", "'softmax'"]),
])
def test_options_a_custom_model_has_no_use_for_are_refused(kwargs, words):
    pytest.importorskip("numba")
    with pytest.raises(ValueError) as info:
        fastgd.fit(X0, Y_REG, model=_custom_model(), backend="numpy", **kwargs)
    for word in words:
        assert word in str(info.value)


def test_a_float32_custom_model_predicts_in_float32():
    pytest.importorskip("numba")
    X32 = X0.astype(np.float32)
    res = fastgd.fit(X32, Y_REG, model=_custom_model(), backend="numpy")
    assert res.params[0].dtype == np.float32 and res.predict(X32).dtype == np.float32


def test_float_dtypes_of_either_byte_order_are_float32_and_float64():
    assert fastgd.fit(X0.astype(">f4"), Y_REG, backend="numpy").coef.dtype == np.float32
    assert fastgd.fit(X0, Y_REG, dtype=">f4", backend="numpy").coef.dtype == np.float32
    assert fastgd.fit(X0.astype(">f8"), Y_REG, backend="numpy").coef.dtype == np.float64


def test_score_checks_y():
    res = fastgd.fit(X0, Y_REG, backend="numpy")
    with pytest.raises(ValueError, match="ravel"):
        res.score(X0, Y_REG[:, None])  # would broadcast to (n, n)
    with pytest.raises(ValueError, match="length must equal the number of rows of X"):
        res.score(X0[:10], Y_REG)
    with pytest.raises(TypeError, match="y"):
        res.score(X0, None)
    with pytest.raises(ValueError, match="finite"):
        res.score(X0, with_value(Y_REG, 2, np.nan))


@pytest.mark.parametrize("make,exc,words", [
    (lambda: fastgd.optim.SGD(lr=0.1, momentum="a"), TypeError, ["momentum", "'a'", "number"]),
    (lambda: fastgd.optim.SGD(lr=0.1, momentum=None), TypeError, ["momentum", "None"]),
    (lambda: fastgd.optim.SGD(lr=0.1, momentum=0.9, nesterov="no"), TypeError,
     ["nesterov", "'no'", "True or False"]),
    (lambda: fastgd.optim.Adam(amsgrad="no"), TypeError, ["amsgrad", "True or False"]),
    (lambda: fastgd.optim.RMSprop(centered=1), TypeError, ["centered", "True or False"]),
    (lambda: fastgd.optim.Adam(betas=0.9), TypeError, ["betas", "pair"]),
    (lambda: fastgd.optim.Adam(weight_decay="x"), TypeError, ["weight_decay", "'x'"]),
    (lambda: fastgd.schedules.StepDecay(0.1, 1.5), TypeError, ["step_size", "1.5", "integer"]),
    (lambda: fastgd.schedules.StepDecay(0.1, None), TypeError, ["step_size", "None"]),
    (lambda: fastgd.schedules.Constant(-1), ValueError, ["learning rate", "lr=-1.0", "> 0"]),
    (lambda: fastgd.schedules.Constant("a"), TypeError, ["lr", "'a'"]),
    (lambda: fastgd.schedules.Exponential(0.1, 0.5, 0), ValueError, ["transition_steps", "(0.0, inf)"]),
    (lambda: fastgd.schedules.Cosine(0.1, 10, alpha=-1), ValueError, ["alpha", "-1.0", "[0.0, inf)"]),
    (lambda: fastgd.schedules.Adaptive(0.1, n_iter_no_change=0), ValueError, ["n_iter_no_change", ">= 1"]),
    (lambda: fastgd.schedules.Adaptive(0.1, tol=float("nan")), ValueError, ["tol", "nan"]),
    (lambda: fastgd.schedules.Warmup(0.1, 2, after=5), TypeError, ["after", "callable"]),
    (lambda: fastgd.MLP((3,), activation=["relu"]), ValueError, ["activation", "['relu']"]),
    (lambda: fastgd.iterations_per_epoch(10, 0), ValueError, ["batch_size", "0"]),
    (lambda: fastgd.iterations_per_epoch(-1, 2), ValueError, ["n", "-1", ">= 1"]),
    (lambda: fastgd.iterations_per_epoch(10, 2.5), TypeError, ["batch_size", "2.5"]),
    (lambda: fastgd.iterations_per_epoch(10, 3, sampling="foo"), ValueError, ["sampling", "'foo'"]),
    (lambda: list(fastgd.batch_order(0, 1, 1, 0)), ValueError, ["n", "0", ">= 1"]),
    (lambda: list(fastgd.batch_order(5.0, 1, 1, 0)), TypeError, ["n", "5.0"]),
    (lambda: list(fastgd.batch_order(5, 1, 1, 0, shuffle="x")), TypeError, ["shuffle", "'x'"]),
    (lambda: list(fastgd.batch_order(5, 1, 1, seed=-1)), ValueError, ["seed", "-1"]),
    (lambda: fastgd.sgd(X0, Y_REG, batch_size=np.array([1, 1])), ValueError, ["batch_size", "sgd"]),
    (lambda: fastgd.bgd(X0, Y_REG, batch_size=5), ValueError, ["batch_size", "bgd", "5", "mbgd"]),
    # None would have run BGD under mbgd's name
    (lambda: fastgd.mbgd(X0, Y_REG, None), ValueError, ["batch_size", "mbgd", "None", "call bgd"]),
    # at the call, not at the first next(): a bad argument names itself where it was passed
    (lambda: fastgd.batch_order(0, 1, 1, 0), ValueError, ["n", "0", ">= 1"]),
    (lambda: fastgd.batch_order(5, 1, 1, 0, shuffle="x"), TypeError, ["shuffle", "'x'"]),
    (lambda: fastgd.losses.Huber(epsilon="a"), TypeError, ["epsilon", "'a'", "number"]),
    (lambda: fastgd.losses.Huber(epsilon="0.5"), TypeError, ["epsilon", "'0.5'", "number"]),
    (lambda: fastgd.losses.EpsilonInsensitive(epsilon=True), TypeError, ["epsilon", "True"]),
    (lambda: fastgd.MLP(hidden=None), TypeError, ["hidden", "None", "hidden=(64,)"]),
    (lambda: fastgd.fit(X0, Y_REG, seed=True, backend="numpy"), TypeError, ["seed", "True"]),
    (lambda: fastgd.fit(X0, Y_REG, epochs=3, callback=lambda r: "no", backend="numpy"), TypeError,
     ["callback return value", "'no'", "return True to stop"]),
    (lambda: fastgd.fit(X0, Y_REG, alpha=0.1, backend="numpy"), ValueError,
     ["alpha", "0.1", "penalty=None", "penalty='l2'"]),
    (lambda: fastgd.fit(X0, Y_REG, optimizer=fastgd.optim.Adam(lr=0.01), lr=0.1, backend="numpy"),
     ValueError, ["lr", "0.1", "0.01", "once"]),
])
def test_constructors_and_helpers_name_the_bad_argument(make, exc, words):
    with pytest.raises(exc) as info:
        make()
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


def test_helpers_still_count_as_before():
    assert fastgd.iterations_per_epoch(500, 10) == 50
    assert fastgd.iterations_per_epoch(500, None) == 1
    assert fastgd.iterations_per_epoch(10, 3, drop_last=True) == 3


# -- the kernels' Python entries: a row outside X is an error, not a read outside it --------

def _kernel_modules(kind):
    import importlib

    names = {"numpy": f"fastgd.reference.{kind}", "cython": f"fastgd.kernels.cy.{kind}",
             "numba": f"fastgd.kernels.nb.{kind}"}
    # imported, not skipped when missing: the build provides all three
    return [pytest.param(importlib.import_module(name), id=backend)
            for backend, name in names.items()]


BAD_ORDERS = [  # (order, n_batches, words)
    (np.r_[np.arange(19), 10**9], 4, ["order", "1000000000", "position 19", "20 rows"]),
    (np.r_[-3, np.arange(1, 20)], 4, ["order", "-3", "position 0"]),
    (np.arange(20), 5, ["n_batches", "5", "0..4 batches of 5"]),
]


@pytest.mark.parametrize("order,n_batches,words", BAD_ORDERS)
@pytest.mark.parametrize("mod", _kernel_modules("linear_epoch"))
def test_linear_kernels_check_their_rows(mod, order, n_batches, words):
    from fastgd.kernels import ids

    theta, grad, state = np.zeros(4), np.zeros(4), np.zeros((1, 4))
    with pytest.raises(ValueError) as info:
        mod.linear_epoch(X0, Y_REG, np.empty(0), order, 5, n_batches, ids.LOSS_SQUARED, 0.0, 1,
                         True, 0.0, 0.0, ids.RULE_SGD, np.zeros(4), np.full(5, 0.1), 0, theta,
                         grad, state, np.zeros(5))
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"
    assert not theta.any()  # refused before any update
    if "order" in words:
        with pytest.raises(ValueError, match="Invalid rows"):
            mod.linear_batch_gradient(X0, Y_REG, np.empty(0), order, ids.LOSS_SQUARED, 0.0, 1,
                                      True, theta, grad, 0.05)


@pytest.mark.parametrize("order,n_batches,words", BAD_ORDERS)
@pytest.mark.parametrize("mod", _kernel_modules("mlp_epoch"))
def test_mlp_kernels_check_their_rows(mod, order, n_batches, words):
    from fastgd.kernels import ids

    sizes = np.array([3, 4, 1], dtype=np.int64)
    P = 3 * 4 + 4 + 4 + 1
    theta = np.full(P, 0.1)
    work = np.zeros(mod.mlp_workspace_size(sizes, 20))
    with pytest.raises(ValueError) as info:
        mod.mlp_epoch(X0, Y_REG, np.empty(0), order, 5, n_batches, ids.LOSS_SQUARED, sizes,
                      ids.ACT_RELU, 0.0, 0.0, ids.RULE_SGD, np.zeros(4), np.full(5, 0.1), 0,
                      theta, np.zeros(P), np.zeros((1, P)), np.zeros(5), work)
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"
    assert (theta == 0.1).all()


# Every other argument the compiled loops trust (docs/kernels.md, kernels/checks.py): a
# wrong one is a clear error on every CPU backend, never a read or write outside an array.
# (name of the argument to replace, its bad value, error type, words the message holds)
_ADAM = 1
BAD_EPOCH_ARGS = [
    ("state", np.zeros((1, 4)), ValueError, ["state", "(1, 4)", "keeps 3 rows", "(3, 4)"]),
    ("state", np.zeros(4), ValueError, ["state", "(4,)"]),
    ("hyper", np.array([0.9]), ValueError, ["hyper", "needs 5 values"]),
    # each value in torch.optim's range: these made every parameter NaN or inf
    ("hyper", np.array([np.nan, 0.999, 1e-8, 0, 0]), ValueError, ["hyper[0] (beta1)", "nan"]),
    ("hyper", np.array([0.9, 1.0, 1e-8, 0, 0]), ValueError, ["hyper[1] (beta2)", "1.0", "[0, 1)"]),
    ("hyper", np.array([0.9, 0.999, -1e-8, 0, 0]), ValueError, ["hyper[2] (eps)", "[0, inf)"]),
    ("hyper", np.array([0.9, 0.999, 1e-8, 0, 0.5]), ValueError, ["hyper[4] (amsgrad)", "flag"]),
    ("rule_id", 9, ValueError, ["rule_id", "9", "RULE_"]),
    ("loss_id", 42, ValueError, ["loss_id", "42", "LOSS_"]),
    ("n_outputs", 0, ValueError, ["n_outputs", "0", "must be 1"]),
    ("n_outputs", 2, ValueError, ["n_outputs", "2", "must be 1"]),
    ("y", np.zeros(3), ValueError, ["y", "(3,)", "(20,)"]),
    ("sw", np.ones(2), ValueError, ["sw", "(2,)", "(20,)", "(0,)"]),
    ("theta", np.zeros(3), ValueError, ["theta", "(3,)", "(4,)"]),
    ("grad", np.zeros(9), ValueError, ["grad", "(9,)", "(4,)"]),
    ("grad", np.zeros(4, np.float32), TypeError, ["grad", "float32", "theta's dtype"]),
    ("lrs", np.ones(2), ValueError, ["lrs", "4 batches"]),
    ("lrs", np.array([0.1, 0.1, np.nan, 0.1]), ValueError, ["lrs", "nan", "position 2", ">= 0"]),
    ("lrs", np.array([0.1, -0.1, 0.1, 0.1]), ValueError, ["lrs", "-0.1", "position 1"]),
    ("batch_loss", np.zeros(2), ValueError, ["batch_loss", "n_batches=4"]),
    ("order", np.arange(20.0), TypeError, ["order", "float64", "integer"]),
    ("order", np.arange(20) % 2 == 0, TypeError, ["order", "bool", "integer"]),
    ("step0", -1, ValueError, ["step0", "-1", ">= 0"]),  # Adam: a NaN step, not an error
    ("step0", 0.5, ValueError, ["step0", "0.5"]),  # a count, not truncated
    ("batch_size", 2.5, ValueError, ["batch_size", "2.5", "integer"]),  # was truncated to 2
    ("n_batches", True, ValueError, ["n_batches", "True", "integer"]),
    ("batch_loss", np.zeros(8)[::2], ValueError, ["batch_loss", "C-contiguous"]),
    ("y", np.array(list("abcdefghijklmnopqrst"), dtype=object), TypeError,
     ["y", "object", "real numbers"]),
    ("hyper", ["0.9", "0.999", "1e-8", "0", "0"], TypeError, ["hyper", "<U", "real numbers"]),
    # X is read in place: Cython refused a strided one, numba compiled a kernel for it
    ("X", np.asfortranarray(X0), ValueError, ["X", "C-contiguous", "np.ascontiguousarray"]),
    # a code is an integer: True == 1 had run as logistic, 1.0 as Adam
    ("loss_id", True, ValueError, ["loss_id", "True", "LOSS_", "a bool is refused"]),
    ("rule_id", 1.0, ValueError, ["rule_id", "1.0", "RULE_"]),
    ("n_outputs", 1.0, ValueError, ["n_outputs", "1.0", "integer"]),
    # the scalars are numbers in their range (a string had failed in float(), unnamed)
    ("alpha", -0.1, ValueError, ["alpha", "-0.1", ">= 0"]),
    ("alpha", "x", TypeError, ["alpha", "'x'", "real number"]),
    ("l1_ratio", 1.5, ValueError, ["l1_ratio", "1.5", "[0, 1]"]),
    ("loss_param", np.nan, ValueError, ["loss_param", "nan", "finite"]),
    ("loss_param", "0.1", TypeError, ["loss_param", "'0.1'", "real number"]),
    # counts fit in int64: Cython ran Adam's overflowed step count into NaN weights, numba
    # raised a bare OverflowError after two updates
    ("step0", 2**63, ValueError, ["step0", "2**63 - 1"]),
    ("step0", 2**63 - 3, ValueError, ["step0", "step0 + n_batches", "2**63 - 1"]),
    ("step0", np.int64(2**63 - 3), ValueError, ["step0", "2**63 - 1"]),  # (a NumPy sum wraps)
    ("batch_size", 2**64, ValueError, ["batch_size", "2**63 - 1"]),
]


def _epoch_args(**changes):
    from fastgd.kernels import ids

    args = dict(X=X0, y=Y_REG, sw=np.empty(0), order=np.arange(20), batch_size=5, n_batches=4,
                loss_id=ids.LOSS_SQUARED, loss_param=0.0, n_outputs=1, fit_intercept=True,
                alpha=0.0, l1_ratio=0.0, rule_id=_ADAM, hyper=np.array([0.9, 0.999, 1e-8, 0, 0]),
                lrs=np.full(4, 0.1), step0=0, theta=np.full(4, 0.5), grad=np.zeros(4),
                state=np.zeros((3, 4)), batch_loss=np.zeros(4))
    args.update(changes)
    return args


@pytest.mark.parametrize("name,value,error,words", BAD_EPOCH_ARGS,
                         ids=[f"{a[0]}-{i}" for i, a in enumerate(BAD_EPOCH_ARGS)])
@pytest.mark.parametrize("mod", _kernel_modules("linear_epoch"))
def test_linear_kernels_check_every_argument(mod, name, value, error, words):
    args = _epoch_args(**{name: value})
    theta = args["theta"] if name != "theta" else np.full(4, 0.5)
    with pytest.raises(error) as info:
        mod.linear_epoch(**args)
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"
    assert (theta == 0.5).all()  # refused before any update
    gradient_args = {k: args[k] for k in ("X", "y", "sw", "loss_id", "loss_param", "n_outputs",
                                          "fit_intercept", "theta", "grad")}
    if name in gradient_args or name == "order":
        gradient_args["rows"] = args["order"]
        with pytest.raises(error):
            mod.linear_batch_gradient(scale=0.2, **gradient_args)
    update = getattr(importlib.import_module(mod.__name__.replace("linear_epoch", "updates")),
                     "apply_update")
    if name in ("state", "hyper", "rule_id", "theta", "grad"):
        with pytest.raises(error):
            update(args["rule_id"], args["hyper"], args["theta"], args["grad"], args["state"],
                   0.1, 1)
    good = _epoch_args()
    for lr, step, word, err in ((0.1, 0, "step", ValueError), (-0.1, 1, "lr", ValueError),
                                (np.inf, 1, "lr", ValueError), (0.1, 2**63, "step", ValueError),
                                ("0.1", 1, "lr", TypeError), (None, 1, "lr", TypeError)):
        with pytest.raises(err, match=f"Invalid {word}"):
            update(good["rule_id"], good["hyper"], good["theta"], good["grad"], good["state"],
                   lr, step)
    assert (theta == 0.5).all()


@pytest.mark.parametrize("mod", _kernel_modules("linear_epoch"))
def test_kernels_refuse_a_negative_epsilon(mod):
    """Huber and the epsilon-insensitive losses take epsilon >= 0 (a negative one had given
    negative losses on every backend); the other losses ignore loss_param."""
    from fastgd.kernels import ids

    for loss_id in (ids.LOSS_HUBER, ids.LOSS_EPSILON_INSENSITIVE,
                    ids.LOSS_SQUARED_EPSILON_INSENSITIVE):
        args = _epoch_args(loss_id=loss_id, loss_param=-0.5)
        with pytest.raises(ValueError, match=r"Invalid loss_param: -0\.5.*>= 0"):
            mod.linear_epoch(**args)
        with pytest.raises(ValueError, match=r"Invalid loss_param: -0\.5.*>= 0"):
            mod.linear_batch_gradient(args["X"], args["y"], args["sw"], args["order"], loss_id,
                                      -0.5, 1, True, args["theta"], args["grad"], 0.2)
        assert (args["theta"] == 0.5).all()
    assert mod.linear_epoch(**_epoch_args(loss_param=-0.5)) == 4  # squared: unused


@pytest.mark.parametrize("mod", _kernel_modules("linear_epoch"))
def test_kernels_refuse_outputs_that_share_memory_with_another_argument(mod):
    """An alias (grad=theta, a state row as grad, batch_loss over lrs) is read after being
    written: silently wrong, and differently on each backend (it ran on all three)."""
    def refused(names, call):
        with pytest.raises(ValueError) as info:
            call()
        for word in (*names, "shares memory", "separate arrays"):
            assert word in str(info.value), f"{word!r} missing from: {info.value}"

    for names, make in ((("theta", "grad"), lambda a: dict(grad=a["theta"])),
                        (("grad", "state"), lambda a: dict(grad=a["state"][1])),
                        (("batch_loss", "lrs"), lambda a: dict(batch_loss=a["lrs"]))):
        args = _epoch_args()
        args.update(make(args))
        refused(names, lambda: mod.linear_epoch(**args))
        assert (args["theta"] == 0.5).all()
    a = _epoch_args()
    refused(("grad", "theta"), lambda: mod.linear_batch_gradient(
        X0, Y_REG, np.empty(0), np.arange(5), a["loss_id"], 0.0, 1, True, a["theta"], a["theta"],
        0.2))
    refused(("grad", "theta"), lambda: mod.add_penalty(a["theta"], a["theta"], 3, 0.1, 0.0))
    # rows read while grad is written: a view of grad as rows had segfaulted both compiled
    # backends (the kernel overwrote its own indices)
    grad = np.zeros(64)
    rows = grad.view(np.int64)[:5]
    refused(("grad", "rows"), lambda: mod.linear_batch_gradient(
        np.ones((20, 63)), Y_REG, np.empty(0), rows, a["loss_id"], 0.0, 1, True, np.zeros(64),
        grad, 0.2))
    update = importlib.import_module(mod.__name__.replace("linear_epoch", "updates")).apply_update
    refused(("theta", "grad"), lambda: update(a["rule_id"], a["hyper"], a["theta"], a["theta"],
                                              a["state"], 0.1, 1))


@pytest.mark.parametrize("mod", _kernel_modules("linear_epoch"))
def test_kernels_read_labels_weights_and_hyper_parameters_of_any_real_dtype(mod):
    """y and sw in X's dtype, hyper and lrs as float64, sw=None as no weights: the same
    result from integer labels, a list, None, as from the float arrays (numba had failed to
    compile on them, or compiled a new kernel for each dtype)."""
    def run(**changes):
        args = _epoch_args(**changes)
        mod.linear_epoch(**args)
        return args["theta"]

    y_int = np.round(Y_REG * 3).astype(np.int64)
    want = run(y=y_int.astype(np.float64))
    np.testing.assert_array_equal(run(y=y_int), want)
    np.testing.assert_array_equal(run(y=y_int.astype(np.float64), sw=None), want)
    np.testing.assert_array_equal(run(y=y_int.astype(np.float64), hyper=[0.9, 0.999, 1e-8, 0, 0],
                                      lrs=[0.1] * 4), want)
    read_only = np.zeros(4)
    read_only.flags.writeable = False  # apply_update only reads grad
    update = importlib.import_module(mod.__name__.replace("linear_epoch", "updates")).apply_update
    update(_ADAM, np.array([0.9, 0.999, 1e-8, 0, 0]), np.ones(4), read_only, np.zeros((3, 4)),
           0.1, 1)


@pytest.mark.parametrize("mod", _kernel_modules("linear_epoch"))
def test_softmax_labels_reaching_the_kernels_are_class_indices(mod):
    from fastgd.kernels import ids

    K = 3
    for bad, words in ((3.0, ["y", "3.0", "0..2"]), (-1.0, ["-1.0"]), (1.5, ["1.5"]),
                       (np.nan, ["nan"])):
        y = np.arange(20) % K * 1.0
        y[7] = bad
        P = 3 * K + K
        args = _epoch_args(y=y, loss_id=ids.LOSS_SOFTMAX, n_outputs=K, theta=np.full(P, 0.5),
                           grad=np.zeros(P), state=np.zeros((3, P)))
        with pytest.raises(ValueError) as info:
            mod.linear_epoch(**args)
        for word in words + ["position 7"]:
            assert word in str(info.value), f"{word!r} missing from: {info.value}"
        with pytest.raises(ValueError):
            mod.linear_batch_gradient(X0, y, np.empty(0), np.arange(5, 10), ids.LOSS_SOFTMAX,
                                      0.0, K, True, args["theta"], args["grad"], 0.2)
        assert (args["theta"] == 0.5).all()
    with pytest.raises(ValueError, match="n_outputs"):
        mod.linear_epoch(**_epoch_args(loss_id=ids.LOSS_SOFTMAX, n_outputs=1))


@pytest.mark.parametrize("mod", _kernel_modules("linear_epoch"))
def test_add_penalty_checks_its_range(mod):
    with pytest.raises(ValueError, match="n_penalized"):
        mod.add_penalty(np.ones(4), np.zeros(4), 9, 0.1, 0.0)
    with pytest.raises(ValueError, match="n_penalized: 2.5"):  # was truncated to 2
        mod.add_penalty(np.ones(4), np.zeros(4), 2.5, 0.1, 0.0)
    with pytest.raises(ValueError, match="grad"):
        mod.add_penalty(np.ones(4), np.zeros(2), 3, 0.1, 0.0)


@pytest.mark.parametrize("mod", _kernel_modules("mlp_epoch"))
def test_mlp_kernels_check_every_argument(mod):
    from fastgd.kernels import ids

    sizes = np.array([3, 4, 1], dtype=np.int64)
    P = 3 * 4 + 4 + 4 + 1
    good = dict(X=X0, y=Y_REG, sw=np.empty(0), order=np.arange(20), batch_size=5, n_batches=4,
                loss_id=ids.LOSS_SQUARED, layer_sizes=sizes, activation_id=ids.ACT_RELU,
                alpha=0.0, l1_ratio=0.0, rule_id=ids.RULE_SGD, hyper=np.zeros(4),
                lrs=np.full(4, 0.1), step0=0, theta=np.full(P, 0.1), grad=np.zeros(P),
                state=np.zeros((1, P)), batch_loss=np.zeros(4),
                work=np.zeros(mod.mlp_workspace_size(sizes, 5)))
    compiled = "reference" not in mod.__name__
    cases = [("layer_sizes", np.array([4, 4, 1]), ["layer_sizes", "4", "3 features"]),
             ("layer_sizes", np.array([3, 4, 2]), ["must be 1"]),
             ("activation_id", 9, ["activation_id", "9"]),
             ("loss_id", ids.LOSS_HINGE, ["loss_id", "SQUARED"]),
             ("rule_id", 9, ["rule_id"]),
             ("theta", np.zeros(5), ["theta", "(5,)", f"({P},)"]),
             ("state", np.zeros((1, 5)), ["state"]),
             ("lrs", np.ones(1), ["lrs"]),
             ("step0", -2, ["step0", "-2"]),
             ("y", np.zeros(4), ["y", "(4,)"])]
    if compiled:  # the reference ignores work
        cases.append(("work", np.zeros(3), ["work", "at least", "85"]))
    for name, value, words in cases:
        args = dict(good, **{name: value})
        with pytest.raises(ValueError) as info:
            mod.mlp_epoch(**args)
        for word in words:
            assert word in str(info.value), f"{name}: {word!r} missing from: {info.value}"
        assert (good["theta"] == 0.1).all()
    with pytest.raises(ValueError, match="theta"):
        mod.mlp_add_penalty(np.ones(2), np.zeros(2), sizes, 1.0, 0.0)
    with pytest.raises(ValueError, match="Invalid alpha: -1.0"):
        mod.mlp_add_penalty(good["theta"], np.zeros(P), sizes, -1.0, 0.0)
    with pytest.raises(ValueError, match="Invalid activation_id: 0.0"):
        mod.mlp_epoch(**dict(good, activation_id=float(ids.ACT_RELU)))
    with pytest.raises(ValueError, match="Invalid scale: nan"):
        mod.mlp_batch_gradient(X0, Y_REG, np.empty(0), np.arange(5), ids.LOSS_SQUARED, sizes,
                               ids.ACT_RELU, good["theta"], good["grad"], np.nan, good["work"])
    # the gradient only reads theta: a read-only one (a broadcast buffer) is taken
    read_only = good["theta"].copy()
    read_only.flags.writeable = False
    grad = np.zeros(P)
    mod.mlp_batch_gradient(X0, Y_REG, np.empty(0), np.arange(5), ids.LOSS_SQUARED, sizes,
                           ids.ACT_RELU, read_only, grad, 0.2, good["work"])
    assert grad.any()
    # rows viewing an output: the kernel would overwrite the rows it is reading (a
    # segfault in both compiled backends), so they are refused; layer_sizes is copied (a
    # few numbers), so one viewing an output is harmless
    call = dict(X=X0, y=Y_REG, sw=np.empty(0), rows=np.arange(5), loss_id=ids.LOSS_SQUARED,
                layer_sizes=sizes, activation_id=ids.ACT_RELU, theta=good["theta"], scale=0.2,
                work=good["work"])
    want = np.zeros(P)
    mod.mlp_batch_gradient(grad=want, **call)
    grad = np.zeros(P)
    with pytest.raises(ValueError) as info:
        mod.mlp_batch_gradient(grad=grad, **dict(call, rows=grad.view(np.int64)[:5]))
    for word in ("grad", "rows", "shares memory"):
        assert word in str(info.value), f"{word!r} missing from: {info.value}"
    grad = np.zeros(P)
    viewing_grad = grad.view(np.int64)[-3:]
    viewing_grad[:] = sizes
    mod.mlp_batch_gradient(grad=grad, **dict(call, layer_sizes=viewing_grad))
    np.testing.assert_array_equal(grad, want)
    if not compiled:
        return
    with pytest.raises(ValueError, match="work"):
        mod.mlp_batch_gradient(X0, Y_REG, np.empty(0), np.arange(5), ids.LOSS_SQUARED, sizes,
                               ids.ACT_RELU, good["theta"], good["grad"], 0.2, np.zeros(3))


def test_cython_losses_check_labels_and_shapes():
    cl = pytest.importorskip("fastgd.kernels.cy.losses")
    from fastgd.kernels import ids

    for y in (3.0, -1.0, 1e9, 0.5):
        with pytest.raises(ValueError, match="softmax labels"):
            cl.py_loss(ids.LOSS_SOFTMAX, 0.0, [1.0, 2.0, 3.0], y)
        with pytest.raises(ValueError, match="softmax labels"):
            cl.py_dloss(ids.LOSS_SOFTMAX, 0.0, [1.0, 2.0, 3.0], y)
    with pytest.raises(ValueError, match="softmax labels"):
        cl.loss_and_dloss(ids.LOSS_SOFTMAX, 0.0, np.ones((2, 3)), [1.0, -1.0])
    with pytest.raises(ValueError, match=r"y.*\(1,\).*\(3,\)"):
        cl.loss_and_dloss(ids.LOSS_SQUARED, 0.0, np.ones((3, 1)), [1.0])
    with pytest.raises(ValueError, match="K"):
        cl.loss_and_dloss(ids.LOSS_SQUARED, 0.0, np.ones((3, 0)), np.ones(3))


@pytest.mark.parametrize("mod", _kernel_modules("linear_epoch"))
def test_int32_and_list_orders_are_taken_as_int64(mod):
    from fastgd.kernels import ids

    out = []
    for order in (np.arange(20), np.arange(20, dtype=np.int32), list(range(20))):
        args = _epoch_args(order=order, rule_id=ids.RULE_SGD, hyper=np.zeros(4),
                           state=np.zeros((1, 4)))
        assert mod.linear_epoch(**args) == 4
        out.append(args["theta"])
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])


def test_continuing_a_fit_takes_a_new_lr_and_refuses_what_it_would_ignore():
    Yb = (Y_REG > np.median(Y_REG)).astype(int)
    kw = dict(batch_size=4, seed=3, backend="numpy")
    first = fastgd.fit(X0, Yb, loss="logistic", lr=0.05, epochs=2, **kw)
    # the loss carries over when it is left out; restating the seed is harmless
    same = fastgd.fit(X0, Yb, init=first, epochs=1, batch_size=4, seed=3, backend="numpy")
    assert same.loss == first.loss and same.n_iter == 3 * first.iterations_per_epoch
    # a new lr: the same rule and state, the new step size from here on
    slow = fastgd.fit(X0, Yb, init=first, epochs=1, batch_size=4, lr=1e-9, backend="numpy")
    np.testing.assert_allclose(slow.coef, first.coef, rtol=1e-6)
    assert not np.allclose(same.coef, first.coef, rtol=1e-6)
    with pytest.raises(ValueError) as info:
        fastgd.fit(X0, Yb, init=first, seed=4, backend="numpy")
    for word in ("seed", "4", "seed=3", "carries on", "Drop seed="):
        assert word in str(info.value)
    with pytest.raises(ValueError) as info:
        fastgd.fit(X0, Yb, init=first, loss="hinge", backend="numpy")
    assert "leave loss out" in str(info.value)
    decaying = fastgd.fit(X0, Yb, loss="logistic", schedule="inverse_scaling", epochs=1, **kw)
    with pytest.raises(ValueError) as info:
        fastgd.fit(X0, Yb, init=decaying, lr=0.5, backend="numpy")
    assert "schedule" in str(info.value) and "0.5" in str(info.value)


def test_optimal_schedule_reads_alpha_without_a_penalty_as_scikit_learn_does():
    a = fastgd.fit(X0, Y_REG, schedule="optimal", alpha=1e-3, epochs=1, batch_size=1, seed=0,
                   backend="numpy")
    b = fastgd.fit(X0, Y_REG, schedule=fastgd.schedules.Optimal(1e-3, fastgd.losses.get("squared").py_dloss),
                   epochs=1, batch_size=1, seed=0, backend="numpy")
    np.testing.assert_array_equal(a.coef, b.coef)


@pytest.mark.filterwarnings("error")  # no NumPy cast warning either: the error says it all
def test_values_that_overflow_float32_are_named_with_the_value_given():
    X32 = X0.astype(np.float32)
    for call, words in [
        (lambda: fastgd.fit(X32, with_value(Y_REG, 3, 1e300), backend="numpy"),
         ["Invalid y", "1e+300", "index 3", "overflows float32", "dtype='float64'"]),
        (lambda: fastgd.fit(with_value(X0, (2, 1), 1e300), Y_REG, dtype="float32", backend="numpy"),
         ["Invalid X", "1e+300", "row 2, column 1", "overflows float32"]),
        (lambda: fastgd.fit(X32, Y_REG, sample_weight=with_value(np.ones(20), 4, 1e300), backend="numpy"),
         ["Invalid sample_weight", "1e+300", "index 4", "overflows float32"]),
        (lambda: fastgd.fit(X32, Y_REG, sample_weight=np.full(20, 1e-50), backend="numpy"),
         ["Invalid sample_weight", "every weight is 0 in float32", "1e-50", "underflows"]),
    ]:
        with pytest.raises(ValueError) as info:
            call()
        for word in words:
            assert word in str(info.value), (word, str(info.value))


def test_scalar_arguments_are_checked_before_x_is_converted(monkeypatch):
    from fastgd import api

    def no_conversion(*a, **k):
        raise AssertionError("X was converted before a bad scalar argument was reported")

    monkeypatch.setattr(api, "check_X", no_conversion)
    for kwargs, exc in [({"lr": -1.0}, ValueError), ({"seed": -1}, ValueError),
                        ({"shuffle": "yes"}, TypeError), ({"alpha": 0.1}, ValueError),
                        ({"penalty": "l3"}, ValueError)]:
        with pytest.raises(exc):
            fastgd.fit(X0, Y_REG, backend="numpy", **kwargs)


@pytest.mark.filterwarnings("error")
def test_finite_values_whose_sum_overflows_are_accepted_without_a_warning():
    X = np.full((20, 3), 5e306)  # X.sum() is inf; every entry and the gradient are finite
    res = fastgd.fit(X, Y_REG, lr=1e-300, epochs=1, backend="numpy")
    assert np.all(np.isfinite(res.coef))


def test_class_names_as_labels_get_an_encoding_as_the_fix():
    for y in (np.array(["cat", "dog"] * 10), np.array(["a", "b"] * 10, dtype=object)):
        with pytest.raises(TypeError) as info:
            fastgd.fit(X0, y, loss="logistic", backend="numpy")
        for word in ("Invalid y", "numeric", "np.unique(y, return_inverse=True)"):
            assert word in str(info.value)
    with pytest.raises(TypeError, match=r"np.asarray\(X, dtype=float\)"):
        fastgd.fit(X0.astype(str), Y_REG, backend="numpy")
    with pytest.raises(TypeError, match=r"np.asarray\(y, dtype=float\)"):  # numbers as objects
        fastgd.fit(X0, Y_REG.astype(object), backend="numpy")
