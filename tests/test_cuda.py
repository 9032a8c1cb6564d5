"""The CUDA backend (fastgd.kernels.cuda) against the NumPy reference.

Runs on Numba's CUDA simulator in CI (``NUMBA_ENABLE_CUDASIM=1`` exported
before numba is imported; the simulator's tiny launch geometry comes from
``fastgd.kernels.cuda.config``) and on a real GPU where there is one.  Tests
marked ``gpu`` need a real device and are skipped on the simulator.

Both sides are driven with the same arrays: theta/state from fastgd.optim,
orders from ``np.random.default_rng(seed).permutation``, the reference's
``linear_epoch`` called in a loop against ``LinearEngine.run_epoch``.
Tolerances are the project's (fastgd.testing.RTOL): float64 rtol 1e-9, float32
rtol 1e-4 against the float64 reference, each with the registry's absolute
floor of rtol x max(1, max|reference|).
"""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

cuda_pkg = pytest.importorskip("fastgd.kernels.cuda")
if not cuda_pkg.is_available():
    pytest.skip(f"CUDA backend unavailable: {cuda_pkg.unavailable_reason()}",
                allow_module_level=True)

from numba import cuda  # noqa: E402  (after the availability check: the simulator swaps it)
from fastgd import optim  # noqa: E402
from fastgd.engines import LinearSpec  # noqa: E402
from fastgd.kernels import ids  # noqa: E402
from fastgd.kernels.cuda import config, engine as cuda_engine  # noqa: E402
from fastgd.kernels.cuda import losses as cuda_losses, updates as cuda_updates  # noqa: E402
from fastgd.kernels.cuda.engine import LinearEngine, plan_tiles  # noqa: E402
from fastgd.reference import linear_epoch as ref_epoch  # noqa: E402
from fastgd.reference import losses as ref_losses, updates as ref_updates  # noqa: E402
from fastgd.testing import OPTIMIZERS, RTOL  # noqa: E402

SIM = cuda_pkg.is_simulated()
if SIM:
    sys.setswitchinterval(1e-4)  # the simulator's barriers are several times faster

needs_gpu = pytest.mark.skipif(SIM, reason="needs a real CUDA GPU (the simulator runs here)")

LOSS_IDS = {
    "squared": ids.LOSS_SQUARED, "logistic": ids.LOSS_LOGISTIC, "softmax": ids.LOSS_SOFTMAX,
    "hinge": ids.LOSS_HINGE, "squared_hinge": ids.LOSS_SQUARED_HINGE,
    "modified_huber": ids.LOSS_MODIFIED_HUBER, "huber": ids.LOSS_HUBER,
    "epsilon_insensitive": ids.LOSS_EPSILON_INSENSITIVE,
    "squared_epsilon_insensitive": ids.LOSS_SQUARED_EPSILON_INSENSITIVE,
    "perceptron": ids.LOSS_PERCEPTRON,
}
LOSS_PARAM = {"huber": 0.7, "epsilon_insensitive": 0.1, "squared_epsilon_insensitive": 0.1}
SIGNED = {"hinge", "squared_hinge", "modified_huber", "perceptron"}

# Sizes: with the simulator's config (8-row tiles, 4-column chunks, 16 rows per
# block, fused up to 16 rows), n=20 and d=5 give 2 column chunks; b=1 and b=7 run
# fused, b=20 (BGD) runs batched with 2 blocks of 2 tiles each.
N, D = 20, 5


# --------------------------------------------------------------------------- helpers
def labels(loss, n, rng, K=3):
    if loss == "softmax":
        return rng.integers(0, K, n).astype(np.float64)
    if loss == "logistic":
        return rng.integers(0, 2, n).astype(np.float64)
    if loss in SIGNED:
        return (2 * rng.integers(0, 2, n) - 1).astype(np.float64)
    return 2.0 * rng.standard_normal(n) + 0.5


class Problem:
    """One linear problem, its optimizer and every epoch's batch order."""

    def __init__(self, loss="squared", opt=("sgd", {}), b=7, n=N, d=D, K=3, fit_intercept=True,
                 alpha=0.0, l1_ratio=0.0, sample_weight=False, epochs=2, lr=0.05, seed=0):
        rng = np.random.default_rng(seed)
        self.K = K if loss == "softmax" else 1
        self.X = rng.standard_normal((n, d))
        self.y = labels(loss, n, rng, self.K)
        self.sw = rng.uniform(0.5, 2.0, n) if sample_weight else np.empty(0)
        P = d * self.K + (self.K if fit_intercept else 0)
        self.theta = 0.3 * rng.standard_normal(P)
        o = optim.OPTIMIZERS[opt[0]](lr=lr, **opt[1])
        self.state = o.init(self.theta)
        self.spec = LinearSpec(LOSS_IDS[loss], LOSS_PARAM.get(loss), self.K, fit_intercept, alpha,
                               l1_ratio, o.rule_id, o.hyper, b)
        self.orders = np.stack([np.random.default_rng(seed + 1).permutation(n)
                                for _ in range(epochs)])
        self.n_batches = -(-n // b)
        self.lrs = [lr * (0.9 ** e) * np.linspace(1.0, 0.5, self.n_batches) for e in range(epochs)]
        self.epochs = epochs

    def reference(self):
        """float64 reference: (theta, state, [batch losses], [n_done]) after every epoch."""
        s = self.spec
        theta, state = self.theta.copy(), self.state.copy()
        grad = np.zeros_like(theta)
        losses, done = [], []
        for e in range(self.epochs):
            bl = np.full(self.n_batches, -7.0)
            k = ref_epoch.linear_epoch(self.X, self.y, self.sw, self.orders[e], s.batch_size,
                                       self.n_batches, s.loss_id, s.loss_param, s.n_outputs,
                                       s.fit_intercept, s.alpha, s.l1_ratio, s.rule_id, s.hyper,
                                       self.lrs[e], e * self.n_batches, theta, grad, state, bl)
            losses.append(bl)
            done.append(k)
            if k < self.n_batches:
                break
        return theta, state, losses, done

    def engine(self, dtype=np.float64, theta_dtype=None, path=None, X=None):
        theta_dtype = dtype if theta_dtype is None else theta_dtype
        Xd = self.X.astype(dtype) if X is None else X
        eng = LinearEngine(Xd, self.y.astype(dtype), self.sw.astype(dtype), self.spec,
                           self.theta.astype(theta_dtype), self.state.astype(theta_dtype), path=path)
        eng.prepare(self.orders)
        return eng

    def run(self, eng):
        losses, done = [], []
        for e in range(self.epochs):
            bl = np.full(self.n_batches, -7.0)
            k = eng.run_epoch(e, self.n_batches, self.lrs[e], e * self.n_batches, bl)
            losses.append(bl)
            done.append(k)
            if k < self.n_batches:
                break
        return eng.get_theta(), eng.get_state(), losses, done


def close(actual, desired, dtype):
    rtol = RTOL[np.dtype(dtype)]
    desired = np.asarray(desired, dtype=np.float64)
    # the floor is rtol times the array's largest magnitude: a float32 kernel's element
    # that is a tiny difference is off by float32's absolute rounding (tests/test_cy_kernels)
    finite = np.abs(desired[np.isfinite(desired)])
    atol = rtol * float(np.max(finite, initial=0.0))
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), desired, rtol=rtol,
                               atol=atol)


