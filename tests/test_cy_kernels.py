"""The Cython kernels (fastgd.kernels.cy) against the NumPy reference, directly.

Every loss code (0-9), every update-rule variant, the penalties, sample
weights, fit_intercept, softmax (K = 3), batch sizes 1, 7 (a shorter last
batch) and n, float64 to rtol 1e-9 and float32 (and float32 data accumulated in
float64) to rtol 1e-4 against a float64 reference run; the large-batch paths
(rows streamed in index order, OpenMP chunks) and their bit-identity for 1 and
2 threads; the divergence contract; and a third-party Cython module that
cimports the nogil C functions.

Tolerance convention (as fastgd.testing): rtol, with an absolute floor of rtol
times max(1, the largest magnitude of the reference vector).
"""
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fastgd.kernels import ids
from fastgd.kernels.cy import get_include
from fastgd.kernels.cy import linear_epoch as cy_le
from fastgd.kernels.cy import losses as cy_losses
from fastgd.kernels.cy import updates as cy_updates
from fastgd.reference import linear_epoch as ref_le
from fastgd.reference import losses as ref_losses
from fastgd.reference import updates as ref_updates

N, D, K3 = 30, 4, 3
EPS = 0.3  # epsilon of huber / epsilon-insensitive losses
RTOL64, RTOL32 = 1e-9, 1e-4

SCALAR_LOSSES = [ids.LOSS_SQUARED, ids.LOSS_LOGISTIC, ids.LOSS_HINGE, ids.LOSS_SQUARED_HINGE,
                 ids.LOSS_MODIFIED_HUBER, ids.LOSS_HUBER, ids.LOSS_EPSILON_INSENSITIVE,
                 ids.LOSS_SQUARED_EPSILON_INSENSITIVE, ids.LOSS_PERCEPTRON]
ALL_LOSSES = sorted(SCALAR_LOSSES + [ids.LOSS_SOFTMAX])
LOSS_NAMES = {v: k[5:].lower() for k, v in vars(ids).items() if k.startswith("LOSS_")}

# (rule_id, hyper, initial state value) for every variant the rules have.
RULES = {
    "sgd": (ids.RULE_SGD, [0.0, 0.0, 0.0, 0.0], 0.0),
    "sgd-momentum-dampening": (ids.RULE_SGD, [0.9, 0.3, 0.0, 0.0], 0.0),
    "sgd-nesterov-wd": (ids.RULE_SGD, [0.9, 0.0, 1.0, 0.01], 0.0),
    "adam": (ids.RULE_ADAM, [0.9, 0.999, 1e-8, 0.0, 0.0], 0.0),
    "adam-amsgrad-wd": (ids.RULE_ADAM, [0.8, 0.99, 1e-8, 0.01, 1.0], 0.0),
    "adamw": (ids.RULE_ADAMW, [0.9, 0.999, 1e-8, 0.01, 0.0], 0.0),
    "adamw-amsgrad": (ids.RULE_ADAMW, [0.9, 0.999, 1e-8, 0.05, 1.0], 0.0),
    "adagrad": (ids.RULE_ADAGRAD, [0.0, 0.0, 1e-10, 0.0], 0.0),
    "adagrad-decay-wd-init": (ids.RULE_ADAGRAD, [0.01, 0.01, 1e-10, 0.1], 0.1),
    "rmsprop": (ids.RULE_RMSPROP, [0.99, 1e-8, 0.0, 0.0, 0.0], 0.0),
    "rmsprop-centered-momentum-wd": (ids.RULE_RMSPROP, [0.9, 1e-8, 0.01, 0.5, 1.0], 0.0),
    "rmsprop-momentum": (ids.RULE_RMSPROP, [0.95, 1e-8, 0.0, 0.9, 0.0], 0.0),
}
PENALTIES = {"none": (0.0, 0.0), "l2": (0.01, 0.0), "l1": (0.01, 1.0),
             "elasticnet": (0.02, 0.15)}


def assert_close(actual, desired, rtol, err_msg=""):
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    # float32 kernels against a float64 reference: an element that is a tiny difference
    # (a well-classified sample's loss, an Adam state near 0) is off by float32's absolute
    # rounding, so the floor is rtol times the array's largest magnitude (not times
    # max(1, that), which let arrays of small values off by far more until the
    # twenty-ninth session)
    finite = np.abs(desired[np.isfinite(desired)])
    atol = rtol * float(np.max(finite, initial=0.0))
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, err_msg=err_msg)


# --------------------------------------------------------------------------- data

def labels(loss_id, score, rng, k=K3):
    if loss_id == ids.LOSS_LOGISTIC:
        return (score > 0).astype(np.float64)
    if loss_id in (ids.LOSS_HINGE, ids.LOSS_SQUARED_HINGE, ids.LOSS_MODIFIED_HUBER,
                   ids.LOSS_PERCEPTRON):
        return np.where(score > 0, 1.0, -1.0)
    if loss_id == ids.LOSS_SOFTMAX:
        return rng.integers(0, k, size=score.shape[0]).astype(np.float64)
    return 2.0 * score + 0.5


