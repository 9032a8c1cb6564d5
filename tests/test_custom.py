"""Custom losses (fastgd.Loss) and per-sample models (fastgd.CustomModel).

Losses the library lacks -- Poisson regression (log link) and the quantile
(pinball) loss -- written once as an @njit scalar function and once in NumPy:
the Numba epoch with the @njit function must match the reference epoch with
the NumPy formula to rtol 1e-9.  A small nonlinear model (y ~ a exp(b x0))
through custom_model_epoch against its reference twin.
"""
import contextlib
import math
import sys

import numba
import numpy as np
import pytest
from numba import njit

import fastgd
from fastgd.custom import CustomModel, Loss
from fastgd.kernels import ids
from fastgd.kernels.cy import linear_epoch as cy_le
from fastgd.kernels.nb import custom_epoch as nb_ce
from fastgd.kernels.nb import linear_epoch as nb_le
from fastgd.reference import custom_epoch as ref_ce
from fastgd.reference import linear_epoch as ref_le

N, D = 40, 4
LR = 0.02
SGD = (ids.RULE_SGD, [0.0, 0.0, 0.0, 0.0])
MOMENTUM = (ids.RULE_SGD, [0.9, 0.1, 0.0, 0.01])
ADAM = (ids.RULE_ADAM, [0.9, 0.999, 1e-8, 0.0, 1.0])


# -- the losses, twice ----------------------------------------------------------------

@njit
def poisson(p, y):
    """Poisson deviance up to a constant, log link: mean exp(p)."""
    mu = math.exp(p)
    return mu - y * p, mu - y


def poisson_np(p, y):
    mu = np.exp(p)
    return mu - y * p, mu - y


TAU = 0.3


@njit
def pinball(p, y):
    """Quantile (pinball) loss for the TAU quantile."""
    r = y - p
    if r > 0.0:
        return TAU * r, -TAU
    return (TAU - 1.0) * r, 1.0 - TAU


def pinball_np(p, y):
    r = y - p
    return np.where(r > 0, TAU * r, (TAU - 1.0) * r), np.where(r > 0, -TAU, 1.0 - TAU)


