"""Every backend x case of the shared registry against the NumPy reference.

float64 runs must equal the float64 reference to rtol 1e-9; float32 runs must
equal the float64 reference run of the same case to rtol 1e-4 (DESIGN §3).
"""
import numpy as np
import pytest

from fastgd.testing import CASES, assert_params_close, make_data, run

from conftest import compiled_backends

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


def test_reference_float32_is_close_to_float64():
    """The reference itself keeps float32 in, float32 out, within the float32 tolerance."""
    for case in CASES:
        if case.dtype != "float32" or case.model is not None:
            continue
        res = run(case, "numpy")
        assert res.params[0][0].dtype == (np.float64 if "accumulate" in case.options else np.float32)
        assert_params_close(res, reference(case), "float32")
