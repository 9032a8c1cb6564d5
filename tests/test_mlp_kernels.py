"""MLP kernels: reference gradients, compiled backends vs the reference, PyTorch parity.

Tiny nets (d=5, hidden (6, 4)), tens of rows, so the file runs in seconds once the
Numba kernels are compiled (cached on disk after the first run).
"""
import importlib
import math

import numpy as np
import pytest

from fastgd.kernels import ids
from fastgd.reference import mlp_epoch as ref

# ---------------------------------------------------------------- registry

ACTIVATIONS = {"relu": ids.ACT_RELU, "tanh": ids.ACT_TANH, "sigmoid": ids.ACT_SIGMOID}
HEADS = {"squared": ids.LOSS_SQUARED, "logistic": ids.LOSS_LOGISTIC,
         "softmax": ids.LOSS_SOFTMAX}
# name: (rule_id, hyper (ids.py layout), initial state value, torch factory kwargs)
RULES = {
    "sgd": (ids.RULE_SGD, [0.0, 0.0, 0.0, 0.0], 0.0, ("SGD", {})),
    "momentum": (ids.RULE_SGD, [0.9, 0.1, 0.0, 0.01], 0.0,
                 ("SGD", dict(momentum=0.9, dampening=0.1, weight_decay=0.01))),
    "nesterov": (ids.RULE_SGD, [0.9, 0.0, 1.0, 0.0], 0.0,
                 ("SGD", dict(momentum=0.9, nesterov=True))),
    "adam": (ids.RULE_ADAM, [0.9, 0.99, 1e-8, 0.01, 0.0], 0.0,
             ("Adam", dict(betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01))),
    "adamw": (ids.RULE_ADAMW, [0.8, 0.999, 1e-6, 0.05, 1.0], 0.0,
              ("AdamW", dict(betas=(0.8, 0.999), eps=1e-6, weight_decay=0.05, amsgrad=True))),
    "adagrad": (ids.RULE_ADAGRAD, [0.01, 0.001, 1e-10, 0.1], 0.1,
                ("Adagrad", dict(lr_decay=0.01, weight_decay=0.001, eps=1e-10,
                                 initial_accumulator_value=0.1))),
    "rmsprop": (ids.RULE_RMSPROP, [0.9, 1e-8, 0.0, 0.5, 1.0], 0.0,
                ("RMSprop", dict(alpha=0.9, eps=1e-8, momentum=0.5, centered=True))),
}
BASE_LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adam": 0.01, "adamw": 0.01,
           "adagrad": 0.05, "rmsprop": 0.005}

N, D, HIDDEN, K = 23, 5, (6, 4), 3


def _backends():
    # imported, not probed: a broken build fails the collection instead of skipping the tests
    return [pytest.param(importlib.import_module(f"fastgd.kernels.{pkg}.mlp_epoch"), id=name)
            for name, pkg in (("numba", "nb"), ("cython", "cy"))]


BACKENDS = _backends()


