"""Recognising and adopting device arrays (real GPU or the CUDA simulator)."""
import numpy as np
from numba import cuda


def is_device_array(a):
    """True for Numba device arrays (also the simulator's) and anything with
    ``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors, ...)."""
    return bool(getattr(a, "__cuda_ndarray__", False)) or hasattr(a, "__cuda_array_interface__")


def as_device_array(a):
    """A Numba device array viewing ``a`` (no copy)."""
    if getattr(a, "__cuda_ndarray__", False):
        return a
    return cuda.as_cuda_array(a)


def to_device(a, dtype=None):
    """``a`` on the device: a view when it already is there, else one copy."""
    if is_device_array(a):
        d = as_device_array(a)
        if dtype is not None and np.dtype(d.dtype) != np.dtype(dtype):
            raise TypeError(f"device array has dtype {d.dtype}, expected {np.dtype(dtype)}; "
                            "convert it on the device first")
        return d
    h = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    return upload(h)


def owned_copy(a):
    """A new device array holding a copy of ``a`` (host or device)."""
    if is_device_array(a):
        src = as_device_array(a)
        dst = empty(tuple(src.shape), src.dtype)
        dst.copy_to_device(src)
        return dst
    return upload(np.array(a, copy=True, order="C"))


def copy_into(dst, src):
    """Overwrite device array ``dst`` with ``src`` (host or device, same size)."""
    if is_device_array(src):
        dst.copy_to_device(as_device_array(src))
    else:
        dst.copy_to_device(np.ascontiguousarray(src, dtype=dst.dtype).reshape(tuple(dst.shape)))


def empty(shape, dtype):
    """An uninitialised device array (patched by compile_check to make host twins)."""
    return cuda.device_array(shape, dtype=dtype)


def c_layout(host):
    """``host`` C-contiguous with the strides NumPy gives a new array of its shape.

    NumPy counts an array whose size-1 axis has stride 0 (``a[None, :]``) as
    C-contiguous, so ``ascontiguousarray`` keeps that stride.  numba-cuda copies
    the strides to the device array and takes a zero stride for broadcasting:
    every later index of that device array then walks its elements in Python,
    about 1 us each (an epoch's order row of 10,000,000 rows cost 9 s, on an
    H200, every epoch).
    """
    h = np.ascontiguousarray(host)
    strides, step = [], h.itemsize
    for size in reversed(h.shape):
        strides.append(step)
        step *= size
    if h.strides != tuple(reversed(strides)):
        h = h.copy()
    return h


def upload(host):
    """A device copy of a host array (patched by compile_check to make host twins)."""
    return cuda.to_device(c_layout(host))


def sm_count():
    """Streaming multiprocessors of the current device (1 on the simulator)."""
    try:
        return int(cuda.get_current_device().MULTIPROCESSOR_COUNT)
    except Exception:
        return 1
