"""The batch-order contract (DESIGN §1): sizes, counts and the exact random stream."""
import numpy as np
import pytest

import fastgd


def test_500_samples_batch_10_is_50_iterations_per_epoch():
    batches = list(fastgd.batch_order(500, 10, epochs=1, seed=0))
    assert len(batches) == 50
    assert all(len(b) == 10 for b in batches)
    assert sorted(np.concatenate(batches).tolist()) == list(range(500))
    assert fastgd.iterations_per_epoch(500, 10) == 50


def test_batches_follow_one_permutation_per_epoch():
    rng = np.random.default_rng(7)
    expected = [rng.permutation(23) for _ in range(3)]
    got = list(fastgd.batch_order(23, 5, epochs=3, seed=7))
    assert len(got) == 3 * 5  # ceil(23/5) per epoch, last batch of 3 kept
    for e in range(3):
        epoch = got[5 * e:5 * (e + 1)]
        assert [len(b) for b in epoch] == [5, 5, 5, 5, 3]
        np.testing.assert_array_equal(np.concatenate(epoch), expected[e])


def test_drop_last_drops_the_short_batch():
    got = list(fastgd.batch_order(23, 5, epochs=2, seed=1, drop_last=True))
    assert [len(b) for b in got] == [5] * 8
    assert fastgd.iterations_per_epoch(23, 5, drop_last=True) == 4


def test_no_shuffle_is_arange():
    got = list(fastgd.batch_order(10, 4, epochs=2, seed=None, shuffle=False))
    np.testing.assert_array_equal(np.concatenate(got), np.tile(np.arange(10), 2))


def test_sampling_with_replacement_draws_b_per_iteration():
    rng = np.random.default_rng(3)
    expected = [rng.integers(0, 11, size=4) for _ in range(2 * 3)]
    got = list(fastgd.batch_order(11, 4, epochs=2, seed=3, sampling="replacement"))
    assert len(got) == 6  # an epoch is still ceil(11/4) iterations
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("n", [11, 1000])
def test_replacement_draws_an_epoch_in_one_call_with_the_per_batch_numbers(n, monkeypatch):
    """An epoch's batches come from one rng.integers call (per-batch calls from Python
    cost more than the epoch at b = 1): the same numbers, and the same stream after, as
    one call a batch, which is what runs where NumPy would not give them."""
    from fastgd import batching

    assert batching._one_draw_is_k_draws()  # this NumPy takes the one-call path
    one = np.random.default_rng(8)
    got = [batching.epoch_order(one, n, 3, sampling="replacement") for _ in range(3)]
    monkeypatch.setattr(batching, "_one_draw", False)
    per_batch = np.random.default_rng(8)
    want = [batching.epoch_order(per_batch, n, 3, sampling="replacement") for _ in range(3)]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert one.bit_generator.state == per_batch.bit_generator.state


@pytest.mark.parametrize("b,expected", [(1, 500), (None, 1), (499, 2), (500, 1)])
def test_fit_runs_the_contracted_number_of_updates(b, expected):
    X = np.random.default_rng(0).standard_normal((500, 3))
    y = X.sum(axis=1)
    res = fastgd.fit(X, y, batch_size=b, epochs=2, lr=1e-3, seed=0, backend="numpy")
    assert res.iterations_per_epoch == expected
    assert res.n_iter == 2 * expected
    assert res.batch_size == (500 if b is None else b)


def test_fit_uses_exactly_the_batches_batch_order_yields():
    """One SGD step per batch by hand, through batch_order, equals fit's result."""
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((17, 3)), rng.standard_normal(17)
    res = fastgd.fit(X, y, batch_size=4, epochs=3, lr=0.1, seed=11, backend="numpy")
    w, b = np.zeros(3), 0.0
    for rows in fastgd.batch_order(17, 4, epochs=3, seed=11):
        r = X[rows] @ w + b - y[rows]
        w, b = w - 0.1 * X[rows].T @ r / len(rows), b - 0.1 * r.mean()
    np.testing.assert_allclose(res.coef, w, rtol=1e-12)
    np.testing.assert_allclose(res.intercept, b, rtol=1e-12)


