"""The public API end to end on the reference backend (other backends: test_parity)."""
import subprocess
import sys

import numpy as np
import pytest

import fastgd
from fastgd import optim, schedules
from fastgd.optim import Adam, SGD


@pytest.fixture
def regression():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6))
    y = X @ rng.standard_normal(6) + 0.5 + 0.1 * rng.standard_normal(200)
    return X, y


@pytest.fixture
def binary():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 4))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3 * rng.standard_normal(300) > 0).astype(int)
    return X, y


def test_bgd_on_squared_loss_converges_to_lstsq(regression):
    X, y = regression
    res = fastgd.bgd(X, y, epochs=3000, lr=0.3, backend="numpy")
    A = np.column_stack([X, np.ones(len(y))])
    sol = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(res.coef, sol[:-1], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.intercept, sol[-1], rtol=1e-8)
    assert res.iterations_per_epoch == 1 and res.n_iter == 3000


def test_three_spellings_are_one_algorithm(regression):
    X, y = regression
    kw = dict(epochs=2, lr=0.01, seed=3, backend="numpy")
    np.testing.assert_array_equal(fastgd.sgd(X, y, **kw).coef, fastgd.fit(X, y, batch_size=1, **kw).coef)
    np.testing.assert_array_equal(fastgd.mbgd(X, y, 16, **kw).coef, fastgd.fit(X, y, batch_size=16, **kw).coef)
    np.testing.assert_array_equal(fastgd.bgd(X, y, **kw).coef, fastgd.fit(X, y, **kw).coef)


@pytest.mark.parametrize("optimizer", [None, Adam(lr=0.05), SGD(lr=0.05, momentum=0.9)])
def test_continuing_from_a_result_is_bit_for_bit(binary, optimizer):
    X, y = binary
    kw = dict(loss="logistic", batch_size=8, optimizer=optimizer, seed=42,
              lr=0.05 if optimizer is None else None,  # an optimizer object carries its lr
              schedule=schedules.InverseScaling(0.05), backend="numpy")
    full = fastgd.fit(X, y, epochs=5, **kw)
    part = fastgd.fit(X, y, epochs=3, **kw)
    rest = fastgd.fit(X, y, epochs=2, init=part, **kw)
    np.testing.assert_array_equal(rest.coef, full.coef)
    assert rest.intercept == full.intercept
    assert rest.history["loss"] == full.history["loss"]
    assert rest.epochs == 5 and rest.n_iter == full.n_iter


def test_float32_in_float32_out_and_integer_input_gives_float64(binary):
    X, y = binary
    r32 = fastgd.fit(X.astype(np.float32), y, loss="logistic", batch_size=10, backend="numpy", seed=0)
    assert r32.coef.dtype == np.float32
    r64 = fastgd.fit(X.astype(np.float32), y, loss="logistic", batch_size=10, backend="numpy", seed=0,
                     dtype=np.float64)
    assert r64.coef.dtype == np.float64
    np.testing.assert_allclose(r32.coef, r64.coef, rtol=1e-4, atol=1e-6)
    ri = fastgd.fit((X * 10).astype(np.int32), y, loss="logistic", batch_size=10, backend="numpy")
    assert ri.coef.dtype == np.float64
    racc = fastgd.fit(X.astype(np.float32), y, loss="logistic", batch_size=10, backend="numpy", seed=0,
                      accumulate="float64")
    assert racc.coef.dtype == np.float64


def test_predictions_and_scores(binary, regression):
    X, y = binary
    res = fastgd.fit(X, y, loss="logistic", batch_size=16, epochs=20, lr=0.1, seed=0, backend="numpy")
    proba = res.predict_proba(X)
    assert proba.shape == (len(y), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(res.predict(X), (proba[:, 1] > 0.5).astype(int))
    assert res.score(X, y) > 0.9
    hinge = fastgd.fit(X, np.where(y == 1, 1, -1), loss="hinge", batch_size=16, epochs=10, seed=0,
                       backend="numpy")
    assert set(np.unique(hinge.predict(X))) <= {-1, 1}
    Xr, yr = regression
    reg = fastgd.fit(Xr, yr, batch_size=16, epochs=30, lr=0.05, seed=0, backend="numpy")
    assert reg.score(Xr, yr) > 0.99
    with pytest.raises(AttributeError, match="predict_proba"):
        reg.predict_proba(Xr)
    # probing tells the truth, as scikit-learn's available_if does
    assert hasattr(res, "predict_proba") and not hasattr(hinge, "predict_proba")
    with pytest.raises(ValueError, match="fitted on 6"):
        reg.predict(Xr[:, :3])


def test_score_reads_labels_in_either_encoding_and_refuses_foreign_ones(binary):
    X, y = binary
    pm1 = np.where(y == 1, 1, -1)
    hinge = fastgd.fit(X, pm1, loss="hinge", batch_size=16, epochs=10, seed=0, backend="numpy")
    want = float(np.mean(hinge.predict(X) == pm1))
    assert want > 0.9
    assert hinge.score(X, pm1) == hinge.score(X, y) == want  # 0/1 labels: the same accuracy
    logistic = fastgd.fit(X, y, loss="logistic", batch_size=16, epochs=10, seed=0, backend="numpy")
    for bad in (pm1, 5 * y):
        with pytest.raises(ValueError, match="labels must be 0 or 1"):
            logistic.score(X, bad)
    soft = fastgd.fit(X, y, loss="softmax", batch_size=16, epochs=10, seed=0, backend="numpy")
    assert soft.score(X, y) == float(np.mean(soft.predict(X) == y))
    with pytest.raises(ValueError, match=r"integers 0\.\.1; got values \[7\.0, 8\.0\]"):
        soft.score(X, y + 7)


def test_softmax_shapes():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 5))
    y = np.repeat([0, 1, 2], 30)
    res = fastgd.fit(X, y, loss="softmax", batch_size=9, epochs=3, seed=0, backend="numpy")
    assert res.coef.shape == (5, 3) and res.intercept.shape == (3,)
    assert res.predict_proba(X).shape == (90, 3)
    assert res.params[0][0].shape == (5, 3)


