"""The Numba kernels (fastgd.kernels.nb) against the NumPy reference, directly.

Every loss code, every update-rule variant, the penalties, sample weights,
fit_intercept, softmax, batch sizes 1, 7 (shorter last batch) and n; float64
to rtol 1e-9 and float32 to rtol 1e-4 against float64; bit-identical results
for any thread count; divergence; calling the kernels from a user's @njit
function; the compile options and caching (read-only install).

Compile cost: every epoch specialisation (X dtype x theta dtype) is compiled
once per process and reused by all cases (the loss, rule and penalty are
run-time codes, not types).
"""
import os
import shutil
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from numba import njit

from fastgd.kernels import ids
from fastgd.kernels.nb import config as nb_config
from fastgd.kernels.nb import linear_epoch as nb_le
from fastgd.kernels.nb import losses as nb_losses
from fastgd.kernels.nb import updates as nb_updates
from fastgd.reference import linear_epoch as ref_le
from fastgd.reference import losses as ref_losses

N, D, K3 = 40, 5, 3
EPS = 0.3  # epsilon of huber / epsilon-insensitive losses

SCALAR_LOSSES = [ids.LOSS_SQUARED, ids.LOSS_LOGISTIC, ids.LOSS_HINGE, ids.LOSS_SQUARED_HINGE,
                 ids.LOSS_MODIFIED_HUBER, ids.LOSS_HUBER, ids.LOSS_EPSILON_INSENSITIVE,
                 ids.LOSS_SQUARED_EPSILON_INSENSITIVE, ids.LOSS_PERCEPTRON]
ALL_LOSSES = SCALAR_LOSSES + [ids.LOSS_SOFTMAX]
LOSS_NAMES = {v: k[5:].lower() for k, v in vars(ids).items() if k.startswith("LOSS_")}

# (rule, hyper) variants: every switch of every rule.
RULES = {
    "sgd": (ids.RULE_SGD, [0.0, 0.0, 0.0, 0.0]),
    "sgd-wd": (ids.RULE_SGD, [0.0, 0.0, 0.0, 0.05]),
    "momentum": (ids.RULE_SGD, [0.9, 0.0, 0.0, 0.0]),
    "momentum-dampening-wd": (ids.RULE_SGD, [0.8, 0.3, 0.0, 0.01]),
    "nesterov": (ids.RULE_SGD, [0.9, 0.0, 1.0, 0.01]),
    "adam": (ids.RULE_ADAM, [0.9, 0.999, 1e-8, 0.0, 0.0]),
    "adam-wd-amsgrad": (ids.RULE_ADAM, [0.9, 0.99, 1e-8, 0.01, 1.0]),
    "adamw": (ids.RULE_ADAMW, [0.9, 0.999, 1e-8, 0.01, 0.0]),
    "adamw-amsgrad": (ids.RULE_ADAMW, [0.8, 0.99, 1e-6, 0.1, 1.0]),
    "adagrad": (ids.RULE_ADAGRAD, [0.0, 0.0, 1e-10, 0.0]),
    "adagrad-decay-wd-init": (ids.RULE_ADAGRAD, [0.01, 0.01, 1e-10, 0.1]),
    "rmsprop": (ids.RULE_RMSPROP, [0.99, 1e-8, 0.0, 0.0, 0.0]),
    "rmsprop-momentum-centered-wd": (ids.RULE_RMSPROP, [0.9, 1e-8, 0.01, 0.9, 1.0]),
}
PENALTIES = {"none": (0.0, 0.0), "l2": (0.01, 0.0), "l1": (0.01, 1.0),
             "elasticnet": (0.02, 0.4)}


def labels(loss_id, n, rng):
    if loss_id == ids.LOSS_LOGISTIC:
        return (rng.random(n) < 0.5).astype(np.float64)
    if loss_id in (ids.LOSS_HINGE, ids.LOSS_SQUARED_HINGE, ids.LOSS_MODIFIED_HUBER,
                   ids.LOSS_PERCEPTRON):
        return np.where(rng.random(n) < 0.5, -1.0, 1.0)
    if loss_id == ids.LOSS_SOFTMAX:
        return rng.integers(0, K3, n).astype(np.float64)
    return rng.standard_normal(n)


def make_problem(loss_id, n=N, d=D, seed=0, sw=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = labels(loss_id, n, rng)
    w = rng.uniform(0.5, 2.0, n) if sw else np.empty(0)
    return X, y, w


def run_epochs(mod, X, y, sw, loss_id, batch_size, rule="sgd", penalty="none", fit_intercept=True,
               epochs=2, lr=0.05, theta_dtype=np.float64, loss_param=EPS, seed=1, theta0=None):
    """``epochs`` epochs through ``mod.linear_epoch``; returns (n_done list, theta, state, losses)."""
    n = X.shape[0]
    K = K3 if loss_id == ids.LOSS_SOFTMAX else 1
    P = X.shape[1] * K + (K if fit_intercept else 0)
    rule_id, hyper = RULES[rule]
    alpha, l1_ratio = PENALTIES[penalty]
    rng = np.random.default_rng(seed)
    theta = (rng.uniform(-0.1, 0.1, P) if theta0 is None else theta0).astype(theta_dtype)
    state = np.zeros((ids.STATE_SLOTS[rule_id], P), dtype=theta_dtype)
    if rule_id == ids.RULE_ADAGRAD:
        state[0] = hyper[3]  # initial_accumulator_value
    grad = np.zeros(P, dtype=theta_dtype)
    nb = -(-n // batch_size)
    done, losses, step = [], [], 0
    for e in range(epochs):
        order = rng.permutation(n).astype(np.int64)
        lrs = lr / (1.0 + 0.1 * np.arange(step, step + nb))  # a schedule: lr changes per batch
        bl = np.zeros(nb)
        k = mod.linear_epoch(X, y, sw, order, batch_size, nb, loss_id, loss_param, K,
                             fit_intercept, alpha, l1_ratio, rule_id, np.asarray(hyper, float),
                             lrs, step, theta, grad, state, bl)
        done.append(int(k))
        losses.append(bl[:k + 1 if k < nb else nb].copy())
        step += nb
        if k < nb:
            break
    return done, theta, state, np.concatenate(losses)


def assert_close(actual, desired, rtol):
    """rtol elementwise, no absolute floor."""
    desired = np.asarray(desired, dtype=np.float64)
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), desired, rtol=rtol, atol=0)


def check_parity(X, y, sw, loss_id, batch_size, rtol=1e-9, theta_dtype=np.float64, X_ref=None,
                 **kw):
    got = run_epochs(nb_le, X, y, sw, loss_id, batch_size, theta_dtype=theta_dtype, **kw)
    Xr = X if X_ref is None else X_ref
    ref = run_epochs(ref_le, Xr, y.astype(np.float64), sw.astype(np.float64), loss_id, batch_size,
                     **kw)
    # A parity case must run to the end (a diverged run would compare little).
    nb = -(-X.shape[0] // batch_size)
    assert ref[0] == [nb] * kw.get("epochs", 2), "the reference diverged: not a parity case"
    assert np.all(np.isfinite(ref[1])) and np.all(np.isfinite(ref[3]))
    assert got[0] == ref[0]
    assert got[1].dtype == theta_dtype and got[2].dtype == theta_dtype
    assert_close(got[1], ref[1], rtol)
    assert_close(got[2], ref[2], rtol)
    assert_close(got[3], ref[3], rtol)
    return got, ref


# --------------------------------------------------------------------------------------
# Per-sample losses


@pytest.mark.parametrize("loss_id", SCALAR_LOSSES, ids=lambda c: LOSS_NAMES[c])
def test_scalar_losses_match_reference(loss_id):
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.standard_normal(30) * 3, [0.0, 1.0, -1.0, 0.3, -0.3, 800.0, -800.0,
                                                       EPS, -EPS, 1.0 + 1e-12]])
    y = labels(loss_id, p.size, rng)
    ref_l, ref_dl = ref_losses.loss_and_dloss(loss_id, EPS, p[:, None], y)
    got = np.array([nb_losses.loss_dloss(loss_id, EPS, pi, yi) for pi, yi in zip(p, y)])
    np.testing.assert_allclose(got[:, 0], ref_l, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(got[:, 1], ref_dl[:, 0], rtol=1e-14, atol=1e-300)


def test_inline_logistic_polynomial_matches_the_reference():
    """logistic_poly (the 4-row blocks of larger batches) against NumPy, |p| <= 700."""
    rng = np.random.default_rng(4)
    p = np.concatenate([rng.uniform(-40, 40, 4000), rng.uniform(-700, 700, 400),
                        [0.0, -0.0, 1e-300, -1e-300, 5e-324, 700.0, -700.0, 0.5 * np.log(2)]])
    for yv in (0.0, 1.0):
        y = np.full(p.size, yv)
        ref_l, ref_dl = ref_losses.loss_and_dloss(ids.LOSS_LOGISTIC, 0.0, p[:, None], y)
        got = np.array([nb_losses.logistic_poly(pi, yi) for pi, yi in zip(p, y)])
        np.testing.assert_allclose(got[:, 0], ref_l, rtol=1e-15, atol=0)  # a few ulps
        # dl = sigmoid(p) - y cancels for large |p|: compare on the scale of its terms
        np.testing.assert_allclose(got[:, 1], ref_dl[:, 0], rtol=0, atol=4e-16)


@pytest.mark.parametrize("loss_id", SCALAR_LOSSES, ids=lambda c: LOSS_NAMES[c])
def test_non_finite_predictions_stay_detectable_like_the_reference(loss_id):
    # fastmath without nnan/ninf: a NaN/inf prediction gives what NumPy gives.
    p = np.array([np.nan, np.inf, -np.inf])
    for yv in (-1.0, 0.0, 1.0):
        y = np.full(3, yv)
        with np.errstate(all="ignore"):
            ref_l, _ = ref_losses.loss_and_dloss(loss_id, EPS, p[:, None], y)
        got = np.array([nb_losses.loss_dloss(loss_id, EPS, pi, yi)[0] for pi, yi in zip(p, y)])
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(ref_l))


