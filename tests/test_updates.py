"""Each update rule, step by step, against its formula and against torch.optim."""
import numpy as np
import pytest

from fastgd import optim
from fastgd.testing import OPTIMIZERS

LR = 0.03


def _grads(steps=6, size=9, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(size) for _ in range(steps)]


def _ours(opt, w0, grads, lrs=None):
    w = w0.copy()
    state = opt.init(w)
    out = []
    for t, g in enumerate(grads, start=1):
        opt.update(w, g, state, t, lr=None if lrs is None else lrs[t - 1])
        out.append(w.copy())
    return out


def test_sgd_momentum_buffer_starts_as_the_first_gradient():
    w0 = np.linspace(-1, 1, 9)
    grads = _grads()
    mu, damp, wd = 0.9, 0.2, 0.01
    got = _ours(optim.SGD(lr=LR, momentum=mu, dampening=damp, weight_decay=wd), w0, grads)
    w, buf = w0.copy(), None
    for t, g in enumerate(grads):
        d = g + wd * w
        buf = d.copy() if buf is None else mu * buf + (1 - damp) * d
        w = w - LR * buf
        np.testing.assert_allclose(got[t], w, rtol=1e-14)


def test_adam_formula():
    w0 = np.linspace(-1, 1, 9)
    grads = _grads()
    b1, b2, eps = 0.8, 0.99, 1e-6
    got = _ours(optim.Adam(lr=LR, betas=(b1, b2), eps=eps), w0, grads)
    w, m, v = w0.copy(), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
        w = w - LR * mhat / (np.sqrt(vhat) + eps)
        np.testing.assert_allclose(got[t - 1], w, rtol=1e-12)


def test_adamw_decays_before_the_adam_step():
    w0 = np.linspace(-1, 1, 9)
    g = np.zeros(9)
    got = _ours(optim.AdamW(lr=LR), w0, [g])  # zero gradient: only the decoupled decay acts
    np.testing.assert_allclose(got[0], w0 * (1 - LR * 0.01), rtol=1e-15)


def test_torch_defaults_are_kept():
    assert optim.SGD().lr == 1e-3 and optim.Adam().lr == 1e-3
    assert optim.AdamW().weight_decay == 0.01 and optim.Adam().weight_decay == 0.0
    assert optim.Adagrad().lr == 1e-2 and optim.Adagrad().eps == 1e-10
    assert optim.RMSprop().alpha == 0.99 and optim.RMSprop().lr == 1e-2


@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=[f"{n}-{kw}" for n, kw in OPTIMIZERS])
def test_rule_matches_torch_optim_step_for_step(name, kw):
    torch = pytest.importorskip("torch")
    w0 = np.linspace(-1, 1, 9)
    grads = _grads(steps=8)
    lrs = [LR * (1 + 0.1 * t) for t in range(8)]  # a schedule: torch reads param_groups' lr each step
    got = _ours(optim.OPTIMIZERS[name](lr=LR, **kw), w0, grads, lrs)
    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    topt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
            "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop}[name]([p], lr=LR, foreach=False, **kw)
    for t, g in enumerate(grads):
        for group in topt.param_groups:
            group["lr"] = lrs[t]
        p.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
        np.testing.assert_allclose(got[t], p.detach().numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("bad,match", [
    (lambda: optim.SGD(lr=-1.0), "Invalid learning rate: lr=-1.0"),
    (lambda: optim.SGD(lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (lambda: optim.SGD(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum > 0"),
    (lambda: optim.Adam(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    (lambda: optim.Adam(eps=-1e-8), "Invalid epsilon value"),
    (lambda: optim.RMSprop(alpha=1.5), "Invalid alpha value: 1.5"),
    (lambda: optim.get("adamax", 0.1), "Invalid optimizer: 'adamax'"),
])
def test_invalid_hyper_parameters_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()
