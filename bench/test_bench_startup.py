"""Importing fastgd and a first small fit, in a fresh interpreter (goal: under 0.5 s)."""
import subprocess
import sys

import pytest

CODE = ("import numpy as np, fastgd\n"
        "X = np.random.default_rng(0).standard_normal((200, 5))\n"
        "fastgd.fit(X, X[:, 0] > 0, loss='logistic', batch_size=10)\n")


@pytest.mark.benchmark(group="startup")
def test_import_and_first_fit(benchmark):
    benchmark.pedantic(subprocess.run, args=([sys.executable, "-c", CODE],), kwargs={"check": True},
                       rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="startup")
def test_bare_interpreter_with_numpy(benchmark):
    """The floor: Python plus NumPy's import."""
    benchmark.pedantic(subprocess.run, args=([sys.executable, "-c", "import numpy"],),
                       kwargs={"check": True}, rounds=5, iterations=1, warmup_rounds=1)