def test_init_arrays_and_no_intercept(regression):
    X, y = regression
    res = fastgd.fit(X, y, init=(np.ones(6), 2.0), epochs=1, lr=1e-12, backend="numpy")
    np.testing.assert_allclose(res.coef, 1.0, rtol=1e-9)
    res = fastgd.fit(X, y, fit_intercept=False, epochs=2, batch_size=4, backend="numpy")
    assert res.intercept == 0.0


def test_divergence_names_epoch_and_iteration_and_keeps_finite_parameters(regression):
    X, y = regression
    with pytest.raises(fastgd.DivergenceError, match=r"epoch \d+, iteration \d+") as info:
        fastgd.fit(X * 1e3, y, batch_size=4, epochs=5, lr=10.0, seed=0, backend="numpy")
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert np.all(np.isfinite(err.result.coef)) and np.isfinite(err.result.intercept)
    assert err.result.n_iter == err.epoch * 50 + err.iteration  # the updates before the bad batch


CPU_BACKENDS = [b for b in fastgd.available_backends() if b != "cuda"]


def _jump_at(t0, big):
    """A step size that is tiny until iteration t0 and ``big`` from there on."""
    return lambda t: np.where(np.asarray(t) < t0, 1e-3, big)


@pytest.mark.filterwarnings("ignore:overflow encountered")  # the numpy backend's sums
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("loss", ["squared", "squared_hinge", "modified_huber", "hinge"])
def test_divergence_is_found_at_the_update_that_made_it(regression, loss, backend):
    # Update 10 (epoch 1, iteration 3 at 7 batches an epoch) overflows the parameters.
    # squared sees it in the next batch's loss; squared_hinge and modified_huber map the
    # NaN margins that follow to a loss of 0, so only the parameters show it: before
    # the driver checked them after every epoch the fit ran on with NaN weights and
    # reported the failure epochs late, with non-finite "last finite" parameters.
    X, y = regression
    # (X scaled so that every gradient has a component far above 1: 1e308 times it overflows)
    X, y = 10 * X[:50], (y[:50] if loss == "squared" else (y[:50] > 0.5).astype(int))
    with pytest.raises(fastgd.DivergenceError) as info:
        fastgd.fit(X, y, loss=loss, batch_size=8, epochs=4, schedule=_jump_at(10, 1e308),
                   seed=0, backend=backend)
    err = info.value
    assert (err.epoch, err.iteration) == (1, 3)
    assert "epoch 1, iteration 3 of 7 (0-based; update 11 overall)" in str(err)
    assert "made the parameters non-finite" in str(err)
    assert err.result.n_iter == 10
    assert np.all(np.isfinite(err.result.coef)) and np.isfinite(err.result.intercept)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_divergence_from_the_update_rule_is_found_at_its_update(backend):
    # Adam with eps = 0 on a column that is 0 in every row: m / sqrt(v) = 0 / 0 = NaN
    # in the first update, while every batch loss is finite (the NaN weight meets
    # only zeros until a later epoch's prediction reads it)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    X[:, 2] = 0.0
    y = X @ np.array([1.0, -2.0, 0.0]) + 1.0
    with pytest.raises(fastgd.DivergenceError) as info:
        fastgd.fit(X, y, optimizer=Adam(lr=0.01, eps=0.0), batch_size=10, epochs=3, seed=0,
                   backend=backend)
    err = info.value
    assert (err.epoch, err.iteration, err.result.n_iter) == (0, 0, 0)
    assert "update 1 overall" in str(err) and "made the parameters non-finite" in str(err)
    assert np.all(np.isfinite(err.result.coef))


@pytest.mark.filterwarnings("ignore:overflow encountered")  # the numpy backend's sums
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_divergence_on_the_last_update_of_an_epoch_counts_it_once(regression, backend):
    X, y = regression
    X, y = 10 * X[:50], y[:50]
    with pytest.raises(fastgd.DivergenceError) as info:  # update 7 = epoch 0's last
        fastgd.fit(X, y, batch_size=8, epochs=2, schedule=_jump_at(6, 1e308), seed=0,
                   backend=backend)
    err = info.value
    assert (err.epoch, err.iteration, err.result.n_iter) == (0, 6, 6)
    assert "iteration 6 of 7 (0-based; update 7 overall)" in str(err)


@pytest.mark.parametrize("backend", ["numpy", "cython"])
def test_a_divergence_in_a_later_epoch_is_replayed_with_that_epochs_batches(regression, backend):
    """The replay starts from the diverged epoch's own start and order: its last finite
    parameters are those of a fit continued from the previous epoch's result, which
    diverges in its first epoch."""
    X, y = regression
    X, y = 10 * X[:60], y[:60]  # 8 batches an epoch: update 20 is epoch 2's fifth
    kept = []
    with pytest.raises(fastgd.DivergenceError) as info:
        fastgd.fit(X, y, batch_size=8, epochs=4, schedule=_jump_at(20, 1e308), seed=3,
                   callback=kept.append, backend=backend)
    with pytest.raises(fastgd.DivergenceError) as again:
        fastgd.fit(X, y, batch_size=8, epochs=2, init=kept[-1])
    first, second = info.value, again.value
    assert (first.epoch, first.iteration, first.result.n_iter) == (2, 4, 20)
    assert (second.epoch, second.iteration, second.result.n_iter) == (2, 4, 20)
    np.testing.assert_array_equal(first.result.coef, second.result.coef)
    np.testing.assert_array_equal(first.result.intercept, second.result.intercept)
    assert not np.array_equal(first.result.coef, kept[-1].coef)