def poisson_data(n=N, d=D, seed=0, sw=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * 0.5
    w = rng.uniform(-0.5, 0.5, d)
    y = rng.poisson(np.exp(X @ w + 0.3)).astype(np.float64)
    s = rng.uniform(0.5, 2.0, n) if sw else np.empty(0)
    return X, y, s


def quantile_data(n=N, d=D, seed=1, sw=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + rng.standard_exponential(n)
    s = rng.uniform(0.5, 2.0, n) if sw else np.empty(0)
    return X, y, s


def run_linear(mod, X, y, sw, loss_param, batch_size, rule=SGD, alpha=0.0, l1_ratio=0.0,
               epochs=3, lr=LR, theta_dtype=np.float64, fit_intercept=True):
    n, d = X.shape
    P = d + (1 if fit_intercept else 0)
    rule_id, hyper = rule
    theta = np.zeros(P, dtype=theta_dtype)
    state = np.zeros((ids.STATE_SLOTS[rule_id], P), dtype=theta_dtype)
    grad = np.zeros(P, dtype=theta_dtype)
    rng = np.random.default_rng(42)
    nb = -(-n // batch_size)
    done, losses, step = [], [], 0
    for _ in range(epochs):
        order = rng.permutation(n).astype(np.int64)
        bl = np.zeros(nb)
        k = mod.linear_epoch(X, y, sw, order, batch_size, nb, ids.LOSS_CUSTOM, loss_param, 1,
                             fit_intercept, alpha, l1_ratio, rule_id, np.asarray(hyper, float),
                             np.full(nb, lr), step, theta, grad, state, bl)
        done.append(int(k))
        losses.append(bl[:min(k + 1, nb)].copy())
        step += nb
        if k < nb:
            break
    return done, theta, state, np.concatenate(losses)


def assert_close(actual, desired, rtol):
    desired = np.asarray(desired, dtype=np.float64)
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), desired, rtol=rtol, atol=0)


def assert_runs_match(got, ref, rtol=1e-9, complete=True):
    if complete:  # a parity case must not diverge (a diverged run compares little)
        assert all(k > 0 for k in ref[0]) and len(ref[0]) == len(got[0])
        assert np.all(np.isfinite(ref[3])) and np.all(np.isfinite(ref[1]))
    assert got[0] == ref[0]
    for a, b in zip(got[1:], ref[1:]):
        assert_close(a, b, rtol)


CASES = {
    "poisson": (poisson, poisson_np, poisson_data),
    "quantile": (pinball, pinball_np, quantile_data),
}


# -- custom losses: numba epoch with the njit fn == reference epoch with NumPy ----------

@pytest.mark.parametrize("rule", [SGD, MOMENTUM, ADAM], ids=["sgd", "momentum", "adam-amsgrad"])
@pytest.mark.parametrize("batch_size", [1, 7, N], ids=["b1", "b7", "bn"])
@pytest.mark.parametrize("name", list(CASES))
def test_custom_loss_matches_numpy_formula(name, batch_size, rule):
    fn, fn_np, data = CASES[name]
    X, y, sw = data(sw=True)
    got = run_linear(nb_le, X, y, sw, fn, batch_size, rule=rule, alpha=0.01, l1_ratio=0.3)
    ref = run_linear(ref_le, X, y, sw, fn_np, batch_size, rule=rule, alpha=0.01, l1_ratio=0.3)
    assert got[1].any()
    assert_runs_match(got, ref)


@pytest.fixture
def user_code_on_any_thread(monkeypatch):
    """From Python a user's function runs on the calling thread only (its exceptions
    must come out); these tests run the kernels' parallel paths, as calls from a user's
    own @njit code do, to check they give the same bits."""
    for mod in (nb_le, nb_ce):
        monkeypatch.setattr(mod, "on_calling_thread", lambda user_code: contextlib.nullcontext())


def test_custom_loss_halves_on_one_or_two_threads(monkeypatch, user_code_on_any_thread):
    """Batches of 8 rows or more that leave room for two run as two halves, on one thread
    or (when the work repays it) two; a custom loss compiles into both."""
    X, y, sw = poisson_data(sw=True)
    ref = run_linear(ref_le, X, y, sw, poisson_np, 9, rule=MOMENTUM, alpha=0.01, l1_ratio=0.3)
    one = run_linear(nb_le, X, y, sw, poisson, 9, rule=MOMENTUM, alpha=0.01, l1_ratio=0.3)
    assert nb_le.epoch_threads(N, D, 1, True, 9, 5) == 1
    monkeypatch.setattr(nb_le, "PAIR_MIN_WORK", 0)
    assert nb_le.epoch_threads(N, D, 1, True, 9, 5) == 2
    two = run_linear(nb_le, X, y, sw, poisson, 9, rule=MOMENTUM, alpha=0.01, l1_ratio=0.3)
    assert_runs_match(one, ref)
    for a, b in zip(one[1:], two[1:]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(CASES))
def test_loss_object_feeds_both_backends(name):
    fn, fn_np, data = CASES[name]
    X, y, sw = data()
    loss = Loss(fn)
    assert loss.fn is fn and loss.name == fn.__name__
    # The default reference callable runs fn's Python code: equal to the NumPy formula.
    p = np.linspace(-2, 2, 9)
    yy = np.linspace(0, 3, 9)
    for a, b in zip(loss.py_loss_dloss(p, yy), fn_np(p, yy)):
        np.testing.assert_allclose(a, b, rtol=1e-15)
    got = run_linear(nb_le, X, y, sw, loss.fn, 7)
    ref = run_linear(ref_le, X, y, sw, loss.py_loss_dloss, 7)
    assert_runs_match(got, ref)
    # ... and a user-supplied NumPy version is what the reference gets when given.
    loss_np = Loss(fn, py_fn=fn_np)
    ref2 = run_linear(ref_le, X, y, sw, loss_np.py_loss_dloss, 7)
    assert_runs_match(ref2, ref, rtol=1e-12)


def test_custom_loss_float32_against_float64_reference():
    X, y, sw = poisson_data(sw=True)
    got = run_linear(nb_le, X.astype(np.float32), y.astype(np.float32), sw.astype(np.float32),
                     poisson, 7, rule=ADAM, theta_dtype=np.float32)
    ref = run_linear(ref_le, X, y, sw, poisson_np, 7, rule=ADAM)
    assert got[1].dtype == np.float32
    assert_runs_match(got, ref, rtol=1e-4)
    # p and y reach the function as float64, as documented (float32 ones had compiled a
    # second specialisation that Loss never checked)
    assert set(poisson.signatures) == {(numba.float64, numba.float64)}


def test_custom_loss_same_as_builtin_when_it_is_the_same_loss():
    @njit
    def squared(p, y):
        r = p - y
        return 0.5 * r * r, r

    X, y, sw = quantile_data(sw=True)
    for b in (1, 7):
        got = run_linear(nb_le, X, y, sw, squared, b, rule=MOMENTUM)
        # The built-in squared loss through the same kernel.
        n = X.shape[0]
        theta, state = np.zeros(D + 1), np.zeros((1, D + 1))
        rng = np.random.default_rng(42)
        nb = -(-n // b)
        for e in range(3):
            nb_le.linear_epoch(X, y, sw, rng.permutation(n), b, nb, ids.LOSS_SQUARED, 0.0, 1, True,
                               0.0, 0.0, MOMENTUM[0], np.asarray(MOMENTUM[1], float),
                               np.full(nb, LR), e * nb, theta, np.zeros(D + 1), state,
                               np.zeros(nb))
        np.testing.assert_array_equal(got[1], theta)


def test_custom_loss_divergence_stops_like_the_reference():
    X, y, sw = poisson_data()
    X = X * 8.0
    got = run_linear(nb_le, X, y, sw, poisson, 1, lr=5.0, epochs=5)
    with np.errstate(all="ignore"):
        ref = run_linear(ref_le, X, y, sw, poisson_np, 1, lr=5.0, epochs=5)
    assert ref[0][-1] < N, "the reference should diverge here"
    assert got[0] == ref[0]
    assert not np.isfinite(got[3][-1])
    assert_close(got[3][:-1], ref[3][:-1], 1e-9)
    assert_close(got[1], ref[1], 1e-9)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_custom_loss_large_batch_bit_identical_for_any_thread_count(user_code_on_any_thread):
    X, y, sw = poisson_data(n=6000, d=24, sw=True)

    def run(t):
        old = numba.get_num_threads()
        numba.set_num_threads(t)
        try:
            return run_linear(nb_le, X, y, sw, poisson, 6000, rule=ADAM, epochs=2)
        finally:
            numba.set_num_threads(old)

    a, b = run(1), run(2)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[3], b[3])
    assert_runs_match(a, run_linear(ref_le, X, y, sw, poisson_np, 6000, rule=ADAM, epochs=2))


@njit
def _user_loop_with_custom_loss(X, y, orders, theta, state):
    """A user's @njit function running linear_epoch with its own loss function."""
    nb = (orders.shape[1] + 6) // 7
    for e in range(orders.shape[0]):
        nb_le.linear_epoch(X, y, np.empty(0), orders[e], 7, nb, ids.LOSS_CUSTOM, poisson, 1,
                           True, 0.0, 0.0, ids.RULE_SGD, np.zeros(4), np.full(nb, LR),
                           e * nb, theta, np.zeros_like(theta), state, np.zeros(nb))
    return theta


def test_custom_loss_from_user_njit_code():
    X, y, _ = poisson_data()
    rng = np.random.default_rng(42)
    orders = np.stack([rng.permutation(N) for _ in range(3)]).astype(np.int64)
    theta = _user_loop_with_custom_loss(X, y, orders, np.zeros(D + 1), np.zeros((1, D + 1)))
    ref = run_linear(ref_le, X, y, np.empty(0), poisson_np, 7)
    assert_close(theta, ref[1], 1e-9)


# -- the public API ---------------------------------------------------------------------

def test_fit_with_custom_loss_numba_equals_numpy():
    X, y, sw = poisson_data(n=60)
    kw = dict(loss=Loss(poisson), batch_size=6, epochs=3, lr=0.05, seed=3, sample_weight=None)
    a = fastgd.fit(X, y, backend="numba", **kw)
    b = fastgd.fit(X, y, backend="numpy", **kw)
    assert a.backend == "numba" and b.backend == "numpy"
    assert_close(a.coef, b.coef, 1e-9)
    assert_close(a.intercept, b.intercept, 1e-9)
    assert_close(a.history["loss"], b.history["loss"], 1e-9)


def test_loss_rejects_what_is_not_an_njit_pair_function():
    with pytest.raises(TypeError, match="not a Numba @njit function"):
        Loss(lambda p, y: (p, y))

    @njit
    def one_arg(p):
        return p

    with pytest.raises(TypeError, match=r"\(p, y\) -> \(loss, dloss\)"):
        Loss(one_arg)

    @njit
    def scalar_only(p, y):
        return p - y

    with pytest.raises(TypeError, match="pair of numbers"):
        Loss(scalar_only)

    @njit
    def flags(p, y):
        return p > y, p < y

    with pytest.raises(TypeError, match="pair of numbers"):
        Loss(flags)
    with pytest.raises(ValueError, match="kind"):
        Loss(poisson, kind="ordinal")


# -- custom models ----------------------------------------------------------------------

@njit
def exp_model(params, x, y, grad_out):
    """y ~ a * exp(b * x0), squared loss; writes d loss / d (a, b) into grad_out."""
    a = params[0]
    b = params[1]
    e = math.exp(b * x[0])
    r = a * e - y
    grad_out[0] = r * e
    grad_out[1] = r * a * e * x[0]
    return 0.5 * r * r


@njit
def exp_predict(params, x):
    return params[0] * math.exp(params[1] * x[0])


def exp_data(n=N, d=1, seed=3, sw=False):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n, d))
    y = 2.0 * np.exp(0.7 * X[:, 0]) + 0.05 * rng.standard_normal(n)
    s = rng.uniform(0.5, 2.0, n) if sw else np.empty(0)
    return X, y, s