# -- the fit's order stream: full batches owe their permutation, the next one is drawn ahead --

from fastgd.batching import OrderStream, StreamState  # noqa: E402


def _stream(seed, n, b, prefetch=False, **kw):
    state = StreamState(np.random.default_rng(seed).bit_generator.state)
    return OrderStream(state, n, b, kw.get("shuffle", True), kw.get("sampling", "shuffle"),
                       kw.get("drop_last", False), prefetch=prefetch)


def test_full_batch_reads_storage_order_and_owes_its_permutations():
    n = 31
    s = _stream(7, n, n)
    for _ in range(3):
        np.testing.assert_array_equal(s.next(), np.arange(n))
    eager = np.random.default_rng(7)
    for _ in range(3):
        eager.permutation(n)
    assert s.state().state == eager.bit_generator.state  # drawn exactly, when asked for


def test_smaller_batches_after_full_ones_continue_the_contracted_stream():
    n, b = 31, 4
    s = _stream(7, n, n)
    for _ in range(3):
        s.next()
    after = OrderStream(s.state(), n, b, True, "shuffle", False)
    fourth = np.concatenate(list(fastgd.batch_order(n, b, epochs=4, seed=7))[-fastgd.iterations_per_epoch(n, b):])
    np.testing.assert_array_equal(after.next(), fourth)


@pytest.mark.parametrize("sampling,b", [("shuffle", 3), ("shuffle", 1), ("replacement", 4)])
def test_prefetched_orders_are_the_contracted_ones(monkeypatch, sampling, b):
    monkeypatch.setattr(fastgd.batching, "PREFETCH_MIN_ROWS", 0)
    n = 29
    s = _stream(5, n, b, prefetch=True, sampling=sampling)
    assert s.prefetch
    got = [s.next().copy() for _ in range(4)]
    s.close()
    assert s.prefetch_hits == 3
    expected = np.concatenate(list(fastgd.batch_order(n, b, epochs=4, seed=5, sampling=sampling)))
    np.testing.assert_array_equal(np.concatenate(got), expected)


def test_a_prefetched_order_is_dropped_when_the_generator_moved(monkeypatch):
    monkeypatch.setattr(fastgd.batching, "PREFETCH_MIN_ROWS", 0)
    n = 29
    s = _stream(5, n, 3, prefetch=True)
    s.next()
    s.rng.random()  # somebody else draws from the stream meanwhile
    moved = np.random.Generator(np.random.PCG64())
    moved.bit_generator.state = s.rng.bit_generator.state
    np.testing.assert_array_equal(s.next(), moved.permutation(n))
    s.close()
    assert s.prefetch_hits == 0


@pytest.mark.parametrize("backend", ["numpy", "cython"])
def test_epochs_trained_one_call_at_a_time_equal_one_fit(monkeypatch, backend):
    """Run.train(1) repeatedly uses the order drawn ahead by the previous call: same bits."""
    if backend not in fastgd.available_backends():
        pytest.skip(f"{backend} not built")
    from fastgd.testing import W1, make_data, prepared_run

    monkeypatch.setattr(fastgd.batching, "PREFETCH_MIN_ROWS", 0)
    case = W1.at(n=300, d=5, batch_size=7, epochs=4)
    X, y, _ = make_data(case)
    run = prepared_run(case, backend, X, y)
    for _ in range(4):
        res = run.train(1)
    assert run.stream.prefetch_hits == 2  # the first call cannot know a second one follows
    whole_run = prepared_run(case, backend, X, y)
    whole = whole_run.train(4)
    assert whole_run.stream.prefetch_hits == 3
    np.testing.assert_array_equal(res._theta, whole._theta)
    assert res._rng_state == whole._rng_state


