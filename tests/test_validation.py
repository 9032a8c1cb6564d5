"""Bad input: one table, a clear error naming the argument, nothing modified."""
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
    ("epochs-zero", X0, Y_REG, {"epochs": 0}, ValueError, ["epochs", ">= 1", "0"]),
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
    ("alpha-negative", X0, Y_REG, {"penalty": "l2", "alpha": -0.1}, ValueError, ["alpha", ">= 0"]),
    ("l1-ratio", X0, Y_REG, {"penalty": "elasticnet", "l1_ratio": 2.0}, ValueError, ["l1_ratio", "[0, 1]"]),
    ("sampling-unknown", X0, Y_REG, {"sampling": "stratified"}, ValueError, ["sampling", "replacement"]),
    ("dtype-int", X0, Y_REG, {"dtype": np.int32}, TypeError, ["dtype", "float32 or float64"]),
    ("schedule-unknown", X0, Y_REG, {"schedule": "linear"}, ValueError, ["schedule", "'linear'", "cosine"]),
    ("schedule-negative", X0, Y_REG, {"schedule": lambda t: 1.0 - 0.25 * t, "batch_size": 1}, ValueError,
     ["schedule", "lr=-0.25", "iteration 5", ">= 0"]),
    ("optimal-needs-alpha", X0, Y_REG, {"schedule": "optimal"}, ValueError, ["alpha", "optimal", "> 0"]),
    ("model-type", X0, Y_REG, {"model": "mlp"}, TypeError, ["model", "fastgd.MLP"]),
    ("mlp-loss", X0, Y_REG, {"model": fastgd.MLP((3,)), "loss": "hinge"}, ValueError, ["loss", "MLP"]),
    ("init-shape", X0, Y_REG, {"init": np.zeros(5)}, ValueError, ["init", "shape", "(3,)"]),
]


@pytest.mark.parametrize("X,y,kwargs,exc,words", [pytest.param(*row[1:], id=row[0]) for row in BAD])
def test_bad_input_gets_a_clear_error_and_nothing_is_modified(X, y, kwargs, exc, words):
    copies = [np.array(a, copy=True) for a in (X, y, kwargs.get("sample_weight")) if a is not None]
    with pytest.raises(exc) as info:
        fastgd.fit(X, y, **{"backend": "numpy", **kwargs})
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"
    after = [a for a in (X, y, kwargs.get("sample_weight")) if a is not None]
    for before, now in zip(copies, after):
        np.testing.assert_array_equal(np.asarray(now), before)


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
