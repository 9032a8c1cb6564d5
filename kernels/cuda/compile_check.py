"""Compile every CUDA kernel to PTX without a GPU: ``python -m fastgd.kernels.cuda.compile_check``.

The CUDA simulator runs the kernels as Python, so it never type-checks them
with Numba's CUDA compiler; a typing or lowering error would first show on a
real GPU.  This check closes that gap on any machine with the CUDA toolkit's
NVVM (libnvvm + libdevice, e.g. /usr/local/cuda or the ``nvidia-*`` wheels):
it builds each engine configuration with host "twins" of the device arrays,
types the exact argument tuples the engine launches with, and compiles each
kernel for a compute capability (default 8.0) with ``numba.cuda.compile_ptx``.

Without a driver Numba cannot ask a device for its compute capability, and
without NVRTC it cannot list the supported architectures; both are stubbed
here (only for this process).  Prints one line per kernel and exits non-zero
on the first failure; exit code 3 means "cannot check here" (NVVM missing, or
``NUMBA_ENABLE_CUDASIM`` set).
"""
import argparse
import os
import sys
import time


def _stub_driver(cc):
    import numba.cuda.cuda_paths as cuda_paths
    import numba.cuda.cudadrv.nvrtc as nvrtc
    import numba.cuda.dispatcher as dispatcher

    class _Device:
        compute_capability = cc

    dispatcher.get_current_device = lambda: _Device()
    known = sorted({(7, 5), (8, 0), (8, 6), (8, 9), (9, 0), cc})
    nvrtc.get_supported_ccs = lambda: known
    try:
        cuda_paths.get_cuda_paths()
    except Exception:
        cuda_paths._get_nvrtc_path = lambda: ("stub", None)


def _probe_compile(cc):
    """A trivial kernel (device function, dynamic shared memory, math) must compile;
    if it does not, this environment cannot check anything (exit 3, not a failure)."""
    import math

    from numba import cuda, float32

    @cuda.jit(device=True)
    def twice(v):
        return v + v

    def kernel(a):
        sm = cuda.shared.array(0, float32)
        i = cuda.threadIdx.x
        sm[i] = twice(a[i])
        cuda.syncthreads()
        a[i] = float32(math.exp(sm[i]))

    cuda.compile_ptx(kernel, (float32[::1],), cc=cc)


def _host_twins():
    """Make the engine allocate NumPy arrays instead of device arrays."""
    import numpy as np

    from . import _device

    _device.empty = lambda shape, dtype: np.empty(shape, dtype=dtype)
    _device.upload = lambda host: np.ascontiguousarray(host)
    _device.is_device_array = lambda a: False
    _device.sm_count = lambda: 132


class _Spec:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def configurations():
    """(label, data dtype, theta dtype, loss id, K, fit_intercept, alpha, sample weights)."""
    import numpy as np

    from .. import ids

    f32, f64 = np.float32, np.float64
    return [
        ("f32 logistic", f32, f32, ids.LOSS_LOGISTIC, 1, True, 0.0, False),
        ("f32 softmax l2 sw", f32, f32, ids.LOSS_SOFTMAX, 4, True, 0.01, True),
        ("f64 huber no-intercept", f64, f64, ids.LOSS_HUBER, 1, False, 0.01, True),
        ("f32 data, f64 theta", f32, f64, ids.LOSS_SQUARED, 1, True, 0.0, False),
    ]