# hypothesis is a dev dependency and the Cython build is the package's: a missing one fails
# here (a module-level importorskip had skipped every test of the module, those above too)
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), data=st.data(), drop_last=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_any_n_and_b_cover_each_row_once_per_epoch(n, data, drop_last, seed):
    b = data.draw(st.integers(1, n))
    batches = list(fastgd.batch_order(n, b, epochs=2, seed=seed, drop_last=drop_last))
    per_epoch = fastgd.iterations_per_epoch(n, b, drop_last=drop_last)
    assert len(batches) == 2 * per_epoch
    assert per_epoch == (n // b if drop_last else -(-n // b))
    for e in range(2):
        rows = np.concatenate(batches[e * per_epoch:(e + 1) * per_epoch])
        assert len(np.unique(rows)) == len(rows)  # no row twice within an epoch
        assert len(rows) == (per_epoch * b if drop_last else n)
        assert all(len(x) == b for x in batches[e * per_epoch:(e + 1) * per_epoch - 1])


def test_several_epochs_of_orders_at_once_are_distinct_epochs():
    """What an engine that takes many epochs per upload (CUDA) is given."""
    from fastgd.testing import W1, make_data, prepared_run

    case = W1.at(n=40, d=3, batch_size=6, epochs=3)
    X, y, _ = make_data(case)
    run = prepared_run(case, "numpy", X, y)
    expected = np.concatenate(list(fastgd.batch_order(40, 6, epochs=3, seed=0)))  # fit_kwargs seeds 0
    np.testing.assert_array_equal(run._orders(3, False).ravel(), expected)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_draws_ahead_on_its_own_thread(monkeypatch):
    """The background draw's thread does not survive fork; the child must not wait for it."""
    import multiprocessing

    from fastgd.testing import W1, make_data, prepared_run

    monkeypatch.setattr(fastgd.batching, "PREFETCH_MIN_ROWS", 0)
    case = W1.at(n=200, d=4, batch_size=5, epochs=3)
    X, y, _ = make_data(case)
    prepared_run(case, "numpy", X, y).train(3)  # the parent's worker thread exists now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        res = pool.apply_async(_fit_in_child, (case, X, y))
        hits = res.get(timeout=60)
    assert hits == 2


def _fit_in_child(case, X, y):
    from fastgd.testing import prepared_run

    run = prepared_run(case, "numpy", X, y)
    run.train(3)
    return run.stream.prefetch_hits


# -- the compiled permutation (fastgd.kernels.cy.orders): NumPy's, bit for bit ------------

from fastgd.kernels.cy import orders  # noqa: E402


@pytest.mark.skipif(not orders.AVAILABLE, reason="built without a 128-bit integer type")
@pytest.mark.parametrize("n", [0, 1, 2, 3, 31, 32, 33, 1000, 65_536, 65_537, 100_003])
@pytest.mark.parametrize("pending", [False, True])
@pytest.mark.parametrize("fn", ["permutation", "_permutation_one_at_a_time"])
def test_compiled_permutation_is_numpys(n, pending, fn):
    for seed in (0, 1, 12345):
        ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
        if pending:  # half of a 64-bit draw kept back for the next 32-bit one
            ours.integers(0, 7, dtype=np.uint32), theirs.integers(0, 7, dtype=np.uint32)
            assert ours.bit_generator.state["has_uint32"] == 1
        out = np.full(n, -1, dtype=np.int64)
        getattr(orders, fn)(ours, out)
        np.testing.assert_array_equal(out, theirs.permutation(n))
        assert ours.bit_generator.state == theirs.bit_generator.state
        assert ours.random() == theirs.random()  # and the stream goes on alike


def test_compiled_permutation_rejects_other_generators():
    out = np.empty(5, dtype=np.int64)
    with pytest.raises(TypeError, match="PCG64"):
        orders.permutation(np.random.Generator(np.random.MT19937(0)), out)


def test_epoch_orders_are_numpys_permutations_with_any_generator():
    from fastgd.batching import epoch_order

    for make in (np.random.PCG64, np.random.MT19937, np.random.Philox):
        ours, theirs = np.random.Generator(make(3)), np.random.Generator(make(3))
        for _ in range(3):
            np.testing.assert_array_equal(epoch_order(ours, 4099, 16), theirs.permutation(4099))
        np.testing.assert_array_equal(ours.random(3), theirs.random(3))


def test_the_compiled_permutation_is_used_once_checked():
    from fastgd import batching

    assert batching._checked_permutation() is (orders.permutation if orders.AVAILABLE else False)