def check_parity(prob, dtype=np.float64, theta_dtype=None, path=None, expect_path=None):
    theta, state, losses, done = prob.reference()
    eng = prob.engine(dtype, theta_dtype, path)
    if expect_path is not None:
        assert eng.path == expect_path
    g_theta, g_state, g_losses, g_done = prob.run(eng)
    acc = np.dtype(dtype if theta_dtype is None else theta_dtype)
    assert g_theta.dtype == acc and g_state.dtype == acc
    tol_dtype = np.float64 if acc == np.float64 else np.float32
    assert g_done == done
    close(g_theta, theta, tol_dtype)
    close(g_state, state, tol_dtype)
    for a, r in zip(g_losses, losses):
        close(a, r, tol_dtype)
    return eng


# --------------------------------------------------------------------------- losses
def _loss_inputs(loss, dtype):
    rng = np.random.default_rng(5)
    if loss == "softmax":
        p = np.concatenate([rng.standard_normal((20, 4)) * 3,
                            np.array([[800.0, -800.0, 0.0, 1.0], [-1000.0, -999.0, -998.0, 5.0]])])
        y = np.concatenate([rng.integers(0, 4, 20), [1, 3]]).astype(float)
        return p.astype(dtype), y.astype(dtype)
    p = np.concatenate([rng.standard_normal(24) * 2, [0.0, 1.0, -1.0, 0.7, -0.7, 0.1, -0.1,
                                                      40.0, -40.0, 700.0, -700.0]])
    y = labels(loss, p.size, rng)
    if loss in SIGNED:
        y[-11:] = [1, 1, -1, 1, 1, 1, 1, 1, -1, 1, -1]  # p*y exactly 0, 1, 1 (the kinks), ...
    elif loss != "logistic":
        y[-11:-7] = [0.0, 0.3, -0.3, 0.0]  # |p - y| exactly 0.7 (huber's kink) and 0
    return p[:, None].astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("loss", list(LOSS_IDS))
def test_losses_match_reference_float64(loss):
    p, y = _loss_inputs(loss, np.float64)
    want_l, want_dl = ref_losses.loss_and_dloss(LOSS_IDS[loss], LOSS_PARAM.get(loss), p, y)
    got_l, got_dl = cuda_losses.evaluate(LOSS_IDS[loss], LOSS_PARAM.get(loss), p, y)
    assert np.all(np.isfinite(got_l)) and np.all(np.isfinite(got_dl))
    np.testing.assert_allclose(got_l, want_l, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(got_dl, want_dl, rtol=1e-12, atol=1e-300)


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # the simulator's NumPy scalars
@pytest.mark.parametrize("loss", [k for k in LOSS_IDS if k != "softmax"])
def test_non_finite_predictions_stay_detectable_like_the_reference(loss):
    # a NaN or infinite prediction gives a non-finite loss where NumPy's does, so that
    # a fit stops at the same iteration on every backend
    p = np.array([[np.nan], [np.inf], [-np.inf]])
    for yv in (-1.0, 0.0, 1.0):
        y = np.full(3, yv)
        with np.errstate(all="ignore"):
            want, _ = ref_losses.loss_and_dloss(LOSS_IDS[loss], LOSS_PARAM.get(loss), p, y)
        got, _ = cuda_losses.evaluate(LOSS_IDS[loss], LOSS_PARAM.get(loss), p, y)
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want), err_msg=f"y = {yv}")


@pytest.mark.parametrize("loss", ["logistic", "softmax", "huber", "modified_huber"])
def test_losses_float32_close_to_float64_reference(loss):
    p, y = _loss_inputs(loss, np.float32)
    want_l, want_dl = ref_losses.loss_and_dloss(LOSS_IDS[loss], LOSS_PARAM.get(loss),
                                                p.astype(np.float64), y.astype(np.float64))
    got_l, got_dl = cuda_losses.evaluate(LOSS_IDS[loss], LOSS_PARAM.get(loss), p, y)
    assert got_l.dtype == np.float32
    close(got_l, want_l, np.float32)
    close(got_dl, want_dl, np.float32)