def test_a_schedule_with_state_of_its_own_still_gets_a_divergence_error(regression):
    """The replay asks the schedule again for the earlier epochs' step sizes; a callable
    that answers otherwise the second time cannot be replayed, and the error says so,
    with the parameters the call started from."""
    X, y = regression
    X, y = 10 * X[:60], y[:60]
    calls = []

    def drifting(t):  # a new answer on every call: not a function of t
        calls.append(1)
        t = np.asarray(t)
        return np.where(t < 20, 1e-3 * (1 + 1e-3 * len(calls)), 1e308)

    with pytest.raises(fastgd.DivergenceError) as info:
        fastgd.fit(X, y, batch_size=8, epochs=4, schedule=drifting, seed=3, backend="numpy")
    err = info.value
    assert (err.epoch, err.iteration) == (2, 5) and err.result.n_iter == 0  # where it stopped
    assert err.result.epochs == 0 and err.result.history["loss"] == []
    assert "not located" in str(err) and "other step sizes" in str(err)
    np.testing.assert_array_equal(err.result.coef, np.zeros(X.shape[1]))


def test_memory_does_not_grow_with_the_epochs_of_a_schedule():
    """A fit keeps a number per epoch for a divergence replay, not the epoch's step sizes
    (at b = 1 those were n * 8 bytes an epoch)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20_000, 2))
    y = X[:, 0] - X[:, 1]

    def peak(epochs):
        tracemalloc.start()
        try:
            fastgd.fit(X, y, batch_size=1, epochs=epochs, lr=1e-3, schedule="inverse_scaling",
                       seed=0, backend="cython")
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(1)
    grown = peak(12) - peak(2)
    assert grown < 20_000 * 8, grown  # ten epochs' step sizes would be 1.6 MB


def test_a_subclass_that_changes_a_formula_is_refused_not_ignored(regression):
    """The kernels run the built-in rules and losses by their codes: a subclass that
    overrides a formula (or derives from no built-in one) had trained as the plain
    built-in without a word; one that only changes settings runs as its base."""
    X, y = regression

    class ClippedSGD(SGD):
        def update(self, params, grad, state, step, lr=None):
            super().update(params, np.clip(grad, -1, 1), state, step, lr)

    class NoRule(optim.Optimizer):
        pass

    class OwnSquared(fastgd.losses.Squared):
        def py_loss(self, p, y):
            return np.abs(p - y)

    class SlowAdam(Adam):
        def __init__(self, lr=1e-4, **kw):
            super().__init__(lr=lr, **kw)

    class MySquared(fastgd.losses.Squared):
        pass

    for kwargs, words in ((dict(optimizer=ClippedSGD(lr=0.01)), ["ClippedSGD", "update", "SGD"]),
                          (dict(optimizer=NoRule()), ["NoRule", "none of its rules"]),
                          (dict(loss=OwnSquared()), ["OwnSquared", "py_loss", "fastgd.Loss"]),
                          (dict(loss=fastgd.losses.LinearLoss()), ["LinearLoss", "fastgd.Loss"])):
        with pytest.raises(TypeError) as info:
            fastgd.fit(X, y, epochs=1, backend="numpy", **kwargs)
        for word in words:
            assert word in str(info.value), f"{word!r} missing from: {info.value}"
    ran = fastgd.fit(X, y, epochs=1, optimizer=SlowAdam(), loss=MySquared(), backend="numpy", seed=0)
    same = fastgd.fit(X, y, epochs=1, optimizer=Adam(lr=1e-4), loss="squared", backend="numpy",
                      seed=0)
    assert ran.loss.name == "squared" and np.array_equal(ran.coef, same.coef)
    assert optim.SGD().init([1, 2, 3]).dtype == np.float64  # an int vector's state is float


def test_a_schedule_is_copied_whole_and_checked_again(regression):
    """A fit's schedule is its own, nested schedules included, and checked again as it is
    copied (edits after construction had reached a continued fit, or run unchecked)."""
    X, y = regression
    after = schedules.Cosine(0.01, 100)
    first = fastgd.fit(X, y, batch_size=50, epochs=2, schedule=schedules.Warmup(0.01, 5, after=after),
                       backend="numpy", seed=0)
    after.lr = 5.0  # the caller's object, not the fit's
    more = fastgd.fit(X, y, batch_size=50, epochs=2, init=first)
    whole = fastgd.fit(X, y, batch_size=50, epochs=4, backend="numpy", seed=0,
                       schedule=schedules.Warmup(0.01, 5, after=schedules.Cosine(0.01, 100)))
    np.testing.assert_array_equal(more.coef, whole.coef)
    edited = schedules.StepDecay(0.1, 3)
    edited.step_size = 0
    with pytest.raises(ValueError, match="step_size: 0"):
        fastgd.fit(X, y, schedule=edited, backend="numpy")

    class EpochCosine(schedules.Cosine):  # settings of its own; decay_steps a property
        def __init__(self, lr, epochs, per_epoch):
            self.lr, self.alpha, self.epochs, self.per_epoch = lr, 0.0, epochs, per_epoch

        @property
        def decay_steps(self):
            return self.epochs * self.per_epoch

    ran = fastgd.fit(X, y, batch_size=50, epochs=2, schedule=EpochCosine(0.01, 2, 4),
                     backend="numpy", seed=0)
    same = fastgd.fit(X, y, batch_size=50, epochs=2, schedule=schedules.Cosine(0.01, 8),
                      backend="numpy", seed=0)
    np.testing.assert_array_equal(ran.coef, same.coef)


def test_continuing_past_the_end_of_a_carried_schedule_is_an_error(regression):
    """A schedule sized by the first run ('cosine') ends there: a continued fit that
    carries it would run at step size 0 throughout, so it asks for a schedule instead."""
    X, y = regression
    first = fastgd.fit(X, y, batch_size=50, epochs=2, schedule="cosine", lr=0.01,
                       backend="numpy", seed=0)
    with pytest.raises(ValueError, match=r"(?s)Invalid init.*Cosine.*step size 0.*updates 9 to "
                                         r"12.*schedule="):
        fastgd.fit(X, y, batch_size=50, epochs=2, init=first)
    assert fastgd.fit(X, y, batch_size=50, epochs=2, init=first, schedule="cosine").n_iter == 16
    # a function of the user's may rest at 0 for a while: not judged
    paused = fastgd.fit(X, y, batch_size=50, epochs=2, schedule=lambda t: 0.01 * (t < 8),
                        backend="numpy", seed=0)
    assert fastgd.fit(X, y, batch_size=50, epochs=1, init=paused).n_iter == 12


def test_callback_sees_each_epoch_and_can_stop(regression):
    X, y = regression
    seen = []

    def cb(res):
        seen.append((res.epochs, res.history["loss"][-1]))
        return res.epochs == 3

    res = fastgd.fit(X, y, batch_size=20, epochs=10, callback=cb, backend="numpy")
    assert [e for e, _ in seen] == [1, 2, 3] and res.epochs == 3


@pytest.mark.parametrize("schedule", list(schedules.NAMES) + [lambda t: 0.01 / (1 + t)])
def test_every_schedule_runs(regression, binary, schedule):
    X, y = regression
    kw = dict(batch_size=20, epochs=3, lr=0.01, schedule=schedule, backend="numpy")
    if schedule == "optimal":  # 1/(alpha (t0 + t)) starts near 1/sqrt(alpha): a classification loss
        (X, y), kw = binary, dict(kw, loss="hinge", penalty="l2", alpha=1e-2)
    res = fastgd.fit(X, y, **kw)
    assert np.all(np.isfinite(res.coef)) and res.history["loss"][-1] < res.history["loss"][0]


def test_schedule_values():
    np.testing.assert_allclose(schedules.StepDecay(1.0, 2, 0.5)(np.arange(5)), [1, 1, 0.5, 0.5, 0.25])
    np.testing.assert_allclose(schedules.InverseScaling(1.0, 0.5)(np.array([0, 3])), [1.0, 0.5])
    np.testing.assert_allclose(schedules.Cosine(1.0, 4)(np.array([0, 2, 4, 9])), [1.0, 0.5, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(schedules.Warmup(1.0, 4)(np.arange(6)), [0.25, 0.5, 0.75, 1, 1, 1])
    ad = schedules.Adaptive(1.0, n_iter_no_change=2, tol=0.0)
    assert ad.factor([3, 2, 2.5, 2.5]) == 0.2 and ad.factor([3, 2, 2, 2, 1]) == 1.0
    opt = schedules.Optimal(alpha=1e-4)
    assert opt(np.array([0]))[0] == pytest.approx(1 / (1e-4 * opt.t0))


@pytest.mark.parametrize("name", ["step", "exponential", "cosine", "warmup"])
def test_a_run_length_schedule_named_for_a_continued_fit_covers_that_run(name):
    """Named for a continued fit, the schedule is built over that run and starts with it,
    as in a fresh fit of that length (it had been read at the overall count: a cosine
    over 50 updates, asked from update 50 on, gave step size 0 to every update)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.standard_normal(40)
    kw = dict(batch_size=4, epochs=5, lr=0.05, backend="numpy")
    first = fastgd.fit(X, y, seed=0, **kw)
    more = fastgd.fit(X, y, init=first, schedule=name, **kw)
    fresh = fastgd.fit(X, y, seed=0, schedule=name, **kw)
    np.testing.assert_array_equal(more._config["schedule"].lrs(first.n_iter, 50),
                                  fresh._config["schedule"].lrs(0, 50))
    # continued in turn, that fit goes on with the same schedule where it left off; a
    # cosine has ended there (step size 0 throughout), which is refused
    if name == "cosine":
        with pytest.raises(ValueError, match="step size 0"):
            fastgd.fit(X, y, init=more, epochs=1)
        return
    again = fastgd.fit(X, y, init=more, epochs=1)
    np.testing.assert_array_equal(again._config["schedule"].lrs(more.n_iter, 10),
                                  fresh._config["schedule"].lrs(50, 10))


