"""The CUDA engine: the fit driver's handle on the GPU kernels.

``LinearEngine(X, y, sw, spec, theta, state)`` has exactly the methods of
``fastgd.engines.CPUEngine``:

``prepare(orders)``
    the next E epochs' batch orders, (E, m) int64, copied to the device in one
    transfer; the driver sends up to ``order_block_bytes`` of them at a time
    (all of a fit's epochs unless that is more, so the memory stays bounded).
``run_epoch(e, n_batches, lrs, step0, batch_loss) -> n_done``
    one epoch with ``orders[e]``; writes ``batch_loss[:n_done + 1]`` (or all
    of it) like the reference and returns the number of updates applied.
``get_theta()``, ``get_state()``
    host (NumPy) copies.
``set_theta_state(theta, state)``
    overwrite the device copies (host or device arrays).

Residency: X, y, the sample weights and the orders go to the device once
(anything with ``__cuda_array_interface__`` -- Numba device arrays, CuPy,
PyTorch CUDA tensors -- is used in place, without a copy); theta and the
optimizer state are copied once (the caller's arrays are never modified) and
stay on the device.  Per epoch the host sends the step sizes (fused path) and
reads back the epoch's batch losses, from which it finds the first non-finite
batch (the driver reads theta too, to check it is finite).  Per batch there is no
host synchronisation.

``spec`` is duck-typed (``fastgd.engines.LinearSpec``: loss_id, loss_param,
n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, batch_size); this
module never imports ``fastgd``.
"""
import numpy as np

from .. import ids
from . import config
from .linear_epoch import ROW_MAX_FEATURES, linear_kernels, row_chunks, row_partials_kernel
from .losses import SUPPORTED_LOSSES
from .updates import SUPPORTED_RULES
from . import _device
from ._device import as_device_array, copy_into, is_device_array, owned_copy, to_device

_HYPER_PAD = 5


def plan_tiles(n_features, n_outputs, itemsize, cfg):
    """Tile geometry that fits ``cfg['SHARED_BYTES']``: (rows, tc, ld, elements).

    ``elements`` is the dynamic shared memory of the gradient kernels, in
    elements of the accumulation dtype.
    """
    nt = cfg["THREADS_PER_BLOCK"]
    budget = cfg["SHARED_BYTES"] // itemsize
    red = 2 * nt
    K = n_outputs
    rows = max(1, cfg["TILE_ROWS"])
    want_cols = max(1, min(cfg["TILE_COLS"], n_features, 32))

    def max_cols(r):
        return (budget - red - r * K) // r - 1

    while rows > 1 and max_cols(rows) < want_cols:
        rows //= 2
    tc = min(cfg["TILE_COLS"], n_features, max_cols(rows))
    if tc < 1:
        raise ValueError(
            f"n_outputs={K} classes do not fit the CUDA kernels' shared memory "
            f"(SHARED_BYTES={cfg['SHARED_BYTES']}); use another backend")
    ld = tc if tc % 2 == 1 else tc + 1
    return rows, tc, ld, rows * ld + rows * K + red


def _make_resident(engine, X, y, sw, theta, state):
    """Put the fit's data on the device once (device arrays are used as they are) and
    give the engine its own device copies of theta and the optimizer state."""
    engine.X = to_device(X)
    if engine.X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {engine.X.shape}")
    engine.y = to_device(y)
    if sw is None or (not is_device_array(sw) and np.size(sw) == 0):
        engine.sw = _device.empty(0, np.dtype(engine.X.dtype))
    else:
        engine.sw = to_device(sw)
    engine.theta = owned_copy(theta)
    engine.state = owned_copy(state)
    engine.dtype = np.dtype(engine.theta.dtype)
    if engine.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"theta must be float32 or float64, got {engine.dtype}")
    if engine.state.ndim == 1:
        engine.state = engine.state.reshape(1, engine.state.shape[0])