def run_model(mod, fn, X, y, sw, batch_size, rule=SGD, epochs=3, lr=LR,
              theta_dtype=np.float64):
    n = X.shape[0]
    rule_id, hyper = rule
    theta = np.array([1.0, 0.0], dtype=theta_dtype)
    state = np.zeros((ids.STATE_SLOTS[rule_id], 2), dtype=theta_dtype)
    rng = np.random.default_rng(8)
    nb = -(-n // batch_size)
    done, losses, step = [], [], 0
    for _ in range(epochs):
        bl = np.zeros(nb)
        k = mod.custom_model_epoch(fn, X, y, sw, rng.permutation(n).astype(np.int64), batch_size,
                                   nb, rule_id, np.asarray(hyper, float), np.full(nb, lr), step,
                                   theta, np.zeros(2, theta_dtype), state, bl,
                                   np.zeros(2, theta_dtype))
        done.append(int(k))
        losses.append(bl[:min(k + 1, nb)].copy())
        step += nb
        if k < nb:
            break
    return done, theta, state, np.concatenate(losses)


@pytest.mark.parametrize("rule", [SGD, MOMENTUM, ADAM], ids=["sgd", "momentum", "adam-amsgrad"])
@pytest.mark.parametrize("batch_size", [1, 7, N], ids=["b1", "b7", "bn"])
def test_custom_model_matches_reference(batch_size, rule):
    X, y, sw = exp_data(sw=True)
    got = run_model(nb_ce, exp_model, X, y, sw, batch_size, rule=rule)
    ref = run_model(ref_ce, exp_model.py_func, X, y, sw, batch_size, rule=rule)
    assert np.all(got[1] != [1.0, 0.0])
    assert_runs_match(got, ref)


def test_custom_model_float32_against_float64_reference():
    X, y, sw = exp_data(sw=True)
    got = run_model(nb_ce, exp_model, X.astype(np.float32), y.astype(np.float32),
                    sw.astype(np.float32), 7, rule=ADAM, theta_dtype=np.float32)
    ref = run_model(ref_ce, exp_model.py_func, X, y, sw, 7, rule=ADAM)
    assert got[1].dtype == np.float32
    assert_runs_match(got, ref, rtol=1e-4)


@njit
def _predict_first(params, x):
    return params[0] * x[0]


@njit
def _weighted_by_exp_y(params, x, y, g):  # exp(89.5) overflows in float32, not in float64
    w = math.exp(y) * 1e-39
    r = params[0] - y
    g[0] = w * r
    return w * 0.5 * r * r


def test_a_float32_fit_gives_a_custom_model_float64_labels():
    """y reaches the model function as a float64 on every backend, float32 data or not
    (Numba's float() had kept it float32: a second, unchecked specialisation of fn, whose
    exp(y) overflowed where the reference's did not)."""
    X = np.random.default_rng(0).standard_normal((40, 2)).astype(np.float32)
    y = np.full(40, 89.5, np.float32)
    model = CustomModel(_weighted_by_exp_y, init=[0.0])
    got = fastgd.fit(X, y, model=model, batch_size=4, lr=0.05, epochs=1, seed=0,
                     backend="numba")
    ref = fastgd.fit(X, y, model=model, batch_size=4, lr=0.05, epochs=1, seed=0,
                     backend="numpy")
    assert got._theta.dtype == np.float32 and np.all(np.isfinite(got._theta))
    np.testing.assert_allclose(got._theta, ref._theta, rtol=1e-4)
    assert all(sig[2] == numba.float64 for sig in _weighted_by_exp_y.signatures)


def test_custom_model_predict_refuses_empty_parameters():
    with pytest.raises(ValueError, match="theta.*empty"):
        nb_ce.custom_model_predict(_predict_first, np.zeros(0), np.zeros((3, 2)), np.zeros(3))


def test_custom_model_divergence_stops_like_the_reference():
    X, y, sw = exp_data()
    got = run_model(nb_ce, exp_model, X * 30, y, sw, 1, lr=3.0, epochs=5)
    with np.errstate(all="ignore"):
        ref = run_model(ref_ce, exp_model.py_func, X * 30, y, sw, 1, lr=3.0, epochs=5)
    assert ref[0][-1] < N, "the reference should diverge here"
    assert got[0] == ref[0]
    assert not np.isfinite(got[3][-1])
    assert_close(got[3][:-1], ref[3][:-1], 1e-9)
    np.testing.assert_array_equal(np.isfinite(got[1]), np.isfinite(ref[1]))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_custom_model_large_batch_bit_identical_for_any_thread_count(user_code_on_any_thread):
    X, y, sw = exp_data(n=6000, d=24, sw=True)

    def run(t):
        old = numba.get_num_threads()
        numba.set_num_threads(t)
        try:
            return run_model(nb_ce, exp_model, X, y, sw, 2500, rule=ADAM, epochs=2)
        finally:
            numba.set_num_threads(old)

    a, b = run(1), run(2)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[3], b[3])
    assert_runs_match(a, run_model(ref_ce, exp_model.py_func, X, y, sw, 2500, rule=ADAM,
                                   epochs=2))