def test_warmup_passes_the_loss_history_to_an_adaptive_after():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.standard_normal(20)
    kw = dict(batch_size=4, epochs=40, seed=0, backend="numpy")
    adaptive = fastgd.fit(X, y, schedule=schedules.Adaptive(0.1), **kw)
    assert adaptive._config["schedule"].factor(adaptive.history["loss"][:-1]) < 1  # it adapted
    # a one-step warm-up at lr is no warm-up: the two fits are the same (it had run at 0.1)
    joined = fastgd.fit(X, y, schedule=schedules.Warmup(0.1, 1, after=schedules.Adaptive(0.1)), **kw)
    np.testing.assert_array_equal(joined.coef, adaptive.coef)
    with pytest.raises(TypeError, match="loss history"):
        schedules.Adaptive(0.1)(np.arange(3))


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_sgd_reproduces_scikit_learn(loss):
    sk = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    w = np.array([0.5, -1.0, 2.0, 0.0, 0.3])
    lr, epochs = 0.01, 3
    if loss == "squared":
        y = X @ w + 0.2 + 0.1 * rng.standard_normal(120)
        est = sk.SGDRegressor(loss="squared_error", penalty=None, learning_rate="constant", eta0=lr,
                              shuffle=False, max_iter=epochs, tol=None)
    else:
        y = (X @ w + 0.5 * rng.standard_normal(120) > 0).astype(int)
        est = sk.SGDClassifier(loss="log_loss", penalty=None, learning_rate="constant", eta0=lr,
                               shuffle=False, max_iter=epochs, tol=None)
    est.fit(X, y)
    res = fastgd.sgd(X, y, loss=loss, lr=lr, epochs=epochs, shuffle=False, backend="numpy")
    np.testing.assert_allclose(res.coef, np.ravel(est.coef_), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.intercept, np.ravel(est.intercept_)[0], rtol=1e-8)


