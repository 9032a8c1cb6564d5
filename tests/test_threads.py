"""Several fits at once in threads (kernels release the GIL) give the sequential results."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fastgd.testing import Case, make_data, run

from conftest import compiled_backends

CASES = [Case(loss="logistic", batch_size=8, n=400, d=12, epochs=3),
         Case(loss="softmax", batch_size=None, n=3000, d=12, epochs=3),  # large batch: parallel path
         Case(loss="squared", batch_size=1, n=300, d=12, epochs=2, optimizer=("adam", {}))]


@pytest.mark.parametrize("backend", [b for b in compiled_backends() if b != "cuda"])
def test_concurrent_fits_equal_sequential_fits(backend):
    data = [make_data(c) for c in CASES]
    sequential = [run(c, backend, *d).params[0][0] for c, d in zip(CASES, data)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(lambda c=c, d=d: run(c, backend, *d).params[0][0]) for c, d in zip(CASES * 2, data * 2)]
        results = [f.result() for f in futures]
    for got, want in zip(results, sequential * 2):
        np.testing.assert_array_equal(got, want)