def make_problem(head, n=N, d=D, hidden=HIDDEN, k=K, seed=0, weights=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if head == "squared":
        y, k_out = rng.standard_normal(n), 1
    elif head == "logistic":
        y, k_out = rng.integers(0, 2, n).astype(np.float64), 1
    else:
        y, k_out = rng.integers(0, k, n).astype(np.float64), k
    sw = rng.uniform(0.2, 2.0, n) if weights else np.empty(0)
    sizes = np.array([d, *hidden, k_out], dtype=np.int64)
    theta = ref.mlp_init(sizes, rng, np.float64)
    return X, y, sw, sizes, theta


def orders_for(n, epochs, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.permutation(n).astype(np.int64) for _ in range(epochs)]


def run(mod, X, y, sw, sizes, act, head, rule, theta0, batch_size, epochs=2, alpha=0.0,
        l1_ratio=0.0, dtype=np.float64, lr=None, orders=None):
    """Run ``epochs`` epochs through ``mod.mlp_epoch``; return (theta, state, losses)."""
    rule_id, hyper, s0, _ = RULES[rule]
    lr = BASE_LR[rule] if lr is None else lr
    X = np.ascontiguousarray(X, dtype=dtype)
    y = np.ascontiguousarray(y, dtype=dtype)
    sw = np.ascontiguousarray(sw, dtype=dtype)
    theta = np.array(theta0, dtype=dtype)
    grad = np.zeros_like(theta)
    state = np.full((ids.STATE_SLOTS[rule_id], theta.size), s0, dtype=dtype)
    work = np.zeros(mod.mlp_workspace_size(sizes, batch_size), dtype=dtype)
    hyper = np.asarray(hyper, dtype=np.float64)
    n = X.shape[0]
    nb = math.ceil(n / batch_size)
    orders = orders_for(n, epochs) if orders is None else orders
    losses, step = [], 0
    for e in range(epochs):
        lrs = lr * (1.0 + 0.1 * np.arange(nb)) / (1.0 + e)  # a schedule, not a constant
        bl = np.full(nb, np.nan)
        done = mod.mlp_epoch(X, y, sw, orders[e], batch_size, nb, HEADS[head], sizes,
                             ACTIVATIONS[act], alpha, l1_ratio, rule_id, hyper, lrs, step,
                             theta, grad, state, bl, work)
        assert done == nb
        step += nb
        losses.append(bl)
    return theta, state, np.concatenate(losses)


# ---------------------------------------------------------------- reference: init, layout

def test_init_matches_documented_draws():
    sizes = np.array([5, 6, 4, 3], dtype=np.int64)
    theta = ref.mlp_init(sizes, np.random.default_rng(7), np.float64)
    assert theta.size == ref.mlp_n_params(sizes) == 5 * 6 + 6 + 6 * 4 + 4 + 4 * 3 + 3
    rng = np.random.default_rng(7)
    for (W, b), (n_in, n_out) in zip(ref.mlp_unflatten(theta, sizes), zip(sizes[:-1], sizes[1:])):
        k = 1 / math.sqrt(n_in)
        np.testing.assert_array_equal(W, rng.uniform(-k, k, size=(n_in, n_out)))
        np.testing.assert_array_equal(b, rng.uniform(-k, k, size=n_out))
    theta32 = ref.mlp_init(sizes, np.random.default_rng(7), np.float32)
    assert theta32.dtype == np.float32
    np.testing.assert_array_equal(theta32, theta.astype(np.float32))
    flat = ref.mlp_flatten(ref.mlp_unflatten(theta, sizes))
    np.testing.assert_array_equal(flat, theta)


def test_init_bounds():
    sizes = np.array([400, 50, 1], dtype=np.int64)
    params = ref.mlp_unflatten(ref.mlp_init(sizes, np.random.default_rng(0)), sizes)
    for (W, b), fan_in in zip(params, (400, 50)):
        k = 1 / math.sqrt(fan_in)
        for a in (W, b):
            assert np.all(np.abs(a) <= k)
        assert W.max() > 0.9 * k and W.min() < -0.9 * k  # uses the whole interval


def test_workspace_size_same_on_every_backend():
    sizes = np.array([7, 5, 9, 3], dtype=np.int64)
    expected = 11 * (7 + 5 + 9 + 3 + 2 * 9 + 1)
    assert ref.mlp_workspace_size(sizes, 11) == expected
    for p in BACKENDS:
        mod = p.values[0]
        if mod is not None:
            assert mod.mlp_workspace_size(sizes, 11) == expected


# ---------------------------------------------------------------- reference: gradients

@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_reference_gradient_finite_differences(act, head):
    X, y, sw, sizes, theta = make_problem(head, weights=True, seed=3)
    rows = np.array([4, 0, 17, 9, 11, 2, 21], dtype=np.int64)
    alpha, r = 0.03, 0.4
    scale = 1.0 / len(rows)

    def f(t):
        g = np.zeros_like(t)
        loss = ref.mlp_batch_gradient(X, y, sw, rows, HEADS[head], sizes, ACTIVATIONS[act],
                                      t, g, scale)
        return loss + ref.mlp_add_penalty(t, g, sizes, alpha, r), g

    _, grad = f(theta)
    h = 1e-6
    fd = np.empty_like(theta)
    for j in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        fd[j] = (f(tp)[0] - f(tm)[0]) / (2 * h)
    # atol: exact zeros (relu's dead units) against central differences' ~1e-10 noise
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    assert np.abs(grad).max() > 1e-3  # not trivially zero


def test_reference_batch_gradient_is_additive_over_row_sets():
    X, y, sw, sizes, theta = make_problem("softmax", weights=True)
    rows = np.arange(12, dtype=np.int64)
    g_all, g1, g2 = (np.zeros_like(theta) for _ in range(3))
    args = (ids.LOSS_SOFTMAX, sizes, ids.ACT_TANH, theta)
    l_all = ref.mlp_batch_gradient(X, y, sw, rows, *args, g_all, 1 / 12)
    l1 = ref.mlp_batch_gradient(X, y, sw, rows[:5], *args, g1, 1 / 12)
    l2 = ref.mlp_batch_gradient(X, y, sw, rows[5:], *args, g2, 1 / 12)
    assert l_all == pytest.approx(l1 + l2, rel=1e-13)
    np.testing.assert_allclose(g_all, g1 + g2, rtol=1e-12)


# ---------------------------------------------------------------- compiled == reference

@pytest.mark.parametrize("batch_size", [1, 7, N])
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("mod", BACKENDS)
def test_compiled_equals_reference_float64(mod, act, head, rule, batch_size):
    X, y, sw, sizes, theta0 = make_problem(head)
    alpha = 0.01 if rule in ("adam", "rmsprop") else 0.0  # penalty on some rules
    t_ref, s_ref, l_ref = run(ref, X, y, sw, sizes, act, head, rule, theta0, batch_size,
                              alpha=alpha, l1_ratio=0.3)
    t, s, l = run(mod, X, y, sw, sizes, act, head, rule, theta0, batch_size, alpha=alpha,
                  l1_ratio=0.3)
    assert not np.allclose(t_ref, theta0, rtol=1e-3)  # training moved the parameters
    np.testing.assert_allclose(l, l_ref, rtol=1e-9)
    np.testing.assert_allclose(t, t_ref, rtol=1e-9)
    np.testing.assert_allclose(s, s_ref, rtol=1e-9)


@pytest.mark.parametrize("batch_size", [1, 7, N])
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("mod", BACKENDS)
def test_compiled_sample_weights_and_penalty(mod, head, batch_size):
    X, y, sw, sizes, theta0 = make_problem(head, weights=True, seed=5)
    for rule, alpha, r in (("sgd", 0.0, 0.0), ("sgd", 0.02, 0.5), ("momentum", 0.01, 1.0)):
        t_ref, _, l_ref = run(ref, X, y, sw, sizes, "tanh", head, rule, theta0, batch_size,
                              alpha=alpha, l1_ratio=r)
        t, _, l = run(mod, X, y, sw, sizes, "tanh", head, rule, theta0, batch_size,
                      alpha=alpha, l1_ratio=r)
        np.testing.assert_allclose(l, l_ref, rtol=1e-9)
        np.testing.assert_allclose(t, t_ref, rtol=1e-9)
        # the weights matter: unweighted training ends elsewhere
        t_unw, _, _ = run(ref, X, y, np.empty(0), sizes, "tanh", head, rule, theta0,
                          batch_size, alpha=alpha, l1_ratio=r)
        assert not np.allclose(t_unw, t_ref, rtol=1e-4)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("mod", BACKENDS)
def test_compiled_batch_gradient_and_penalty(mod, head):
    X, y, sw, sizes, theta = make_problem(head, weights=True, seed=2)
    rows = np.array([3, 1, 4, 15, 9, 22], dtype=np.int64)
    g_ref, g = np.zeros_like(theta), np.zeros_like(theta) + 5.0  # stale content overwritten
    work = np.zeros(mod.mlp_workspace_size(sizes, len(rows)))
    args = (X, y, sw, rows, HEADS[head], sizes, ids.ACT_SIGMOID, theta)
    l_ref = ref.mlp_batch_gradient(*args, g_ref, 0.25)
    l = mod.mlp_batch_gradient(*args, g, 0.25, work)
    assert l == pytest.approx(l_ref, rel=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10)
    p_ref = ref.mlp_add_penalty(theta, g_ref, sizes, 0.1, 0.3)
    p = mod.mlp_add_penalty(theta, g, sizes, 0.1, 0.3)
    assert p == pytest.approx(p_ref, rel=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10)


@pytest.mark.parametrize("batch_size", [1, 7, N])
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("mod", [pytest.param(ref, id="numpy")] + BACKENDS)
def test_float32_close_to_float64_reference(mod, act, head, batch_size):
    X, y, sw, sizes, theta0 = make_problem(head, weights=True, seed=4)
    X = X.astype(np.float32).astype(np.float64)  # same data in both precisions
    y = y.astype(np.float32).astype(np.float64)
    sw = sw.astype(np.float32).astype(np.float64)
    theta0 = theta0.astype(np.float32).astype(np.float64)
    for rule in ("sgd", "adam"):
        t64, _, l64 = run(ref, X, y, sw, sizes, act, head, rule, theta0, batch_size)
        t32, _, l32 = run(mod, X, y, sw, sizes, act, head, rule, theta0, batch_size,
                          dtype=np.float32)
        assert t32.dtype == np.float32
        np.testing.assert_allclose(l32, l64, rtol=1e-4)
        # atol: a parameter near 0 (|w| ~ 1e-2 or less) carries float32 rounding of the
        # larger terms that moved it, ~1e-6 absolute after these updates
        np.testing.assert_allclose(t32, t64, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mod", BACKENDS)
def test_float32_data_float64_accumulation(mod):
    """X, y, sw float32 with theta float64 (accumulate in float64): the kernel converts
    the rows as it gathers them and then equals the reference at rtol 1e-8."""
    X, y, sw, sizes, theta0 = make_problem("softmax", weights=True, seed=6)
    X32, y32, sw32 = X.astype(np.float32), y.astype(np.float32), sw.astype(np.float32)
    res = []
    for m in (ref, mod):
        theta = theta0.copy()
        grad, state = np.zeros_like(theta), np.zeros((1, theta.size))
        work = np.zeros(m.mlp_workspace_size(sizes, 5))
        bl = np.zeros(5)
        order = orders_for(N, 1)[0]
        m.mlp_epoch(X32, y32, sw32, order, 5, 5, ids.LOSS_SOFTMAX, sizes, ids.ACT_RELU, 0.0,
                    0.0, ids.RULE_SGD, np.array([0.9, 0.0, 0.0, 0.0]), np.full(5, 0.1), 0,
                    theta, grad, state, bl, work)
        res.append((theta, bl))
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-9)
    np.testing.assert_allclose(res[1][1], res[0][1], rtol=1e-9)


@pytest.mark.parametrize("mod", BACKENDS)
def test_inputs_not_modified_and_work_exactly_sized(mod):
    X, y, sw, sizes, theta0 = make_problem("softmax", weights=True)
    copies = [a.copy() for a in (X, y, sw)]
    order = orders_for(N, 1)[0]
    order_copy = order.copy()
    theta = theta0.copy()
    grad, state = np.zeros_like(theta), np.zeros((1, theta.size))
    size = mod.mlp_workspace_size(sizes, N)
    work = np.full(size + 16, -7.0)  # a guard band after the workspace proper
    bl = np.zeros(1)
    mod.mlp_epoch(X, y, sw, order, N, 1, ids.LOSS_SOFTMAX, sizes, ids.ACT_RELU, 0.0, 0.0,
                  ids.RULE_SGD, np.zeros(4), np.array([0.1]), 0, theta, grad, state, bl,
                  work[:size])
    assert np.all(work[size:] == -7.0)
    for a, c in zip((X, y, sw, order), copies + [order_copy]):
        np.testing.assert_array_equal(a, c)


# ---------------------------------------------------------------- divergence

@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference computes with inf
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rule", ["sgd", "adam"])
@pytest.mark.parametrize("mod", [pytest.param(ref, id="numpy")] + BACKENDS)
def test_divergence_stops_before_the_bad_batch(mod, rule, dtype):
    X, y, sw, sizes, theta0 = make_problem("squared")
    y = y.copy()
    order = orders_for(N, 1)[0]
    bsz = 4
    bad = 3  # batch 3 holds a row whose target is inf: its loss is inf
    y[order[bad * bsz + 1]] = np.inf
    nb = math.ceil(N / bsz)
    rule_id, hyper, _, _ = RULES[rule]
    hyper = np.asarray(hyper)

    def go(m, n_batches):
        theta = theta0.astype(dtype)
        grad, state = np.zeros_like(theta), np.zeros((ids.STATE_SLOTS[rule_id], theta.size),
                                                     dtype=dtype)
        bl = np.full(n_batches, -1.0)
        work = np.zeros(m.mlp_workspace_size(sizes, bsz), dtype=dtype)
        done = m.mlp_epoch(X.astype(dtype), y.astype(dtype), np.empty(0, dtype), order, bsz,
                           n_batches, ids.LOSS_SQUARED, sizes, ids.ACT_TANH, 0.0, 0.0, rule_id,
                           hyper, np.full(n_batches, 0.01), 0, theta, grad, state, bl, work)
        return done, theta, state, bl

    done, theta, state, bl = go(mod, nb)
    assert done == bad
    assert np.all(np.isfinite(bl[:bad])) and not np.isfinite(bl[bad])
    assert np.all(bl[bad + 1:] == -1.0)  # nothing after the bad batch ran
    done_ok, theta_ok, state_ok, _ = go(ref, bad)  # exactly the good batches, reference
    assert done_ok == bad
    rtol = 1e-8 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(theta, theta_ok, rtol=rtol)
    np.testing.assert_allclose(state, state_ok, rtol=rtol)


# ---------------------------------------------------------------- PyTorch parity

def _torch_net(torch, sizes, act, theta):
    layers = []
    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}
    params = ref.mlp_unflatten(theta, sizes)
    for l, (W, b) in enumerate(params):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))  # torch stores (n_out, n_in)
            lin.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(lin)
        if l < len(params) - 1:
            layers.append(acts[act]())
    return torch.nn.Sequential(*layers)