# --------------------------------------------------------------------------- update rules
UPDATE_CASES = OPTIMIZERS + (
    ("sgd", {"weight_decay": 0.1}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("adamw", {"amsgrad": True, "weight_decay": 0.1, "betas": (0.8, 0.95)}),
    ("adam", {"weight_decay": 0.05, "eps": 1e-3}),
    ("adagrad", {"weight_decay": 0.05}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": 0.9, "alpha": 0.9}),
)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kw", UPDATE_CASES,
                         ids=[n + "".join(f"-{k}{v}" for k, v in sorted(kw.items()))
                              for n, kw in UPDATE_CASES])
def test_update_rules_match_reference(name, kw, dtype):
    o = optim.OPTIMIZERS[name](lr=0.03, **kw)
    rng = np.random.default_rng(1)
    theta = rng.standard_normal(40)
    state = o.init(theta)
    g_theta, g_state = theta.astype(dtype), state.astype(dtype)
    for step in (1, 2, 3):  # first step (momentum buffer init), then bias corrections move
        grad = rng.standard_normal(40)
        lr = 0.03 / step
        ref_updates.apply_update(o.rule_id, o.hyper, theta, grad, state, lr, step)
        cuda_updates.apply_update(o.rule_id, o.hyper, g_theta, grad.astype(dtype), g_state, lr, step)
        assert g_theta.dtype == dtype
        close(g_theta, theta, dtype)
        close(g_state, state, dtype)


def test_amsgrad_keeps_a_nan_in_either_operand_of_its_running_maximum():
    """torch.maximum: a NaN in the running maximum or the new second moment wins, as in
    the reference and Cython; max() would lower to a GPU's fmax, which drops it."""
    o = optim.Adam(lr=0.1, amsgrad=True)
    for where in (0, 1):  # the NaN in the stored maximum, then in the new v
        theta = np.ones(2)
        state = o.init(theta)
        grad = np.array([0.05, 0.05])
        if where == 0:
            state[2, 0] = np.nan
        else:
            grad[0] = np.nan
        g_theta, g_state = theta.copy(), state.copy()
        ref_updates.apply_update(o.rule_id, o.hyper, theta, grad, state, 0.1, 1)
        cuda_updates.apply_update(o.rule_id, o.hyper, g_theta, grad, g_state, 0.1, 1)
        assert np.isnan(g_state[2, 0]) and np.isnan(state[2, 0])
        np.testing.assert_array_equal(g_theta, theta)  # NaN in the same place, same values


# --------------------------------------------------------------------------- engine parity
@pytest.mark.parametrize("b", [1, 7, N], ids=["b1", "b7", "bn"])
@pytest.mark.parametrize("loss", list(LOSS_IDS))
def test_every_loss_every_batch_size_float64(loss, b):
    check_parity(Problem(loss, b=b), expect_path="fused" if b <= config.FUSED_MAX_BATCH else "batched")


@pytest.mark.parametrize("b", [7, N], ids=["b7", "bn"])
@pytest.mark.parametrize("loss", list(LOSS_IDS))
def test_every_loss_float32_against_float64_reference(loss, b):
    check_parity(Problem(loss, b=b), dtype=np.float32)


RULE_CASES = [pytest.param(opt, id=opt[0] + "".join(f"-{k}{v}" for k, v in sorted(opt[1].items())))
              for opt in OPTIMIZERS]


@pytest.mark.parametrize("path", ["fused", "batched"])
@pytest.mark.parametrize("opt", RULE_CASES)
def test_every_update_rule(opt, path):
    loss = "softmax" if opt[0] in ("adam", "rmsprop") else "logistic"
    check_parity(Problem(loss, opt=opt, b=7, lr=0.02), path=path)


@pytest.mark.parametrize("path", ["fused", "batched"])
@pytest.mark.parametrize("penalty", [(0.01, 0.0), (0.01, 1.0), (0.02, 0.4)],
                         ids=["l2", "l1", "elasticnet"])
@pytest.mark.parametrize("loss", ["squared", "hinge", "softmax"])
def test_penalties(loss, penalty, path):
    alpha, l1_ratio = penalty
    check_parity(Problem(loss, b=7, alpha=alpha, l1_ratio=l1_ratio), path=path)


@pytest.mark.parametrize("path", ["fused", "batched"])
@pytest.mark.parametrize("loss", ["logistic", "softmax", "huber"])
def test_sample_weights_and_no_intercept(loss, path):
    check_parity(Problem(loss, b=7, sample_weight=True), path=path)
    check_parity(Problem(loss, b=7, fit_intercept=False, sample_weight=(loss == "huber")),
                 path=path)


@pytest.mark.parametrize("path", ["fused", "batched"])
def test_float32_penalised_weighted_adam(path):
    prob = Problem("softmax", opt=("adamw", {"amsgrad": True}), b=7, alpha=0.01, l1_ratio=0.3,
                   sample_weight=True, lr=0.02)
    check_parity(prob, dtype=np.float32, path=path)


@pytest.mark.parametrize("path", ["fused", "batched"])
def test_float32_data_float64_accumulation(path):
    prob = Problem("logistic", b=7)
    prob.X = prob.X.astype(np.float32).astype(np.float64)  # the reference sees the same data
    eng = check_parity(prob, dtype=np.float32, theta_dtype=np.float64, path=path)
    assert eng.X.dtype == np.float32 and eng.dtype == np.float64


def test_wide_many_outputs_two_reduce_blocks():
    """d=12 (3 column chunks on the simulator), K=3: P=39 > 32 columns, so the batched
    path's second kernel runs 2 blocks; several blocks and tiles in the first.  The path
    is forced: a real GPU's config fuses batches of this size (it did, on an H200)."""
    check_parity(Problem("softmax", b=N, d=12, opt=("sgd", {"momentum": 0.9}), alpha=0.01,
                         l1_ratio=0.5), path="batched", expect_path="batched")


@pytest.mark.parametrize("path", ["fused", "batched"])
def test_two_warps_per_block(monkeypatch, path):
    """64 threads: two warps share the tile load and the column reduction."""
    monkeypatch.setattr(config, "THREADS_PER_BLOCK", 64)
    eng = check_parity(Problem("softmax", b=N, d=6, sample_weight=True, alpha=0.01), path=path)
    assert eng.threads == 64


@pytest.mark.parametrize("split", [2, 4, 7])
@pytest.mark.parametrize("path", ["fused", "batched"])
@pytest.mark.parametrize("loss,d,dtype", [("logistic", 5, np.float64), ("softmax", 9, np.float64),
                                          ("huber", 11, np.float32)])
def test_split_dot_products(monkeypatch, path, split, loss, d, dtype):
    """config.SPLIT_DOTS: predictions cut into column slices and gradient sums into row
    slices (7: more slices than a tile's columns or a block's idle threads allow, so it
    is capped), several column chunks, the last tile shorter; the same results, and the
    same bits run to run."""
    monkeypatch.setattr(config, "SPLIT_DOTS", split)
    monkeypatch.setattr(config, "ROW_KERNEL", 0)  # the tiles, also for K = 1
    prob = Problem(loss, b=13, d=d, alpha=0.01, l1_ratio=0.3, sample_weight=True)
    eng = check_parity(prob, dtype=dtype, path=path)
    assert eng.split == split
    again = prob.run(prob.engine(dtype, None, path))
    assert np.array_equal(again[0], prob.run(prob.engine(dtype, None, path))[0])


ROW_LOSSES = [loss for loss in LOSS_IDS if loss != "softmax"]


@pytest.mark.parametrize("loss,row_kernel",
                         [(loss, 1) for loss in ROW_LOSSES]
                         + [(loss, 0) for loss in ("logistic", "huber", "squared_hinge")],
                         ids=[f"{loss}-rows" for loss in ROW_LOSSES]
                         + [f"{loss}-tiles" for loss in ("logistic", "huber", "squared_hinge")])
def test_row_kernel_every_loss(monkeypatch, loss, row_kernel):
    """The batched path's two partial-gradient kernels, one warp a row (every loss) and
    the tiles (which take the losses through the same device function as the fused path),
    both equal to the reference (float64 and float32, weights, penalty, no intercept)."""
    monkeypatch.setattr(config, "ROW_KERNEL", row_kernel)
    eng = check_parity(Problem(loss, b=N, alpha=0.01, l1_ratio=0.3, sample_weight=True),
                       path="batched")
    assert eng.partials == ("batch_partials_rows" if row_kernel else "batch_partials")
    check_parity(Problem(loss, b=7, fit_intercept=False), dtype=np.float32, path="batched")


@pytest.mark.parametrize("d,chunks,threads", [(5, 1, 64), (40, 2, 32), (100, 4, 64), (256, 8, 32)])
def test_row_kernel_widths_and_warps(monkeypatch, d, chunks, threads):
    """1, 2, 4 and 8 chunks a row (256 features: every lane of every chunk), one and two
    warps a block (the simulator's warp sums are block barriers: both warps take the same
    steps even where the block's share runs out), blocks with an odd share, blocks with
    none (17 rows on 4 blocks of 5); the same bits run to run."""
    monkeypatch.setattr(config, "THREADS_PER_BLOCK", threads)
    monkeypatch.setattr(config, "ROWS_PER_BLOCK", 5)
    prob = Problem("logistic", b=17, n=17, d=d, sample_weight=True, alpha=0.01, epochs=1)
    eng = check_parity(prob, path="batched")
    assert (eng.partials, eng.row_chunks, eng.threads) == ("batch_partials_rows", chunks, threads)
    again = prob.run(prob.engine(np.float64, None, "batched"))
    assert np.array_equal(again[0], prob.run(prob.engine(np.float64, None, "batched"))[0])


def test_row_kernel_float32_data_float64_accumulation():
    prob = Problem("huber", b=N, d=37)
    # the reference gets the data the engine holds: X and y in float32 (until the
    # twenty-ninth session y was not rounded, a 2.6e-8 difference that the tolerance's
    # absolute floor of 1e-9 * max(1, ...) hid)
    prob.X = prob.X.astype(np.float32).astype(np.float64)
    prob.y = prob.y.astype(np.float32).astype(np.float64)
    eng = check_parity(prob, dtype=np.float32, theta_dtype=np.float64, path="batched")
    assert eng.partials == "batch_partials_rows" and eng.X.dtype == np.float32


def test_last_batch_shorter_and_single_row_batches_batched_path():
    check_parity(Problem("squared_hinge", b=6, n=20, epochs=1), path="batched")
    check_parity(Problem("huber", b=1, n=6, epochs=2), path="batched")


@pytest.mark.parametrize("path", ["fused", "batched"])
def test_drop_last_and_sampling_with_replacement(path):
    """Orders are any int64 rows: drop_last runs floor(m / b) batches; sampling with
    replacement repeats rows (rng.integers), an epoch still being ceil(n / b) batches."""
    prob = Problem("logistic", b=6, opt=("sgd", {"momentum": 0.5}))
    prob.n_batches = N // 6
    prob.lrs = [lr[:prob.n_batches] for lr in prob.lrs]
    check_parity(prob, path=path)
    prob = Problem("squared", b=6)
    prob.orders = np.random.default_rng(3).integers(0, N, size=(prob.epochs, prob.n_batches * 6))
    check_parity(prob, path=path)


def test_one_feature_one_row_tiles(monkeypatch):
    monkeypatch.setattr(config, "TILE_ROWS", 1)
    monkeypatch.setattr(config, "TILE_COLS", 1)
    check_parity(Problem("logistic", b=5, n=10, d=2, epochs=1), path="fused")


def test_convention_linear_epoch_on_host_arrays():
    from fastgd.kernels.cuda.linear_epoch import linear_epoch

    prob = Problem("modified_huber", b=7, epochs=1, alpha=0.01)
    theta, state, losses, done = prob.reference()
    s = prob.spec
    g_theta, g_state = prob.theta.copy(), prob.state.copy()
    bl = np.zeros(prob.n_batches)
    k = linear_epoch(prob.X, prob.y, prob.sw, prob.orders[0], s.batch_size, prob.n_batches, s.loss_id,
                     s.loss_param, s.n_outputs, s.fit_intercept, s.alpha, s.l1_ratio, s.rule_id,
                     s.hyper, prob.lrs[0], 0, g_theta, np.zeros_like(g_theta), g_state, bl)
    assert k == done[0] == prob.n_batches
    close(g_theta, theta, np.float64)
    close(g_state, state, np.float64)
    close(bl, losses[0], np.float64)
    # host arrays get the CPU entries' checks: a row outside X, a state too short
    bad = prob.orders[0].copy()
    bad[3] = prob.X.shape[0]
    for order, state, word in ((bad, g_state, "Invalid order"),
                               (prob.orders[0], g_state[:, :2].copy(), "Invalid state")):
        with pytest.raises(ValueError, match=word):
            linear_epoch(prob.X, prob.y, prob.sw, order, s.batch_size, prob.n_batches,
                         s.loss_id, s.loss_param, s.n_outputs, s.fit_intercept, s.alpha,
                         s.l1_ratio, s.rule_id, s.hyper, prob.lrs[0], 0, g_theta,
                         np.zeros_like(g_theta), state, bl)
    from fastgd.kernels.cuda.updates import apply_update

    with pytest.raises(ValueError, match="Invalid rule_id"):
        apply_update(9, s.hyper, g_theta, np.zeros_like(g_theta), g_state, 0.1, 1)
    for threads in (0, -64, 2.5, 2048):  # a block of 1..1024 threads (2.5 had run as 2)
        with pytest.raises(ValueError, match=f"Invalid threads: {threads}"):
            apply_update(s.rule_id, s.hyper, g_theta, np.zeros_like(g_theta), g_state, 0.1, 1,
                         threads=threads)


# --------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("path", ["fused", "batched"])
def test_bit_reproducible(path):
    prob = Problem("softmax", opt=("adam", {}), b=N, sample_weight=True, alpha=0.01, l1_ratio=0.5)
    a = prob.run(prob.engine(np.float32, path=path))
    b = prob.run(prob.engine(np.float32, path=path))
    assert a[0].tobytes() == b[0].tobytes()
    assert a[1].tobytes() == b[1].tobytes()
    assert np.array_equal(np.array(a[2]), np.array(b[2]))


# --------------------------------------------------------------------------- divergence
def _poisoned(loss, b, value, opt=("adam", {})):
    prob = Problem(loss, opt=opt, b=b, epochs=1)
    # one huge value: the batch holding row 3 is not finite, the batches after it are finite again
    prob.X[3, 1] = value
    return prob


@pytest.mark.parametrize("path,b", [("fused", 4), ("batched", 4), ("batched", N)])
def test_divergence_stops_at_the_first_non_finite_batch(path, b):
    prob = _poisoned("squared", b, 1e200)  # its squared residual overflows
    theta, state, losses, done = prob.reference()
    bad = int(np.flatnonzero(prob.orders[0] == 3)[0]) // b
    assert done == [bad] and not np.isfinite(losses[0][bad])
    eng = prob.engine(np.float64, path=path)
    bl = np.full(prob.n_batches, -7.0)
    k = eng.run_epoch(0, prob.n_batches, prob.lrs[0], 0, bl)
    assert k == bad
    close(eng.get_theta(), theta, np.float64)   # the parameters before the bad batch
    close(eng.get_state(), state, np.float64)
    close(bl[:bad], losses[0][:bad], np.float64)
    assert not np.isfinite(bl[bad])
    assert np.all(bl[bad + 1:] == -7.0)          # later entries untouched, as the reference


@pytest.mark.parametrize("path", ["fused", "batched"])
def test_divergence_float32(path):
    prob = _poisoned("logistic", 7, np.inf, opt=("sgd", {"momentum": 0.9}))
    theta, state, losses, done = prob.reference()
    eng = prob.engine(np.float32, path=path)
    bl = np.full(prob.n_batches, -7.0)
    k = eng.run_epoch(0, prob.n_batches, prob.lrs[0], 0, bl)
    assert [k] == done and k < prob.n_batches
    close(eng.get_theta(), theta, np.float32)
    close(eng.get_state(), state, np.float32)


# --------------------------------------------------------------------------- engine API
def test_caller_arrays_untouched_and_device_inputs_used_in_place():
    from numba import cuda

    prob = Problem("logistic", b=7, sample_weight=True)
    theta0, state0 = prob.theta.copy(), prob.state.copy()
    dX = cuda.to_device(prob.X)
    d_orders = cuda.to_device(prob.orders)
    d_theta = cuda.to_device(prob.theta)
    eng = LinearEngine(dX, prob.y, prob.sw, prob.spec, d_theta, prob.state)
    eng.prepare(d_orders)
    assert eng.X is dX and eng.orders is d_orders  # no copy of device data
    assert eng.theta is not d_theta                # theta is the engine's own copy
    g = prob.run(eng)
    want = prob.reference()
    close(g[0], want[0], np.float64)
    np.testing.assert_array_equal(d_theta.copy_to_host(), theta0)
    np.testing.assert_array_equal(prob.theta, theta0)
    np.testing.assert_array_equal(prob.state, state0)


def _no_host_copy(host):
    """A device array (a real GPU's or the simulator's) that counts its copies to the host
    and refuses to become a NumPy array.  (Made by cuda.to_device and given a subclass:
    the two kinds of device array have constructors of their own.)"""
    dev = cuda.to_device(np.ascontiguousarray(host))

    class NoHostCopy(type(dev)):
        # copies of the whole of X to the host, through it or a view of it (a real GPU's
        # device array makes its views of its own class: an element read for an error
        # message is one)
        copies = 0

        def copy_to_host(self, *a, **k):
            if self.size == host.size:
                NoHostCopy.copies += 1
            return super().copy_to_host(*a, **k)

        def __array__(self, *a, **k):
            raise AssertionError("X was converted to a host array")

    dev.__class__ = NoHostCopy
    return dev


def _fit_data(n=60, d=4, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    return X, (X[:, 0] + 0.3 * rng.standard_normal(n) > 0).astype(dtype)


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
@pytest.mark.parametrize("loss", ["squared", "squared_hinge"])
def test_fit_divergence_is_found_at_the_update_that_made_it(loss):
    """The driver's checks on the cuda engine (tests/test_api.py runs the same on the CPU
    backends): update 10 overflows the parameters; squared's next batch loss shows it,
    squared_hinge's NaN margins give a loss of 0 and only the parameters show it."""
    import fastgd

    rng = np.random.default_rng(0)
    X = 10 * rng.standard_normal((50, 4))
    y = X @ rng.standard_normal(4) + 0.5
    y = y if loss == "squared" else (y > 0.5).astype(int)
    jump = lambda t: np.where(np.asarray(t) < 10, 1e-3, 1e308)  # noqa: E731
    with pytest.raises(fastgd.DivergenceError) as info:
        fastgd.fit(X, y, loss=loss, batch_size=8, epochs=3, schedule=jump, seed=0, backend="cuda")
    err = info.value
    assert (err.epoch, err.iteration, err.result.n_iter) == (1, 3, 10)
    assert "made the parameters non-finite" in str(err)
    with pytest.raises(fastgd.DivergenceError) as ref:
        fastgd.fit(X, y, loss=loss, batch_size=8, epochs=3, schedule=jump, seed=0, backend="numpy")
    assert str(ref.value).split(":")[0] == str(err).split(":")[0]  # "... (update 11 overall)"
    close(err.result.coef, ref.value.result.coef, np.float64)  # the last finite parameters
    close(err.result.intercept, ref.value.result.intercept, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_keeps_a_device_X_on_the_device(dtype):
    """fastgd.fit with X (and y, sample weights) on the GPU: backend='auto' picks cuda, X is
    checked in place and never copied to the host, and the result is the host fit's."""
    import fastgd

    X, y = _fit_data(dtype=dtype)
    sw = np.linspace(0.5, 1.5, X.shape[0]).astype(dtype)
    dX = _no_host_copy(X)
    kw = dict(loss="logistic", batch_size=8, epochs=2, seed=3, optimizer="adam", lr=0.05)
    got = fastgd.fit(dX, cuda.to_device(y), sample_weight=cuda.to_device(sw), **kw)
    assert got.backend == "cuda" and dX.copies == 0
    want = fastgd.fit(X, y, sample_weight=sw, backend="numpy", **kw)
    close(got.coef, want.coef, np.float64 if dtype == np.float64 else np.float32)
    close(got.intercept, want.intercept, np.float64 if dtype == np.float64 else np.float32)
    assert got.coef.dtype == dtype
    assert np.array_equal(got.predict(cuda.to_device(X)), got.predict(X))
    if dtype == np.float32:  # an MLP takes the same road
        dX = _no_host_copy(X)
        kw = dict(model=fastgd.MLP(hidden=(5,)), loss="logistic", batch_size=10, epochs=1, seed=1)
        got = fastgd.fit(dX, y, **kw)
        want = fastgd.fit(X, y, backend="numpy", **kw)
        assert got.backend == "cuda" and dX.copies == 0
        for (gw, gb), (ww, wb) in zip(got.params, want.params):
            close(gw, ww, np.float32)
            close(gb, wb, np.float32)


def test_fit_with_a_device_X_on_a_host_backend_copies_it_once():
    import fastgd

    X, y = _fit_data()
    dX = _no_host_copy(X)
    got = fastgd.fit(dX, y, loss="logistic", batch_size=8, epochs=2, seed=3, backend="numpy")
    want = fastgd.fit(X, y, loss="logistic", batch_size=8, epochs=2, seed=3, backend="numpy")
    assert got.backend == "numpy" and dX.copies == 1
    assert np.array_equal(got.coef, want.coef)


def test_fit_checks_a_device_X_where_it_is():
    import fastgd

    X, y = _fit_data(n=40, d=5)
    bad = X.copy()
    bad[17, 3] = np.nan
    with pytest.raises(ValueError, match=r"Invalid X: .* nan at row 17, column 3"):
        fastgd.fit(_no_host_copy(bad), y, loss="logistic", batch_size=8)
    with pytest.raises(TypeError, match=r"Invalid X: a GPU array must be float32 or float64, "
                                        r"got int64"):
        fastgd.fit(cuda.to_device(np.ones((40, 5), dtype=np.int64)), y, loss="logistic")
    with pytest.raises(ValueError, match=r"Invalid dtype: X is a float32 GPU array but "
                                         r"dtype=float64"):
        fastgd.fit(_no_host_copy(X), y, loss="logistic", dtype=np.float64)
    with pytest.raises(ValueError, match=r"Invalid X: it must be 2-D"):
        fastgd.fit(cuda.to_device(X[:, 0].copy()), y, loss="logistic")
    # float32 data accumulated in float64 keeps the float32 X on the device
    r = fastgd.fit(_no_host_copy(X), y, loss="logistic", batch_size=8, accumulate="float64")
    assert r.backend == "cuda" and r.coef.dtype == np.float64


def test_set_theta_state_then_resume():
    prob = Problem("squared", opt=("rmsprop", {"momentum": 0.5}), b=7, epochs=2)
    theta, state, _, _ = prob.reference()
    eng = prob.engine()
    prob.run(eng)
    once = eng.get_theta()
    eng.set_theta_state(prob.theta, prob.state)   # back to the start: same run again
    again = prob.run(eng)
    assert once.tobytes() == again[0].tobytes()
    close(again[0], theta, np.float64)
    close(again[1], state, np.float64)


def test_custom_loss_is_refused_clearly():
    prob = Problem("squared")
    prob.spec.loss_id = ids.LOSS_CUSTOM
    prob.spec.loss_param = lambda p, y: (p, p)
    with pytest.raises(ValueError, match="numba"):
        prob.engine()


def test_path_choice_follows_config(monkeypatch):
    assert Problem("squared", b=config.FUSED_MAX_BATCH).engine().path == "fused"
    assert Problem("squared", b=config.FUSED_MAX_BATCH + 1).engine().path == "batched"
    monkeypatch.setattr(config, "FUSED_MAX_BATCH", 0)
    assert Problem("squared", b=1).engine().path == "batched"


@pytest.mark.parametrize("name,value,words", [
    ("THREADS_PER_BLOCK", 2048, ["THREADS_PER_BLOCK", "2048", "32..384"]),
    # a GPU has the warps for it, but not the registers (148-160 a thread): no launch
    ("THREADS_PER_BLOCK", 512, ["THREADS_PER_BLOCK", "512", "registers", "32..384"]),
    ("THREADS_PER_BLOCK", 48, ["THREADS_PER_BLOCK", "48", "multiple of 32"]),
    ("SHARED_BYTES", 64 * 1024, ["SHARED_BYTES", "65536", "49152"]),
    ("TILE_ROWS", 0, ["TILE_ROWS", ">= 1"]),
])
def test_tunables_a_gpu_launch_would_refuse_are_an_error_when_the_engine_is_built(
        monkeypatch, name, value, words):
    """The simulator launches any block size and allocates any shared memory; a GPU refuses
    both at the launch, so the engine refuses them first, naming the tunable."""
    monkeypatch.setattr(config, name, value)
    with pytest.raises(ValueError) as info:
        Problem("squared").engine()
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


def test_tile_plan_fits_shared_memory():
    cfg = dict(config.snapshot(), THREADS_PER_BLOCK=256, TILE_ROWS=64, TILE_COLS=128,
               SHARED_BYTES=48 * 1024)
    for d, K, item in [(100, 1, 4), (100, 1, 8), (5000, 1, 4), (784, 10, 4), (50, 400, 8)]:
        rows, tc, ld, elems = plan_tiles(d, K, item, cfg)
        assert elems * item <= cfg["SHARED_BYTES"]
        assert 1 <= tc <= min(d, 128) and ld >= tc and ld % 2 == 1 and rows >= 1
    assert plan_tiles(100, 1, 4, cfg)[:2] == (64, 100)
    with pytest.raises(ValueError, match="classes"):
        plan_tiles(10, 10**5, 8, cfg)


def test_availability_never_raises_without_simulator_or_gpu():
    """A fresh interpreter without NUMBA_ENABLE_CUDASIM: importing works, and when
    there is no GPU the reason names the cuda extra."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    code = ("import fastgd.kernels.cuda as c; ok = c.is_available(); r = c.unavailable_reason(); "
            "assert isinstance(ok, bool) and not c.is_simulated(); "
            "assert ok or 'fastgd[cuda]' in r, r; print(ok)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("True", "False")


def test_a_compiler_that_cannot_start_makes_the_backend_unavailable_with_the_fix():
    """numba-cuda 0.30.4 beside NumPy 2.5 fails at the first launch (np.row_stack, seen on an
    H200); the probe reports it up front, naming the versions and the fix."""
    def broken(name):
        raise AttributeError("module 'numpy' has no attribute 'row_stack'")

    def other_layout(name):
        raise ModuleNotFoundError(name)

    msg = cuda_pkg._compiler_problem(broken)
    assert "numba-cuda" in msg and f"NumPy {np.__version__}" in msg
    assert 'pip install "numpy<2.5"' in msg and "row_stack" in msg
    assert cuda_pkg._compiler_problem(other_layout) == ""
    if not SIM:  # (the simulator replaces numba.cuda; the probe never asks it)
        assert cuda_pkg._compiler_problem() == ""  # this environment's pairing works


@pytest.mark.slow
def test_kernels_compile_for_a_real_gpu():
    """The simulator never runs Numba's CUDA compiler: compile every kernel to PTX
    (cc 8.0) in a fresh interpreter, where the CUDA toolkit's NVVM is installed."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-m", "fastgd.kernels.cuda.compile_check"], env=env,
                         capture_output=True, text=True, timeout=600)
    if out.returncode == 3:
        pytest.skip(out.stdout.strip())
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "all kernels compiled" in out.stdout


# --------------------------------------------------------------------------- MLP
ACTS = {"relu": ids.ACT_RELU, "tanh": ids.ACT_TANH, "sigmoid": ids.ACT_SIGMOID}


class MLPProblem:
    """An MLP problem driven through fastgd.reference.mlp_epoch and MLPEngine."""

    def __init__(self, loss="softmax", act="tanh", hidden=(5,), opt=("sgd", {}), b=7, n=14, d=3,
                 K=3, alpha=0.0, l1_ratio=0.0, sample_weight=False, epochs=2, lr=0.05, seed=0):
        from fastgd.engines import MLPSpec
        from fastgd.reference.mlp_epoch import mlp_init

        rng = np.random.default_rng(seed)
        K = K if loss == "softmax" else 1
        self.sizes = np.array([d, *hidden, K], dtype=np.int64)
        self.X = rng.standard_normal((n, d))
        self.y = labels(loss, n, rng, K)
        self.sw = rng.uniform(0.5, 2.0, n) if sample_weight else np.empty(0)
        self.theta = mlp_init(self.sizes, rng)
        o = optim.OPTIMIZERS[opt[0]](lr=lr, **opt[1])
        self.state = o.init(self.theta)
        self.spec = MLPSpec(LOSS_IDS[loss], self.sizes, ACTS[act], alpha, l1_ratio, o.rule_id,
                            o.hyper, b)
        self.orders = np.stack([np.random.default_rng(seed + 1 + e).permutation(n)
                                for e in range(epochs)])
        self.n_batches = -(-n // b)
        self.lrs = [lr * np.linspace(1.0, 0.5, self.n_batches) for _ in range(epochs)]
        self.epochs = epochs

    def reference(self):
        from fastgd.reference.mlp_epoch import mlp_epoch

        s = self.spec
        theta, state = self.theta.copy(), self.state.copy()
        losses, done = [], []
        for e in range(self.epochs):
            bl = np.full(self.n_batches, -7.0)
            k = mlp_epoch(self.X, self.y, self.sw, self.orders[e], s.batch_size, self.n_batches,
                          s.loss_id, self.sizes, s.activation_id, s.alpha, s.l1_ratio, s.rule_id,
                          s.hyper, self.lrs[e], e * self.n_batches, theta, np.zeros_like(theta),
                          state, bl, None)
            losses.append(bl)
            done.append(k)
            if k < self.n_batches:
                break
        return theta, state, losses, done

    def engine(self, dtype=np.float64, theta_dtype=None):
        theta_dtype = dtype if theta_dtype is None else theta_dtype
        eng = cuda_engine.MLPEngine(self.X.astype(dtype), self.y.astype(dtype),
                                    self.sw.astype(dtype), self.spec,
                                    self.theta.astype(theta_dtype),
                                    self.state.astype(theta_dtype))
        eng.prepare(self.orders)
        return eng

    run = Problem.run


def check_mlp(prob, dtype=np.float64, theta_dtype=None):
    theta, state, losses, done = prob.reference()
    g_theta, g_state, g_losses, g_done = prob.run(prob.engine(dtype, theta_dtype))
    acc = np.dtype(dtype if theta_dtype is None else theta_dtype)
    assert g_theta.dtype == acc and g_done == done
    close(g_theta, theta, acc)
    close(g_state, state, acc)
    for a, r in zip(g_losses, losses):
        close(a, r, acc)


@pytest.mark.parametrize("b", [1, 5, 14], ids=["b1", "b5", "bn"])
@pytest.mark.parametrize("loss", ["squared", "logistic", "softmax"])
@pytest.mark.parametrize("act", list(ACTS))
def test_mlp_every_head_activation_batch_size(act, loss, b):
    check_mlp(MLPProblem(loss, act, b=b))


@pytest.mark.parametrize("opt", RULE_CASES)
def test_mlp_every_update_rule(opt):
    check_mlp(MLPProblem("softmax", "tanh", hidden=(4, 3), opt=opt, b=5, lr=0.02, epochs=1))


def test_mlp_penalty_weights_float32():
    prob = MLPProblem("logistic", "sigmoid", hidden=(6,), opt=("adam", {}), b=5, alpha=0.01,
                      l1_ratio=0.4, sample_weight=True)
    check_mlp(prob)
    check_mlp(prob, dtype=np.float32)
    prob.X = prob.X.astype(np.float32).astype(np.float64)  # the reference sees the same data
    prob.sw = prob.sw.astype(np.float32).astype(np.float64)
    check_mlp(prob, dtype=np.float32, theta_dtype=np.float64)


def test_mlp_divergence_and_reproducibility():
    prob = MLPProblem("squared", "relu", b=4, epochs=1)
    prob.X[prob.orders[0][6], 0] = 1e200   # the second batch overflows
    theta, state, losses, done = prob.reference()
    assert done == [1]
    eng = prob.engine()
    bl = np.full(prob.n_batches, -7.0)
    assert eng.run_epoch(0, prob.n_batches, prob.lrs[0], 0, bl) == 1
    close(eng.get_theta(), theta, np.float64)
    close(eng.get_state(), state, np.float64)
    assert bl[0] == pytest.approx(losses[0][0], rel=1e-9) and not np.isfinite(bl[1])
    assert np.all(bl[2:] == -7.0)
    ok = MLPProblem("softmax", "tanh", b=5, sample_weight=True, alpha=0.01)
    a, c = ok.run(ok.engine(np.float32)), ok.run(ok.engine(np.float32))
    assert a[0].tobytes() == c[0].tobytes() and a[1].tobytes() == c[1].tobytes()


def test_mlp_convention_entry_point():
    from fastgd.kernels.cuda.mlp_epoch import mlp_epoch

    prob = MLPProblem("softmax", "relu", b=5, epochs=1)
    theta, state, losses, _ = prob.reference()
    s = prob.spec
    g_theta, g_state = prob.theta.copy(), prob.state.copy()
    bl = np.zeros(prob.n_batches)
    k = mlp_epoch(prob.X, prob.y, prob.sw, prob.orders[0], s.batch_size, prob.n_batches,
                  s.loss_id, prob.sizes, s.activation_id, 0.0, 0.0, s.rule_id, s.hyper,
                  prob.lrs[0], 0, g_theta, None, g_state, bl, None)
    assert k == prob.n_batches
    close(g_theta, theta, np.float64)
    close(bl, losses[0], np.float64)


def test_uploads_get_numpys_standard_strides(monkeypatch):
    # The fit hands an epoch's order as order[None, :]: stride 0 on the size-1 axis, which
    # NumPy calls C-contiguous and numba-cuda takes for broadcasting (indexing such a device
    # array walked every element in Python: 9 s an epoch at 10,000,000 rows on an H200).
    from fastgd.kernels.cuda import _device

    seen = []
    real = _device.cuda.to_device
    monkeypatch.setattr(_device.cuda, "to_device", lambda h, *a, **k: seen.append(h) or real(h))
    prob = Problem("logistic", b=7)
    eng = prob.engine(np.float64)
    seen.clear()
    order = np.arange(N, dtype=np.int64)[None, :]
    assert order.strides == (0, 8)  # what NumPy makes of [None, :]
    eng.prepare(order)
    assert [h.strides for h in seen] == [(8 * N, 8)]
    assert np.array_equal(seen[0], order)
    one = np.zeros((1, 1, 3))[:, None, 0]
    assert _device.c_layout(one).strides == (24, 24, 8) and _device.c_layout(one).shape == (1, 1, 3)


# --------------------------------------------------------------------------- real GPU only
@pytest.mark.gpu
@needs_gpu
def test_gpu_epoch_order_rows_are_views_not_walks():
    prob = Problem("logistic", b=64, n=2000, d=20)
    eng = prob.engine(np.float32)
    eng.prepare(np.arange(200_000, dtype=np.int64)[None, :])
    assert eng.orders.is_c_contiguous()
    t0 = time.perf_counter()
    row = eng.orders[0]
    # numba-cuda walks a non-contiguous array element by element (~0.2 s here): the
    # bound is generous, the failure it catches is not subtle
    assert time.perf_counter() - t0 < 0.05 and row.shape == (200_000,)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("b", [32, 1024, None], ids=["b32", "b1024", "bgd"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpu_parity_realistic_sizes(b, dtype):
    n, d = 5000, 60
    prob = Problem("logistic", opt=("sgd", {"momentum": 0.9}), b=b or n, n=n, d=d, alpha=1e-3,
                   l1_ratio=0.2, sample_weight=True, lr=0.01)
    check_parity(prob, dtype=dtype)
    prob = Problem("softmax", opt=("adam", {}), b=b or n, n=n, d=d, K=7, lr=0.01)
    check_parity(prob, dtype=dtype)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("b", [32, 4096])
def test_gpu_bit_reproducible(b):
    prob = Problem("softmax", opt=("adam", {}), b=b, n=20000, d=50, K=5, sample_weight=True,
                   alpha=1e-3, l1_ratio=0.5)
    a = prob.run(prob.engine(np.float32))
    c = prob.run(prob.engine(np.float32))
    assert a[0].tobytes() == c[0].tobytes() and a[1].tobytes() == c[1].tobytes()
    assert np.array_equal(np.array(a[2]), np.array(c[2]))


@pytest.mark.gpu
@needs_gpu
def test_gpu_torch_and_cupy_inputs_are_not_copied():
    prob = Problem("logistic", b=64, n=2000, d=20)
    used = 0
    try:
        import torch

        if torch.cuda.is_available():
            tX = torch.as_tensor(prob.X, device="cuda")
            eng = LinearEngine(tX, torch.as_tensor(prob.y, device="cuda"), None, prob.spec,
                               prob.theta, prob.state)
            assert eng.X.__cuda_array_interface__["data"][0] == tX.data_ptr()
            eng.prepare(prob.orders)
            close(prob.run(eng)[0], prob.reference()[0], np.float64)
            used += 1
    except ImportError:
        pass
    try:
        import cupy

        cX = cupy.asarray(prob.X)
        eng = LinearEngine(cX, cupy.asarray(prob.y), None, prob.spec, prob.theta, prob.state)
        assert eng.X.__cuda_array_interface__["data"][0] == cX.data.ptr
        eng.prepare(prob.orders)
        close(prob.run(eng)[0], prob.reference()[0], np.float64)
        used += 1
    except ImportError:
        pass
    if not used:
        pytest.skip("neither torch (CUDA) nor cupy is installed")