def test_custom_model_batch_gradient_partials_add_up():
    X, y, sw = exp_data(sw=True)
    theta = np.array([1.5, 0.2])
    rows = np.arange(N, dtype=np.int64)
    g, g1, g2, gb = np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2)
    l = nb_ce.custom_model_batch_gradient(exp_model, X, y, sw, rows, theta, g, 1.0 / N, gb)
    l1 = nb_ce.custom_model_batch_gradient(exp_model, X, y, sw, rows[:13], theta, g1, 1.0 / N, gb)
    l2 = nb_ce.custom_model_batch_gradient(exp_model, X, y, sw, rows[13:], theta, g2, 1.0 / N, gb)
    assert_close(g1 + g2, g, 1e-12)
    assert_close(l1 + l2, l, 1e-12)
    gr = np.zeros(2)
    lr_ = ref_ce.custom_model_batch_gradient(exp_model.py_func, X, y, sw, rows, theta, gr, 1.0 / N,
                                             np.zeros(2))
    assert_close(g, gr, 1e-12)
    assert_close(l, lr_, 1e-12)
    # The gradient is the true gradient of the batch loss (central differences).
    for j in range(2):
        h = np.zeros(2)
        h[j] = 1e-6
        lp = ref_ce.custom_model_batch_gradient(exp_model.py_func, X, y, sw, rows, theta + h,
                                                np.zeros(2), 1.0 / N, np.zeros(2))
        lm = ref_ce.custom_model_batch_gradient(exp_model.py_func, X, y, sw, rows, theta - h,
                                                np.zeros(2), 1.0 / N, np.zeros(2))
        np.testing.assert_allclose(g[j], (lp - lm) / 2e-6, rtol=1e-6)