def check(cc=(8, 0), verbose=True):
    import numpy as np
    from numba import cuda
    from numba.core.typing.typeof import Purpose, typeof

    from .. import ids
    from . import engine as engine_mod
    from .linear_epoch import row_partials_kernel
    from .losses import _evaluate_kernel
    from .updates import update_functions

    def compile_one(label, kernel, args):
        t0 = time.perf_counter()
        sig = tuple(typeof(a, Purpose.argument) for a in args)
        ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=cc)
        if verbose:
            print(f"  ok  {label:45s} {len(ptx) // 1024:5d} KiB PTX  {time.perf_counter() - t0:5.1f} s")
        return ptx

    n, d = 50, 9
    rng = np.random.default_rng(0)
    for label, D, A, loss_id, K, fit, alpha, sw in configurations():
        P = d * K + (K if fit else 0)
        spec = _Spec(loss_id=loss_id, loss_param=0.5, n_outputs=K, fit_intercept=fit,
                     alpha=alpha, l1_ratio=0.3, rule_id=ids.RULE_ADAM,
                     hyper=np.array([0.9, 0.999, 1e-8, 0.0, 0.0]), batch_size=8)
        X = rng.standard_normal((n, d)).astype(D)
        y = np.zeros(n, dtype=D)
        w = np.ones(n, dtype=D) if sw else None
        theta = np.zeros(P, dtype=A)
        state = np.zeros((3, P), dtype=A)
        for path in ("fused", "batched"):
            eng = engine_mod.LinearEngine(X, y, w, spec, theta, state, path=path)
            eng.prepare(np.arange(n, dtype=np.int64)[None, :])
            order = eng.orders[0]
            d_loss = np.zeros(8)
            if path == "fused":
                compile_one(f"fused_epoch      [{label}]", eng.kernels.fused_epoch,
                            eng._fused_args(order, 7, np.zeros(7), 0, d_loss))
            else:
                compile_one(f"batch_partials   [{label}]", eng.kernels.batch_partials,
                            eng._partials_args(order, 0, 8, 8))
                if eng.partials == "batch_partials_rows":
                    compile_one(f"batch_partials_rows [{label}]",
                                row_partials_kernel(eng.dtype, eng.row_chunks),
                                eng._partials_args(order, 0, 8, 8))
                compile_one(f"reduce_update    [{label}]", eng.kernels.reduce_update,
                            eng._reduce_args(1, 0, 0.1, 1, d_loss))
    for D, A in ((np.float32, np.float32), (np.float64, np.float64), (np.float32, np.float64)):
        sizes = np.array([d, 6, 4, 3], dtype=np.int64)
        P = int(sum(sizes[l] * sizes[l + 1] + sizes[l + 1] for l in range(3)))
        spec = _Spec(loss_id=ids.LOSS_SOFTMAX, layer_sizes=sizes, activation_id=ids.ACT_TANH,
                     alpha=0.01, l1_ratio=0.5, rule_id=ids.RULE_SGD,
                     hyper=np.array([0.9, 0.0, 0.0, 0.0]), batch_size=8)
        eng = engine_mod.MLPEngine(rng.standard_normal((n, d)).astype(D), np.zeros(n, dtype=D),
                                   None, spec, np.zeros(P, dtype=A), np.zeros((1, P), dtype=A))
        eng.prepare(np.arange(n, dtype=np.int64)[None, :])
        compile_one(f"mlp_fused_epoch  [{np.dtype(D).name} data, {np.dtype(A).name}]",
                    eng.kernels.mlp_fused_epoch,
                    eng._fused_args(eng.orders[0], 7, np.zeros(7), 0, np.zeros(8)))
    from .checks import _first_nonfinite_kernel

    for A in (np.float32, np.float64):
        compile_one(f"first_nonfinite  [{np.dtype(A).name}]", _first_nonfinite_kernel,
                    (np.zeros((4, 3), dtype=A), np.zeros(1, dtype=np.int64)))
        p = np.zeros((4, 1), dtype=A)
        compile_one(f"losses.evaluate  [{np.dtype(A).name}]", _evaluate_kernel(np.dtype(A)),
                    (1, 0.5, p, np.zeros(4, dtype=A), np.zeros(4, dtype=A), p))
        compile_one(f"apply_update     [{np.dtype(A).name}]",
                    update_functions(np.dtype(A)).apply_update_kernel,
                    (ids.RULE_RMSPROP, np.zeros(5), np.zeros(4, dtype=A), np.zeros(4, dtype=A),
                     np.zeros((3, 4), dtype=A), 0.1, 1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cc", default="8.0", help="compute capability, e.g. 8.0 or 9.0")
    args = ap.parse_args(argv)
    cc = tuple(int(v) for v in args.cc.split("."))
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        print("compile_check: NUMBA_ENABLE_CUDASIM is set; unset it to compile real kernels")
        return 3
    try:
        import numba.cuda.cudadrv.nvvm as nvvm

        nvvm.NVVM()  # loads libnvvm (raises when the toolkit is missing)
        from numba.cuda.cudadrv.libs import get_libdevice

        _stub_driver(cc)
        if get_libdevice() is None:
            raise RuntimeError("libdevice not found")
        _probe_compile(cc)
    except Exception as exc:
        print(f"compile_check: cannot compile here (CUDA toolkit NVVM/libdevice, or this "
              f"numba-cuda's internals, do not allow it without a GPU: {exc!r})")
        return 3
    _host_twins()
    print(f"compile_check: compiling every CUDA kernel for compute capability {cc[0]}.{cc[1]}")
    t0 = time.perf_counter()
    check(cc)
    print(f"compile_check: all kernels compiled in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
