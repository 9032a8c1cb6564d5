"""Every backend x case of the shared registry against the NumPy reference.

float64 runs must equal the float64 reference to rtol 1e-9; float32 runs must
equal the float64 reference run of the same case to rtol 1e-4 (DESIGN §3).
"""
import numpy as np
import pytest

from fastgd.testing import CASES, assert_params_close, compiled_backends, make_data, run


BACKENDS = compiled_backends()


def _supports(backend, case):
    from fastgd.backends import supports

    if backend == "cuda" and "cuda" not in case.tags:
        return False  # the simulator runs each GPU thread as a Python thread: tagged cases only
    return supports(backend, "linear" if case.model is None else "mlp")


_REFERENCE = {}


def reference(case):
    """The float64 reference run of a case (float32 cases compare against it too), cached."""
    key = case.at(dtype="float64").id
    if key not in _REFERENCE:
        _REFERENCE[key] = _reference(case)
    return _REFERENCE[key]


def _reference(case):
    ref_case = case.at(dtype="float64")
    X, y, sw = make_data(ref_case)
    overrides = {"accumulate": None} if "accumulate" in case.options else {}
    return run(ref_case, "numpy", X, y, sw, **overrides)


PAIRS = [pytest.param(b, c, id=f"{b}-{c.id}") for b in BACKENDS for c in CASES if _supports(b, c)]


@pytest.mark.skipif(not PAIRS, reason="no compiled backend is available")
@pytest.mark.parametrize("backend,case", PAIRS)
def test_backend_matches_reference(backend, case):
    res = run(case, backend)
    ref = reference(case)
    assert res.backend == backend
    assert res.n_iter == ref.n_iter
    expected_dtype = np.float64 if case.options.get("accumulate") == "float64" else np.dtype(case.dtype)
    assert res.params[0][0].dtype == expected_dtype
    assert_params_close(res, ref, case.dtype)
    np.testing.assert_allclose(res.history["loss"], ref.history["loss"],
                               rtol=1e-9 if case.dtype == "float64" else 1e-4)
    if case.options.get("accumulate") == "float64":
        # float32 data summed in float64: against the reference doing the same, float64's
        # tolerance (the float32 one above is what rounding X costs)
        same = reference_accumulating(case)
        assert_params_close(res, same, "float64")
        np.testing.assert_allclose(res.history["loss"], same.history["loss"], rtol=1e-9)


def reference_accumulating(case):
    """The reference run of a float32 case that accumulates in float64, cached."""
    key = ("accumulate", case.id)
    if key not in _REFERENCE:
        _REFERENCE[key] = run(case, "numpy")
    return _REFERENCE[key]


def test_large_batch_cases_are_cut_into_chunks():
    """The cases tagged "large-batch" reach the chunked sums of both compiled backends."""
    from fastgd.kernels.cy.linear_epoch import chunk_layout
    from fastgd.kernels.nb.config import CHUNK_ROWS

    large = [c for c in CASES if "large-batch" in c.tags]
    assert len(large) >= 3
    for case in large:
        b = case.n if case.batch_size is None else case.batch_size
        K = case.k if case.loss == "softmax" else 1
        assert chunk_layout(b, case.d, K)[0] > 1 and b > CHUNK_ROWS, case.id


def test_reference_float32_is_close_to_float64():
    """The reference itself keeps float32 in, float32 out, within the float32 tolerance."""
    for case in CASES:
        if case.dtype != "float32" or case.model is not None:
            continue
        res = run(case, "numpy")
        assert res.params[0][0].dtype == (np.float64 if "accumulate" in case.options else np.float32)
        assert_params_close(res, reference(case), "float32")


def test_the_compiled_backends_are_here():
    """The registry runs on what `available_backends()` finds, which leaves out a backend
    that fails to import: a broken build must fail here, not vanish from the parity tests."""
    import numba

    from fastgd import backends

    wanted = ["cython", "numba"] + (["cuda"] if numba.config.ENABLE_CUDASIM else [])
    for name in wanted:
        ok, reason = backends._probe(name)
        assert ok, f"{name}: {reason}"
    # (until the twenty-second session this module imported the list from "conftest", and a
    # run of tests and bench together got bench's: numpy against itself, and no cuda)
    assert set(wanted) <= set(BACKENDS) and "numpy" not in BACKENDS