def test_custom_model_object():
    model = CustomModel(exp_model, [1.0, 0.0], predict=exp_predict)
    assert model.kind == "custom" and model.fn is exp_model and model.py_fn is exp_model.py_func
    assert model.n_params == 2
    bound = model.bind(3)
    assert bound.n_features == 3 and model.n_features is None
    theta = bound.init_theta(None, np.float32)
    assert theta.dtype == np.float32 and theta.tolist() == [1.0, 0.0]
    theta[0] = 5.0
    assert model.init[0] == 1.0  # init is never modified through theta
    X = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(bound.decision(np.array([2.0, 0.5]), X), [2.0, 2.0 * math.exp(0.5)])
    with pytest.raises(ValueError, match="2 parameters"):
        bound.theta_from_init([1.0, 2.0, 3.0], np.float64)
    with pytest.raises(ValueError, match="1-D"):
        CustomModel(exp_model, [[1.0, 0.0]])
    with pytest.raises(ValueError, match="finite"):
        CustomModel(exp_model, [np.nan, 0.0])
    with pytest.raises(TypeError, match="not a Numba @njit function"):
        CustomModel(exp_model.py_func, [1.0, 0.0])

    @njit
    def wrong(params, x):
        return 0.0

    with pytest.raises(TypeError, match=r"\(params, x, y, grad_out\) -> loss"):
        CustomModel(wrong, [1.0, 0.0]).bind(1)
    with pytest.raises(AttributeError, match="predict"):
        CustomModel(exp_model, [1.0, 0.0]).bind(1).decision(np.array([1.0, 0.0]), X[:, :1])


def test_fit_with_custom_model_numba_equals_numpy():
    X, y, sw = exp_data(n=60, sw=True)
    model = CustomModel(exp_model, [1.0, 0.0], predict=exp_predict)
    kw = dict(model=model, batch_size=7, epochs=3, lr=LR, seed=5, sample_weight=sw,
              optimizer="adam")
    a = fastgd.fit(X, y, backend="numba", **kw)
    b = fastgd.fit(X, y, backend="numpy", **kw)
    assert a.backend == "numba" and b.backend == "numpy"
    assert_close(a.params[0], b.params[0], 1e-9)
    assert_close(a.history["loss"], b.history["loss"], 1e-9)
    assert_close(a.predict(X), b.predict(X), 1e-9)
    pa, pb = a.params[0]
    assert_close(a.predict(X), pa * np.exp(pb * X[:, 0]), 1e-12)


@njit
def _user_loop_with_custom_model(X, y, orders, theta, state):
    nb = (orders.shape[1] + 6) // 7
    for e in range(orders.shape[0]):
        nb_ce.custom_model_epoch(exp_model, X, y, np.empty(0), orders[e], 7, nb, ids.RULE_SGD,
                                 np.zeros(4), np.full(nb, LR), e * nb, theta,
                                 np.zeros_like(theta), state, np.zeros(nb), np.zeros_like(theta))
    return theta


def test_custom_model_epoch_from_user_njit_code():
    X, y, _ = exp_data()
    rng = np.random.default_rng(8)
    orders = np.stack([rng.permutation(N) for _ in range(3)]).astype(np.int64)
    theta = _user_loop_with_custom_model(X, y, orders, np.array([1.0, 0.0]), np.zeros((1, 2)))
    ref = run_model(ref_ce, exp_model.py_func, X, y, np.empty(0), 7)
    assert_close(theta, ref[1], 1e-9)


def test_fit_with_custom_loss_continues_exactly():
    X, y, _ = poisson_data(n=60)
    kw = dict(batch_size=6, lr=LR, seed=3, backend="numba")
    full = fastgd.fit(X, y, loss=Loss(poisson), epochs=4, **kw)
    part = fastgd.fit(X, y, loss=Loss(poisson), epochs=2, **kw)
    rest = fastgd.fit(X, y, loss=Loss(poisson), epochs=2, init=part, **kw)
    np.testing.assert_array_equal(rest.coef, full.coef)
    assert Loss(poisson) == Loss(poisson) and Loss(poisson) != Loss(pinball)


@njit
def _line2(params, x, y, g):  # reads and writes params[1]: needs P = 2
    r = params[0] * x[0] + params[1] - y
    g[0] = r * x[0]
    g[1] = r
    return 0.5 * r * r


@njit
def _sqrt_loss(p, y):  # sqrt of a negative number: NaN compiled, ValueError in Python
    s = math.sqrt(1.0 + p)
    r = s - y
    return 0.5 * r * r, r * 0.5 / s


@njit
def _one_arg_predict(params):
    return params[0]


def test_a_model_too_short_for_its_function_is_refused_before_training():
    X = np.random.default_rng(0).standard_normal((30, 1))
    y = 2 * X[:, 0] + 1
    for backend in ("numba", "numpy"):
        with pytest.raises(ValueError) as info:
            fastgd.sgd(X, y, model=CustomModel(_line2, init=[0.0]), epochs=1, backend=backend)
        for word in ("_line2", "P=1", "init's length"):
            assert word in str(info.value)
    with pytest.raises(TypeError, match="Invalid predict"):
        fastgd.sgd(X, y, model=CustomModel(_line2, init=[0.0, 0.0], predict=_one_arg_predict),
                   epochs=1, backend="numba")


def test_a_math_domain_error_in_python_is_the_nan_compiled_code_gives():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 2))
    y = X[:, 0]
    where = []
    for backend in ("numba", "numpy"):
        with pytest.raises(fastgd.DivergenceError) as info:
            fastgd.sgd(X, y, loss=Loss(_sqrt_loss), lr=1.0, epochs=2, seed=0, backend=backend)
        where.append((info.value.epoch, info.value.iteration))
        assert "add a penalty" in str(info.value)
        assert "check your loss function" in str(info.value)
    assert where[0] == where[1]