def make_problem(loss_id, n=N, d=D, seed=0, sw=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    score = X @ (rng.standard_normal(d) / np.sqrt(d)) + 0.3 * rng.standard_normal(n)
    y = labels(loss_id, score, rng)
    w = rng.uniform(0.5, 2.0, n) if sw else np.empty(0)
    return X, y, w


def n_outputs(loss_id):
    return K3 if loss_id == ids.LOSS_SOFTMAX else 1


def run_epoch(mod, X, y, sw, order, b, loss_id, fi, rule, alpha=0.0, l1_ratio=0.0, lr=0.05,
              acc=np.float64, theta0=None, state0=None, step0=0, n_batches=None):
    """Run one epoch of ``mod.linear_epoch``; returns (n_done, theta, state, batch_loss)."""
    rule_id, hyper, s0 = RULES[rule]
    K = n_outputs(loss_id)
    d = X.shape[1]
    P = d * K + (K if fi else 0)
    m = len(order)
    nb = -(-m // b) if n_batches is None else n_batches
    theta = (np.zeros(P) if theta0 is None else np.array(theta0)).astype(acc)
    state = (np.full((ids.STATE_SLOTS[rule_id], P), s0) if state0 is None
             else np.array(state0)).astype(acc)
    grad = np.zeros(P, dtype=acc)
    batch_loss = np.full(nb, -1.0)
    lrs = lr * (1.0 + 0.1 * np.cos(np.arange(nb)))  # a schedule: a different step each batch
    n_done = mod.linear_epoch(X, y, sw, np.asarray(order, dtype=np.int64), b, nb, loss_id, EPS,
                              K, fi, alpha, l1_ratio, rule_id, np.array(hyper, dtype=np.float64),
                              lrs, step0, theta, grad, state, batch_loss)
    return n_done, theta, state, batch_loss


def both(X, y, sw, order, b, loss_id, fi, rule, x_dtype=np.float64, acc=np.float64, **kw):
    """(cython run on the given dtypes, reference run in float64 on the same values)."""
    Xc, yc = X.astype(x_dtype), y.astype(x_dtype)
    swc = sw.astype(x_dtype)
    got = run_epoch(cy_le, Xc, yc, swc, order, b, loss_id, fi, rule, acc=acc, **kw)
    # the reference sees exactly the values the kernel saw, in float64
    want = run_epoch(ref_le, Xc.astype(np.float64), yc.astype(np.float64),
                     swc.astype(np.float64), order, b, loss_id, fi, rule, **kw)
    return got, want


def check(got, want, rtol, what=""):
    assert got[0] == want[0], f"{what}: n_done {got[0]} != {want[0]}"
    assert got[1].dtype == got[2].dtype
    assert_close(got[1], want[1], rtol, f"{what}: theta")
    assert_close(got[2], want[2], rtol, f"{what}: state")
    assert_close(got[3], want[3], rtol, f"{what}: batch_loss")


# --------------------------------------------------------------------------- codes

def test_codes_match_ids():
    # the rules' enum is checked through behaviour: each id runs the reference's rule
    from fastgd.reference import updates as ref_updates

    rng = np.random.default_rng(5)
    hypers = {ids.RULE_SGD: [0.9, 0.1, 1.0, 0.01], ids.RULE_ADAM: [0.9, 0.99, 1e-8, 0.01, 1.0],
              ids.RULE_ADAMW: [0.9, 0.99, 1e-8, 0.01, 0.0], ids.RULE_ADAGRAD: [0.1, 0.01, 1e-10, 0.0],
              ids.RULE_RMSPROP: [0.99, 1e-8, 0.01, 0.9, 0.0]}
    assert sorted(hypers) == sorted(ids.STATE_SLOTS)
    for rule_id, hyper in hypers.items():
        theta, grad = rng.standard_normal(7), rng.standard_normal(7)
        state = np.abs(rng.standard_normal((ids.STATE_SLOTS[rule_id], 7)))
        t_ref, s_ref = theta.copy(), state.copy()
        cy_updates.apply_update(rule_id, np.array(hyper), theta, grad, state, 0.1, 3)
        ref_updates.apply_update(rule_id, np.array(hyper), t_ref, grad, s_ref, 0.1, 3)
        np.testing.assert_allclose(theta, t_ref, rtol=1e-12, err_msg=str(rule_id))
        np.testing.assert_allclose(state, s_ref, rtol=1e-12, err_msg=str(rule_id))
    # the losses' enum is checked through behaviour: loss 1 is logistic, 0 squared...
    assert cy_losses.py_loss(ids.LOSS_SQUARED, 0.0, 3.0, 1.0) == 2.0
    assert cy_losses.py_loss(ids.LOSS_LOGISTIC, 0.0, 0.0, 1.0) == pytest.approx(np.log(2.0))
    assert cy_losses.py_loss(ids.LOSS_HINGE, 0.0, 0.5, 1.0) == 0.5
    assert cy_losses.py_loss(ids.LOSS_PERCEPTRON, 0.0, 0.5, 1.0) == 0.0


def test_custom_loss_is_refused_clearly():
    X, y, sw = make_problem(ids.LOSS_SQUARED)

    def epoch(loss_param):
        cy_le.linear_epoch(X, y, sw, np.arange(N), 1, N, ids.LOSS_CUSTOM, loss_param, 1, True,
                           0.0, 0.0, 0, np.zeros(4), np.full(N, 0.1), 0, np.zeros(D + 1),
                           np.zeros(D + 1), np.zeros((1, D + 1)), np.zeros(N))

    with pytest.raises(ValueError, match="numba"):  # a well-formed custom loss: not here
        epoch(lambda p, y: (0.5 * (p - y) ** 2, p - y))
    with pytest.raises(TypeError, match="loss function itself"):  # the shared check first
        epoch(None)
    with pytest.raises(ValueError, match="numba"):
        cy_losses.py_loss(ids.LOSS_CUSTOM, 0.0, 1.0, 1.0)


@pytest.mark.parametrize("fn", ["py_loss", "py_dloss", "loss_and_dloss"])
def test_loss_wrappers_check_their_arguments(fn):
    """The wrappers that reach the C losses take the shared checks of the epoch entries: a
    bool or float code had run as logistic, a string epsilon failed inside float() and a
    negative one gave negative losses."""
    call = getattr(cy_losses, fn)
    p, y = (np.array([[0.5]]), np.array([1.0])) if fn == "loss_and_dloss" else (0.5, 1.0)
    for loss_id, param, error, words in (
            (True, 0.0, ValueError, ["loss_id", "True"]),
            (1.0, 0.0, ValueError, ["loss_id", "1.0"]),
            (12, 0.0, ValueError, ["loss_id", "12"]),
            (ids.LOSS_HUBER, "a", TypeError, ["loss_param", "'a'", "real number"]),
            (ids.LOSS_HUBER, -1.0, ValueError, ["loss_param", "-1.0", ">= 0"]),
            (ids.LOSS_HUBER, np.nan, ValueError, ["loss_param", "nan"])):
        with pytest.raises(error) as info:
            call(loss_id, param, p, y)
        for word in words:
            assert word in str(info.value), f"{word!r} missing from: {info.value}"
    bad_p = np.array([["a"]]) if fn == "loss_and_dloss" else "a"
    with pytest.raises(TypeError, match="Invalid p"):
        call(ids.LOSS_SQUARED, None, bad_p, y)
    # None is epsilon 0 (documented), not an unnamed TypeError
    out = call(ids.LOSS_HUBER, None, p, y)
    want = ref_losses.loss_and_dloss(ids.LOSS_HUBER, 0.0, np.array([[0.5]]), np.array([1.0]))
    if fn == "py_loss":
        assert out == want[0][0]
    elif fn == "py_dloss":
        assert out == want[1][0, 0]
    else:
        np.testing.assert_array_equal(out[0], want[0])
        np.testing.assert_array_equal(out[1], want[1])


# --------------------------------------------------------------------------- losses

def loss_inputs(loss_id, n=200, seed=3, spread=4.0):
    rng = np.random.default_rng(seed)
    K = n_outputs(loss_id)
    p = spread * rng.standard_normal((n, K))
    if loss_id == ids.LOSS_LOGISTIC and spread > 5:
        p[:4, 0] = [-745.0, -40.0, 40.0, 745.0]  # stability at extreme logits
    y = labels(loss_id, rng.standard_normal(n), rng)
    return p, y


@pytest.mark.parametrize("loss_id", ALL_LOSSES, ids=lambda c: LOSS_NAMES[c])
def test_losses_float64(loss_id):
    p, y = loss_inputs(loss_id, spread=30.0 if loss_id == ids.LOSS_LOGISTIC else 4.0)
    l_ref, dl_ref = ref_losses.loss_and_dloss(loss_id, EPS, p, y)
    l, dl = cy_losses.loss_and_dloss(loss_id, EPS, p, y)
    assert l.dtype == dl.dtype == np.float64
    assert np.all(np.isfinite(l)) and np.all(np.isfinite(dl))
    np.testing.assert_allclose(l, l_ref, rtol=RTOL64, atol=0)
    np.testing.assert_allclose(dl, dl_ref, rtol=RTOL64, atol=0)
    # the per-sample wrappers reach the same inline C functions
    for i in range(0, len(y), 17):
        if loss_id == ids.LOSS_SOFTMAX:
            assert cy_losses.py_loss(loss_id, EPS, p[i], y[i]) == l[i]
            np.testing.assert_array_equal(cy_losses.py_dloss(loss_id, EPS, p[i], y[i]), dl[i])
        else:
            assert cy_losses.py_loss(loss_id, EPS, p[i, 0], y[i]) == l[i]
            assert cy_losses.py_dloss(loss_id, EPS, p[i, 0], y[i]) == dl[i, 0]


@pytest.mark.parametrize("loss_id", ALL_LOSSES, ids=lambda c: LOSS_NAMES[c])
def test_losses_float32(loss_id):
    p, y = loss_inputs(loss_id)
    p32, y32 = p.astype(np.float32), y.astype(np.float32)
    l_ref, dl_ref = ref_losses.loss_and_dloss(loss_id, EPS, p32.astype(np.float64),
                                              y32.astype(np.float64))
    l, dl = cy_losses.loss_and_dloss(loss_id, EPS, p32, y32)
    assert l.dtype == dl.dtype == np.float32
    assert_close(l, l_ref, RTOL32)
    assert_close(dl, dl_ref, RTOL32)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss_id", SCALAR_LOSSES, ids=lambda c: LOSS_NAMES[c])
def test_non_finite_predictions_stay_detectable_like_the_reference(loss_id, dtype):
    # A NaN or infinite prediction must give a non-finite loss exactly where NumPy's
    # reference does: the kernels stop a fit at the first non-finite batch loss, so a
    # loss that maps NaN to 0 would stop it at another iteration than the other backends.
    p = np.array([[np.nan], [np.inf], [-np.inf]], dtype=dtype)
    for yv in (-1.0, 0.0, 1.0):
        y = np.full(3, yv, dtype=dtype)
        with np.errstate(all="ignore"):
            ref_l, _ = ref_losses.loss_and_dloss(loss_id, EPS, p.astype(np.float64),
                                                 y.astype(np.float64))
            got, _ = cy_losses.loss_and_dloss(loss_id, EPS, p, y)
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(ref_l),
                                      err_msg=f"{LOSS_NAMES[loss_id]}, y = {yv}")


def test_logistic_extreme_logits_are_exact():
    for p in (-745.0, -40.0, -1e-3, 0.0, 1e-3, 40.0, 745.0, 1e300, -1e300):
        for y in (0.0, 1.0):
            l, dl = cy_losses.py_loss(1, 0.0, p, y), cy_losses.py_dloss(1, 0.0, p, y)
            lr, dlr = ref_losses.loss_and_dloss(1, 0.0, np.array([[p]]), np.array([y]))
            assert np.isfinite(l) and np.isfinite(dl)
            assert l == pytest.approx(lr[0], rel=1e-15, abs=0)
            assert dl == pytest.approx(dlr[0, 0], rel=1e-15, abs=0)


# --------------------------------------------------------------------------- updates

def _ref_rule_step(name, theta, grad, state, lr, step):
    rule_id, hyper, _ = RULES[name]
    ref_updates.apply_update(rule_id, np.array(hyper), theta, grad, state, lr, step)


def _cy_rule_step(name, theta, grad, state, lr, step):
    """Through the per-rule Python wrappers (not the dispatcher)."""
    rule_id, h, _ = RULES[name]
    if rule_id == ids.RULE_SGD:
        cy_updates.sgd_update(theta, grad, state[0], lr, h[0], h[1], bool(h[2]), h[3], step)
    elif rule_id in (ids.RULE_ADAM, ids.RULE_ADAMW):
        cy_updates.adam_update(theta, grad, state[0], state[1], state[2], lr, h[0], h[1], h[2],
                               h[3], rule_id == ids.RULE_ADAMW, bool(h[4]), step)
    elif rule_id == ids.RULE_ADAGRAD:
        cy_updates.adagrad_update(theta, grad, state[0], lr, h[0], h[1], h[2], step)
    else:
        cy_updates.rmsprop_update(theta, grad, state[0], state[1], state[2], lr, h[0], h[1],
                                  h[2], h[3], bool(h[4]))


@pytest.mark.parametrize("via", ["rule", "apply_update"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(RULES))
def test_update_rules_step_by_step(name, dtype, via):
    rng = np.random.default_rng(7)
    P = 23
    rule_id, hyper, s0 = RULES[name]
    theta0 = rng.standard_normal(P).astype(dtype)
    theta_ref = theta0.astype(np.float64)
    state_ref = np.full((ids.STATE_SLOTS[rule_id], P), s0)
    theta, state = theta0.copy(), state_ref.astype(dtype)
    theta_id, state_id = id(theta), id(state)
    rtol = RTOL64 if dtype == np.float64 else RTOL32
    for step in range(1, 7):
        g = rng.standard_normal(P).astype(dtype)
        lr = 0.05 / step
        _ref_rule_step(name, theta_ref, g.astype(np.float64), state_ref, lr, step)
        if via == "rule":
            _cy_rule_step(name, theta, g, state, lr, step)
        else:
            cy_updates.apply_update(rule_id, np.array(hyper), theta, g, state, lr, step)
        assert theta.dtype == dtype and state.dtype == dtype
        assert_close(theta, theta_ref, rtol, f"{name} step {step} theta")
        assert_close(state, state_ref, rtol, f"{name} step {step} state")
    assert id(theta) == theta_id and id(state) == state_id  # in place
    assert not np.array_equal(theta, theta0)


# Adam's bias corrections 1 - beta**step become exactly 1 once step (1 - beta) >= 38.2, and
# the kernels then skip the pow (and, for beta2, a division a parameter): steps on either
# side of that, for each beta.
ADAM_BETAS = [0.0, 0.1, 0.5, 0.8, 0.9, 0.99, 0.999, 0.9999, 1 - 1e-7]


def adam_late_steps(beta):
    t = int(38.2 / (1.0 - beta))
    return sorted({1, 2, max(1, t - 1), max(1, t), t + 1, t + 2, 2 * t + 3, 10**9})


@pytest.mark.parametrize("beta", ADAM_BETAS)
def test_adam_bias_correction_is_the_pow_bit_for_bit(beta):
    for step in adam_late_steps(beta):
        assert cy_updates.bias_correction(beta, step) == 1.0 - beta ** step, (beta, step)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", [n for n in RULES if "adam" in n])
def test_adam_late_steps_match_reference(name, dtype):
    rule_id, hyper, _ = RULES[name]
    rng = np.random.default_rng(3)
    P = 23
    rtol = RTOL64 if dtype == np.float64 else RTOL32
    steps = sorted(set(adam_late_steps(hyper[0]) + adam_late_steps(hyper[1])))
    for step in steps:
        theta_ref = rng.standard_normal(P)
        state_ref = np.abs(rng.standard_normal((ids.STATE_SLOTS[rule_id], P))) * 0.1
        g = rng.standard_normal(P).astype(dtype)
        theta, state = theta_ref.astype(dtype), state_ref.astype(dtype)
        ref_updates.apply_update(rule_id, np.array(hyper), theta_ref, g.astype(np.float64),
                                 state_ref, 0.01, step)
        cy_updates.apply_update(rule_id, np.array(hyper), theta, g, state, 0.01, step)
        assert_close(theta, theta_ref, rtol, f"{name} step {step} theta")
        assert_close(state, state_ref, rtol, f"{name} step {step} state")


@pytest.mark.parametrize("K", [2, 3, 5, 10, 33])
def test_softmax_of_four_rows_within_a_few_ulps_of_the_scalar_loss(K):
    """The float64 softmax batches' four-row losses (vectorised exp and log) against
    softmax_loss_dloss (glibc's exp and log), row by row: the gradient within 4 ulps of 1,
    the loss within 4 ulps of the terms it is formed from; spreads of scores up to 700."""
    eps = np.finfo(np.float64).eps
    rng = np.random.default_rng(K)
    for spread in (1e-3, 1.0, 30.0, 300.0, 699.0):
        for _ in range(50):
            scores = rng.uniform(-spread / 2, spread / 2, (4, K)) + rng.normal(0, 50)
            cls = rng.integers(0, K, 4)
            loss, dl, vec = cy_le._softmax4(scores, cls)
            assert vec, (spread, scores)
            for r in range(4):
                ref_loss = cy_losses.py_loss(ids.LOSS_SOFTMAX, 0.0, scores[r], cls[r])
                ref_dl = cy_losses.py_dloss(ids.LOSS_SOFTMAX, 0.0, scores[r], cls[r])
                size = np.abs(scores[r]).max() + abs(ref_loss) + 1.0
                assert abs(loss[r] - ref_loss) <= 4 * eps * size, (spread, scores[r], cls[r])
                np.testing.assert_allclose(dl[r], ref_dl, rtol=0, atol=4 * eps)


def test_softmax_of_four_rows_leaves_non_finite_and_far_scores_to_the_scalar_path():
    """A non-finite score, or one more than 700 below its row's largest (where the
    vectorised exp would leave the normal range), sends the block to the scalar loss."""
    base = np.zeros((4, 3))
    for bad in (np.nan, np.inf, -np.inf, -701.0):
        scores = base.copy()
        scores[2, 1] = bad
        assert not cy_le._softmax4(scores, np.array([0, 1, 2, 0]))[2]
    assert cy_le._softmax4(base - 699.0 * (np.arange(3) == 1), np.array([0, 1, 2, 0]))[2]


@pytest.mark.parametrize("xdtype,wdtype", [(np.float64, np.float64), (np.float32, np.float64),
                                           (np.float32, np.float32), (np.float64, np.float32)])
def test_four_row_dots_match_exact_sums_for_every_length(xdtype, wdtype):
    """_dot4 (the softmax batches' four rows against one class's weights): each of the
    four within the rounding bound of a d-term sum of its dtype, for lengths that end in
    every part of the vector loops (16- and 8-wide steps, the scalar tail)."""
    rng = np.random.default_rng(4)
    eps = np.finfo(wdtype).eps
    for d in list(range(0, 41)) + [100, 129]:
        x = rng.standard_normal((4, d)).astype(xdtype)
        w = rng.standard_normal(d).astype(wdtype)
        out = cy_le._dot4_rows(x, w)
        assert out.dtype == wdtype
        # (double X, float32 sums) rounds X to float32 first, as the reference does
        xv = x.astype(np.float32) if wdtype == np.float32 else x
        for r in range(4):
            terms = [float(a) * float(b) for a, b in zip(xv[r], w)]
            exact = math.fsum(terms)
            bound = (d + 1) * eps * math.fsum(abs(t) for t in terms)
            assert abs(float(out[r]) - exact) <= bound, (d, r, out[r], exact)


@pytest.mark.parametrize("name", [n for n in RULES if RULES[n][0] != ids.RULE_SGD])
def test_sqrt_rules_give_the_reference_bits_float64(name):
    # fgd_rules.h runs each parameter's formula in the reference's order of correctly
    # rounded operations (no reassociation, no FMA), in the AVX2 clone and the baseline
    rule_id, hyper, s0 = RULES[name]
    rng = np.random.default_rng(2)
    P = 37
    theta = rng.standard_normal(P)
    state = np.full((ids.STATE_SLOTS[rule_id], P), s0)
    theta_ref, state_ref = theta.copy(), state.copy()
    for step in list(range(1, 12)) + [400, 40_000]:
        g = rng.standard_normal(P)
        cy_updates.apply_update(rule_id, np.array(hyper), theta, g, state, 0.01, step)
        ref_updates.apply_update(rule_id, np.array(hyper), theta_ref, g, state_ref, 0.01, step)
        np.testing.assert_array_equal(theta, theta_ref, err_msg=f"{name} step {step}")
        np.testing.assert_array_equal(state, state_ref, err_msg=f"{name} step {step}")


def test_update_rules_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    P = 9
    cases = [
        (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01),
         "sgd", dict(momentum=0.9, dampening=0.3, nesterov=False, weight_decay=0.01)),
        (lambda p: torch.optim.Adam(p, lr=0.1, amsgrad=True, weight_decay=0.01), "adam",
         dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, decoupled=False, amsgrad=True)),
        (lambda p: torch.optim.AdamW(p, lr=0.1), "adamw",
         dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, decoupled=True, amsgrad=False)),
        (lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
         "adagrad", dict(lr_decay=0.01, weight_decay=0.0, eps=1e-10)),
        (lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True), "rmsprop",
         dict(alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.5, centered=True)),
    ]
    for make, kind, kw in cases:
        theta0 = rng.standard_normal(P)
        tp = torch.nn.Parameter(torch.tensor(theta0.copy()))
        opt = make([tp])
        theta = theta0.copy()
        st = np.zeros((3, P))
        if kind == "adagrad":
            st[0] = 0.1
        lr = opt.param_groups[0]["lr"]
        for step in range(1, 6):
            g = rng.standard_normal(P)
            tp.grad = torch.tensor(g.copy())
            opt.step()
            if kind == "sgd":
                cy_updates.sgd_update(theta, g, st[0], lr, step=step, **kw)
            elif kind in ("adam", "adamw"):
                cy_updates.adam_update(theta, g, st[0], st[1], st[2], lr, step=step, **kw)
            elif kind == "adagrad":
                cy_updates.adagrad_update(theta, g, st[0], lr, step=step, **kw)
            else:
                cy_updates.rmsprop_update(theta, g, st[0], st[1], st[2], lr, **kw)
            assert_close(theta, tp.detach().numpy(), RTOL64, f"torch {kind} step {step}")


