"""W2: MLP 784-128-10 softmax, float32, 20,000 samples, one epoch, plain SGD."""
import warnings

import numpy as np
import pytest

from fastgd.testing import prepared_run

from fastgd.testing import benchmarked_backends
from peers import torch_epoch_fn

SLOW_ROUNDS = dict(rounds=3, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("batch_size", [32, 256])
@pytest.mark.parametrize("backend", benchmarked_backends("mlp"))
def test_w2_fastgd(benchmark, w2, backend, batch_size):
    case, X, y = w2
    benchmark.group = f"W2 b={batch_size}"
    run = prepared_run(case.at(batch_size=batch_size), backend, X, y)
    run.train(1)
    benchmark.pedantic(run.train, args=(1,), **SLOW_ROUNDS)


@pytest.mark.parametrize("batch_size", [32, 256])
def test_w2_torch_loop(benchmark, w2, torch_threads, batch_size):
    torch = torch_threads
    case, X, y = w2
    benchmark.group = f"W2 b={batch_size}"
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    epoch = torch_epoch_fn(torch, X, y.astype(np.int64), case.lr, batch_size, model=model, loss="softmax")
    epoch()
    benchmark.pedantic(epoch, **SLOW_ROUNDS)


def test_w2_sklearn_mlp(benchmark, w2):
    nn = pytest.importorskip("sklearn.neural_network")
    case, X, y = w2
    benchmark.group = "W2 b=32"
    est = nn.MLPClassifier(hidden_layer_sizes=(128,), solver="sgd", batch_size=32, momentum=0.0,
                           learning_rate_init=case.lr, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        benchmark.pedantic(est.fit, args=(X, y), **SLOW_ROUNDS)
