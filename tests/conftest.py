"""Shared test set-up (tests import the installed fastgd, never kernels/ directly)."""
import os
import sys

import numpy as np
import pytest

# Numba kernels compile in each test process rather than load from a cache that another
# pytest-xdist worker may be writing meanwhile: a kernel loaded from the cache can differ
# in the last bits from one compiled in the process (docs/decisions.md, "Reproducibility
# and continuation"), and these tests compare kernels bit for bit within a process.  The
# cache itself is tested in subprocesses that set it up explicitly.  (Set before any
# test module imports fastgd.kernels.nb, whose config reads it.)
os.environ.setdefault("FASTGD_NUMBA_CACHE", "0")

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    # The CUDA simulator runs each thread as a Python thread; a short switch
    # interval makes its barriers several times faster.
    sys.setswitchinterval(1e-4)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
