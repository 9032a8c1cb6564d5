"""Shared fixtures for the pytest-benchmark suites.

Sizes are the issues' workloads (W1, W2 from ``fastgd.testing``).  Under
``--benchmark-disable`` (the CI smoke run) the same code runs once on a
smaller slice, so the suites stay importable and correct without costing
minutes.
"""
import os

import numpy as np
import pytest

from fastgd.testing import W1, W2, make_data

SMOKE_ROWS = {"W1": 4_000, "W2": 2_000}


def smoke(config):
    return bool(config.getoption("benchmark_disable", default=False))


@pytest.fixture(scope="session")
def w1(request):
    case = W1.at(n=SMOKE_ROWS["W1"]) if smoke(request.config) else W1
    X, y, _ = make_data(case)
    return case, np.ascontiguousarray(X), y


@pytest.fixture(scope="session")
def w2(request):
    case = W2.at(n=SMOKE_ROWS["W2"]) if smoke(request.config) else W2
    X, y, _ = make_data(case)
    return case, np.ascontiguousarray(X), y


@pytest.fixture(scope="session")
def torch_threads():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(os.cpu_count() or 1)  # the same cores fastgd's OpenMP uses
    return torch