class LinearEngine:
    """Linear models on one GPU; see the module docstring.

    ``path`` forces "fused" (one launch per epoch) or "batched" (two launches
    per batch); by default batches of at most ``config.FUSED_MAX_BATCH`` rows
    are fused.
    """

    order_block_bytes = 64 << 20

    def __init__(self, X, y, sw, spec, theta, state, *, path=None):
        cfg = config.snapshot()
        self.cfg = cfg
        loss_id = int(spec.loss_id)
        rule_id = int(spec.rule_id)
        if loss_id not in SUPPORTED_LOSSES:
            if loss_id == ids.LOSS_CUSTOM:
                raise ValueError("custom losses (fastgd.Loss) run on the 'numba' and 'numpy' "
                                 "backends only, not on 'cuda'")
            raise ValueError(f"unknown loss id {loss_id}")
        if rule_id not in SUPPORTED_RULES:
            raise ValueError(f"unknown update rule id {rule_id}")

        _make_resident(self, X, y, sw, theta, state)

        n, d = self.X.shape
        K = int(spec.n_outputs)
        fit_intercept = 1 if spec.fit_intercept else 0
        P = d * K + (K if fit_intercept else 0)
        if self.theta.shape[0] != P:
            raise ValueError(f"theta has {self.theta.shape[0]} parameters, expected {P}")
        self.n, self.d, self.K, self.P = n, d, K, P
        self.loss_id, self.rule_id = loss_id, rule_id
        lp = spec.loss_param
        self.eps = float(lp) if lp is not None and not callable(lp) else 0.0
        self.fit_intercept = fit_intercept
        self.alpha = float(spec.alpha)
        self.l1_ratio = float(spec.l1_ratio)
        self.batch_size = int(spec.batch_size)
        hyper = np.zeros(_HYPER_PAD, dtype=np.float64)
        h = np.asarray(spec.hyper, dtype=np.float64).ravel()
        hyper[:h.size] = h
        self.hyper = _device.upload(hyper)

        nt = cfg["THREADS_PER_BLOCK"]
        self.threads = nt
        rows, tc, ld, elems = plan_tiles(d, K, self.dtype.itemsize, cfg)
        self.rows, self.tc, self.ld = rows, tc, ld
        self.coef_off = rows * ld
        self.red_off = rows * ld + rows * K
        self.shared_bytes = elems * self.dtype.itemsize
        self.reduce_shared_bytes = (3 * nt + 1) * self.dtype.itemsize
        self.fanout = max(2, cfg["REDUCE_FANOUT"])
        self.split = max(1, cfg["SPLIT_DOTS"])
        if path is None:
            path = "fused" if self.batch_size <= cfg["FUSED_MAX_BATCH"] else "batched"
        if path not in ("fused", "batched"):
            raise ValueError(f"path must be 'fused' or 'batched', got {path!r}")
        self.path = path
        self.S = P + 2
        # the batched path's partial gradients: one warp a row where a row fits a warp's
        # registers (a stream over X), else the tiles
        nw = nt // 32
        row_bytes = (nw * (P + 1) + 2 * nt + 32 * nw) * self.dtype.itemsize
        if (cfg["ROW_KERNEL"] and K == 1 and d <= ROW_MAX_FEATURES
                and row_bytes <= cfg["SHARED_BYTES"]):
            self.partials = "batch_partials_rows"
            self.partials_shared_bytes = row_bytes
            self.row_chunks = row_chunks(d)
        else:
            self.partials = "batch_partials"
            self.partials_shared_bytes = self.shared_bytes
        # the batched path's grid cap: config, else one full wave of resident blocks
        # (refined from the compiled kernel's occupancy at the first batched epoch)
        self._block_cap = cfg["MAX_BLOCKS"] or max(1, cfg["BLOCKS_PER_SM"]) * _device.sm_count()
        self._cap_final = bool(cfg["MAX_BLOCKS"]) or path == "fused"
        self.max_blocks = self._grid(self.batch_size) if path == "batched" else 1
        self.part = _device.empty((self.max_blocks, self.S), self.dtype)
        self.flag = _device.upload(np.zeros(1, dtype=np.int32))
        self._zero_flag = np.zeros(1, dtype=np.int32)
        self.kernels = linear_kernels(self.dtype)
        self.orders = None
        self.d_loss = None
        self._specialised = {}

    # -- planning -----------------------------------------------------------
    def _grid(self, nb):
        """Blocks of the batched path for a batch of nb rows (fixed: determinism)."""
        c = self.cfg
        g = -(-nb // max(1, c["ROWS_PER_BLOCK"]))
        g = min(g, self._block_cap, max(1, c["MAX_PARTIAL_ELEMS"] // self.S))
        return max(1, g)

    # -- the engine protocol ------------------------------------------------
    def prepare(self, orders):
        if is_device_array(orders):
            o = as_device_array(orders)
            if np.dtype(o.dtype) != np.dtype(np.int64):
                raise TypeError(f"orders must be int64, got {o.dtype}")
        else:
            o = _device.upload(np.ascontiguousarray(orders, dtype=np.int64))
        if o.ndim == 1:
            o = o.reshape(1, o.shape[0])
        self.orders = o

    def _loss_buffer(self, n_batches):
        if self.d_loss is None or self.d_loss.shape[0] < n_batches:
            self.d_loss = _device.empty(max(1, n_batches), np.float64)
        return self.d_loss

    # Launch arguments, in one place (compile_check types them to build PTX).
    def _fused_args(self, order, n_batches, d_lrs, step0, d_loss):
        return (self.X, self.y, self.sw, order, self.batch_size, n_batches, self.loss_id,
                self.eps, self.K, self.fit_intercept, self.alpha, self.l1_ratio, self.rule_id,
                self.hyper, d_lrs, step0, self.theta, self.state, self.part, d_loss,
                self.rows, self.tc, self.ld, self.coef_off, self.red_off, self.fanout,
                self.split)

    def _partials_args(self, order, start, nb, rows_per_block):
        return (self.X, self.y, self.sw, order, start, nb, rows_per_block, 1.0 / nb,
                self.loss_id, self.eps, self.K, self.fit_intercept, self.alpha, self.l1_ratio,
                self.theta, self.part, self.flag, self.rows, self.tc, self.ld, self.coef_off,
                self.red_off, self.fanout, self.split)

    def _reduce_args(self, G, kb, lr, step, d_loss):
        return (self.part, G, kb, float(lr), step, self.K, self.d, self.fit_intercept,
                self.alpha, self.l1_ratio, self.rule_id, self.hyper, self.theta, self.state,
                d_loss, self.flag, self.fanout)

    def _launcher(self, name, args):
        """The kernel specialised to these argument types (skips per-launch typing)."""
        k = self._specialised.get(name)
        if k is None:
            if name == "batch_partials_rows":
                k = row_partials_kernel(self.dtype, self.row_chunks)
            else:
                k = getattr(self.kernels, name)
            try:
                k = k.specialize(*args)
            except Exception:  # pragma: no cover - fall back to the dispatcher
                pass
            self._specialised[name] = k
        return k

    def _occupancy_cap(self, order):
        """Cap the grid at the blocks that can be resident at once (one wave)."""
        self._cap_final = True
        try:
            nb = min(self.batch_size, order.shape[0])
            k1 = self._launcher(self.partials, self._partials_args(order, 0, nb, nb))
            kernel = next(iter(k1.overloads.values()))
            cap = int(kernel.max_cooperative_grid_blocks(self.threads, self.partials_shared_bytes))
        except Exception:  # the simulator, or an older numba-cuda: keep the estimate
            return
        if cap >= 1 and cap != self._block_cap:
            self._block_cap = cap
            self.max_blocks = self._grid(self.batch_size)
            self.part = _device.empty((self.max_blocks, self.S), self.dtype)

    def run_epoch(self, e, n_batches, lrs, step0, batch_loss):
        n_batches = int(n_batches)
        if n_batches <= 0:
            return 0
        if self.orders is None:
            raise RuntimeError("prepare(orders) must be called before run_epoch")
        order = self.orders[int(e)]
        d_loss = self._loss_buffer(n_batches)
        lrs = np.ascontiguousarray(lrs, dtype=np.float64)
        step0 = int(step0)
        nt = self.threads
        if self.path == "fused":
            args = self._fused_args(order, n_batches, _device.upload(lrs[:n_batches]), step0,
                                    d_loss)
            self._launcher("fused_epoch", args)[1, nt, 0, self.shared_bytes](*args)
        else:
            self.flag.copy_to_device(self._zero_flag)
            m = order.shape[0]
            b = self.batch_size
            g2 = -(-self.P // 32)
            k1 = k2 = None
            if not self._cap_final:
                self._occupancy_cap(order)
            for kb in range(n_batches):
                start = kb * b
                nb = min(b, m - start)
                G = self._grid(nb)
                a1 = self._partials_args(order, start, nb, -(-nb // G))
                a2 = self._reduce_args(G, kb, lrs[kb], step0 + kb + 1, d_loss)
                if k1 is None:
                    k1 = self._launcher(self.partials, a1)
                    k2 = self._launcher("reduce_update", a2)
                k1[G, nt, 0, self.partials_shared_bytes](*a1)
                k2[g2, nt, 0, self.reduce_shared_bytes](*a2)
        # the epoch's one read-back (it also waits for the epoch to finish)
        losses = d_loss.copy_to_host()[:n_batches]
        bad = np.flatnonzero(~np.isfinite(losses))
        n_done = int(bad[0]) if bad.size else n_batches
        upto = min(n_done + 1, n_batches)
        batch_loss[:upto] = losses[:upto]
        return n_done

    def get_theta(self):
        return self.theta.copy_to_host()

    def get_state(self):
        return self.state.copy_to_host()

    def set_theta_state(self, theta, state):
        copy_into(self.theta, theta)
        copy_into(self.state, state)

    def copy_theta_state_to(self, theta, state):
        """Write the engine's theta and state into the given (host or device) arrays."""
        for dst, src in ((theta, self.theta), (state, self.state)):
            if is_device_array(dst):
                as_device_array(dst).copy_to_device(src)
            else:
                dst[...] = src.copy_to_host().reshape(np.shape(dst))


class MLPEngine:
    """Multi-layer perceptrons on one GPU: the same methods as ``LinearEngine``.

    ``spec`` is duck-typed (``fastgd.engines.MLPSpec``: loss_id, layer_sizes,
    activation_id, alpha, l1_ratio, rule_id, hyper, batch_size).  One launch
    per epoch (``mlp_epoch.mlp_fused_epoch``); the same residency and
    read-back as the linear engine.
    """

    order_block_bytes = LinearEngine.order_block_bytes

    def __init__(self, X, y, sw, spec, theta, state):
        from .mlp_epoch import mlp_kernels, workspace_shape

        cfg = config.snapshot()
        self.cfg = cfg
        loss_id = int(spec.loss_id)
        if loss_id not in (ids.LOSS_SQUARED, ids.LOSS_LOGISTIC, ids.LOSS_SOFTMAX):
            raise ValueError(f"an MLP head takes the squared, logistic or softmax loss, got id "
                             f"{loss_id}")
        rule_id = int(spec.rule_id)
        if rule_id not in SUPPORTED_RULES:
            raise ValueError(f"unknown update rule id {rule_id}")
        if int(spec.activation_id) not in (ids.ACT_RELU, ids.ACT_TANH, ids.ACT_SIGMOID):
            raise ValueError(f"unknown activation id {spec.activation_id}")
        nt = cfg["THREADS_PER_BLOCK"]
        self.threads = nt
        _make_resident(self, X, y, sw, theta, state)
        sizes = np.ascontiguousarray(spec.layer_sizes, dtype=np.int64)
        if sizes[0] != self.X.shape[1]:
            raise ValueError(f"layer_sizes[0]={sizes[0]} but X has {self.X.shape[1]} features")
        P = int(sum(sizes[l] * sizes[l + 1] + sizes[l + 1] for l in range(len(sizes) - 1)))
        if self.theta.shape[0] != P:
            raise ValueError(f"theta has {self.theta.shape[0]} parameters, expected {P}")
        self.P = P
        self.sizes = _device.upload(sizes)
        self.loss_id, self.rule_id = loss_id, rule_id
        self.activation_id = int(spec.activation_id)
        self.alpha = float(spec.alpha)
        self.l1_ratio = float(spec.l1_ratio)
        self.batch_size = int(spec.batch_size)
        hyper = np.zeros(_HYPER_PAD, dtype=np.float64)
        h = np.asarray(spec.hyper, dtype=np.float64).ravel()
        hyper[:h.size] = h
        self.hyper = _device.upload(hyper)
        shape = workspace_shape(sizes, self.batch_size)
        self.acts = _device.empty(shape, self.dtype)
        self.deltas = _device.empty(shape, self.dtype)
        self.fanout = max(2, cfg["REDUCE_FANOUT"])
        self.shared_bytes = 2 * nt * self.dtype.itemsize
        self.kernels = mlp_kernels(self.dtype)
        self.path = "fused"
        self.orders = None
        self.d_loss = None
        self._specialised = {}

    prepare = LinearEngine.prepare
    _loss_buffer = LinearEngine._loss_buffer
    _launcher = LinearEngine._launcher
    get_theta = LinearEngine.get_theta
    get_state = LinearEngine.get_state
    set_theta_state = LinearEngine.set_theta_state
    copy_theta_state_to = LinearEngine.copy_theta_state_to

    def _fused_args(self, order, n_batches, d_lrs, step0, d_loss):
        return (self.X, self.y, self.sw, order, self.batch_size, n_batches, self.loss_id,
                self.sizes, self.activation_id, self.alpha, self.l1_ratio, self.rule_id,
                self.hyper, d_lrs, step0, self.theta, self.state, self.acts, self.deltas,
                d_loss, self.fanout)

    def run_epoch(self, e, n_batches, lrs, step0, batch_loss):
        n_batches = int(n_batches)
        if n_batches <= 0:
            return 0
        if self.orders is None:
            raise RuntimeError("prepare(orders) must be called before run_epoch")
        order = self.orders[int(e)]
        d_loss = self._loss_buffer(n_batches)
        lrs = np.ascontiguousarray(lrs, dtype=np.float64)
        args = self._fused_args(order, n_batches, _device.upload(lrs[:n_batches]), int(step0),
                                d_loss)
        self._launcher("mlp_fused_epoch", args)[1, self.threads, 0, self.shared_bytes](*args)
        losses = d_loss.copy_to_host()[:n_batches]
        bad = np.flatnonzero(~np.isfinite(losses))
        n_done = int(bad[0]) if bad.size else n_batches
        upto = min(n_done + 1, n_batches)
        batch_loss[:upto] = losses[:upto]
        return n_done