def test_softmax_loss_matches_reference():
    rng = np.random.default_rng(4)
    P = rng.standard_normal((25, 4)) * 4
    P[3] = [900.0, -900.0, 0.0, 1.0]  # would overflow a naive exp
    y = rng.integers(0, 4, 25).astype(np.float64)
    ref_l, ref_dl = ref_losses.loss_and_dloss(ids.LOSS_SOFTMAX, 0.0, P, y)
    dl = np.empty(4)
    for i in range(25):
        li = nb_losses.softmax_loss_dloss(P[i], y[i], dl)
        np.testing.assert_allclose(li, ref_l[i], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(dl, ref_dl[i], rtol=1e-13, atol=1e-16)


# --------------------------------------------------------------------------------------
# Whole epochs, float64, rtol 1e-9


# b = 3: softmax batches under SOFTMAX_T_MIN_ROWS take the row-major loop; b = 7 (five
# full batches, a tail of 5) the transposed one
@pytest.mark.parametrize("batch_size", [1, 3, 7, N], ids=["b1", "b3", "b7", "bn"])
@pytest.mark.parametrize("loss_id", ALL_LOSSES, ids=lambda c: LOSS_NAMES[c])
def test_epoch_every_loss(loss_id, batch_size):
    X, y, _ = make_problem(loss_id)
    check_parity(X, y, np.empty(0), loss_id, batch_size)


@pytest.mark.parametrize("fit_intercept", [True, False], ids=["icpt", "noicpt"])
@pytest.mark.parametrize("batch_size", [1, 7], ids=["b1", "b7"])
@pytest.mark.parametrize("loss_id", [ids.LOSS_SQUARED, ids.LOSS_LOGISTIC, ids.LOSS_HINGE,
                                     ids.LOSS_HUBER, ids.LOSS_SOFTMAX], ids=lambda c: LOSS_NAMES[c])
def test_epoch_sample_weights_and_intercept(loss_id, batch_size, fit_intercept):
    X, y, sw = make_problem(loss_id, sw=True)
    check_parity(X, y, sw, loss_id, batch_size, fit_intercept=fit_intercept, penalty="l2")


@pytest.mark.parametrize("batch_size", [1, 7, N], ids=["b1", "b7", "bn"])
@pytest.mark.parametrize("rule", list(RULES))
def test_epoch_every_rule(rule, batch_size):
    X, y, sw = make_problem(ids.LOSS_LOGISTIC, sw=True)
    check_parity(X, y, sw, ids.LOSS_LOGISTIC, batch_size, rule=rule, penalty="elasticnet",
                 epochs=3)


@pytest.mark.parametrize("rule", ["sgd", "nesterov", "adam-wd-amsgrad", "rmsprop-momentum-centered-wd"])
@pytest.mark.parametrize("batch_size", [1, 7], ids=["b1", "b7"])
def test_epoch_softmax_rules(rule, batch_size):
    X, y, sw = make_problem(ids.LOSS_SOFTMAX, sw=True)
    check_parity(X, y, sw, ids.LOSS_SOFTMAX, batch_size, rule=rule, penalty="elasticnet",
                 epochs=2)


@pytest.mark.parametrize("rule", ["sgd", "momentum"])
@pytest.mark.parametrize("batch_size", [1, 7, N], ids=["b1", "b7", "bn"])
@pytest.mark.parametrize("penalty", list(PENALTIES))
def test_epoch_every_penalty(penalty, batch_size, rule):
    X, y, _ = make_problem(ids.LOSS_SQUARED)
    for fi in (True, False):
        check_parity(X, y, np.empty(0), ids.LOSS_SQUARED, batch_size, rule=rule, penalty=penalty,
                     fit_intercept=fi)


def test_epoch_loss_param_none_means_a_parameter_of_0():
    """(On huber, which reads it: the squared loss, tested here before, ignores it.)"""
    X, y, _ = make_problem(ids.LOSS_HUBER)
    a = run_epochs(nb_le, X, y, np.empty(0), ids.LOSS_HUBER, 7, loss_param=None)
    b = run_epochs(nb_le, X, y, np.empty(0), ids.LOSS_HUBER, 7, loss_param=0.0)
    c = run_epochs(nb_le, X, y, np.empty(0), ids.LOSS_HUBER, 7, loss_param=0.5)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


# --------------------------------------------------------------------------------------
# float32


@pytest.mark.parametrize("batch_size", [1, 7, N], ids=["b1", "b7", "bn"])
@pytest.mark.parametrize("loss_id,rule", [(ids.LOSS_SQUARED, "sgd"), (ids.LOSS_LOGISTIC, "adam"),
                                          (ids.LOSS_HUBER, "momentum"),
                                          (ids.LOSS_SOFTMAX, "rmsprop-momentum-centered-wd")],
                         ids=lambda v: LOSS_NAMES[v] if isinstance(v, int) else v)
def test_float32_against_float64_reference(loss_id, rule, batch_size):
    X, y, sw = make_problem(loss_id, sw=True)
    X32, y32, sw32 = X.astype(np.float32), y.astype(np.float32), sw.astype(np.float32)
    got, ref = check_parity(X32, y32, sw32, loss_id, batch_size, rtol=1e-4,
                            theta_dtype=np.float32, X_ref=X, rule=rule, penalty="l2")
    assert got[1].dtype == np.float32


@pytest.mark.parametrize("batch_size", [1, 7, N], ids=["b1", "b7", "bn"])
@pytest.mark.parametrize("loss_id", [ids.LOSS_LOGISTIC, ids.LOSS_SOFTMAX],
                         ids=lambda c: LOSS_NAMES[c])
def test_float32_data_float64_accumulation_is_float64_exact(loss_id, batch_size):
    # float32 values are exact in float64, so accumulating in float64 must match the
    # float64 reference on the same (float32-rounded) data to float64 precision.
    X, y, sw = make_problem(loss_id, sw=True)
    X32, y32, sw32 = X.astype(np.float32), y.astype(np.float32), sw.astype(np.float32)
    check_parity(X32, y32, sw32, loss_id, batch_size, rtol=1e-9, theta_dtype=np.float64,
                 X_ref=X32.astype(np.float64), rule="adam", penalty="elasticnet")


# --------------------------------------------------------------------------------------
# Large batches: chunked parallel reduction, bit-identical for any thread count


BIG_N, BIG_D = 6000, 24  # 6000 * 24 >= PARALLEL_MIN_WORK: the prange path


@pytest.fixture(scope="module")
def big_problem():
    assert BIG_N * BIG_D >= nb_config.PARALLEL_MIN_WORK
    assert BIG_N > 4 * nb_config.CHUNK_ROWS
    return make_problem(ids.LOSS_LOGISTIC, n=BIG_N, d=BIG_D, seed=5, sw=True)


def _with_threads(nthreads, fn):
    old = numba.get_num_threads()
    numba.set_num_threads(nthreads)
    try:
        return fn()
    finally:
        numba.set_num_threads(old)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("loss_id,rule,b", [(ids.LOSS_LOGISTIC, "sgd", 32),
                                            (ids.LOSS_SOFTMAX, "adam", 20),
                                            (ids.LOSS_HUBER, "rmsprop-momentum-centered-wd", 9)],
                         ids=["logistic-sgd-b32", "softmax-adam-b20", "huber-rmsprop-b9"])
def test_mid_sized_batches_same_bits_on_one_or_two_threads(monkeypatch, loss_id, rule, b):
    """Two halves per batch: one thread, or two (the helper claims second halves as it
    can): the same bits, equal to the reference to its tolerance."""
    monkeypatch.setattr(nb_le, "PAIR_MIN_WORK", 0)
    n = 800
    X, _, sw = make_problem(loss_id, n=n, d=10, seed=6, sw=True)
    y = labels(loss_id, n, np.random.default_rng(2))
    nb = -(-n // b)
    assert _with_threads(2, lambda: nb_le.epoch_threads(n, 10, K3 if loss_id == ids.LOSS_SOFTMAX
                                                        else 1, True, b, nb)) == 2
    runs = [_with_threads(t, lambda: run_epochs(nb_le, X, y, sw, loss_id, b, rule=rule,
                                                penalty="elasticnet", epochs=3))
            for t in (1, 2, 2, 1)]
    for other in runs[1:]:
        np.testing.assert_array_equal(other[1], runs[0][1])
        np.testing.assert_array_equal(other[3], runs[0][3])
    ref = run_epochs(ref_le, X, y, sw, loss_id, b, rule=rule, penalty="elasticnet", epochs=3)
    assert_close(runs[0][1], ref[1], 1e-9)
    assert_close(runs[0][3], ref[3], 1e-9)


def _same_bits_near_reference(runs, X, y, w, loss_id, b, theta_dtype, **kw):
    """Every run of ``runs`` (run_epochs results) has the first one's bits, and they are
    the reference's to its tolerance (``kw``: rule, penalty, as the runs had them)."""
    for other in runs[1:]:
        np.testing.assert_array_equal(other[1], runs[0][1])
        np.testing.assert_array_equal(other[3], runs[0][3])
    ref = run_epochs(ref_le, X.astype(np.float64), y.astype(np.float64), w.astype(np.float64),
                     loss_id, b, epochs=2, lr=0.01, **kw)
    rtol = 1e-9 if theta_dtype == np.float64 and X.dtype == np.float64 else 1e-4
    assert_close(runs[0][1], ref[1], rtol)
    assert_close(runs[0][3], ref[3], rtol)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("loss_id,penalty,x_dtype,theta_dtype,sw",
                         [(ids.LOSS_LOGISTIC, "none", np.float64, np.float64, False),
                          (ids.LOSS_HINGE, "elasticnet", np.float32, np.float32, True),
                          (ids.LOSS_SQUARED, "none", np.float32, np.float64, True)],
                         ids=["logistic-f64", "hinge-enet-f32-sw", "squared-f32-f64-sw"])
def test_reader_thread_changes_no_bit(monkeypatch, loss_id, penalty, x_dtype, theta_dtype, sw):
    """Plain SGD at b = 1 with a reader thread loading the shuffled rows ahead: the bits
    of the one-thread epoch (straight from X) and of the gathered one, equal to the
    reference to its tolerance."""
    n = 600
    X, y, w = make_problem(loss_id, n=n, d=12, seed=8, sw=sw)
    X, y, w = X.astype(x_dtype), y.astype(x_dtype), w.astype(x_dtype)
    monkeypatch.setattr(nb_le, "GATHER_MIN_BYTES", 1 << 60)
    runs = []
    for reader_min, gather_min in ((1 << 60, 1 << 60), (0, 1 << 60), (1 << 60, 0)):
        monkeypatch.setattr(nb_le, "READER_MIN_BYTES", reader_min)
        monkeypatch.setattr(nb_le, "GATHER_MIN_BYTES", gather_min)
        monkeypatch.setattr(nb_le, "GATHER_BLOCK_BYTES", 40 * X.itemsize * 12)
        runs.append(_with_threads(2, lambda: run_epochs(nb_le, X, y, w, loss_id, 1,
                                                        penalty=penalty, epochs=2, lr=0.01,
                                                        theta_dtype=theta_dtype)))
    _same_bits_near_reference(runs, X, y, w, loss_id, 1, theta_dtype, penalty=penalty)


SPLIT_CASES = [(ids.LOSS_LOGISTIC, "sgd", "none", np.float64, np.float64, 32, False, 40),
               (ids.LOSS_LOGISTIC, "momentum", "elasticnet", np.float64, np.float64, 19, True, 37),
               (ids.LOSS_SQUARED, "adam-wd-amsgrad", "l2", np.float32, np.float64, 24, True, 40),
               (ids.LOSS_HINGE, "rmsprop-momentum-centered-wd", "l1", np.float32, np.float32,
                10, False, 64)]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("loss_id,rule,penalty,x_dtype,theta_dtype,b,sw,d", SPLIT_CASES,
                         ids=[f"{LOSS_NAMES[c[0]]}-{c[1]}-b{c[5]}-d{c[7]}" for c in SPLIT_CASES])
def test_split_batches_with_or_without_reader_same_bits(monkeypatch, loss_id, rule, penalty,
                                                        x_dtype, theta_dtype, b, sw, d):
    """Mid-sized batches over a large X (the threshold lowered here) run as
    _split_batches: on one thread, or with a reader thread loading the rows ahead: the
    same bits, equal to the reference to its tolerance."""
    n = 600
    X, y, w = make_problem(loss_id, n=n, d=d, seed=8, sw=sw)
    X, y, w = X.astype(x_dtype), y.astype(x_dtype), w.astype(x_dtype)
    monkeypatch.setattr(nb_le, "SPLIT_MIN_BYTES", 0)
    monkeypatch.setattr(nb_le, "READER_MIN_BYTES", 0)
    order = np.random.default_rng(0).permutation(n)
    assert nb_le._split_reads(X, order, b, 1)
    assert not nb_le._pairs(n, d, 1, b, -(-n // b), n, X.itemsize)
    runs = [_with_threads(t, lambda: run_epochs(nb_le, X, y, w, loss_id, b, rule=rule,
                                                penalty=penalty, epochs=2, lr=0.01,
                                                theta_dtype=theta_dtype))
            for t in (1, 2)]
    _same_bits_near_reference(runs, X, y, w, loss_id, b, theta_dtype, rule=rule, penalty=penalty)


HALVES_CASES = [(ids.LOSS_HINGE, "sgd", "none", np.float64, np.float64, 24, False, 12),
                (ids.LOSS_SOFTMAX, "momentum", "elasticnet", np.float32, np.float64, 16, True, 12),
                (ids.LOSS_SQUARED, "adam-wd-amsgrad", "l2", np.float64, np.float64, 9, True, 20)]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("loss_id,rule,penalty,x_dtype,theta_dtype,b,sw,d", HALVES_CASES,
                         ids=[f"{LOSS_NAMES[c[0]]}-{c[1]}-b{c[5]}-d{c[7]}" for c in HALVES_CASES])
def test_halves_with_or_without_reader_same_bits(monkeypatch, loss_id, rule, penalty, x_dtype,
                                                 theta_dtype, b, sw, d):
    """Mid-sized batches over a large X (the thresholds lowered here) that neither pair
    nor split run as halves on one thread with reader threads (_halves_read_epoch_impl):
    the bits of one thread (straight from X, and gathered), equal to the reference to its
    tolerance."""
    n = 600
    X, y, w = make_problem(loss_id, n=n, d=d, seed=8, sw=sw)
    X, y, w = X.astype(x_dtype), y.astype(x_dtype), w.astype(x_dtype)
    K = K3 if loss_id == ids.LOSS_SOFTMAX else 1
    rule_id, hyper = RULES[rule]
    order = np.random.default_rng(0).permutation(n)
    runs = []
    for reader_min, gather_min in ((1 << 60, 1 << 60), (0, 1 << 60), (1 << 60, 0)):
        monkeypatch.setattr(nb_le, "READER_MIN_BYTES", reader_min)
        monkeypatch.setattr(nb_le, "GATHER_MIN_BYTES", gather_min)
        monkeypatch.setattr(nb_le, "GATHER_BLOCK_BYTES", 3 * b * X.itemsize * d)
        path = _with_threads(2, lambda: nb_le._epoch_path(X, order, b, -(-n // b), loss_id, K,
                                                          rule_id, np.asarray(hyper, float)))
        assert path == ("halves_read" if reader_min == 0 else
                        "blocks_halves" if gather_min == 0 else "halves")
        runs.append(_with_threads(2, lambda: run_epochs(nb_le, X, y, w, loss_id, b, rule=rule,
                                                        penalty=penalty, epochs=2, lr=0.01,
                                                        theta_dtype=theta_dtype)))
    _same_bits_near_reference(runs, X, y, w, loss_id, b, theta_dtype, rule=rule, penalty=penalty)


READERS_SCRIPT = textwrap.dedent("""
    import sys
    import numba
    import numpy as np
    sys.path.insert(0, {here!r})
    import test_nb_kernels as t
    from fastgd.kernels import ids
    from fastgd.kernels.nb import linear_epoch as nb_le
    assert numba.config.NUMBA_NUM_THREADS == 3
    assert nb_le._reader_count() == 2 == nb_le.MAX_READERS
    import warnings
    warnings.simplefilter("error", numba.NumbaWarning)  # e.g. "Cannot cache ..."
    nb_le.SPLIT_MIN_BYTES = 0
    nb_le.READER_MIN_BYTES = 0
    for loss_id, b, d, sw, rule, path in [
            (ids.LOSS_LOGISTIC, 1, 12, True, "sgd", "read"),
            (ids.LOSS_SQUARED, 1, 12, True, "momentum", "rule1_read"),
            (ids.LOSS_SQUARED, 12, 12, True, "adam", "halves_read"),
            (ids.LOSS_HINGE, 24, 40, False, "sgd", "split_read")]:
        X, y, w = t.make_problem(loss_id, n=600, d=d, seed=8, sw=sw)
        order = np.random.default_rng(0).permutation(600)
        rule_id, hyper = t.RULES[rule]
        assert nb_le._epoch_path(X, order, b, -(-600 // b), loss_id, 1, rule_id,
                                 np.asarray(hyper, float)) == path
        runs = [t._with_threads(k, lambda: t.run_epochs(nb_le, X, y, w, loss_id, b, rule=rule,
                                                        epochs=2, lr=0.01))
                for k in (1, 3)]
        for a, c in zip(*runs):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
    print("ok")
""")


def test_two_reader_threads_change_no_bit(tmp_path):
    """With the threads for them, a shuffled epoch gets MAX_READERS readers, each loading
    every other row: still the bits of one thread.  (A process of its own: numba's
    thread count is fixed when it is imported.)  And the read kernels stay cacheable."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, NUMBA_NUM_THREADS="3", NUMBA_CACHE_DIR=str(tmp_path),
               FASTGD_NUMBA_CACHE="1")
    r = subprocess.run([sys.executable, "-c", READERS_SCRIPT.format(here=here)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok")


@pytest.mark.parametrize("order, expected", [
    (np.arange(1000), True), (np.arange(0), True), (np.arange(1), True),
    (np.random.default_rng(0).permutation(1000), False),
    (np.r_[np.arange(500), np.arange(600, 1000), np.arange(500, 600)], False),  # late descent
    (np.r_[np.arange(10), 9, np.arange(10, 20)], False),  # a repeat is no storage order
])
def test_reader_is_used_only_off_storage_order(order, expected):
    """_ascending (a look at the first positions, then the whole order) tells the
    rows in storage order, which need no reader, from any other order."""
    assert nb_le._ascending(order.astype(np.int64)) is expected


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_split_batches_diverge_at_the_same_batch_with_or_without_reader(monkeypatch):
    X, y, _ = make_problem(ids.LOSS_SQUARED, n=500, d=40, seed=5)
    X[:, 37] *= np.where(np.arange(500) == 123, 1e200, 1.0)
    monkeypatch.setattr(nb_le, "SPLIT_MIN_BYTES", 0)
    monkeypatch.setattr(nb_le, "READER_MIN_BYTES", 0)
    results = []
    for t in (1, 2):
        with np.errstate(all="ignore"):
            results.append(_with_threads(t, lambda: run_epochs(nb_le, X, y, np.empty(0),
                                                               ids.LOSS_SQUARED, 16, epochs=1)))
    (d1, t1, _, l1), (d2, t2, _, l2) = results
    assert d1 == d2 and d1[0] < -(-500 // 16)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(l1, l2)
    assert np.all(np.isfinite(t2))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_reader_thread_divergence_at_the_same_row(monkeypatch):
    X, y, _ = make_problem(ids.LOSS_SQUARED, n=500, d=12, seed=5)
    X[:, 3] *= np.where(np.arange(500) == 123, 1e200, 1.0)
    results = []
    for reader_min in (1 << 60, 0):
        monkeypatch.setattr(nb_le, "READER_MIN_BYTES", reader_min)
        with np.errstate(all="ignore"):
            results.append(_with_threads(2, lambda: run_epochs(nb_le, X, y, np.empty(0),
                                                               ids.LOSS_SQUARED, 1, epochs=1)))
    (d1, t1, _, l1), (d2, t2, _, l2) = results
    assert d1 == d2 and d1[0] < 500
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(l1, l2)
    assert np.all(np.isfinite(t2))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("loss_id", [ids.LOSS_LOGISTIC, ids.LOSS_SOFTMAX],
                         ids=lambda c: LOSS_NAMES[c])
@pytest.mark.parametrize("batch_size", [BIG_N, 2500], ids=["bn", "b2500-short-last"])
def test_large_batches_bit_identical_for_any_thread_count(big_problem, loss_id, batch_size):
    X, _, sw = big_problem
    y = labels(loss_id, BIG_N, np.random.default_rng(9))
    runs = [_with_threads(t, lambda: run_epochs(nb_le, X, y, sw, loss_id, batch_size,
                                                rule="adam", penalty="l2", epochs=2))
            for t in (1, 2, 1)]
    for other in runs[1:]:
        np.testing.assert_array_equal(other[1], runs[0][1])
        np.testing.assert_array_equal(other[3], runs[0][3])
    # ... and equal to the reference to rtol 1e-9.
    ref = run_epochs(ref_le, X, y, sw, loss_id, batch_size, rule="adam", penalty="l2", epochs=2)
    assert_close(runs[0][1], ref[1], 1e-9)
    assert_close(runs[0][3], ref[3], 1e-9)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_linear_batch_gradient_bit_identical_for_any_thread_count(big_problem):
    X, y, sw = big_problem
    P = BIG_D + 1
    theta = np.random.default_rng(2).standard_normal(P) * 0.1
    rows = np.random.default_rng(3).permutation(BIG_N).astype(np.int64)

    def grad():
        g = np.zeros(P)
        loss = nb_le.linear_batch_gradient(X, y, sw, rows, ids.LOSS_LOGISTIC, 0.0, 1, True,
                                           theta, g, 1.0 / BIG_N)
        return loss, g

    (l1, g1), (l2, g2) = _with_threads(1, grad), _with_threads(2, grad)
    assert l1 == l2
    np.testing.assert_array_equal(g1, g2)
    gr = np.zeros(P)
    lr_ = ref_le.linear_batch_gradient(X, y, sw, rows, ids.LOSS_LOGISTIC, 0.0, 1, True, theta, gr,
                                       1.0 / BIG_N)
    assert_close(g1, gr, 1e-9)
    assert_close(l1, lr_, 1e-9)


# --------------------------------------------------------------------------------------
# Divergence: stop at the first non-finite batch loss, exactly like the reference


@pytest.mark.parametrize("batch_size,rule", [(1, "sgd"), (1, "momentum"), (7, "sgd"), (N, "sgd")],
                         ids=["b1-plain", "b1-momentum", "b7", "bn"])
def test_divergence_stops_where_the_reference_stops(batch_size, rule):
    X, y, _ = make_problem(ids.LOSS_SQUARED)
    X = X * 10.0
    kw = dict(rule=rule, lr=50.0, epochs=150)
    got = run_epochs(nb_le, X, y, np.empty(0), ids.LOSS_SQUARED, batch_size, **kw)
    with np.errstate(all="ignore"):
        ref = run_epochs(ref_le, X, y, np.empty(0), ids.LOSS_SQUARED, batch_size, **kw)
    nb = -(-N // batch_size)
    assert ref[0][-1] < nb, "the reference should diverge on this problem"
    assert got[0] == ref[0]
    assert not np.isfinite(got[3][-1]) and not np.isfinite(ref[3][-1])
    finite = np.isfinite(ref[3])
    assert_close(got[3][finite], ref[3][finite], 1e-9)
    # theta after the last applied update: bitwise same finiteness, equal where finite.
    np.testing.assert_array_equal(np.isfinite(got[1]), np.isfinite(ref[1]))
    ok = np.isfinite(ref[1])
    assert_close(got[1][ok], ref[1][ok], 1e-9)


@pytest.mark.parametrize("rule,lr", [("sgd", 1e200), ("momentum", 1e200), ("adam", 1e300)])
def test_softmax_b1_divergence_hands_back_the_parameters_before_the_bad_row(rule, lr):
    # _softmax_b1 trains on W transposed: at a non-finite loss W and the state must come
    # back in their own layout, as they were before that row
    X, y, _ = make_problem(ids.LOSS_SOFTMAX)
    kw = dict(rule=rule, lr=lr, epochs=3)
    got = run_epochs(nb_le, X * 1e100, y, np.empty(0), ids.LOSS_SOFTMAX, 1, **kw)
    with np.errstate(all="ignore"):
        ref = run_epochs(ref_le, X * 1e100, y, np.empty(0), ids.LOSS_SOFTMAX, 1, **kw)
    assert ref[0][-1] < N, "the reference should diverge on this problem"
    assert got[0] == ref[0]
    for a, b in ((got[1], ref[1]), (got[2], ref[2])):  # theta, state: where finite, equal
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
        assert_close(a[np.isfinite(b)], b[np.isfinite(b)], 1e-9)


def test_divergence_leaves_theta_untouched_by_the_bad_batch():
    X, y, _ = make_problem(ids.LOSS_SQUARED)
    y = y.copy()
    y[:] = np.inf  # every batch loss is inf: nothing may be applied
    theta = np.full(D + 1, 0.25)
    state = np.zeros((1, D + 1))
    bl = np.zeros(6)
    k = nb_le.linear_epoch(X, y, np.empty(0), np.arange(N, dtype=np.int64), 7, 6,
                           ids.LOSS_SQUARED, 0.0, 1, True, 0.0, 0.0, ids.RULE_SGD,
                           np.array([0.9, 0.0, 0.0, 0.0]), np.full(6, 0.1), 0, theta,
                           np.zeros(D + 1), state, bl)
    assert k == 0
    assert not np.isfinite(bl[0])
    np.testing.assert_array_equal(theta, 0.25)
    np.testing.assert_array_equal(state, 0.0)


# --------------------------------------------------------------------------------------
# Data-parallel building blocks and the public update rules


def test_partial_gradients_add_up_to_the_batch_gradient():
    X, y, sw = make_problem(ids.LOSS_HUBER, sw=True)
    theta = np.random.default_rng(0).standard_normal(D + 1)
    rows = np.arange(N, dtype=np.int64)
    g_all, g_a, g_b = np.zeros(D + 1), np.zeros(D + 1), np.zeros(D + 1)
    l_all = nb_le.linear_batch_gradient(X, y, sw, rows, ids.LOSS_HUBER, EPS, 1, True, theta,
                                        g_all, 1.0 / N)
    l_a = nb_le.linear_batch_gradient(X, y, sw, rows[:15], ids.LOSS_HUBER, EPS, 1, True, theta,
                                      g_a, 1.0 / N)
    l_b = nb_le.linear_batch_gradient(X, y, sw, rows[15:], ids.LOSS_HUBER, EPS, 1, True, theta,
                                      g_b, 1.0 / N)
    assert_close(g_a + g_b, g_all, 1e-12)
    assert_close(l_a + l_b, l_all, 1e-12)
    g_ref = np.zeros(D + 1)
    l_ref = ref_le.linear_batch_gradient(X, y, sw, rows, ids.LOSS_HUBER, EPS, 1, True, theta,
                                         g_ref, 1.0 / N)
    assert_close(g_all, g_ref, 1e-12)
    assert_close(l_all, l_ref, 1e-12)
    for alpha, r in PENALTIES.values():
        g1, g2 = g_all.copy(), g_all.copy()
        p1 = nb_le.add_penalty(theta, g1, D, alpha, r)
        p2 = ref_le.add_penalty(theta, g2, D, alpha, r)
        assert_close(g1, g2, 1e-14)
        assert_close(p1, p2, 1e-14)


@pytest.mark.parametrize("rule", list(RULES))
def test_update_rules_match_reference(rule):
    from fastgd.reference import updates as ref_updates

    rule_id, hyper = RULES[rule]
    hyper = np.asarray(hyper, dtype=np.float64)
    rng = np.random.default_rng(7)
    P = 17
    theta = rng.standard_normal(P)
    state = np.abs(rng.standard_normal((ids.STATE_SLOTS[rule_id], P))) * 0.1
    t2, s2 = theta.copy(), state.copy()
    for step in range(1, 8):
        g = rng.standard_normal(P)
        nb_updates.apply_update(rule_id, hyper, theta, g, state, 0.05, step)
        ref_updates.apply_update(rule_id, hyper, t2, g, s2, 0.05, step)
    assert_close(theta, t2, 1e-12)
    assert_close(state, s2, 1e-12)


@njit
def _one_minus_power(beta, step):
    return 1.0 - beta ** step


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.8, 0.9, 0.99, 0.999, 0.9999, 1 - 1e-7])
def test_adam_bias_correction_is_the_power_bit_for_bit(beta):
    # 1.0 without the power once step (1 - beta) >= 38.2: steps on either side of that
    t = int(38.2 / (1.0 - beta))
    for step in sorted({1, 2, max(1, t - 1), max(1, t), t + 1, t + 2, 2 * t + 3, 10**9}):
        assert nb_updates.bias_correction(beta, step) == _one_minus_power(beta, step), (beta, step)


@pytest.mark.parametrize("rule", [r for r in RULES if RULES[r][0] in (ids.RULE_ADAM, ids.RULE_ADAMW)])
def test_adam_late_steps_match_reference(rule):
    # once step (1 - beta) >= 38.2 a bias correction is exactly 1 and Adam skips its pow
    # (for beta2, its division too): steps on either side of that, for each rule's betas
    from fastgd.reference import updates as ref_updates

    rule_id, hyper = RULES[rule]
    hyper = np.asarray(hyper, dtype=np.float64)
    rng = np.random.default_rng(5)
    P = 17
    steps = set()
    for beta in hyper[:2]:
        t = int(38.2 / (1.0 - beta))
        steps |= {max(1, t - 1), t, t + 1, t + 2, 10**6}
    for step in sorted(steps):
        theta = rng.standard_normal(P)
        state = np.abs(rng.standard_normal((ids.STATE_SLOTS[rule_id], P))) * 0.1
        g = rng.standard_normal(P)
        t2, s2 = theta.copy(), state.copy()
        nb_updates.apply_update(rule_id, hyper, theta, g, state, 0.05, step)
        ref_updates.apply_update(rule_id, hyper, t2, g, s2, 0.05, step)
        assert_close(theta, t2, 1e-12)
        assert_close(state, s2, 1e-12)


# --------------------------------------------------------------------------------------
# Embedding: the kernels called from the user's own @njit code


@njit
def _user_training_loop(X, y, orders, batch_size, lr, loss_id, K, theta, state):
    """A user's njit function: several epochs of linear_epoch, then a hand-made step.
    ``loss_id`` is a run-time value: the overloads reach softmax's kernel or the K = 1 one."""
    n_batches = (orders.shape[1] + batch_size - 1) // batch_size
    hyper = np.array([0.9, 0.0, 0.0, 0.0])
    grad = np.zeros_like(theta)
    losses = np.zeros(n_batches)
    step = 0
    for e in range(orders.shape[0]):
        lrs = np.full(n_batches, lr)
        done = nb_le.linear_epoch(X, y, np.empty(0), orders[e], batch_size, n_batches,
                                  loss_id, 0.0, K, True, 0.01, 0.0, ids.RULE_SGD,
                                  hyper, lrs, step, theta, grad, state, losses)
        step += done
    # One data-parallel style step: two partial gradients, summed, penalty, update.
    rows = orders[0]
    half = rows.shape[0] // 2
    g1 = np.zeros_like(theta)
    g2 = np.zeros_like(theta)
    scale = 1.0 / rows.shape[0]
    loss = nb_le.linear_batch_gradient(X, y, np.empty(0), rows[:half], loss_id, 0.0, K,
                                       True, theta, g1, scale)
    loss += nb_le.linear_batch_gradient(X, y, np.empty(0), rows[half:], loss_id, 0.0, K,
                                        True, theta, g2, scale)
    g = g1 + g2
    loss += nb_le.add_penalty(theta, g, X.shape[1] * K, 0.01, 0.0)
    nb_updates.apply_update(ids.RULE_SGD, hyper, theta, g, state, lr, step + 1)
    return loss


def test_kernels_callable_from_user_njit_code():
    from fastgd.reference.updates import apply_update

    rng = np.random.default_rng(11)
    orders = np.stack([rng.permutation(N) for _ in range(3)]).astype(np.int64)
    for loss_id, K in ((ids.LOSS_LOGISTIC, 1), (ids.LOSS_SOFTMAX, K3)):
        X, y, _ = make_problem(loss_id)
        P = D * K + K
        theta, state = np.zeros(P), np.zeros((1, P))
        loss = _user_training_loop(X, y, orders, 7, 0.1, loss_id, K, theta, state)

        # The same computation through the reference, step by step in Python.
        t2, s2 = np.zeros(P), np.zeros((1, P))
        hyper = np.array([0.9, 0.0, 0.0, 0.0])
        nb = -(-N // 7)
        step = 0
        for e in range(3):
            ref_le.linear_epoch(X, y, np.empty(0), orders[e], 7, nb, loss_id, 0.0, K, True,
                                0.01, 0.0, ids.RULE_SGD, hyper, np.full(nb, 0.1), step, t2,
                                np.zeros(P), s2, np.zeros(nb))
            step += nb
        g = np.zeros(P)
        l2 = ref_le.linear_batch_gradient(X, y, np.empty(0), orders[0], loss_id, 0.0, K,
                                          True, t2, g, 1.0 / N)
        l2 += ref_le.add_penalty(t2, g, D * K, 0.01, 0.0)
        apply_update(ids.RULE_SGD, hyper, t2, g, s2, 0.1, step + 1)
        assert_close(theta, t2, 1e-9)
        assert_close(state, s2, 1e-9)
        assert_close(loss, l2, 1e-9)
    # The njit entry passed the module-level GATHER_* ints as literals, which compiled the
    # whole epoch kernel again beside the one Python calls compile (docs/numba.md).
    assert nb_le._linear_epoch_builtin.signatures
    assert not any(isinstance(t, numba.types.Literal)
                   for sig in nb_le._linear_epoch_builtin.signatures for t in sig)


@njit
def _njit_gradient(X, y, loss_id, loss_param, K, theta, grad):
    return nb_le.linear_batch_gradient(X, y, np.empty(0), np.arange(X.shape[0]), loss_id,
                                       loss_param, K, True, theta, grad, 1.0)


def test_njit_callers_get_an_error_for_a_function_beside_a_builtin_code():
    """From njit code a function as loss_param with softmax's code had run the K = 1 rows
    (a loss 0.3 off, most of the gradient 0): only LOSS_CUSTOM takes a function."""
    @njit
    def sq(p, y):
        return 0.5 * (p - y) ** 2, p - y

    X, y, _ = make_problem(ids.LOSS_SOFTMAX)
    P = D * K3 + K3
    with pytest.raises(ValueError, match="loss_id must be LOSS_CUSTOM"):
        _njit_gradient(X, y, ids.LOSS_SOFTMAX, sq, K3, np.zeros(P), np.zeros(P))


def test_njit_callers_get_a_typing_error_for_a_float_count():
    """The njit entries hand the kernels int64 counts, and np.int64(8.5) is 8: a float
    count from the caller's code would have run truncated.  It is refused when the
    caller's function compiles (before any kernel does)."""
    @njit
    def epoch(X, y, b):
        P = X.shape[1] + 1
        return nb_le.linear_epoch(X, y, np.empty(0), np.arange(X.shape[0]), b, 5, 1, 0.0, 1,
                                  True, 0.0, 0.0, 0, np.zeros(4), np.full(5, 0.1), 0,
                                  np.zeros(P), np.zeros(P), np.zeros((1, P)), np.zeros(5))

    @njit
    def gradient(X, y, K):
        P = X.shape[1] + 1
        return nb_le.linear_batch_gradient(X, y, np.empty(0), np.arange(X.shape[0]), 1, 0.0, K,
                                           True, np.zeros(P), np.zeros(P), 1.0)

    X, y, _ = make_problem(ids.LOSS_LOGISTIC)
    with pytest.raises(numba.core.errors.TypingError,
                       match="linear_epoch: batch_size must be an integer, got float64"):
        epoch(X, y, 8.5)
    with pytest.raises(numba.core.errors.TypingError,
                       match="linear_batch_gradient: n_outputs must be an integer, got float64"):
        gradient(X, y, 1.0)


# --------------------------------------------------------------------------------------
# Compile options and caching


def test_compile_options_in_one_place():
    assert nb_config.FASTMATH == {"reassoc", "contract", "nsz"}
    for disp in (nb_le._linear_epoch_builtin, nb_le._linear_epoch_custom, nb_le._rows_gradient,
                 nb_le._sgd1_epoch_custom, nb_le._halves_epoch_custom, nb_le._serial_epoch_custom,
                 nb_le._plain_sgd_b1, nb_le._chunks_parallel, nb_le._add_penalty,
                 nb_updates._apply_update, nb_updates.sgd_update, nb_losses.loss_dloss,
                 nb_updates.adam_update, nb_updates.adagrad_update, nb_updates.rmsprop_update):
        opts = disp.targetoptions
        # the update rules' elementwise formulas and the scalar losses keep their order (no
        # reductions to vectorise)
        exact = disp in (nb_updates.adam_update, nb_updates.adagrad_update,
                         nb_updates.rmsprop_update, nb_losses.loss_dloss)
        assert opts["fastmath"] == ({"contract", "nsz"} if exact else
                                    {"reassoc", "contract", "nsz"}), disp
        assert opts["nogil"] is True, disp
        assert opts["error_model"] == "numpy", disp
    assert nb_le._chunks_parallel.targetoptions["parallel"] is True
    # Built-in kernels cache (where possible); kernels specialised on user functions never do.
    assert (nb_le._linear_epoch_builtin._cache.__class__.__name__ != "NullCache") == nb_config.CACHE
    for builtin, custom in nb_le._EPOCHS.values():
        assert (builtin._cache.__class__.__name__ != "NullCache") == nb_config.CACHE, builtin
        assert custom._cache.__class__.__name__ == "NullCache", custom


def test_each_kernel_compiles_the_rows_of_one_loss_family():
    """Softmax reaches the kernels with loss_param None (_SOFTMAX_PARAM), every other loss
    with a float or a function, and the rows and b = 1 loops are picked by that type when a
    kernel is compiled: a scalar loss's kernel holds no softmax rows and the reverse
    (a first BGD fit compiled both: 41 s cold against 21-27 here).  The overloads return one
    implementation each, naming only its own loop."""
    from numba.core import types

    def called(ol, n_args, param_pos, param_type):
        args = [types.int64] * n_args
        args[param_pos] = param_type
        return set(ol(*args).__code__.co_names)

    for param_type, fam, other in ((types.none, "_softmax_rows", "_scalar_rows"),
                                   (types.float64, "_scalar_rows", "_softmax_rows"),
                                   (types.float32, "_scalar_rows", "_softmax_rows")):
        names = called(nb_le._ol_loss_rows, 16, 7, param_type)
        assert fam in names and other not in names, (param_type, names)
    for param_type, fam, other in ((types.none, "_softmax_b1", "_scalar_rule_b1"),
                                   (types.float64, "_scalar_rule_b1", "_softmax_b1")):
        names = called(nb_le._ol_rule_b1, 21, 8, param_type)
        assert fam in names and other not in names, (param_type, names)
    # the entries pass softmax's marker whatever loss_param they were given
    f64 = np.dtype(np.float64)
    assert nb_le._builtin_param(ids.LOSS_SOFTMAX, 0.1, f64) is nb_le._SOFTMAX_PARAM is None
    assert nb_le._builtin_param(ids.LOSS_HUBER, 0.3, f64) == 0.3
    assert nb_le._builtin_param(ids.LOSS_SQUARED, None, f64) == 0.0


def test_a_fit_and_a_direct_call_share_one_compiled_epoch_kernel():
    """Numba types a read-only array apart from a writeable one.  The driver's constant
    step sizes were a read-only array, so a fit with a float lr compiled its epoch kernel
    a second time beside the one a schedule's fresh array or a direct call had compiled."""
    import fastgd

    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((N, D)), (rng.random(N) < 0.5).astype(float)
    for b in (1, 8):
        n_batches = -(-N // b)
        path = nb_le._epoch_path(X, np.arange(N), b, n_batches, ids.LOSS_LOGISTIC, 1,
                                 ids.RULE_SGD, np.zeros(4))
        kernel = nb_le._EPOCHS[path][False]
        fastgd.fit(X, y, loss="logistic", batch_size=b, epochs=2, lr=0.1, backend="numba")
        fastgd.fit(X, y, loss="logistic", batch_size=b, epochs=2, lr=0.1,
                   schedule="inverse_scaling", backend="numba")
        nb_le.linear_epoch(X, y, np.empty(0), rng.permutation(N), b, n_batches,
                           ids.LOSS_LOGISTIC, None, 1, True, 0.0, 0.0, ids.RULE_SGD, np.zeros(4),
                           np.full(n_batches, 0.1), 0, np.zeros(D + 1), np.zeros(D + 1),
                           np.zeros((1, D + 1)), np.zeros(n_batches))
        lrs_types = {sig[14] for sig in kernel.signatures if sig[0] == numba.typeof(X)}
        assert len(lrs_types) == 1 and next(iter(lrs_types)).mutable, (path, lrs_types)


_CACHED_BITS_SCRIPT = textwrap.dedent("""
    import numpy as np
    from fastgd.kernels import ids
    from fastgd.kernels.nb import linear_epoch as le
    rng = np.random.default_rng(0)
    X = rng.standard_normal((101, 20)); y = np.where(rng.random(101) < 0.5, -1.0, 1.0)
    sw = rng.uniform(0.5, 1.5, 101)
    theta = rng.uniform(-0.1, 0.1, 21); state = np.zeros((1, 21)); bl = np.zeros(101)
    le.linear_epoch(X, y, sw, rng.permutation(101), 1, 101, ids.LOSS_HINGE, 0.0, 1, True,
                    0.01, 0.0, ids.RULE_SGD, np.zeros(4), np.full(101, 0.05), 0, theta,
                    np.zeros(21), state, bl)
    print("THETA", theta.tobytes().hex())
""")


@pytest.mark.slow
def test_kernel_loaded_from_the_cache_gives_the_bits_of_a_fresh_compile(tmp_path):
    # The process that compiles a kernel runs its callees' own compiled copies; a later
    # process that loads it from the cache runs the copies linked into it, optimised again
    # there (docs/decisions.md, "Reproducibility").  b = 1 plain SGD with an l2 penalty
    # differed in the last bits until its penalised step was compiled without "reassoc".
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), FASTGD_NUMBA_CACHE="1")
    env.pop("NUMBA_DISABLE_JIT", None)
    runs = [subprocess.run([sys.executable, "-c", _CACHED_BITS_SCRIPT], env=env,
                           capture_output=True, text=True, timeout=300) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stdout + r.stderr
    assert any(f.endswith(".nbc") for _, _, fs in os.walk(tmp_path) for f in fs)
    fresh, cached = (next(line for line in r.stdout.splitlines() if line.startswith("THETA"))
                     for r in runs)
    assert fresh == cached


_RO_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    import fgk.nb.config as config
    from fgk.nb import linear_epoch as le
    from fgk import ids
    print("CACHE", config.CACHE)
    if sys.argv[1] == "epoch":
        rng = np.random.default_rng(0)
        X = rng.standard_normal((30, 4)); y = (rng.random(30) < 0.5).astype(float)
        theta = np.zeros(5); state = np.zeros((1, 5)); bl = np.zeros(5)
        k = le.linear_epoch(X, y, np.empty(0), rng.permutation(30), 7, 5, ids.LOSS_LOGISTIC,
                            0.0, 1, True, 0.0, 0.0, ids.RULE_SGD, np.zeros(4), np.full(5, 0.1),
                            0, theta, np.zeros(5), state, bl)
        assert k == 5 and np.all(np.isfinite(theta)) and np.any(theta != 0)
        print("THETA", repr(theta.tolist()))
    else:  # a small cached kernel: enough to see where the cache goes
        g = np.zeros(3)
        print("PENALTY", le.add_penalty(np.array([1.0, -2.0, 0.5]), g, 3, 0.1, 0.5), g.tolist())
""")


def _readonly_package(tmp_path):
    """A copy of kernels/ as the package ``fgk`` where no cache can be written.

    Permissions alone do not stop root, so the cache locations are made impossible:
    ``__pycache__`` is a plain file, and HOME/XDG_CACHE_HOME point below a plain file.
    """
    import fastgd.kernels as kernels_pkg

    src = os.path.dirname(kernels_pkg.__file__)
    root = tmp_path / "site"
    shutil.copytree(src, root / "fgk", ignore=shutil.ignore_patterns("__pycache__", "*.so",
                                                                       "*.c", "cy", "cuda"))
    for folder in (root / "fgk", root / "fgk" / "nb"):
        (folder / "__pycache__").write_text("not a directory")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, so nothing can be created below it")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "FASTGD_"))}
    env.update(PYTHONPATH=str(root), HOME=str(blocker / "home"),
               XDG_CACHE_HOME=str(blocker / "cache"), PYTHONDONTWRITEBYTECODE="1",
               OMP_WAIT_POLICY="PASSIVE")
    return root, env


def _run(env, cwd, what):
    out = subprocess.run([sys.executable, "-c", _RO_SCRIPT, what], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


@pytest.mark.slow
def test_read_only_install_without_cache_dir_imports_and_fits(tmp_path):
    root, env = _readonly_package(tmp_path)
    try:
        # No writable cache anywhere: caching is off, importing and a whole epoch work.
        out = _run(env, tmp_path, "epoch")
        assert "CACHE False" in out
        assert "THETA" in out
        # With a writable NUMBA_CACHE_DIR the same read-only install caches there,
        # and a second process loads the kernel from it.
        cache_dir = tmp_path / "numba-cache"
        env2 = dict(env, NUMBA_CACHE_DIR=str(cache_dir))
        out1 = _run(env2, tmp_path, "small")
        assert "CACHE True" in out1
        assert any(f.endswith(".nbc") for _, _, fs in os.walk(cache_dir) for f in fs)
        out2 = _run(dict(env2, NUMBA_DEBUG_CACHE="1"), tmp_path, "small")
        assert "data loaded" in out2
        pen = [line for text in (out1, out2) for line in text.splitlines()
               if line.startswith("PENALTY")]
        assert len(pen) == 2 and pen[0] == pen[1]
    finally:
        for dirpath, dirnames, filenames in os.walk(root):
            os.chmod(dirpath, 0o755)

# --------------------------------------------------------------------------------------
# Several fits in threads (the kernels release the GIL)

_THREADS_SCRIPT = textwrap.dedent("""
    import threading, numpy as np, numba
    from fastgd.kernels.nb import linear_epoch as le
    from fastgd.kernels import ids
    n, d = 6000, 24
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)); y = (rng.random(n) < 0.5).astype(float)
    def fit(out, key):
        theta = np.zeros(d + 1); state = np.zeros((1, d + 1))
        for e in range(4):
            le.linear_epoch(X, y, np.empty(0), np.random.default_rng(e).permutation(n), n, 1,
                            ids.LOSS_LOGISTIC, 0.0, 1, True, 0.0, 0.0, ids.RULE_SGD, np.zeros(4),
                            np.full(1, 0.5), e, theta, np.zeros(d + 1), state, np.zeros(1))
        out[key] = theta
    out = {}
    threads = [threading.Thread(target=fit, args=(out, i)) for i in range(3)]
    [t.start() for t in threads]; [t.join() for t in threads]
    fit(out, "alone")
    assert all(np.array_equal(out[i], out["alone"]) for i in range(3)), out
    print("OK", numba.threading_layer())
""")


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_large_batch_fits_in_threads(layer):
    # Large batches launch prange loops; with the workqueue layer concurrent launches
    # would abort the process, so the Python entry points serialise them there.
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer, OMP_WAIT_POLICY="PASSIVE")
    out = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK" in out.stdout


# --------------------------------------------------------------------------------------
# Gathered epochs (small batches on a large X copy each block of rows into a buffer
# first): the same arithmetic as reading X through order, bit for bit.


def _epoch_gathered_or_not(gathered, block_batches, X, y, sw, order, b, nb, loss_id, rule, lrs,
                           alpha=0.0, theta0=0.1):
    """The production epoch kernel with the gather thresholds set so that it gathers
    (blocks of ``block_batches`` batches) or reads X through ``order``."""
    K = K3 if loss_id == ids.LOSS_SOFTMAX else 1
    P = D * K + K
    rule_id, hyper = RULES[rule]
    theta = np.random.default_rng(1).uniform(-theta0, theta0, P)
    state = np.zeros((ids.STATE_SLOTS[rule_id], P))
    bl = np.zeros(nb)
    row_bytes = X.shape[1] * X.itemsize
    min_bytes, block_bytes = (0, block_batches * b * row_bytes) if gathered else (1 << 62, 1 << 20)
    param = nb_le._builtin_param(loss_id, EPS, theta.dtype)  # (softmax's: None)
    k = nb_le._linear_epoch_builtin(X, y, sw, order, b, nb, loss_id, param, K, True, alpha, 0.3,
                                    rule_id, np.asarray(hyper, float), lrs, 3, theta,
                                    np.zeros(P), state, bl, min_bytes, block_bytes)
    return k, theta, state, bl


@pytest.mark.parametrize("case", [
    dict(loss_id=ids.LOSS_LOGISTIC, b=1, rule="sgd"),
    dict(loss_id=ids.LOSS_LOGISTIC, b=1, rule="sgd", alpha=0.01, sw=True),
    dict(loss_id=ids.LOSS_HUBER, b=1, rule="momentum", sw=True),
    dict(loss_id=ids.LOSS_SQUARED, b=7, rule="adam-wd-amsgrad", alpha=0.01, sw=True),
    dict(loss_id=ids.LOSS_SOFTMAX, b=5, rule="rmsprop-momentum-centered-wd", sw=True),
    dict(loss_id=ids.LOSS_LOGISTIC, b=12, rule="momentum", alpha=0.01, sw=True),
], ids=["b1-plain", "b1-penalty-sw", "b1-momentum", "b7-adam", "softmax-b5", "b12-halves"])
@pytest.mark.parametrize("block_batches", [1, 3, 9])
def test_gathered_epoch_is_bit_identical_to_direct(case, block_batches):
    b = case["b"]
    n = 4 * block_batches * b + 3  # enough rows for the gathered path, and a ragged end
    X, y, sw = make_problem(case["loss_id"], n=n, sw=case.get("sw", False))
    nb = -(-n // b)
    order = np.random.default_rng(4).permutation(n).astype(np.int64)
    lrs = np.full(nb, 0.05)
    out = [_epoch_gathered_or_not(g, block_batches, X, y, sw, order, b, nb, case["loss_id"],
                                  case["rule"], lrs, case.get("alpha", 0.0))
           for g in (False, True)]
    assert out[0][0] == out[1][0] == nb
    for a, g in zip(out[0][1:], out[1][1:]):
        np.testing.assert_array_equal(g, a)


@pytest.mark.parametrize("b", [1, 7])
def test_gathered_epoch_stops_at_the_same_batch(b):
    n = 4 * 2 * b + 3
    X, y, _ = make_problem(ids.LOSS_SQUARED, n=n)
    X = X * 1e30
    nb = -(-n // b)
    order = np.random.default_rng(4).permutation(n).astype(np.int64)
    with np.errstate(all="ignore"):
        out = [_epoch_gathered_or_not(g, 2, X, y, np.empty(0), order, b, nb, ids.LOSS_SQUARED,
                                      "sgd", np.full(nb, 1e3)) for g in (False, True)]
    assert out[0][0] == out[1][0] < nb
    np.testing.assert_array_equal(out[1][1], out[0][1])
    k = out[0][0]
    np.testing.assert_array_equal(out[1][3][:k + 1], out[0][3][:k + 1])


# --------------------------------------------------------------------------------------
# An X too small to gather: linear_epoch runs the path _linear_epoch_impl would take in a
# kernel of its own (so that a fit compiles only that path); the same bits.


@pytest.mark.parametrize("case", [
    dict(path="sgd1", loss_id=ids.LOSS_LOGISTIC, b=1, rule="sgd"),
    dict(path="sgd1", loss_id=ids.LOSS_HINGE, b=1, rule="sgd", alpha=0.01, sw=True),
    dict(path="rule1", loss_id=ids.LOSS_HUBER, b=1, rule="momentum", sw=True),
    dict(path="rule1", loss_id=ids.LOSS_SQUARED, b=1, rule="adam-wd-amsgrad", alpha=0.01,
         sw=True),
    dict(path="serial", loss_id=ids.LOSS_SQUARED, b=7, rule="adam-wd-amsgrad", alpha=0.01,
         sw=True),
    dict(path="serial", loss_id=ids.LOSS_SOFTMAX, b=5, rule="rmsprop-momentum-centered-wd",
         sw=True),
    dict(path="serial", loss_id=ids.LOSS_LOGISTIC, b=60, rule="nesterov"),  # 2b > n: no halves
    dict(path="softmax1", loss_id=ids.LOSS_SOFTMAX, b=1, rule="adam-wd-amsgrad", alpha=0.01,
         sw=True),
    dict(path="softmax1", loss_id=ids.LOSS_SOFTMAX, b=1, rule="sgd"),
    dict(path="halves", loss_id=ids.LOSS_LOGISTIC, b=12, rule="momentum", alpha=0.01, sw=True),
    dict(path="halves", loss_id=ids.LOSS_SOFTMAX, b=9, rule="adagrad-decay-wd-init"),
    dict(path="large", loss_id=ids.LOSS_SQUARED, b=101, rule="sgd"),  # the whole order
    dict(path="large", loss_id=ids.LOSS_SOFTMAX, b=101, rule="adam-wd-amsgrad", alpha=0.01,
         sw=True),
    dict(path="large", loss_id=ids.LOSS_LOGISTIC, b=600, rule="momentum", n=1400),  # chunks
], ids=lambda c: f"{c['path']}-{LOSS_NAMES[c['loss_id']]}-b{c['b']}-{c['rule']}")
def test_small_x_paths_match_the_whole_kernel_bit_for_bit(case):
    n = case.get("n", 101)
    X, y, sw = make_problem(case["loss_id"], n=n, sw=case.get("sw", False))
    order = np.random.default_rng(4).permutation(n).astype(np.int64)
    _path_has_the_whole_kernels_bits(case, X, y, sw, order, 0)


def _path_has_the_whole_kernels_bits(case, X, y, sw, order, block):
    """linear_epoch takes ``case["path"]`` and gives the bits of the whole kernel
    (_linear_epoch_impl) gathering in blocks of ``block`` batches (0: straight from X)."""
    n, b = X.shape[0], case["b"]
    nb = -(-n // b)
    lrs = np.full(nb, 0.05)
    K = K3 if case["loss_id"] == ids.LOSS_SOFTMAX else 1
    rule_id, hyper = RULES[case["rule"]]
    hyper = np.asarray(hyper, float)
    assert nb_le._epoch_path(X, order, b, nb, case["loss_id"], K, rule_id, hyper) == case["path"]
    whole = _epoch_gathered_or_not(block > 0, block, X, y, sw, order, b, nb, case["loss_id"],
                                   case["rule"], lrs, case.get("alpha", 0.0))
    P = D * K + K
    theta = np.random.default_rng(1).uniform(-0.1, 0.1, P)
    state = np.zeros((ids.STATE_SLOTS[rule_id], P))
    bl = np.zeros(nb)
    k = nb_le.linear_epoch(X, y, sw, order, b, nb, case["loss_id"], EPS, K, True,
                           case.get("alpha", 0.0), 0.3, rule_id, hyper, lrs, 3, theta,
                           np.zeros(P), state, bl)
    assert k == whole[0] == nb
    for got, want in zip((theta, state, bl), whole[1:]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", [
    dict(path="blocks_sgd1", loss_id=ids.LOSS_LOGISTIC, b=1, rule="sgd"),
    dict(path="blocks_sgd1", loss_id=ids.LOSS_HINGE, b=1, rule="sgd", alpha=0.01, sw=True,
         sorted=True),
    dict(path="blocks_rule1", loss_id=ids.LOSS_HUBER, b=1, rule="momentum", sw=True),
    dict(path="blocks_softmax1", loss_id=ids.LOSS_SOFTMAX, b=1, rule="adam-wd-amsgrad",
         alpha=0.01, sw=True),
    dict(path="blocks_halves", loss_id=ids.LOSS_LOGISTIC, b=12, rule="momentum", alpha=0.01,
         sw=True),
    dict(path="blocks_serial", loss_id=ids.LOSS_SQUARED, b=7, rule="adam-wd-amsgrad",
         alpha=0.01, sw=True),
    dict(path="blocks_serial", loss_id=ids.LOSS_SOFTMAX, b=5,
         rule="rmsprop-momentum-centered-wd", sw=True, sorted=True),
    dict(path="blocks_large", loss_id=ids.LOSS_LOGISTIC, b=600, rule="momentum", n=1400),
], ids=lambda c: f"{c['path']}-{LOSS_NAMES[c['loss_id']]}-b{c['b']}-{c['rule']}"
                 f"{'-sorted' if c.get('sorted') else ''}")
def test_large_x_paths_match_the_whole_kernel_bit_for_bit(monkeypatch, case):
    """An X large enough to gather (the threshold lowered here): linear_epoch runs the
    path _linear_epoch_impl would take, gathered or straight from X, in a kernel of its own
    (_blocks_*_epoch_impl); the same bits."""
    n = case.get("n", 101)
    X, y, sw = make_problem(case["loss_id"], n=n, sw=case.get("sw", False))
    order = (np.arange(n) if case.get("sorted") else np.random.default_rng(4).permutation(n))
    block = 3
    monkeypatch.setattr(nb_le, "GATHER_MIN_BYTES", 0)
    monkeypatch.setattr(nb_le, "GATHER_BLOCK_BYTES", block * case["b"] * X.shape[1] * X.itemsize)
    _path_has_the_whole_kernels_bits(case, X, y, sw, order.astype(np.int64), block)


@pytest.mark.parametrize("b, rule", [(1, "sgd"), (1, "momentum"), (12, "sgd")])
def test_small_x_paths_stop_at_the_same_batch(b, rule):
    n = 101
    X, y, _ = make_problem(ids.LOSS_SQUARED, n=n)
    X = X * 1e30
    nb = -(-n // b)
    order = np.random.default_rng(4).permutation(n).astype(np.int64)
    lrs = np.full(nb, 1e3)
    rule_id, hyper = RULES[rule]
    theta = np.random.default_rng(1).uniform(-0.1, 0.1, D + 1)
    state = np.zeros((1, D + 1))
    bl = np.zeros(nb)
    with np.errstate(all="ignore"):
        whole = _epoch_gathered_or_not(False, 0, X, y, np.empty(0), order, b, nb,
                                       ids.LOSS_SQUARED, rule, lrs)
        k = nb_le.linear_epoch(X, y, np.empty(0), order, b, nb, ids.LOSS_SQUARED, EPS, 1, True,
                               0.0, 0.3, rule_id, np.asarray(hyper, float), lrs, 3, theta,
                               np.zeros(D + 1), state, bl)
    assert k == whole[0] < nb
    np.testing.assert_array_equal(theta, whole[1])
    np.testing.assert_array_equal(bl[:k + 1], whole[3][:k + 1])


def test_batch_form_loss_and_dloss_matches_reference():
    rng = np.random.default_rng(6)
    P = rng.standard_normal((12, 3)) * 3
    y = rng.integers(0, 3, 12).astype(np.float64)
    for loss_id, p in ((ids.LOSS_SOFTMAX, P), (ids.LOSS_HUBER, P[:, :1])):
        got = nb_losses.loss_and_dloss(loss_id, EPS, p, y)
        ref = ref_losses.loss_and_dloss(loss_id, EPS, p, y)
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-13, atol=1e-15)


#: numpy calls that ``parallel=True`` turns into a parallel loop of their own.
_PARFOR_CALLS = {"zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange"}


def test_kernels_with_a_prange_take_their_arrays_from_serial_helpers():
    """Under ``parallel=True`` an ``np.zeros`` in the kernel's own body is one more start of
    the thread team (about 70 us each; W1 b = 32 paid four an epoch): the kernels with a
    ``prange`` get their arrays from serial functions (_team_scratch, ...)."""
    import ast
    import inspect

    from fastgd.kernels.nb import custom_epoch

    checked, offending = set(), []
    for mod in (nb_le, custom_epoch):
        for obj in vars(mod).values():
            if not (isinstance(obj, numba.core.registry.CPUDispatcher)
                    and obj.targetoptions.get("parallel")):
                continue
            fn = obj.py_func
            checked.add(fn.__name__)
            src, first = inspect.getsourcelines(fn)
            for node in ast.walk(ast.parse(textwrap.dedent("".join(src)))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "np"
                        and node.func.attr in _PARFOR_CALLS):
                    offending.append(f"{fn.__name__}: np.{node.func.attr} "
                                     f"(line {first + node.lineno - 1})")
    assert {"_split_read_epoch_impl", "_read_epoch_impl", "_pair_epoch_impl",
            "_halves_read_epoch_impl", "_chunks_parallel"} <= checked, checked
    assert not offending, sorted(set(offending))


def test_prefetch_and_touch_take_any_integer_index():
    # an int32 order from a user's @njit code reaches these; an index of another width than
    # intp had crashed LLVM ("Operands must be the same type, got (i32, i64)")
    from fastgd.kernels.nb._util import prefetch_item, prefetch_row, touch

    @numba.njit
    def read(X, y, i):
        prefetch_row(X, i)
        prefetch_item(y, i)
        touch(X, i, 1)
        return X[i, 1] + y[i]

    X, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    assert [read(X, y, t(3)) for t in (np.int32, np.int64, np.uint32, np.int16)] == [10.0] * 4


def test_njit_callers_get_epsilon_rounded_like_the_python_entries():
    """A float32 theta takes epsilon rounded to float32 (the losses are formed in float64:
    against the double 0.1, a float32 residual 0.1f would take the other branch than on
    every other backend), on the njit path as on the Python one."""
    from fastgd.kernels.nb import linear_epoch as le

    param = numba.njit(lambda e, t: le._scalar_param(e, t))
    t32, t64 = np.zeros(1, np.float32), np.zeros(1)
    assert param(0.1, t32) == float(np.float32(0.1)) == le._builtin_param(6, 0.1, t32.dtype)
    assert param(0.1, t64) == 0.1 == le._builtin_param(6, 0.1, t64.dtype)
    assert param(None, t32) == 0.0