def _torch_theta(net):
    parts = []
    for mod in net:
        if hasattr(mod, "weight"):
            parts.append(mod.weight.detach().numpy().T.ravel())
            parts.append(mod.bias.detach().numpy().ravel())
    return np.concatenate(parts)


def _torch_batch_loss(torch, head, out, yb, wb):
    F = torch.nn.functional
    if head == "squared":  # ours is ½(p − y)²: half of MSELoss's per-sample term
        per = 0.5 * F.mse_loss(out[:, 0], yb, reduction="none")
    elif head == "logistic":
        per = F.binary_cross_entropy_with_logits(out[:, 0], yb, reduction="none")
    else:
        per = F.cross_entropy(out, yb.long(), reduction="none")
    return (per * wb).mean()  # (1/|B|) sum s_i l_i


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_follows_pytorch_step_for_step(act, head, rule):
    torch = pytest.importorskip("torch")
    X, y, sw, sizes, theta0 = make_problem(head, weights=True, seed=8)
    batch_size, epochs = 7, 2
    alpha, r = (0.01, 0.3) if rule == "sgd" else (0.0, 0.0)
    t_ours, _, l_ours = run(ref, X, y, sw, sizes, act, head, rule, theta0, batch_size,
                            epochs=epochs, alpha=alpha, l1_ratio=r)
    # the same run in PyTorch
    net = _torch_net(torch, sizes, act, theta0)
    name, kw = RULES[rule][3]
    opt = getattr(torch.optim, name)(net.parameters(), lr=1.0, foreach=False, **kw)
    Xt, yt, wt = (torch.from_numpy(a) for a in (X, y, sw))
    nb = math.ceil(N / batch_size)
    losses = []
    for e, order in enumerate(orders_for(N, epochs)):
        lrs = BASE_LR[rule] * (1.0 + 0.1 * np.arange(nb)) / (1.0 + e)
        for k in range(nb):
            idx = torch.from_numpy(order[k * batch_size:(k + 1) * batch_size])
            opt.zero_grad()
            loss = _torch_batch_loss(torch, head, net(Xt[idx]), yt[idx], wt[idx])
            if alpha:
                for mod in net:
                    if hasattr(mod, "weight"):
                        w = mod.weight
                        loss = loss + alpha * ((1 - r) / 2 * (w * w).sum() + r * w.abs().sum())
            loss.backward()
            for group in opt.param_groups:
                group["lr"] = float(lrs[k])
            opt.step()
            losses.append(loss.item())
    t_torch = _torch_theta(net)
    assert not np.allclose(t_torch, theta0, rtol=1e-3)
    np.testing.assert_allclose(l_ours, losses, rtol=1e-9)
    np.testing.assert_allclose(t_ours, t_torch, rtol=1e-9)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_matches_pytorch(act, head):
    torch = pytest.importorskip("torch")
    X, _, _, sizes, theta = make_problem(head, seed=9)
    out = ref.mlp_forward(theta, sizes, ACTIVATIONS[act], X)
    with torch.no_grad():
        expect = _torch_net(torch, sizes, act, theta)(torch.from_numpy(X)).numpy()
    assert out.shape == (N, sizes[-1])
    np.testing.assert_allclose(out, expect, rtol=1e-12)