@pytest.mark.parametrize("mod", [ref_ce, nb_ce])
def test_custom_model_epoch_refuses_a_negative_step0(mod):
    X, y = np.ones((6, 1)), np.ones(6)
    theta = np.zeros(2)
    with pytest.raises(ValueError, match="Invalid step0: -1"):
        mod.custom_model_epoch(_line2, X, y, np.empty(0), np.arange(6), 3, 2, ids.RULE_ADAM,
                               np.array([0.9, 0.999, 1e-8, 0.0, 0.0]), np.full(2, 0.1), -1,
                               theta, np.zeros(2), np.zeros((3, 2)), np.zeros(2), np.zeros(2))
    assert (theta == 0).all()


def test_the_numba_entries_take_only_njit_functions():
    """A plain Python function would fail inside the kernel, in Numba's words
    ("non-precise type pyobject"); the entries say what is wrong."""
    def plain_model(params, x, y, g):
        return 0.0

    def plain_loss(p, y):
        return 0.0, 0.0

    X, y = np.ones((6, 1)), np.ones(6)
    with pytest.raises(TypeError, match="Invalid fn: .* not a Numba @njit function"):
        nb_ce.custom_model_batch_gradient(plain_model, X, y, np.empty(0), np.arange(6),
                                          np.zeros(2), np.zeros(2), 1 / 6, np.zeros(2))
    with pytest.raises(TypeError, match="Invalid fn"):
        nb_ce.custom_model_epoch(plain_model, X, y, np.empty(0), np.arange(6), 3, 2, ids.RULE_SGD,
                                 np.zeros(4), np.full(2, 0.1), 0, np.zeros(2), np.zeros(2),
                                 np.zeros((1, 2)), np.zeros(2), np.zeros(2))
    with pytest.raises(TypeError, match="Invalid loss_param: .* not a Numba @njit function"):
        nb_le.linear_batch_gradient(X, y, np.empty(0), np.arange(6), ids.LOSS_CUSTOM, plain_loss,
                                    1, True, np.zeros(2), np.zeros(2), 1 / 6)


def test_a_function_with_a_builtin_loss_code_is_refused():
    """A function is a custom loss only with LOSS_CUSTOM; beside a built-in code the
    backends had differed (numba used it, softmax ignored it, the reference took it for
    epsilon), and numba's softmax kernel now has no room for it."""
    @njit
    def sq(p, y):
        return 0.5 * (p - y) ** 2, p - y

    X, y = np.ones((6, 2)), np.zeros(6)
    for mod in (ref_le, nb_le, cy_le):
        for loss_id, K in ((ids.LOSS_SOFTMAX, 2), (ids.LOSS_HUBER, 1)):
            P = 3 * K
            with pytest.raises(TypeError, match="Invalid loss_param: .* loss_id=LOSS_CUSTOM"):
                mod.linear_batch_gradient(X, y, np.empty(0), np.arange(6), loss_id, sq, K, True,
                                          np.zeros(P), np.zeros(P), 1 / 6)
            with pytest.raises(TypeError, match="Invalid loss_param"):
                mod.linear_epoch(X, y, np.empty(0), np.arange(6), 3, 2, loss_id, sq, K, True,
                                 0.0, 0.0, ids.RULE_SGD, np.zeros(4), np.full(2, 0.1), 0,
                                 np.zeros(P), np.zeros(P), np.zeros((1, P)), np.zeros(2))


def test_custom_model_predict_checks_its_output():
    """out shorter than X's rows had been written past its end (a heap corruption)."""
    @njit
    def pred(params, x):
        return params[0] * x[0] + params[1]

    X, theta = np.ones((50, 1)), np.array([1.0, 2.0])
    for mod in (ref_ce, nb_ce):
        with pytest.raises(ValueError, match=r"Invalid out: shape \(10,\).*\(50,\)"):
            mod.custom_model_predict(pred, theta, X, np.zeros(10))
        with pytest.raises(ValueError, match="out: it shares memory with X"):
            mod.custom_model_predict(pred, theta, X, X[:, 0])
    out = np.zeros(50)
    nb_ce.custom_model_predict(pred, theta, X, out)
    np.testing.assert_array_equal(out, ref_ce.custom_model_predict(pred, theta, X, np.zeros(50)))


@njit
def _raises_on_a_large_x(params, x, y, g):
    if x[0] > 4.5:
        raise ValueError("bad row")
    return _line2(params, x, y, g)


@njit
def _refuses_a_large_y(p, y):
    if y > 100.0:
        raise ValueError("my loss refuses y > 100")
    return 0.5 * (p - y) ** 2, p - y