def test_import_and_first_fit_compile_nothing():
    """With the Cython build present, `import fastgd` and a first fit never load numba."""
    code = ("import sys, numpy as np, fastgd\n"
            "assert 'numba' not in sys.modules\n"
            "r = fastgd.fit(np.eye(4), np.arange(4.0), batch_size=2)\n"
            "print(r.backend, 'numba' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    backend, numba_loaded = out.split()
    assert (backend, numba_loaded) == ("cython", "False")


def test_demo_prints_the_table():
    out = subprocess.run([sys.executable, "-m", "fastgd", "demo", "--epochs", "2"], capture_output=True,
                         text=True, check=True).stdout
    for word in ("BGD", "SGD", "MBGD", "iter/epoch", "test acc"):
        assert word in out


def test_available_backends_lists_the_reference():
    assert fastgd.available_backends()[0] == "numpy"


def test_demo_mlp_row_reaches_97_percent_held_out():
    from fastgd.demo import rows

    table = {r["method"]: r for r in rows()}
    assert table["MBGD + MLP(64)"]["test_accuracy"] >= 0.97
    assert table["SGD"]["iterations_per_epoch"] == 1348 and table["BGD"]["iterations_per_epoch"] == 1
    assert all(r["epochs"] == 30 for r in table.values())


def test_mlp_init_is_reproducible_and_leaves_a_passed_seed_sequence_alone():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 3)), rng.integers(0, 2, 30)
    ss = np.random.SeedSequence(7)
    kw = dict(loss="logistic", model=fastgd.MLP((4,)), batch_size=5, backend="numpy")
    a = fastgd.fit(X, y, seed=ss, **kw)
    b = fastgd.fit(X, y, seed=ss, **kw)
    c = fastgd.fit(X, y, seed=7, **kw)
    assert ss.n_children_spawned == 0
    for (Wa, ba), (Wb, bb), (Wc, bc) in zip(a.params, b.params, c.params):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(Wa, Wc)


def test_a_fit_stopped_by_its_callback_continues_exactly(regression):
    X, y = regression
    kw = dict(batch_size=16, lr=0.01, seed=3, backend="numpy")
    stopped = fastgd.fit(X, y, epochs=10, callback=lambda r: r.epochs == 2, **kw)
    assert stopped.epochs == 2
    resumed = fastgd.fit(X, y, epochs=3, init=stopped, **kw)
    straight = fastgd.fit(X, y, epochs=5, **kw)
    np.testing.assert_array_equal(resumed.coef, straight.coef)
    assert resumed.history["loss"] == straight.history["loss"]


@pytest.mark.parametrize("backend", [b for b in ("numpy", "cython", "numba")
                                     if b in fastgd.available_backends()])