def test_update_wrappers_check_lengths():
    with pytest.raises(ValueError, match="grad"):
        cy_updates.sgd_update(np.zeros(5), np.zeros(4), np.zeros(5), 0.1, 0.0, 0.0, False, 0.0, 1)
    with pytest.raises(ValueError, match="state"):
        cy_updates.apply_update(ids.RULE_ADAM, np.zeros(5), np.zeros(5), np.zeros(5),
                                np.zeros((1, 5)), 0.1, 1)
    with pytest.raises(ValueError, match="rule"):
        cy_updates.apply_update(9, np.zeros(5), np.zeros(5), np.zeros(5), np.zeros((3, 5)), 0.1, 1)
    def z():
        return np.zeros(5)

    for call in (lambda: cy_updates.sgd_update(z(), z(), z(), 0.1, 0.9, 0.0, False, 0.0, 0),
                 lambda: cy_updates.adam_update(z(), z(), z(), z(), z(), 0.1, 0.9, 0.999, 1e-8,
                                                0.0, False, False, 0),
                 lambda: cy_updates.adagrad_update(z(), z(), z(), 0.1, 0.1, 0.0, 1e-10, -3),
                 lambda: cy_updates.adagrad_update(z(), z(), z(), 0.1, 0.1, 0.0, 1e-10, 1.5)):
        with pytest.raises(ValueError, match="Invalid step"):  # Adam: 0/0 at step 0
            call()