def test_a_users_exception_comes_out_as_itself_where_batches_are_large():
    """Numba drops an exception raised on a worker thread of a parallel region (the fit
    then went on with garbage: a BGD loss of 6e228, or no error at all); one raised on the
    calling thread had reached Python as a SystemError.  A user's function now runs on the
    calling thread, and its own exception comes out."""
    for n in (200, 140_000):  # the serial path, and chunks that would run in parallel
        X = np.zeros((n, 1))
        X[int(0.95 * n), 0] = 5.0  # in one of the last chunks: a worker thread's
        with pytest.raises(ValueError, match="bad row"):
            nb_ce.custom_model_batch_gradient(_raises_on_a_large_x, X, np.zeros(n), np.empty(0),
                                              np.arange(n), np.zeros(2), np.zeros(2), 1 / n,
                                              np.zeros(2))
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((2000, 100)), rng.standard_normal(2000)
    y[1900] = 1000.0
    with pytest.raises(ValueError, match="my loss refuses y > 100"):
        fastgd.bgd(X, y, loss=Loss(_refuses_a_large_y), backend="numba", lr=1e-3, epochs=2)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are Python >= 3.11")
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_users_exception_says_in_which_epoch_it_was_raised(backend):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 2)), rng.standard_normal(40)
    y[7] = 1000.0  # every epoch meets it: the third fit's first epoch is epoch 2
    first = fastgd.fit(X, np.clip(y, -3, 3), loss=Loss(_refuses_a_large_y), batch_size=4, epochs=2,
                       lr=0.01, backend=backend)
    with pytest.raises(ValueError, match="my loss refuses") as info:
        fastgd.fit(X, y, loss=Loss(_refuses_a_large_y), init=first, batch_size=4, epochs=1,
                   lr=0.01, backend=backend)
    assert info.value.__notes__ == [
        "fastgd: raised while your loss function ran in epoch 2 of the fit (0-based; updates 21 "
        "to 30 overall). The parameters reached so far are not returned: pass callback= to keep "
        "each epoch's result"]
    model = CustomModel(_raises_on_a_large_x, [0.0, 0.0])
    X[13, 0] = 5.0
    with pytest.raises(ValueError, match="bad row") as info:
        fastgd.fit(X, y, model=model, batch_size=40, epochs=3, lr=0.01, backend=backend)
    assert "your model function ran in epoch 0 of the fit (0-based; update 1 overall)" in \
        info.value.__notes__[0]


@njit
def _dot_on_mixed_dtypes(params, x, y, g):  # np.dot of float32 and float64: no typing
    r = np.dot(x, np.ones(x.shape[0])) * params[0] - y
    for j in range(x.shape[0]):
        g[j] = r * x[j]
    return 0.5 * r * r


def test_a_function_numba_cannot_compile_gets_no_epoch_note():
    """Nothing ran: a note that the function "ran in epoch 0" would mislead (review).  The
    error names the function and the types the kernel calls it with; Numba's is its cause."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 2)).astype(np.float32), rng.standard_normal(30)
    with pytest.raises(TypeError, match=r"Invalid fn: Numba could not compile "
                       r"'_dot_on_mixed_dtypes' into the kernel.*x: array\(float32, 1d, C\), "
                       r"y: float64") as info:
        fastgd.fit(X, y, model=CustomModel(_dot_on_mixed_dtypes, [0.0, 0.0]), batch_size=5,
                   epochs=2, lr=0.01, backend="numba")
    assert isinstance(info.value.__cause__, numba.core.errors.TypingError)
    assert not getattr(info.value, "__notes__", None)



@njit
def _returns_one_value(p, y):
    return p - y


@njit
def _predict_pair(params, x):
    return params[0], x[0]


def _wrong_signature_calls():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((12, 2)), rng.standard_normal(12)
    rows, sw, P = np.arange(12), np.empty(0), 3
    lrs, hyper = np.full(2, 0.1), np.zeros(4)

    def state():
        return np.zeros(P), np.zeros(P), np.zeros((1, P))

    def model_gradient():
        th, g, _ = state()
        nb_ce.custom_model_batch_gradient(_returns_one_value, X, y, sw, rows, th, g, 1.0,
                                          np.zeros(P))

    def model_epoch():
        th, g, st = state()
        nb_ce.custom_model_epoch(_returns_one_value, X, y, sw, rows, 6, 2, ids.RULE_SGD, hyper,
                                 lrs, 0, th, g, st, np.zeros(2), np.zeros(P))

    def model_predict():
        nb_ce.custom_model_predict(_predict_pair, np.zeros(P), X, np.zeros(12))

    def loss_gradient():
        th, g, _ = state()
        nb_le.linear_batch_gradient(X, y, sw, rows, ids.LOSS_CUSTOM, _returns_one_value, 1, True,
                                    th, g, 1.0)

    def loss_epoch():
        th, g, st = state()
        nb_le.linear_epoch(X, y, sw, rows, 6, 2, ids.LOSS_CUSTOM, _returns_one_value, 1, True,
                           0.0, 0.0, ids.RULE_SGD, hyper, lrs, 0, th, g, st, np.zeros(2))

    return [("fn", model_gradient), ("fn", model_epoch), ("predict", model_predict),
            ("loss_param", loss_gradient), ("loss_param", loss_epoch)]


def test_a_kernels_own_typing_error_is_not_blamed_on_a_function_that_compiles():
    """user_function compiles the function alone before it blames it (review)."""
    from fastgd.kernels.nb.config import returns_pair, user_function

    def two_floats():
        return "loss_param(p, y)", (numba.float64, numba.float64)

    with pytest.raises(numba.core.errors.TypingError, match="the kernel's own"):
        with user_function("loss_param", _squared_pair, two_floats, returns_pair):
            raise numba.core.errors.TypingError("the kernel's own")
    with pytest.raises(TypeError, match="Invalid loss_param"):  # this one is the function's
        with user_function("loss_param", _returns_one_value, two_floats, returns_pair):
            raise numba.core.errors.TypingError("the kernel's own")


@njit
def _squared_pair(p, y):
    return 0.5 * (p - y) ** 2, p - y


@pytest.mark.parametrize("i", range(5))
def test_the_low_level_entries_name_a_function_numba_cannot_compile(i):
    """They had let Numba's TypingError through, which never named the argument (review)."""
    name, call = _wrong_signature_calls()[i]
    with pytest.raises(TypeError, match=rf"Invalid {name}: Numba could not compile '_\w+' into "
                       r"the kernel, which calls it as") as info:
        call()
    # the function compiled alone, Numba's words as the cause: a TypingError, or a TypeError
    # for a function of the wrong number of arguments
    assert isinstance(info.value.__cause__, (numba.core.errors.TypingError, TypeError))


