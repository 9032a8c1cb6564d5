"""Shared test set-up (tests import the installed fastgd, never kernels/ directly)."""
import os
import sys

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    # The CUDA simulator runs each thread as a Python thread; a short switch
    # interval makes its barriers several times faster.
    sys.setswitchinterval(1e-4)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def compiled_backends():
    """Backends other than the reference that work here (the parity tests' subjects)."""
    from fastgd import available_backends

    return [b for b in available_backends() if b != "numpy"]
