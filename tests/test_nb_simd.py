"""The explicit-vector loops of the Numba backend (fastgd.kernels.nb.simd).

The float64 IR path against exact sums (math.fsum of the products) for every
length that exercises its loops (8-wide body, 4-wide tail, scalar tail, the
gradient pass's 2-element peel), row starts at every 8-byte offset within 32
bytes, and the dtype fallbacks; the gradient pass gives the same bits wherever the
rows start (the peel changes which loads are aligned, not the arithmetic).
"""
import math

import numpy as np
import pytest
from numba import njit

from fastgd.kernels.nb.simd import axpy4_rows, dot4_rows

LENGTHS = [0, 1, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 23, 48, 52]


def _rows_at(n_rows, d, offset_bytes, dtype=np.float64, seed=0):
    """An (n_rows, d) C-contiguous array whose data starts offset_bytes past a
    64-byte boundary, filled with standard normals."""
    item = np.dtype(dtype).itemsize
    buf = np.empty(n_rows * d + 128 // item, dtype=dtype)
    start = ((-buf.ctypes.data) % 64 + offset_bytes) // item
    X = buf[start:start + n_rows * d].reshape(n_rows, d)
    X[...] = np.random.default_rng(seed).standard_normal((n_rows, d))
    assert X.ctypes.data % 64 == offset_bytes
    return X


@njit
def _dot4(X, rows, lo, hi, w):
    return dot4_rows(X, rows[0], rows[1], rows[2], rows[3], lo, hi, w)


@njit
def _axpy4(c, k, X, rows, lo, hi, g):
    axpy4_rows(c[k], c[k + 1], c[k + 2], c[k + 3], X, rows[0], rows[1], rows[2], rows[3], lo,
               hi, g)


@pytest.mark.parametrize("offset", [0, 8, 16, 24])
@pytest.mark.parametrize("width", LENGTHS)
def test_dot4_rows_is_the_exact_dot_to_rounding(width, offset):
    d = width + 5
    X = _rows_at(8, d, offset)
    w = np.random.default_rng(1).standard_normal(d)
    rows = np.array([3, 0, 7, 3], dtype=np.int64)  # repeated and out-of-order rows
    lo, hi = 2, 2 + width
    got = _dot4(X, rows, lo, hi, w)
    for r, i in enumerate(rows):
        prods = X[i, lo:hi] * w[lo:hi]
        exact = math.fsum(prods)
        bound = 4 * width * np.finfo(np.float64).eps * float(np.abs(prods).sum()) + 1e-300
        assert abs(got[r] - exact) <= bound, (width, offset, r, got[r], exact)


@pytest.mark.parametrize("width", LENGTHS)
def test_axpy4_rows_is_the_exact_update_to_rounding(width):
    d = width + 3
    X = _rows_at(6, d, 16)
    c = np.array([0.5, -1.25, 2.0, 0.75, -3.0, 1.5])
    rows = np.array([5, 1, 2, 5], dtype=np.int64)
    g0 = np.random.default_rng(2).standard_normal(d)
    g = g0.copy()
    _axpy4(c, 1, X, rows, 1, 1 + width, g)
    for j in range(d):
        if 1 <= j < 1 + width:
            terms = [g0[j]] + [c[1 + r] * X[rows[r], j] for r in range(4)]
            exact = math.fsum(terms)
            bound = 8 * np.finfo(np.float64).eps * sum(abs(t) for t in terms)
            assert abs(g[j] - exact) <= bound, (width, j)
        else:
            assert g[j] == g0[j]  # outside [lo, hi) nothing is written


@pytest.mark.parametrize("width", [6, 7, 17, 52, 100])
def test_axpy4_rows_same_bits_wherever_the_rows_start(width):
    """Rows at 16 mod 32 take the peeled, aligned loop; others the unaligned one."""
    c = np.array([0.3, -1.7, 2.2, 0.9])
    rows = np.array([0, 3, 1, 2], dtype=np.int64)
    results = []
    for offset in (0, 8, 16, 24, 48):
        X = _rows_at(4, width, offset)
        g = np.linspace(-1.0, 1.0, width)
        _axpy4(c, 0, X, rows, 0, width, g)
        results.append(g)
    for g in results[1:]:
        np.testing.assert_array_equal(g, results[0])


def test_dot4_rows_same_bits_wherever_the_rows_start():
    w = np.random.default_rng(3).standard_normal(52)
    rows = np.array([0, 1, 2, 3], dtype=np.int64)
    results = [_dot4(_rows_at(4, 52, off), rows, 0, 52, w) for off in (0, 8, 16, 24)]
    assert all(r == results[0] for r in results[1:])


@pytest.mark.parametrize("x_dtype, w_dtype", [(np.float32, np.float32),
                                              (np.float32, np.float64)])
def test_other_dtypes_take_the_plain_loops(x_dtype, w_dtype):
    X = _rows_at(5, 20, 0, dtype=x_dtype)
    w = np.random.default_rng(4).standard_normal(20).astype(w_dtype)
    rows = np.array([4, 0, 2, 1], dtype=np.int64)
    got = _dot4(X, rows, 3, 17, w)
    tol = 1e-5 if w_dtype == np.float32 else 1e-12
    for r, i in enumerate(rows):
        want = float(np.dot(X[i, 3:17].astype(np.float64), w[3:17].astype(np.float64)))
        assert got[r] == pytest.approx(want, rel=tol, abs=tol)
    c = np.array([1.0, 2.0, -1.0, 0.5], dtype=w_dtype)
    g = np.zeros(20, dtype=w_dtype)
    _axpy4(c, 0, X, rows, 3, 17, g)
    want = sum(float(c[r]) * X[rows[r]].astype(np.float64) for r in range(4))
    np.testing.assert_allclose(g[3:17], want[3:17], rtol=tol, atol=tol)
    assert not g[:3].any() and not g[17:].any()