@njit
def _falls_off_on_one_side(p, y):  # no return when p > y: Numba types it Optional
    r = p - y
    if r <= 0.0:  # (the probe, fn(0.5, 1.0), takes this branch)
        return 0.5 * r * r, r


@njit
def _model_falls_off(params, x, y, g):
    r = params[0] * x[0] - y
    g[0] = r * x[0]
    if r >= 0.0:  # (the zero-row probe takes this branch)
        return 0.5 * r * r


def test_a_function_without_a_return_on_some_path_is_refused_up_front():
    """It passed the probe call, which took the other path, and failed inside the epoch in
    Numba's words (a 53-line typing error for a model)."""
    with pytest.raises(TypeError, match=r"_falls_off_on_one_side.*Optional.*return \(loss, dloss\) on every path"):
        Loss(_falls_off_on_one_side)
    X = np.random.default_rng(0).standard_normal((10, 1))
    with pytest.raises(TypeError, match="return the loss on every path"):
        fastgd.sgd(X, X[:, 0], model=CustomModel(_model_falls_off, init=[0.0]), epochs=1,
                   backend="numpy")


@njit
def _naive_logistic(p, y):  # exp(-p) overflows to inf for p < -709: compiled, no error
    s = 1.0 / (1.0 + math.exp(-p))
    return -y * math.log(s + 1e-300) - (1.0 - y) * math.log(1.0 - s + 1e-300), s - y


@njit(error_model="numpy")
def _divides_by_zero(p, y):
    return 1.0 / (p - y), 0.0


def test_the_reference_runs_the_compiled_function():
    """The reference calls fn compiled, not its Python code: Python's math raised
    OverflowError where compiled code gives inf (a fit that went on under numba diverged
    under numpy), and error_model="numpy" was ignored (ZeroDivisionError against numba's
    DivergenceError)."""
    X = np.array([[1.0], [-1.0], [2.0]])
    y = np.array([0.0, 1.0, 0.0])
    res = fastgd.sgd(X, y, loss=Loss(_naive_logistic, kind="binary01"), epochs=2,
                     init=(np.array([-800.0]), 0.0), lr=0.1, shuffle=False, backend="numpy")
    assert np.isfinite(res.coef).all() and res.coef[0] < -799
    with pytest.raises(fastgd.DivergenceError):
        fastgd.sgd(X, y, loss=Loss(_divides_by_zero), init=(np.array([0.0]), 0.0),
                   epochs=1, backend="numpy")


def _scaled_square(c):
    @njit
    def model(params, x, y, g):
        r = c * params[0] * x[0] - y
        g[0] = c * r * x[0]
        return 0.5 * r * r
    return model


def test_a_fit_continues_only_with_its_own_function():
    """Closures from one factory share a name: one had continued the other's fit."""
    X = np.random.default_rng(0).standard_normal((20, 1))
    y = X[:, 0]
    first = fastgd.sgd(X, y, model=CustomModel(_scaled_square(1.0), init=[0.0]), epochs=1,
                       backend="numpy")
    with pytest.raises(ValueError, match="same name"):
        fastgd.sgd(X, y, model=CustomModel(_scaled_square(100.0), init=[0.0]), init=first,
                   backend="numpy")
    again = fastgd.sgd(X, y, model=first.model, init=first, epochs=1, backend="numpy")
    assert again.n_iter == 2 * first.n_iter
    with pytest.raises(ValueError, match="same name"):
        fastgd.sgd(X, y, loss=Loss(pinball_loss_of(0.2)), init=fastgd.sgd(
            X, y, loss=Loss(pinball_loss_of(0.1)), epochs=1, backend="numpy"), backend="numpy")


def pinball_loss_of(tau):
    @njit
    def pin(p, y):
        r = y - p
        return (tau * r, -tau) if r > 0 else ((tau - 1.0) * r, 1.0 - tau)
    return pin


def test_py_fn_results_are_checked():
    p, y = np.zeros(3), np.ones(3)
    for bad, words in ((lambda p, y: (p, y, p), "pair"),
                       (lambda p, y: (p[:, None], y), "shape (3, 1)"),
                       (lambda p, y: ("a", y), "dtype <U1")):
        with pytest.raises(TypeError, match="Invalid py_fn") as info:
            Loss(poisson, py_fn=bad).py_loss_dloss(p, y)
        assert words in str(info.value)
    loss, dloss = Loss(poisson, py_fn=lambda p, y: (1.0, p - y)).py_loss_dloss(p, y)
    assert loss.shape == dloss.shape == (3,)