def test_update_wrappers_name_the_array_whose_layout_is_wrong():
    """Strided, read-only, 2-D or aliased arrays had met Cython's buffer errors, which name
    no argument ("ndarray is not C-contiguous"), or run on an alias."""
    z = np.zeros(5)
    read_only = np.zeros(5)
    read_only.flags.writeable = False
    for args, words in (((np.zeros(10)[::2], z, np.zeros(5)), ["theta", "strided"]),
                        ((np.zeros(5), np.zeros(10)[::2], np.zeros(5)), ["grad", "strided"]),
                        ((read_only, z, np.zeros(5)), ["theta", "read-only", "writeable"]),
                        ((np.zeros(5), z, np.zeros((1, 5))), ["buf", "(1, 5)", "1-D"]),
                        ((np.zeros(5), z, z), ["buf", "shares memory with grad"])):
        with pytest.raises(ValueError) as info:
            cy_updates.sgd_update(*args, 0.1, 0.9, 0.0, False, 0.0, 1)
        for word in words:
            assert word in str(info.value), f"{word!r} missing from: {info.value}"
    theta = np.ones(5)
    cy_updates.sgd_update(theta, read_only, np.zeros(5), 0.1, 0.9, 0.0, False, 0.0, 1)  # read
    np.testing.assert_array_equal(theta, np.ones(5))  # a zero gradient moved nothing


def test_update_wrappers_reject_mixed_dtypes():
    f32, f64 = np.zeros(5, np.float32), np.zeros(5)
    with pytest.raises(TypeError, match="grad has dtype float32 but theta has float64"):
        cy_updates.sgd_update(f64, f32, f64, 0.1, 0.0, 0.0, False, 0.0, 1)
    with pytest.raises(TypeError, match="vmax has dtype float64 but theta has float32"):
        cy_updates.adam_update(f32, f32, f32, f32, f64, 0.1, 0.9, 0.999, 1e-8, 0.0, False,
                               True, 1)
    with pytest.raises(TypeError, match="acc has dtype float32"):
        cy_updates.adagrad_update(f64, f64, f32, 0.1, 0.0, 0.0, 1e-10, 1)
    with pytest.raises(TypeError, match="grad_avg has dtype float64"):
        cy_updates.rmsprop_update(f32, f32, f32, f32, f64, 0.01, 0.99, 1e-8, 0.0, 0.0, True)
    with pytest.raises(TypeError,
                       match="Invalid state: dtype float32; it must have theta's dtype float64"):
        cy_updates.apply_update(ids.RULE_SGD, np.zeros(4), f64, f64, np.zeros((1, 5), np.float32),
                                0.1, 1)
    with pytest.raises(TypeError, match="theta must be a float32 or float64 NumPy array"):
        cy_updates.sgd_update(np.zeros(5, np.int64), f64, f64, 0.1, 0.0, 0.0, False, 0.0, 1)


# --------------------------------------------------------------------------- batch gradient

@pytest.mark.parametrize("fi", [True, False], ids=["intercept", "no-intercept"])
@pytest.mark.parametrize("loss_id", ALL_LOSSES, ids=lambda c: LOSS_NAMES[c])
def test_batch_gradient(loss_id, fi):
    X, y, sw = make_problem(loss_id, sw=True)
    rng = np.random.default_rng(5)
    K = n_outputs(loss_id)
    P = D * K + (K if fi else 0)
    theta = 0.3 * rng.standard_normal(P)
    # a small batch (with a repeated row), and the whole set shuffled (the streamed path)
    for rows in (np.array([3, 17, 3, 8, 29, 0, 11]), rng.permutation(N)):
        for w in (sw, np.empty(0)):
            g_ref, g = np.full(P, np.nan), np.full(P, np.nan)
            l_ref = ref_le.linear_batch_gradient(X, y, w, rows, loss_id, EPS, K, fi, theta,
                                                 g_ref, 1.0 / len(rows))
            l = cy_le.linear_batch_gradient(X, y, w, rows, loss_id, EPS, K, fi, theta, g,
                                            1.0 / len(rows))
            assert_close(g, g_ref, RTOL64)
            assert l == pytest.approx(l_ref, rel=RTOL64)
            # float32 data, float32 and float64 accumulation
            for acc in (np.float32, np.float64):
                g32 = np.zeros(P, dtype=acc)
                l32 = cy_le.linear_batch_gradient(X.astype(np.float32), y.astype(np.float32),
                                                  w.astype(np.float32), rows, loss_id, EPS, K,
                                                  fi, theta.astype(acc), g32, 1.0 / len(rows))
                assert g32.dtype == acc
                X32r = X.astype(np.float32).astype(np.float64)
                g_r32 = np.zeros(P)
                l_r32 = ref_le.linear_batch_gradient(
                    X32r, y.astype(np.float32).astype(np.float64),
                    w.astype(np.float32).astype(np.float64), rows, loss_id, EPS, K, fi,
                    theta.astype(acc).astype(np.float64), g_r32, 1.0 / len(rows))
                assert_close(g32, g_r32, RTOL32)
                assert l32 == pytest.approx(l_r32, rel=RTOL32)


def test_batch_gradient_partial_sums_add_up():
    """Disjoint row sets give gradients that sum to the batch's (data-parallel use)."""
    X, y, sw = make_problem(ids.LOSS_LOGISTIC, sw=True)
    theta = np.linspace(-0.5, 0.5, D + 1)
    rows = np.random.default_rng(2).permutation(N)[:24]
    g_all, g1, g2 = np.zeros(D + 1), np.zeros(D + 1), np.zeros(D + 1)
    s = 1.0 / len(rows)
    l_all = cy_le.linear_batch_gradient(X, y, sw, rows, 1, 0.0, 1, True, theta, g_all, s)
    l1 = cy_le.linear_batch_gradient(X, y, sw, rows[:10], 1, 0.0, 1, True, theta, g1, s)
    l2 = cy_le.linear_batch_gradient(X, y, sw, rows[10:], 1, 0.0, 1, True, theta, g2, s)
    assert_close(g1 + g2, g_all, RTOL64)
    assert l1 + l2 == pytest.approx(l_all, rel=RTOL64)