@pytest.mark.parametrize("where", ["callback", "schedule"])
def test_an_interrupted_fit_resumes_from_what_its_callback_kept(regression, backend, where):
    """An exception from the user's code mid-fit (Ctrl-C in a callback, a schedule that
    fails at epoch 3) propagates unchanged; the results a ``callback=kept.append`` kept
    resume bit for bit (docs/decisions.md, "Errors")."""
    X, y = regression
    kw = dict(batch_size=16, seed=3, backend=backend)
    ipe = -(-len(y) // 16)
    kept = []

    def interrupt_at_epoch_3(res):
        kept.append(res)
        if res.epochs == 3:
            raise KeyboardInterrupt

    def lr(t):  # evaluated one epoch at a time, as the fit reaches it
        t = np.asarray(t)
        if np.any(t >= 3 * ipe):
            raise ZeroDivisionError("the schedule fails at epoch 3")
        return np.full(t.shape, 0.01)

    if where == "callback":
        with pytest.raises(KeyboardInterrupt):
            fastgd.fit(X, y, epochs=10, lr=0.01, callback=interrupt_at_epoch_3, **kw)
    else:
        with pytest.raises(ZeroDivisionError, match="fails at epoch 3"):
            fastgd.fit(X, y, epochs=10, schedule=lr, callback=kept.append, **kw)
    assert [r.epochs for r in kept] == [1, 2, 3]
    # (the failing schedule would carry over: name the constant one it stood for)
    resumed = fastgd.fit(X, y, epochs=2, schedule="constant", init=kept[-1], **kw)
    straight = fastgd.fit(X, y, epochs=5, lr=0.01, **kw)
    np.testing.assert_array_equal(resumed.coef, straight.coef)
    assert resumed.intercept == straight.intercept and resumed.n_iter == straight.n_iter == 5 * ipe
    assert resumed.history["loss"] == straight.history["loss"]


def test_the_readme_example_runs_and_continues_bit_for_bit():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = text.split("## Example", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    X, y, more = scope["X"], scope["y"], scope["more"]
    full = fastgd.mbgd(X, y, batch_size=32, loss="logistic", epochs=7, lr=0.05, seed=0)
    np.testing.assert_array_equal(more.coef, full.coef)
    assert more.intercept == full.intercept and more.n_iter == full.n_iter


def test_numpy_integer_sizes_and_epochs_are_plain_ints():
    X = np.random.default_rng(0).standard_normal((200, 3))
    y = X[:, 0]
    a = fastgd.fit(X, y, batch_size=np.uint32(4), epochs=np.uint8(2), backend="numpy", seed=0)
    b = fastgd.fit(X, y, batch_size=4, epochs=2, backend="numpy", seed=0)
    np.testing.assert_array_equal(a.coef, b.coef)
    c = fastgd.fit(X[:40], y[:40], batch_size=1, epochs=np.int8(10), schedule="cosine", lr=0.1,
                   backend="numpy")
    assert c._config["schedule"].decay_steps == 400  # 40 * 10, not wrapped around in int8


def test_lr_given_twice_is_refused_and_a_schedule_sets_the_optimizers():
    X = np.random.default_rng(0).standard_normal((30, 2))
    y = X[:, 0]
    kw = dict(batch_size=5, epochs=1, backend="numpy", seed=0)
    for schedule in (0.1, fastgd.schedules.Cosine(0.1, 10)):
        with pytest.raises(ValueError) as info:
            fastgd.fit(X, y, lr=0.5, schedule=schedule, **kw)
        for word in ("Invalid lr", "0.5", "once"):
            assert word in str(info.value)
        same = fastgd.fit(X, y, lr=0.1, schedule=schedule, **kw)
        alone = fastgd.fit(X, y, schedule=schedule, **kw)
        assert alone.optimizer.lr == 0.1
        np.testing.assert_array_equal(same.coef, alone.coef)
        with pytest.raises(ValueError, match="Invalid optimizer.*lr=0.1"):
            fastgd.fit(X, y, optimizer=fastgd.optim.SGD(lr=0.5), schedule=schedule, **kw)
        with_opt = fastgd.fit(X, y, optimizer=fastgd.optim.SGD(lr=0.1), schedule=schedule, **kw)
        np.testing.assert_array_equal(with_opt.coef, alone.coef)
    np.testing.assert_array_equal(fastgd.fit(X, y, schedule=np.float32(0.25), **kw).coef,
                                  fastgd.fit(X, y, schedule=float(np.float32(0.25)), **kw).coef)


def test_continuing_with_an_optimizer_name_keeps_the_step_size():
    X = np.random.default_rng(0).standard_normal((60, 3))
    y = (X[:, 0] > 0).astype(int)
    kw = dict(loss="logistic", optimizer="sgd", seed=0, backend="numpy")
    first = fastgd.mbgd(X, y, 8, lr=0.05, epochs=3, **kw)
    more = fastgd.mbgd(X, y, 8, init=first, epochs=2, **kw)
    whole = fastgd.mbgd(X, y, 8, lr=0.05, epochs=5, **kw)
    assert more.optimizer.lr == 0.05
    np.testing.assert_array_equal(more.coef, whole.coef)


def test_optimal_schedule_with_softmax_takes_the_logistic_heuristic():
    X = np.random.default_rng(0).standard_normal((30, 3))
    y = np.arange(30) % 3
    res = fastgd.fit(X, y, loss="softmax", schedule="optimal", penalty="l2", alpha=1e-3,
                     batch_size=5, epochs=2, backend="numpy")
    binary = fastgd.fit(X, y % 2, loss="logistic", schedule="optimal", penalty="l2", alpha=1e-3,
                        batch_size=5, epochs=1, backend="numpy")
    assert res._config["schedule"].t0 == binary._config["schedule"].t0


def test_float32_input_without_a_dtype_attribute_trains_in_float32():
    X32 = np.random.default_rng(0).standard_normal((30, 2)).astype(np.float32)
    y = X32[:, 0].astype(np.float64)

    class FrameLike:  # what a DataFrame offers: __array__, no .dtype
        def __init__(self, a):
            self._a = a

        def __array__(self, dtype=None, copy=None):
            return self._a if dtype is None else self._a.astype(dtype)

    for X in (FrameLike(X32), list(X32)):
        assert fastgd.fit(X, y, batch_size=5, backend="numpy")._theta.dtype == np.float32


def test_cli_refuses_bad_values_as_usage_errors():
    for args in (["--epochs", "0"], ["--epochs", "-1"], ["--backend", "bogus"]):
        run = subprocess.run([sys.executable, "-m", "fastgd", "demo", *args], capture_output=True,
                             text=True)
        assert run.returncode == 2, (args, run.stderr)
        assert "usage:" in run.stderr and "Traceback" not in run.stderr


def test_mlp_hidden_true_is_refused():
    with pytest.raises((TypeError, ValueError), match="hidden"):
        fastgd.MLP(hidden=True)


def test_float32_predict_overflow_names_a_fix_that_exists():
    X32 = np.random.default_rng(0).standard_normal((30, 3)).astype(np.float32)
    res = fastgd.fit(X32, X32[:, 0], batch_size=5, backend="numpy")
    with pytest.raises(ValueError) as info:
        res.predict([[1e300, 0.0, 0.0]])
    assert "refit with dtype='float64'" in str(info.value)


def test_continuing_keeps_the_penalty_unless_told_otherwise():
    X = np.random.default_rng(0).standard_normal((60, 3))
    y = (X[:, 0] > 0).astype(int)
    kw = dict(loss="logistic", seed=0, backend="numpy", lr=0.1)
    for pen in (dict(penalty="l2", alpha=0.05), dict(penalty="elasticnet", alpha=0.05,
                                                     l1_ratio=0.4)):
        first = fastgd.mbgd(X, y, 8, epochs=3, **pen, **kw)
        more = fastgd.mbgd(X, y, 8, init=first, epochs=2)
        whole = fastgd.mbgd(X, y, 8, epochs=5, **pen, **kw)
        np.testing.assert_array_equal(more.coef, whole.coef)
        dropped = fastgd.mbgd(X, y, 8, init=first, epochs=2, penalty="none")
        assert not np.array_equal(dropped.coef, whole.coef)
        # restating the penalty without its strength keeps the fit's (it had set alpha to 0)
        restated = fastgd.mbgd(X, y, 8, init=first, epochs=2, penalty=pen["penalty"])
        np.testing.assert_array_equal(restated.coef, whole.coef)
    with pytest.raises(ValueError, match=r"alpha: None with penalty='l1'"):
        fastgd.mbgd(X, y, 8, init=first, epochs=2, penalty="l1")  # another penalty: no strength yet


def test_continuing_stays_on_the_fits_backend():
    X = np.random.default_rng(0).standard_normal((60, 3))
    y = (X[:, 0] > 0).astype(int)
    for backend in fastgd.available_backends():
        if backend == "cuda":
            continue
        kw = dict(loss="logistic", seed=0, lr=0.1, shuffle=False, backend=backend)
        first = fastgd.mbgd(X, y, 6, epochs=3, **kw)
        more = fastgd.mbgd(X, y, 6, init=first, epochs=1, shuffle=False)
        whole = fastgd.mbgd(X, y, 6, epochs=4, **kw)
        assert more.backend == backend
        np.testing.assert_array_equal(more.coef, whole.coef)


def test_continuing_keeps_the_model():
    X = np.random.default_rng(0).standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    kw = dict(loss="logistic", seed=0, lr=0.1, backend="numpy")
    for model in (dict(model=fastgd.MLP((4,))), dict(fit_intercept=False)):
        first = fastgd.mbgd(X, y, 8, epochs=2, **model, **kw)
        more = fastgd.mbgd(X, y, 8, init=first, epochs=1)
        whole = fastgd.mbgd(X, y, 8, epochs=3, **model, **kw)
        assert more.model.signature() == first.model.signature()
        np.testing.assert_array_equal(more._theta, whole._theta)


def test_float32_intercept_is_float32_and_a_diverging_reference_mlp_only_raises():
    import warnings

    X = np.random.default_rng(0).standard_normal((30, 2))
    y = X[:, 0]
    res = fastgd.fit(X.astype(np.float32), y, batch_size=5, backend="numpy")
    assert res.intercept.dtype == np.float32 and res.coef.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning before the error would fail here
        with pytest.raises(fastgd.DivergenceError):
            fastgd.fit(X * 1e3, y * 1e3, model=fastgd.MLP((8,)), batch_size=5, lr=10.0,
                       epochs=20, backend="numpy", seed=0)


def test_switching_momentum_on_when_continuing_follows_torch_or_is_refused(regression):
    X, y = regression
    kw = dict(loss="squared", batch_size=len(y), seed=0, backend="numpy", fit_intercept=False)
    plain = fastgd.fit(X, y, epochs=2, optimizer=SGD(lr=0.1), **kw)
    # a buffer that never started cannot take torch's undamped first gradient
    with pytest.raises(ValueError, match=r"dampening=0.5 .*never started.*dampening=0"):
        fastgd.fit(X, y, epochs=1, optimizer=SGD(lr=0.1, momentum=0.9, dampening=0.5), init=plain)
    on = fastgd.fit(X, y, epochs=3, optimizer=SGD(lr=0.1, momentum=0.9), init=plain)
    # a buffer that has started carries on through a fit without momentum, as in torch
    started = fastgd.fit(X, y, epochs=1, optimizer=SGD(lr=0.1, momentum=0.9, dampening=0.5), **kw)
    paused = fastgd.fit(X, y, epochs=1, optimizer=SGD(lr=0.1), init=started)
    resumed = fastgd.fit(X, y, epochs=2, optimizer=SGD(lr=0.1, momentum=0.9, dampening=0.5),
                         init=paused)
    torch = pytest.importorskip("torch")
    w = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    opt = torch.optim.SGD([w], lr=0.1)

    def steps(n, **group):
        opt.param_groups[0].update(group)
        for _ in range(n):
            opt.zero_grad()
            (0.5 * ((Xt @ w - yt) ** 2).mean()).backward()
            opt.step()
    steps(2)
    steps(3, momentum=0.9)
    np.testing.assert_allclose(on.coef, w.detach().numpy(), rtol=1e-12)
    w.data.zero_()
    opt.state.clear()
    steps(1, momentum=0.9, dampening=0.5)
    steps(1, momentum=0.0, dampening=0.0)
    steps(2, momentum=0.9, dampening=0.5)
    np.testing.assert_allclose(resumed.coef, w.detach().numpy(), rtol=1e-12)


def test_a_fit_keeps_its_own_optimizer():
    """PyTorch-style code edits one optimizer object between fits: each result keeps what
    it ran with, and continuing one is exact (every result had reported the last lr, and a
    continuation had mixed the edited momentum with the stored step size)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    opt, res = optim.SGD(lr=0.1, momentum=0.9), {}
    for lr in (0.1, 0.03):
        opt.lr = lr
        res[lr] = fastgd.mbgd(X, y, 16, optimizer=opt, epochs=3, seed=0, backend="numpy")
    assert [r.optimizer.lr for r in res.values()] == [0.1, 0.03]
    opt.momentum = 0.0
    res[0.1].optimizer.momentum = -5.0  # a result's optimizer is its own: checked when reused
    with pytest.raises(ValueError, match="momentum"):
        fastgd.mbgd(X, y, 16, epochs=1, init=res[0.1])
    res[0.1].optimizer.momentum = 0.9
    more = fastgd.mbgd(X, y, 16, epochs=1, init=res[0.1])
    whole = fastgd.mbgd(X, y, 16, epochs=4, optimizer=optim.SGD(lr=0.1, momentum=0.9), seed=0,
                        backend="numpy")
    np.testing.assert_array_equal(more.coef, whole.coef)


def test_a_float32_torch_tensor_trains_in_float32():
    torch = pytest.importorskip("torch")
    X, y = torch.randn(50, 3), torch.randn(50)
    res = fastgd.mbgd(X, y, 8, backend="numpy")
    assert res.coef.dtype == np.float32  # torch.float32 had been read as "not float32"


def test_continuing_carries_the_batch_options_and_the_penalty_mix():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    kw = dict(backend="numpy", seed=0)
    for opts in (dict(shuffle=False), dict(sampling="replacement"), dict(drop_last=True)):
        whole = fastgd.mbgd(X, y, 16, epochs=3, **opts, **kw)
        more = fastgd.mbgd(X, y, 16, epochs=2, init=fastgd.mbgd(X, y, 16, epochs=1, **opts, **kw))
        np.testing.assert_array_equal(more.coef, whole.coef)  # they had reverted to defaults
    net = fastgd.mbgd(X, y, 16, penalty="elasticnet", alpha=0.5, epochs=2, **kw)
    mixed = fastgd.mbgd(X, y, 16, epochs=2, init=net, l1_ratio=0.5)
    assert (mixed._config["penalty"], mixed._config["alpha"], mixed._config["l1_ratio"]) == \
        ("elasticnet", 0.5, 0.5)  # an l1_ratio alone had dropped the penalty
    l2 = fastgd.mbgd(X, y, 16, penalty="l2", alpha=0.5, **kw)
    for call in (lambda: fastgd.mbgd(X, y, 16, init=l2, l1_ratio=0.3),
                 lambda: fastgd.mbgd(X, y, 16, penalty="l2", alpha=0.1, l1_ratio=0.3, **kw),
                 lambda: fastgd.mbgd(X, y, 16, l1_ratio=0.3, **kw)):
        with pytest.raises(ValueError, match="Invalid l1_ratio: 0.3 .*only the elasticnet"):
            call()


def test_continuing_keeps_the_label_encoding_where_the_labels_fit_it():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y01 = (X[:, 0] > 0).astype(int)
    hinge = fastgd.mbgd(X, y01, 8, loss="hinge", epochs=3, seed=0, backend="numpy")
    ones = y01 == 1
    more = fastgd.mbgd(X[ones][:8], y01[ones][:8], 8, epochs=1, init=hinge)
    assert set(np.unique(more.predict(X))) <= {0, 1}  # a batch of 1s had switched it to -1/+1
    soft = fastgd.mbgd(X, np.arange(60) % 4, 8, loss="softmax", epochs=1, seed=0, backend="numpy")
    two = fastgd.sgd(X[:2], np.array([0, 3]), init=soft)  # 4 classes known: 2 samples are enough
    assert two.coef.shape == (3, 4)


def test_a_no_intercept_fit_restarts_from_its_own_coef_and_intercept():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    r = fastgd.mbgd(X, y, 8, fit_intercept=False, epochs=2, seed=0, backend="numpy")
    for init in ((r.coef, r.intercept), r.params, r.coef):  # the Invalid seed error's advice
        again = fastgd.mbgd(X, y, 8, fit_intercept=False, init=init, seed=1, backend="numpy")
        assert again.n_iter == 5
    with pytest.raises(ValueError, match="an intercept 0.5 was given but fit_intercept=False"):
        fastgd.mbgd(X, y, 8, fit_intercept=False, init=(r.coef, 0.5), backend="numpy")
    with pytest.raises(ValueError, match="does not match"):  # an explicit other intercept
        fastgd.mbgd(X, y, 8, init=r, fit_intercept=True)


def test_continuing_where_the_fits_backend_is_missing_says_so(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    r = fastgd.mbgd(X, y, 8, seed=0, backend="numpy")
    monkeypatch.setattr(fastgd.backends, "available_backends", lambda: ["cython"])
    with pytest.raises(ValueError, match=r"ran on backend='numpy'.*not available here.*'cython'"):
        fastgd.mbgd(X, y, 8, init=r)


def test_continuing_a_float32_fit_accumulated_in_float64():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5], np.float32)
    kw = dict(accumulate="float64", seed=0, backend="numpy")
    whole = fastgd.mbgd(X, y, 8, epochs=3, **kw)
    more = fastgd.mbgd(X, y, 8, epochs=2, init=fastgd.mbgd(X, y, 8, epochs=1, **kw))  # was refused
    np.testing.assert_array_equal(more.coef, whole.coef)


def test_sparse_or_unconvertible_input_is_named():
    sparse = pytest.importorskip("scipy.sparse")
    X = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(TypeError, match=r"Invalid X: a SciPy sparse csr_matrix.*X.toarray\(\)"):
        fastgd.sgd(sparse.csr_matrix(X), X[:, 0], backend="numpy")
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"Invalid y: it cannot be read as a NumPy array"):
        fastgd.sgd(X, torch.tensor(X[:, 0], requires_grad=True), backend="numpy")


def test_continuing_with_another_sampling_or_strength_or_a_subclassed_optimizer():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    kw = dict(seed=0, backend="numpy")
    for opts in (dict(drop_last=True), dict(shuffle=False)):  # carried, they had blocked it
        first = fastgd.mbgd(X, y, 16, **opts, **kw)
        assert fastgd.mbgd(X, y, 16, init=first, sampling="replacement").n_iter == first.n_iter + 4
    net = fastgd.mbgd(X, y, 16, penalty="elasticnet", alpha=0.5, l1_ratio=0.3, **kw)
    weaker = fastgd.mbgd(X, y, 16, init=net, alpha=0.1)  # an alpha alone had been refused
    assert (weaker._config["penalty"], weaker._config["alpha"], weaker._config["l1_ratio"]) == \
        ("elasticnet", 0.1, 0.3)
    soft = fastgd.mbgd(X, np.arange(60) % 4, 8, loss="softmax", **kw)
    mid = fastgd.sgd(X[:2], np.array([0, 1]), init=soft)
    assert fastgd.sgd(X[:2], np.array([0, 3]), init=mid).coef.shape == (3, 4)  # K kept twice

    class MySGD(optim.SGD):  # another __init__: the fit's copy must not call it with settings
        def __init__(self, lr=0.05):
            super().__init__(lr=lr, momentum=0.9)

    res = fastgd.mbgd(X, y, 8, optimizer=MySGD(), **kw)
    assert type(res.optimizer) is MySGD and res.optimizer.momentum == 0.9


def test_bgd_sgd_and_mbgd_show_fits_options():
    """help() and IDEs read __signature__: the three had shown (X, y, **kw) alone."""
    import inspect

    fit_params = [p for p in inspect.signature(fastgd.fit).parameters if p != "batch_size"]
    for short in (fastgd.bgd, fastgd.sgd):
        assert list(inspect.signature(short).parameters) == fit_params
    assert list(inspect.signature(fastgd.mbgd).parameters) == fit_params[:2] + ["batch_size"] + fit_params[2:]


def test_dir_lists_the_lazily_imported_names():
    assert {"Loss", "CustomModel", "fit", "mbgd"} <= set(dir(fastgd))


def test_optimal_named_again_when_continuing_reads_the_alpha_it_read():
    """Without a penalty the fit's alpha is 0, and "optimal" named again had read that:
    'Invalid alpha ... 0.0' (review)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    y = (X @ [1.0, 2.0, 3.0] > 0).astype(int)
    kw = dict(loss="hinge", batch_size=5, schedule="optimal", alpha=1e-3, seed=0, backend="numpy")
    first = fastgd.fit(X, y, epochs=2, **kw)
    again = fastgd.fit(X, y, batch_size=5, init=first, schedule="optimal", backend="numpy")
    np.testing.assert_array_equal(again.coef, fastgd.fit(X, y, epochs=3, **kw).coef)