# ---------------------------------------------------------------- threads and GEMM tiling

def _team_knob(mod):
    knob = getattr(mod, "_set_min_team_work", None)
    if knob is None:
        pytest.skip("this backend has no thread team")
    return knob


@pytest.mark.parametrize("rule", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("mod", BACKENDS)
def test_thread_team_equals_reference_and_is_bit_identical(mod, head, rule):
    """Tiny nets normally run on one thread; force the whole team (every block split
    between threads, barriers between phases) and compare with one thread, bit for bit;
    likewise a team that finds itself contended at its first barrier and finishes the
    epoch on one thread."""
    knob = _team_knob(mod)
    X, y, sw, sizes, theta0 = make_problem(head, weights=True, hidden=(40, 33), seed=11)
    t_ref, _, l_ref = run(ref, X, y, sw, sizes, "tanh", head, rule, theta0, 7)
    old = knob(0)
    try:
        t_team, s_team, l_team = run(mod, X, y, sw, sizes, "tanh", head, rule, theta0, 7)
        old_wait = mod._set_contended_wait(-1.0)
        try:
            t_solo, s_solo, l_solo = run(mod, X, y, sw, sizes, "tanh", head, rule, theta0, 7)
        finally:
            mod._set_contended_wait(old_wait)
        knob(1 << 62)
        t_one, s_one, l_one = run(mod, X, y, sw, sizes, "tanh", head, rule, theta0, 7)
    finally:
        knob(old)
    np.testing.assert_allclose(t_team, t_ref, rtol=1e-9)
    np.testing.assert_allclose(l_team, l_ref, rtol=1e-9)
    for t, s, l in ((t_team, s_team, l_team), (t_solo, s_solo, l_solo)):
        np.testing.assert_array_equal(t, t_one)
        np.testing.assert_array_equal(s, s_one)
        np.testing.assert_array_equal(l, l_one)


@pytest.mark.parametrize("batch_size", [60, 120])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mod", BACKENDS)
def test_mid_sized_layers_equal_reference(mod, dtype, batch_size):
    """Layers big enough for the GEMMs to be cut into tiles (k chunks, partial row tiles)
    and for several blocks per layer."""
    X, y, sw, sizes, theta0 = make_problem("softmax", n=120, d=300, hidden=(70,), k=5,
                                           weights=True, seed=12)
    for rule in ("sgd", "adam"):
        t_ref, _, l_ref = run(ref, X, y, sw, sizes, "relu", "softmax", rule, theta0,
                              batch_size)
        t, _, l = run(mod, X, y, sw, sizes, "relu", "softmax", rule, theta0, batch_size,
                      dtype=dtype)
        if dtype == np.float64:
            np.testing.assert_allclose(l, l_ref, rtol=1e-9)
            np.testing.assert_allclose(t, t_ref, rtol=1e-9)
        else:
            np.testing.assert_allclose(l, l_ref, rtol=1e-4)
            np.testing.assert_allclose(t, t_ref, rtol=1e-4, atol=1e-6)  # see float32 test


@pytest.mark.parametrize("mod", BACKENDS)
def test_contended_team_goes_solo_without_races(mod):
    """A team marked contended at its first barrier: the other threads leave and thread
    0 finishes alone.  Repeated, since a race (a leaving thread reading a flag late)
    shows only now and then; every run must equal the one-thread run bit for bit."""
    knob = _team_knob(mod)
    X, y, sw, sizes, theta0 = make_problem("softmax", n=120, d=300, hidden=(70,), k=5,
                                           weights=True, seed=12)
    old = knob(1 << 62)
    try:
        t_one, _, l_one = run(mod, X, y, sw, sizes, "relu", "softmax", "sgd", theta0, 60)
        knob(0)
        old_wait = mod._set_contended_wait(-1.0)
        try:
            for _ in range(25):
                t, _, l = run(mod, X, y, sw, sizes, "relu", "softmax", "sgd", theta0, 60)
                np.testing.assert_array_equal(t, t_one)
                np.testing.assert_array_equal(l, l_one)
        finally:
            mod._set_contended_wait(old_wait)
    finally:
        knob(old)


def test_numba_serial_epoch_is_callable_from_user_njit_code():
    # docs/numba.md: mlp_epoch starts a thread team from Python, so users' own @njit code
    # calls mlp_epoch_serial; it must give the threaded entry's bits
    numba = pytest.importorskip("numba")
    from fastgd.kernels.nb import mlp_epoch as nb_mlp

    @numba.njit
    def train(X, y, sw, orders, batch_size, n_batches, loss_id, sizes, act, rule_id, hyper,
              lrs, theta, grad, state, batch_loss, work):
        done = 0
        for e in range(orders.shape[0]):
            done += nb_mlp.mlp_epoch_serial(X, y, sw, orders[e], batch_size, n_batches, loss_id,
                                            sizes, act, 0.0, 0.0, rule_id, hyper, lrs,
                                            e * n_batches, theta, grad, state, batch_loss, work)
        return done

    X, y, sw, sizes, theta0 = make_problem("softmax")
    rule_id, hyper, s0, _ = RULES["adam"]
    b, epochs = 5, 2
    nb = math.ceil(N / b)
    orders = np.stack(orders_for(N, epochs))
    lrs = np.full(nb, BASE_LR["adam"])
    hyper = np.asarray(hyper, dtype=np.float64)
    out = []
    for via_njit in (True, False):
        theta = theta0.copy()
        state = np.full((ids.STATE_SLOTS[rule_id], theta.size), s0)
        grad, bl = np.zeros_like(theta), np.zeros(nb)
        work = np.zeros(nb_mlp.mlp_workspace_size(sizes, b))
        args = (X, y, sw, orders, b, nb, ids.LOSS_SOFTMAX, sizes, ids.ACT_TANH, rule_id, hyper,
                lrs, theta, grad, state, bl, work)
        if via_njit:
            assert train(*args) == epochs * nb
        else:
            for e in range(epochs):
                assert nb_mlp.mlp_epoch(X, y, sw, orders[e], b, nb, ids.LOSS_SOFTMAX, sizes,
                                        ids.ACT_TANH, 0.0, 0.0, rule_id, hyper, lrs, e * nb,
                                        theta, grad, state, bl, work) == nb
        out.append((theta, state))
    assert out[0][0].tobytes() == out[1][0].tobytes()
    assert out[0][1].tobytes() == out[1][1].tobytes()