@pytest.mark.parametrize("loss_id", [ids.LOSS_LOGISTIC, ids.LOSS_SQUARED])
@pytest.mark.parametrize("offset", [0, 16])
def test_streamed_rows_give_the_bits_of_gathered_ones(loss_id, offset):
    """A batch holding at least half of X is read in storage order with other loads
    (fgd_dot_dd_stream, the aligned-peel axpy) than a smaller batch of the same rows:
    the same sums, so the same bits, for rows on a 32-byte boundary or 16 bytes past
    one (NumPy's large arrays)."""
    n, d, rows = 100, 100, 43           # 43 of 100 rows: not streamed; of 43: streamed
    buf = np.zeros(n * d * 8 + 64, dtype=np.uint8)
    start = (-buf.ctypes.data) % 32 + offset
    X = buf[start:start + n * d * 8].view(np.float64).reshape(n, d)
    rng = np.random.default_rng(5)
    X[...] = rng.standard_normal((n, d))
    assert X.ctypes.data % 32 == offset
    y = (rng.random(n) < 0.5).astype(np.float64) if loss_id == ids.LOSS_LOGISTIC else rng.standard_normal(n)
    theta = rng.standard_normal(d + 1) * 0.1
    idx = np.arange(rows, dtype=np.int64)
    g_small, g_all = np.zeros(d + 1), np.zeros(d + 1)
    l_small = cy_le.linear_batch_gradient(X, y, np.empty(0), idx, loss_id, 0.0, 1, True, theta,
                                          g_small, 1.0 / rows)
    l_all = cy_le.linear_batch_gradient(X[:rows], y[:rows], np.empty(0), idx, loss_id, 0.0, 1,
                                        True, theta, g_all, 1.0 / rows)
    np.testing.assert_array_equal(g_all, g_small)
    assert l_all == pytest.approx(l_small, rel=1e-15)


