"""W1: logistic regression, X 100,000 x 100 float64, lr 0.05, plain SGD, seeded shuffle.

Each benchmark is one epoch.  fastgd is timed through a prepared run (the
data validated once, outside the timed region; the epoch's shuffle, step
sizes and the compiled epoch inside it), on every compiled backend, next to
the peers named in the issues.  Compare within a group: ratios, not seconds.
"""
import warnings

import numpy as np
import pytest

from fastgd.testing import benchmarked_backends, prepared_run
from peers import numpy_logistic_epoch, numpy_two_pass_gradient, torch_epoch_fn

SLOW_ROUNDS = dict(rounds=3, iterations=1, warmup_rounds=1)


def _fastgd(benchmark, case, X, y, backend, batch_size):
    run = prepared_run(case.at(batch_size=batch_size), backend, X, y)
    run.train(1)  # warm-up: JIT, caches, thread pools
    if backend == "numpy" and batch_size == 1:
        benchmark.pedantic(run.train, args=(1,), **SLOW_ROUNDS)
    else:
        benchmark(run.train, 1)
    # The timed call is the driver's whole epoch (the shuffle included); the compiled
    # epoch alone is in the run's history.
    benchmark.extra_info["kernel_min_s"] = min(run.history["time"][1:])


@pytest.mark.benchmark(group="W1 b=1")
@pytest.mark.parametrize("backend", benchmarked_backends())
def test_w1_sgd_fastgd(benchmark, w1, backend):
    case, X, y = w1
    _fastgd(benchmark, case, X, y, backend, 1)


# scikit-learn has no call that runs one more epoch and nothing else: a fit of one epoch
# also runs its set-up (a finite check over X, the labels, its dataset: about 14 ms of a
# 80-100 ms fit here), which fastgd's timed epoch above leaves out (its validation runs
# once, in prepared_run).  Its epoch is therefore measured as the marginal cost, fits of
# 1 and of 1 + SK_MORE epochs with the same rounds: (t[1 + SK_MORE] - t[1]) / SK_MORE
# (bench/report.py).  The one-epoch fit alone is reported as context.
SK_MORE = 5
SK_ROUNDS = dict(rounds=7, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="W1 b=1")
@pytest.mark.parametrize("epochs", [1, 1 + SK_MORE])
def test_w1_sgd_sklearn(benchmark, w1, epochs):
    sk = pytest.importorskip("sklearn.linear_model")
    case, X, y = w1
    est = sk.SGDClassifier(loss="log_loss", penalty=None, learning_rate="constant", eta0=case.lr,
                           tol=None, max_iter=epochs, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a fixed count is the point
        benchmark.pedantic(est.fit, args=(X, y), **SK_ROUNDS)
    benchmark.extra_info["epochs"] = epochs


# The same comparison through both public APIs, set-up included (validation, labels, the
# first shuffle): five epochs each, so a one-off cost counts once, as in real use.
FIT_EPOCHS = 5
FIT_ROUNDS = dict(rounds=7, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="W1 b=1, 5-epoch fit")
@pytest.mark.parametrize("backend", [b for b in benchmarked_backends() if b != "numpy"])
def test_w1_sgd_fit5_fastgd(benchmark, w1, backend):
    import fastgd

    case, X, y = w1
    kw = dict(loss=case.loss, lr=case.lr, epochs=FIT_EPOCHS, seed=0, backend=backend)
    fastgd.sgd(X, y, **kw)  # warm-up (JIT, caches)
    benchmark.pedantic(fastgd.sgd, args=(X, y), kwargs=kw, **FIT_ROUNDS)


@pytest.mark.benchmark(group="W1 b=1, 5-epoch fit")
def test_w1_sgd_fit5_sklearn(benchmark, w1):
    sk = pytest.importorskip("sklearn.linear_model")
    case, X, y = w1
    est = sk.SGDClassifier(loss="log_loss", penalty=None, learning_rate="constant", eta0=case.lr,
                           tol=None, max_iter=FIT_EPOCHS, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        benchmark.pedantic(est.fit, args=(X, y), **FIT_ROUNDS)


@pytest.mark.benchmark(group="W1 b=32")
@pytest.mark.parametrize("backend", benchmarked_backends())
def test_w1_mbgd_fastgd(benchmark, w1, backend):
    case, X, y = w1
    _fastgd(benchmark, case, X, y, backend, 32)


@pytest.mark.benchmark(group="W1 b=32")
def test_w1_mbgd_numpy_loop(benchmark, w1):
    case, X, y = w1
    w, b = np.zeros(X.shape[1]), np.zeros(1)
    gen = np.random.default_rng(0)
    yf = y.astype(np.float64)
    benchmark(lambda: numpy_logistic_epoch(X, yf, w, b, case.lr, 32, gen.permutation(len(y))))


@pytest.mark.benchmark(group="W1 b=32")
def test_w1_mbgd_torch_loop(benchmark, w1, torch_threads):
    case, X, y = w1
    epoch = torch_epoch_fn(torch_threads, X, y.astype(np.float64), case.lr, 32)
    epoch()
    benchmark.pedantic(epoch, **SLOW_ROUNDS)


@pytest.mark.benchmark(group="W1 b=32")
@pytest.mark.parametrize("threads", [1, 2])
def test_w1_shuffled_read_floor(benchmark, w1, threads):
    """Context, not a peer: every line of every row brought in through a shuffled order
    and nothing else, on one core and on two (each takes half of the order), the way the
    kernels fetch rows: a shuffled epoch that fetches them so is no faster than the
    two-core figure, whatever it computes."""
    cy = pytest.importorskip("fastgd.kernels.cy.linear_epoch")
    _, X, _ = w1
    order = np.random.default_rng(0).permutation(len(X))
    if threads > cy.omp_max_threads():
        pytest.skip("needs two OpenMP threads")
    benchmark(cy._read_rows, X, order, threads)


@pytest.mark.benchmark(group="W1 BGD")
@pytest.mark.parametrize("backend", benchmarked_backends())
def test_w1_bgd_fastgd(benchmark, w1, backend):
    case, X, y = w1
    _fastgd(benchmark, case, X, y, backend, None)


@pytest.mark.benchmark(group="W1 BGD")
def test_w1_bgd_numpy_read_once(benchmark, w1):
    """The memory-bandwidth floor: NumPy reading X once."""
    _, X, _ = w1
    benchmark(X.sum)


@pytest.mark.benchmark(group="W1 BGD")
def test_w1_bgd_numpy_two_pass(benchmark, w1):
    case, X, y = w1
    w = np.zeros(X.shape[1])
    benchmark(numpy_two_pass_gradient, X, y.astype(np.float64), w, 0.0)
