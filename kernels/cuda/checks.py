"""Argument checks that read a device array where it is (``fit`` never copies X to the host).

``fastgd.validation.check_device_X`` calls :func:`first_nonfinite`; the rest of the
checks of a device X (shape, dtype) need only its ``__cuda_array_interface__``.
"""
import math

import numpy as np
from numba import cuda

from . import config
from ._device import as_device_array, sm_count


@cuda.jit
def _first_nonfinite_kernel(A, out):
    # Warps over rows, lanes over columns (coalesced); the smallest flat index of a
    # NaN/inf wins through an integer atomic, so the answer is the same every run.
    tid = cuda.grid(1)
    lane = tid % 32
    warp = tid // 32
    nwarps = cuda.gridsize(1) // 32
    n = A.shape[0]
    d = A.shape[1]
    for r in range(warp, n, nwarps):
        for c in range(lane, d, 32):
            v = A[r, c]
            if math.isnan(v) or math.isinf(v):
                cuda.atomic.min(out, 0, r * d + c)


def first_nonfinite(A):
    """Row-major flat index of the first NaN or inf of the 2-D device array ``A``,
    or None; one pass over A on the device and an 8-byte read-back."""
    dA = as_device_array(A)
    n, d = dA.shape
    out = cuda.to_device(np.array([n * d], dtype=np.int64))
    nt = max(32, config.THREADS_PER_BLOCK - config.THREADS_PER_BLOCK % 32)
    cap = config.MAX_BLOCKS or max(1, config.BLOCKS_PER_SM) * sm_count()
    blocks = max(1, min(-(-n * 32 // nt), cap))
    _first_nonfinite_kernel[blocks, nt](dA, out)
    pos = int(out.copy_to_host()[0])
    return None if pos >= n * d else pos


def value_at(A, row, col):
    """One entry of a 2-D device array, copied to the host alone."""
    return as_device_array(A)[row, col:col + 1].copy_to_host()[0]