@pytest.mark.parametrize("name", list(PENALTIES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_add_penalty(name, dtype):
    alpha, r = PENALTIES[name]
    rng = np.random.default_rng(1)
    theta = rng.standard_normal(13)
    theta[[2, 7]] = 0.0  # sign(0) = 0
    g0 = rng.standard_normal(13)
    g_ref, g = g0.copy(), g0.astype(dtype)
    v_ref = ref_le.add_penalty(theta, g_ref, 10, alpha, r)
    v = cy_le.add_penalty(theta.astype(dtype), g, 10, alpha, r)
    rtol = RTOL64 if dtype == np.float64 else RTOL32
    assert_close(g, g_ref, rtol)
    assert v == pytest.approx(v_ref, rel=rtol, abs=0)
    np.testing.assert_array_equal(g[10:], g0[10:].astype(dtype))  # the intercept part


# --------------------------------------------------------------------------- whole epochs

@pytest.mark.parametrize("b", [1, 7, N], ids=["b1", "b7", "bn"])
@pytest.mark.parametrize("fi", [True, False], ids=["intercept", "no-intercept"])
@pytest.mark.parametrize("use_sw", [False, True], ids=["sw1", "sw"])
@pytest.mark.parametrize("loss_id", ALL_LOSSES, ids=lambda c: LOSS_NAMES[c])
def test_epoch_losses_float64(loss_id, use_sw, fi, b):
    X, y, sw = make_problem(loss_id, sw=use_sw)
    order = np.random.default_rng(4).permutation(N)
    got, want = both(X, y, sw, order, b, loss_id, fi, "sgd")
    assert got[0] == -(-N // b)
    check(got, want, RTOL64, LOSS_NAMES[loss_id])


@pytest.mark.parametrize("b", [1, 7, N], ids=["b1", "b7", "bn"])
@pytest.mark.parametrize("pen", list(PENALTIES))
@pytest.mark.parametrize("rule", list(RULES))
def test_epoch_rules_penalties_float64(rule, pen, b):
    loss_id = ids.LOSS_SOFTMAX if b == 7 else (ids.LOSS_LOGISTIC if b == 1 else ids.LOSS_SQUARED)
    X, y, sw = make_problem(loss_id, sw=(b == 7))
    order = np.random.default_rng(6).permutation(N)
    alpha, r = PENALTIES[pen]
    kw = dict(alpha=alpha, l1_ratio=r, lr=0.02)
    got, want = both(X, y, sw, order, b, loss_id, True, rule, **kw)
    check(got, want, RTOL64, f"{rule} {pen}")
    # a second epoch continues the step count and the optimizer state
    order2 = np.random.default_rng(7).permutation(N)
    nb = got[3].shape[0]
    got2 = run_epoch(cy_le, X, y, sw, order2, b, loss_id, True, rule, theta0=got[1],
                     state0=got[2], step0=nb, **kw)
    want2 = run_epoch(ref_le, X, y, sw, order2, b, loss_id, True, rule, theta0=want[1],
                      state0=want[2], step0=nb, **kw)
    check(got2, want2, RTOL64, f"{rule} {pen} epoch 2")


@pytest.mark.parametrize("x_dtype,acc", [(np.float32, np.float32), (np.float32, np.float64),
                                         (np.float64, np.float32)],
                         ids=["f32", "f32-acc64", "f64-theta32"])
@pytest.mark.parametrize("b", [1, 7, N], ids=["b1", "b7", "bn"])
@pytest.mark.parametrize("loss_id", ALL_LOSSES, ids=lambda c: LOSS_NAMES[c])
def test_epoch_float32(loss_id, b, x_dtype, acc):
    X, y, sw = make_problem(loss_id, sw=(b == 7))
    order = np.random.default_rng(8).permutation(N)
    got, want = both(X, y, sw, order, b, loss_id, b != N, "sgd", x_dtype=x_dtype, acc=acc,
                     alpha=0.01 if b == N else 0.0)
    assert got[1].dtype == acc
    check(got, want, RTOL32, f"{LOSS_NAMES[loss_id]} {x_dtype.__name__}/{acc.__name__}")


@pytest.mark.parametrize("rule", list(RULES))
def test_epoch_rules_float32(rule):
    X, y, sw = make_problem(ids.LOSS_LOGISTIC, sw=True)
    order = np.random.default_rng(9).permutation(N)
    got, want = both(X, y, sw, order, 7, ids.LOSS_LOGISTIC, True, rule, x_dtype=np.float32,
                     acc=np.float32, alpha=0.01, l1_ratio=0.15, lr=0.02)
    check(got, want, RTOL32, rule)


def test_epoch_sampling_with_replacement_and_partial_epoch():
    """An order with repeated rows, longer than n; and fewer batches than the order holds."""
    X, y, sw = make_problem(ids.LOSS_SQUARED, sw=True)
    order = np.random.default_rng(3).integers(0, N, size=2 * N)
    for b, nb in ((1, 2 * N), (4, 15), (2 * N, 1), (25, 3)):
        got, want = both(X, y, sw, order, b, ids.LOSS_SQUARED, True, "adam", n_batches=nb)
        check(got, want, RTOL64, f"b={b}")


def test_epoch_leaves_inputs_alone():
    X, y, sw = make_problem(ids.LOSS_HUBER, sw=True)
    order = np.random.default_rng(3).permutation(N)
    copies = [a.copy() for a in (X, y, sw, order)]
    run_epoch(cy_le, X, y, sw, order, 7, ids.LOSS_HUBER, True, "rmsprop")
    for a, c in zip((X, y, sw, order), copies):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("b,rule", [(1, "sgd"), (1, "sgd-momentum-dampening"), (7, "sgd"),
                                    (N, "sgd-nesterov-wd")])
@pytest.mark.parametrize("acc", [np.float64, np.float32])
def test_divergence_stops_before_the_bad_update(b, rule, acc):
    X, y, sw = make_problem(ids.LOSS_SQUARED)
    X = X * 30.0
    order = np.random.default_rng(5).permutation(N)
    nb = -(-N // b)
    epochs = 400
    th_c = th_r = st_c = st_r = None
    done_c = done_r = None
    for e in range(epochs):
        step0 = e * nb
        gc = run_epoch(cy_le, X.astype(acc), y.astype(acc), sw.astype(acc), order, b,
                       ids.LOSS_SQUARED, True, rule, lr=50.0, acc=acc, theta0=th_c,
                       state0=st_c, step0=step0)
        gr = run_epoch(ref_le, X.astype(acc).astype(np.float64), y.astype(acc).astype(np.float64),
                       sw, order, b, ids.LOSS_SQUARED, True, rule, lr=50.0, theta0=th_r,
                       state0=st_r, step0=step0)
        (done_c, th_c, st_c, bl_c), (done_r, th_r, st_r, bl_r) = gc, gr
        if done_c < nb or done_r < nb:
            break
    assert done_c < nb, "the run did not diverge: make lr larger"
    assert not np.isfinite(bl_c[done_c])
    assert np.all(np.isfinite(th_c)) and np.all(np.isfinite(st_c))
    if acc == np.float64:
        assert done_c == done_r
        assert_close(th_c, th_r, RTOL64)
        assert_close(st_c, st_r, RTOL64)
        assert_close(bl_c[:done_c], bl_r[:done_c], RTOL64)
        assert not np.isfinite(bl_r[done_r])


@pytest.mark.parametrize("rule,lr", [("sgd", 1e200), ("sgd-momentum-dampening", 1e200), ("adam", 1e300)])
def test_softmax_b1_divergence_hands_back_the_parameters_before_the_bad_row(rule, lr):
    # _softmax1_epoch trains on W transposed: at a non-finite loss W and the state must
    # come back in their own layout, as they were before that row
    X, y, sw = make_problem(ids.LOSS_SOFTMAX)
    X = X * 1e100
    order = np.random.default_rng(5).permutation(N)
    with np.errstate(all="ignore"):
        done_c, th_c, st_c, bl_c = run_epoch(cy_le, X, y, sw, order, 1, ids.LOSS_SOFTMAX, True,
                                             rule, lr=lr)
        done_r, th_r, st_r, bl_r = run_epoch(ref_le, X, y, sw, order, 1, ids.LOSS_SOFTMAX, True,
                                             rule, lr=lr)
    assert done_r < N, "the reference should diverge on this problem"
    assert done_c == done_r
    for a, b in ((th_c, th_r), (st_c, st_r)):  # where finite, equal
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
        assert_close(a[np.isfinite(b)], b[np.isfinite(b)], RTOL64)


# --------------------------------------------------------------------------- large batches

BIG_N, BIG_D = 10_000, 40


def big_problem(loss_id, d=BIG_D):
    X, y, sw = make_problem(loss_id, n=BIG_N, d=d, seed=12, sw=True)
    return X, y, sw


@pytest.mark.parametrize("d, K, fit_intercept", [(101, 5, True), (100, 5, True), (100, 1, True),
                                                 (7, 3, False), (1000, 10, True)])
def test_the_workspace_for_the_largest_batch_holds_every_shorter_ones_chunks(d, K,
                                                                           fit_intercept):
    """A shorter batch can be cut into more chunks than a full one (d = 101, K = 5: 16,836
    rows in 66 chunks, 16,897 in 65); the workspace of an epoch, sized for its largest
    batch, must hold the layout of its last, shorter one (it had been overrun)."""
    if (d, K) == (101, 5):
        assert cy_le.chunk_layout(16836, d, K)[0] > cy_le.chunk_layout(16897, d, K)[0]
    for max_rows in (5000, 16897, 25040, 50000):
        allocated, needed = cy_le._workspace_check(max_rows, d, K, fit_intercept)
        assert needed <= allocated, (max_rows, allocated, needed)


@pytest.mark.parametrize("call, words", [
    (lambda u, t, g, z: u.sgd_update(t, g, z(), 0.1, "0.9", 0.0, False, 0.0, 1),
     ["momentum", "'0.9'", "real number"]),
    (lambda u, t, g, z: u.sgd_update(t, g, z(), 0.1, np.nan, 0.0, False, 0.0, 1),
     ["momentum", "nan"]),
    (lambda u, t, g, z: u.sgd_update(t, g, z(), 0.1, 0.9, 0.0, 2, 0.0, 1), ["nesterov", "flag"]),
    (lambda u, t, g, z: u.adam_update(t, g, z(), z(), z(), 0.1, 0.9, 1.0, 1e-8, 0.0, False,
                                      False, 1), ["beta2", "1.0", "[0, 1)"]),
    (lambda u, t, g, z: u.adam_update(t, g, z(), z(), z(), 0.1, 0.9, 0.999, 1e-8, 0.0, "no",
                                      False, 1), ["decoupled", "'no'"]),
    (lambda u, t, g, z: u.adagrad_update(t, g, z(), 0.1, -1.0, 0.0, 1e-10, 1), ["lr_decay"]),
    (lambda u, t, g, z: u.rmsprop_update(t, g, z(), z(), z(), 0.1, 1.5, 1e-8, 0.0, 0.0, False),
     ["alpha", "1.5", "[0, 1]"]),
])
def test_single_rule_updates_check_their_hyper_parameters(call, words):
    """Each hyper-parameter by name, in torch.optim's range (a NaN momentum or a beta of 1
    had made every parameter NaN or inf without a word), before anything is written."""
    from fastgd.kernels.cy import updates

    theta = np.full(3, 0.5)
    with pytest.raises((TypeError, ValueError)) as info:
        call(updates, theta, np.ones(3), lambda: np.zeros(3))
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"
    assert (theta == 0.5).all()


def test_read_rows_checks_the_order():
    with pytest.raises(ValueError, match="order.*1000000000.*5 rows"):
        cy_le._read_rows(np.ones((5, 3)), [10**9])


def test_chunk_layout_is_thread_independent_and_used():
    # the cases below really run in several chunks
    assert cy_le.chunk_layout(BIG_N, BIG_D)[0] > 1
    assert cy_le.chunk_layout(4000, BIG_D)[0] > 1
    assert cy_le.chunk_layout(BIG_N, 20, n_outputs=K3)[0] > 1
    assert cy_le.chunk_layout(7, BIG_D) == (1, 7)


@pytest.mark.parametrize("b,loss_id,rule", [
    (BIG_N, ids.LOSS_LOGISTIC, "sgd"),                    # streamed in row order + chunks
    (4000, ids.LOSS_SQUARED, "adam"),                     # chunks in shuffled order
    (BIG_N, ids.LOSS_SOFTMAX, "rmsprop-centered-momentum-wd"),
])
def test_large_batches_match_reference(b, loss_id, rule):
    d = 20 if loss_id == ids.LOSS_SOFTMAX else BIG_D
    X, y, sw = big_problem(loss_id, d)
    order = np.random.default_rng(0).permutation(BIG_N)
    got, want = both(X, y, sw, order, b, loss_id, True, rule, alpha=0.001, lr=0.05)
    check(got, want, RTOL64, f"b={b}")
    got32, want32 = both(X, y, sw, order, b, loss_id, True, rule, x_dtype=np.float32,
                         acc=np.float32, alpha=0.001, lr=0.05)
    check(got32, want32, RTOL32, f"b={b} float32")


@pytest.fixture
def pair_knobs():
    """Set the pair's knobs for a test and restore them after it."""
    saved = {}

    def set_(min_work=None, contended_wait=None):
        if min_work is not None:
            saved.setdefault("w", cy_le._set_pair_min_work(min_work))
        if contended_wait is not None:
            saved.setdefault("c", cy_le._set_contended_wait(contended_wait))

    yield set_
    if "w" in saved:
        cy_le._set_pair_min_work(saved["w"])
    if "c" in saved:
        cy_le._set_contended_wait(saved["c"])


# (loss, rule, dtype, b, sample weights, d): d = 12 cuts each batch into row halves
# (_pair_epoch); K = 1 with d >= 32 cuts the features (_split_epoch), d = 37 with an
# odd part and tails
PAIR_CASES = [(ids.LOSS_LOGISTIC, "sgd", np.float64, 32, False, 12, 0.01),
              (ids.LOSS_SQUARED, "adam-amsgrad-wd", np.float64, 17, True, 12, 0.01),
              (ids.LOSS_SOFTMAX, "sgd-momentum-dampening", np.float64, 24, False, 12, 0.01),
              (ids.LOSS_HINGE, "rmsprop-centered-momentum-wd", np.float32, 40, True, 12, 0.01),
              (ids.LOSS_HUBER, "adagrad-decay-wd-init", np.float64, 9, False, 12, 0.01),
              (ids.LOSS_LOGISTIC, "sgd", np.float64, 32, False, 40, 0.0),
              (ids.LOSS_LOGISTIC, "sgd-momentum-dampening", np.float64, 19, True, 37, 0.0),
              (ids.LOSS_LOGISTIC, "sgd", np.float64, 32, False, 40, 0.01),
              (ids.LOSS_SQUARED, "adam-amsgrad-wd", np.float32, 24, True, 40, 0.01),
              (ids.LOSS_SQUARED, "adam-amsgrad-wd", np.float32, 24, True, 37, 0.0),
              (ids.LOSS_MODIFIED_HUBER, "rmsprop-centered-momentum-wd", np.float64, 10, False,
               64, 0.01),
              (ids.LOSS_SOFTMAX, "adagrad-decay-wd-init", np.float64, 16, True, 40, 0.01)]


@pytest.mark.parametrize("loss_id,rule,acc,b,sw,d,alpha", PAIR_CASES,
                         ids=[f"{LOSS_NAMES[c[0]]}-{c[1]}-b{c[3]}-d{c[5]}-a{c[6]}"
                              for c in PAIR_CASES])
def test_mid_sized_batches_same_bits_on_one_or_two_threads(pair_knobs, loss_id, rule, acc, b, sw,
                                                           d, alpha):
    """The two halves (of the rows or of the features) of a batch on one thread, on two,
    and on two that go solo after their first barrier (contended) give the same bits,
    equal to the reference to its tolerance."""
    if cy_le.omp_max_threads() < 2:
        pytest.skip("needs two OpenMP threads")
    K = n_outputs(loss_id)
    assert cy_le.batch_split(d, K) == (((d // 2 + 4) // 8) * 8 if K == 1 and d >= 32 else 0)
    X, y, w = make_problem(loss_id, n=400, d=d, seed=3, sw=sw)
    X, y, w = X.astype(acc), y.astype(acc), w.astype(acc)
    order = np.random.default_rng(1).permutation(400)
    kw = dict(alpha=alpha, l1_ratio=0.3, acc=acc)
    nb = -(-400 // b)
    runs = []
    for min_work, wait in ((1 << 40, None), (0, None), (0, -1.0)):
        pair_knobs(min_work=min_work, contended_wait=wait)
        assert cy_le.epoch_threads(400, d, K, True, b, nb) == (2 if min_work == 0 else 1)
        theta = state = None
        out = []
        for e in range(2):
            done, theta, state, bl = run_epoch(cy_le, X, y, w, order, b, loss_id, True, rule,
                                               theta0=theta, state0=state, step0=e * nb, **kw)
            assert done == nb
            out.append((theta.copy(), state.copy(), bl.copy()))
        runs.append(out)
    for other in runs[1:]:
        for (t0, s0, l0), (t1, s1, l1) in zip(runs[0], other):
            np.testing.assert_array_equal(t1, t0)
            np.testing.assert_array_equal(s1, s0)
            np.testing.assert_array_equal(l1, l0)
    _, theta_ref, _, bl_ref = run_epoch(ref_le, X.astype(np.float64), y.astype(np.float64),
                                        w.astype(np.float64), order, b, loss_id, True, rule,
                                        alpha=alpha, l1_ratio=0.3)
    rtol = RTOL64 if acc == np.float64 else RTOL32
    assert_close(runs[0][0][0], theta_ref, rtol)
    assert_close(runs[0][0][2], bl_ref, rtol)


@pytest.mark.parametrize("loss_id", [ids.LOSS_LOGISTIC, ids.LOSS_SQUARED],
                         ids=lambda c: LOSS_NAMES[c])
def test_feature_split_float32_data_float64_parameters(pair_knobs, loss_id):
    """float32 X accumulated in float64 through the feature split: the same bits on one or
    two threads, the reference's values to float64's tolerance."""
    if cy_le.omp_max_threads() < 2:
        pytest.skip("needs two OpenMP threads")
    assert cy_le.batch_split(40) == 24
    X, y, w = make_problem(loss_id, n=400, d=40, seed=4, sw=True)
    order = np.random.default_rng(5).permutation(400)
    runs = []
    for min_work in (1 << 40, 0):
        pair_knobs(min_work=min_work)
        runs.append(both(X, y, w, order, 24, loss_id, True, "sgd-momentum-dampening",
                         x_dtype=np.float32, acc=np.float64, alpha=0.01, l1_ratio=0.3))
    (got1, want), (got2, _) = runs
    for a, b in zip(got1[1:], got2[1:]):
        np.testing.assert_array_equal(a, b)
    check(got1, want, RTOL64, "float32 X, float64 parameters")


@pytest.mark.parametrize("d", [12, 40])
def test_mid_sized_batches_diverge_at_the_same_batch_on_two_threads(pair_knobs, d):
    if cy_le.omp_max_threads() < 2:
        pytest.skip("needs two OpenMP threads")
    X, y, _ = make_problem(ids.LOSS_SQUARED, n=200, d=d, seed=5)
    order = np.random.default_rng(2).permutation(200)
    X[order[37], d - 3] = 1e200  # in the second half of batch 2 (rows 32..47, b = 16)
    results = []
    for min_work in (1 << 40, 0):
        pair_knobs(min_work=min_work)
        with np.errstate(all="ignore"):
            results.append(run_epoch(cy_le, X, y, np.empty(0), order, 16, ids.LOSS_SQUARED, True,
                                     "sgd-momentum-dampening"))
    (d1, t1, s1, l1), (d2, t2, s2, l2) = results
    assert d1 == d2 == 2
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(l1[:3], l2[:3])
    assert np.all(np.isfinite(t2))


@pytest.fixture
def reader_knob():
    """Turn the reader thread of one-thread epochs on (for any size of X) in a test."""
    def set_(on):
        cy_le._set_reader_min_bytes(0 if on else 1 << 60)

    old = cy_le._set_reader_min_bytes(0)
    yield set_
    cy_le._set_reader_min_bytes(old)


# (loss, rule, dtypes (X, theta), b, sample weights): plain SGD at b = 1 (_sgd1_epoch),
# b = 1 with momentum and b = 3 (_serial_epoch), b = 24 with the halves on one thread
READER_CASES = [(ids.LOSS_LOGISTIC, "sgd", np.float64, np.float64, 1, False),
                (ids.LOSS_HINGE, "sgd", np.float32, np.float32, 1, True),
                (ids.LOSS_SQUARED, "sgd", np.float32, np.float64, 1, False),
                (ids.LOSS_HUBER, "sgd-momentum-dampening", np.float64, np.float64, 1, True),
                (ids.LOSS_SOFTMAX, "adam-amsgrad-wd", np.float64, np.float64, 3, False),
                (ids.LOSS_MODIFIED_HUBER, "rmsprop-centered-momentum-wd", np.float64,
                 np.float64, 24, True)]


@pytest.mark.parametrize("loss_id,rule,xd,acc,b,sw", READER_CASES,
                         ids=[f"{LOSS_NAMES[c[0]]}-{c[1]}-b{c[4]}-{np.dtype(c[2]).name}"
                              for c in READER_CASES])
def test_reader_thread_changes_no_bit(reader_knob, pair_knobs, loss_id, rule, xd, acc, b, sw):
    """One-thread epochs over a shuffled order with a reader thread on the other core give
    the bits they give without it (the reader only loads rows ahead of the trainer)."""
    if cy_le.omp_max_threads() < 2:
        pytest.skip("needs two OpenMP threads")
    n = 600
    X, y, w = make_problem(loss_id, n=n, d=12, seed=7, sw=sw)
    X, y, w = X.astype(xd), y.astype(xd), w.astype(xd)
    order = np.random.default_rng(4).permutation(n)
    pair_knobs(min_work=1 << 40)  # mid-sized batches: both halves on the trainer
    runs = []
    for on in (False, True):
        reader_knob(on)
        theta = state = None
        out = []
        for e in range(2):
            done, theta, state, bl = run_epoch(cy_le, X, y, w, order, b, loss_id, True, rule,
                                               acc=acc, alpha=0.0 if b == 1 else 0.01,
                                               lr=0.01, theta0=theta, state0=state,
                                               step0=e * len(order) // b)
            assert done == len(bl)
            out.append((theta.copy(), state.copy(), bl.copy()))
        runs.append(out)
    for (t0, s0, l0), (t1, s1, l1) in zip(*runs):
        np.testing.assert_array_equal(t1, t0)
        np.testing.assert_array_equal(s1, s0)
        np.testing.assert_array_equal(l1, l0)
    want = run_epoch(ref_le, X.astype(np.float64), y.astype(np.float64), w.astype(np.float64),
                     order, b, loss_id, True, rule, alpha=0.0 if b == 1 else 0.01, lr=0.01)
    rtol = RTOL64 if acc == np.float64 and xd == np.float64 else RTOL32
    assert_close(runs[1][0][0], want[1], rtol)
    assert_close(runs[1][0][2], want[3], rtol)


READERS_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {here!r})
    import test_cy_kernels as t
    from fastgd.kernels import ids
    from fastgd.kernels.cy import linear_epoch as cy_le
    assert cy_le.omp_max_threads() == 4, cy_le.omp_max_threads()
    cy_le._set_max_readers(3)
    cy_le._set_pair_min_work(1 << 40)  # mid-sized batches: both halves on the trainer
    for loss_id, rule, xd, acc, b, sw in t.READER_CASES:
        X, y, w = t.make_problem(loss_id, n=600, d=12, seed=7, sw=sw)
        X, y, w = X.astype(xd), y.astype(xd), w.astype(xd)
        order = np.random.default_rng(4).permutation(600)
        runs = []
        for min_bytes in (1 << 60, 0):
            cy_le._set_reader_min_bytes(min_bytes)
            runs.append(t.run_epoch(cy_le, X, y, w, order, b, loss_id, True, rule, acc=acc,
                                    alpha=0.0 if b == 1 else 0.01, lr=0.01))
        for a, c in zip(*runs):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
    print("ok")
""")


def test_three_reader_threads_change_no_bit():
    """With the cores for them, a shuffled one-thread epoch gets up to _set_max_readers
    readers, each loading every third row: still the bits of no reader."""
    here = str(Path(__file__).resolve().parent)
    env = dict(os.environ, OMP_NUM_THREADS="4", OMP_DYNAMIC="false")
    r = subprocess.run([sys.executable, "-c", READERS_SCRIPT.format(here=here)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_max_readers_knob_rejects_zero():
    with pytest.raises(ValueError, match="Invalid reader count: 0"):
        cy_le._set_max_readers(0)


@pytest.mark.parametrize("b", [1, 3])
def test_reader_thread_divergence_at_the_same_row(reader_knob, b):
    if cy_le.omp_max_threads() < 2:
        pytest.skip("needs two OpenMP threads")
    X, y, _ = make_problem(ids.LOSS_SQUARED, n=500, d=12, seed=5)
    order = np.random.default_rng(2).permutation(500)
    X[order[301], 3] = 1e200
    results = []
    for on in (False, True):
        reader_knob(on)
        with np.errstate(all="ignore"):
            results.append(run_epoch(cy_le, X, y, np.empty(0), order, b, ids.LOSS_SQUARED, True,
                                     "sgd"))
    (d1, t1, s1, l1), (d2, t2, s2, l2) = results
    assert d1 == d2 == 301 // b
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(l1[:d1 + 1], l2[:d1 + 1])
    assert np.all(np.isfinite(t2))


THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {here!r})
    import test_cy_kernels as t
    from fastgd.kernels import ids
    from fastgd.kernels.cy import linear_epoch as cy_le
    assert cy_le.omp_max_threads() == {threads}, cy_le.omp_max_threads()
    out = []
    for b, loss_id, rule, acc in [({n}, ids.LOSS_LOGISTIC, "sgd", np.float64),
                                  (4000, ids.LOSS_SQUARED, "adam", np.float64),
                                  ({n}, ids.LOSS_SOFTMAX, "sgd-momentum-dampening", np.float64),
                                  ({n}, ids.LOSS_HINGE, "sgd", np.float32)]:
        d = 20 if loss_id == ids.LOSS_SOFTMAX else {d}
        X, y, sw = t.big_problem(loss_id, d)
        order = np.random.default_rng(0).permutation({n})
        X = X.astype(acc); y = y.astype(acc); sw = sw.astype(acc)
        theta = None
        state = None
        for e in range(3):
            done, theta, state, bl = t.run_epoch(cy_le, X, y, sw, order, b, loss_id, True, rule,
                                                 alpha=0.001, acc=acc, theta0=theta,
                                                 state0=state, step0=e * len(bl) if e else 0)
            out.append(theta.tobytes().hex() + bl.tobytes().hex())
    print("|".join(out))
""")


def test_bit_identical_for_1_and_2_threads():
    here = str(Path(__file__).resolve().parent)
    script = THREAD_SCRIPT.format(here=here, n=BIG_N, d=BIG_D, threads="{threads}")
    outs = []
    for threads in (1, 2):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_DYNAMIC="false")
        r = subprocess.run([sys.executable, "-c", script.replace("{threads}", str(threads))],
                           env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout.strip())
    assert len(outs[0]) > 1000
    assert outs[0] == outs[1]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n, d", [(0, 5), (1, 9), (37, 8), (300, 100), (301, 13)])
def test_shuffled_read_floor_reads_every_line(threads, n, d):
    # the benchmarks' floor (bench/test_bench_linear.py) must bring in every cache line
    # of every row, in the order given: one element a line and each row's last
    X = np.random.default_rng(n + d).standard_normal((n, d))
    order = np.random.default_rng(1).permutation(n)
    expected = X[order][:, ::8].sum() + X[order, -1].sum() if n else 0.0
    assert cy_le._read_rows(X, order, threads) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    with pytest.raises(ValueError, match="threads must be 1 or 2"):
        cy_le._read_rows(X, order, 3)


# --------------------------------------------------------------------------- cimport

def test_cimport_from_third_party_cython(tmp_path):
    """Build tests/cimport_demo with the include dir fastgd reports, then call it."""
    pytest.importorskip("Cython")
    pytest.importorskip("setuptools")
    if shutil.which(os.environ.get("CC", "cc")) is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    inc = Path(get_include())
    assert (inc / "fastgd" / "kernels" / "cy" / "updates.pxd").is_file()
    assert (inc / "fastgd" / "kernels" / "cy" / "linear_epoch.pxd").is_file()
    src = Path(__file__).resolve().parent / "cimport_demo" / "fgd_cimport_demo.pyx"
    shutil.copy(src, tmp_path / src.name)
    build = textwrap.dedent(f"""
        from setuptools import setup, Extension
        from Cython.Build import cythonize
        setup(name="fgd_cimport_demo", script_args=["build_ext", "--inplace", "-q"],
              ext_modules=cythonize([Extension("fgd_cimport_demo", ["{src.name}"])],
                                    include_path=[{str(inc)!r}], quiet=True))
    """)
    r = subprocess.run([sys.executable, "-c", build], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        import fgd_cimport_demo as demo
    finally:
        sys.path.remove(str(tmp_path))

    rng = np.random.default_rng(0)
    # SGD with momentum, 4 steps, against the reference
    theta, buf = rng.standard_normal(6), np.zeros(6)
    grads = rng.standard_normal((4, 6))
    th_ref, buf_ref = theta.copy(), np.zeros(6)
    for k in range(4):
        ref_updates.sgd_update(th_ref, grads[k], buf_ref, 0.1, 0.9, 0.0, False, 0.0, k + 1)
    demo.sgd_momentum_steps(theta, grads, buf, 0.1, 0.9)
    assert_close(theta, th_ref, RTOL64)
    assert_close(buf, buf_ref, RTOL64)
    # the dispatcher, float32 specialisation
    th32 = rng.standard_normal(6).astype(np.float32)
    st32 = np.zeros((3, 6), np.float32)
    th_r, st_r = th32.astype(np.float64), np.zeros((3, 6))
    hyper = np.array([0.9, 0.999, 1e-8, 0.0, 0.0])
    g = rng.standard_normal(6)
    assert demo.apply_update_f32(ids.RULE_ADAM, hyper, th32, g.astype(np.float32), st32, 0.1, 1) == 0
    ref_updates.apply_update(ids.RULE_ADAM, hyper, th_r, g.astype(np.float32).astype(np.float64),
                             st_r, 0.1, 1)
    assert_close(th32, th_r, RTOL32)
    # the inline losses
    l, dl = demo.logistic(2.0, 1.0)
    lr_, dlr = ref_losses.loss_and_dloss(1, 0.0, np.array([[2.0]]), np.array([1.0]))
    assert l == pytest.approx(lr_[0], rel=1e-15) and dl == pytest.approx(dlr[0, 0], rel=1e-15)
    p = np.array([0.5, -1.0, 2.0])
    ls_ref, dls_ref = ref_losses.loss_and_dloss(2, 0.0, p[None, :], np.array([1.0]))
    assert demo.softmax(p, 1) == pytest.approx(ls_ref[0], rel=1e-15)
    assert_close(p, dls_ref[0], RTOL64)  # dl written in place of p
    # the per-batch gradient
    X, y, _ = make_problem(ids.LOSS_HINGE)
    rows = np.array([1, 5, 9, 2], dtype=np.int64)
    theta = np.linspace(-1, 1, D + 1)
    g, g_ref = np.zeros(D + 1), np.zeros(D + 1)
    l = demo.batch_gradient(X, y, rows, ids.LOSS_HINGE, theta, g)
    l_ref = ref_le.linear_batch_gradient(X, y, np.empty(0), rows, ids.LOSS_HINGE, 0.0, 1, True,
                                         theta, g_ref, 0.25)
    assert_close(g, g_ref, RTOL64)
    assert l == pytest.approx(l_ref, rel=RTOL64)


@pytest.mark.parametrize("K", [5, 20], ids=["K5", "K20"])  # 20: more than the local sums hold
@pytest.mark.parametrize("x_dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_softmax_batches_of_two_or_three_rows_match_the_reference(K, x_dtype):
    # batches under SOFTMAX_T_MIN_ROWS rows take _softmax_row_major, its sums in a local
    # array for K <= 16 and in the caller's scratch above
    import fastgd

    rng = np.random.default_rng(11)
    X = rng.standard_normal((41, 6)).astype(x_dtype)
    y = rng.integers(0, K, 41)
    y[:K] = np.arange(K)  # every class present
    kw = dict(loss="softmax", batch_size=3, epochs=2, seed=2, lr=0.1, penalty="l2", alpha=0.01)
    got = fastgd.fit(X, y, backend="cython", **kw)
    want = fastgd.fit(X.astype(np.float64), y, backend="numpy", **kw)
    rtol = RTOL64 if x_dtype == np.float64 else RTOL32
    assert_close(got.coef, want.coef, rtol, "coef")
    assert_close(got.intercept, want.intercept, rtol, "intercept")
    assert_close(np.array(got.history["loss"]), np.array(want.history["loss"]), rtol, "loss")
