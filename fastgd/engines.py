"""Engines: the thin layer between the fit driver and a backend's kernels.

An engine is built once per fit with the data and the problem's fixed
settings, is handed every epoch's batch order once (``prepare``), and then runs
one whole epoch per call inside compiled code.  The CPU engine below serves the
reference, Cython and Numba backends (they share one function signature, see
docs/kernels.md); the CUDA engine in ``fastgd.kernels.cuda.engine`` has the same
methods but keeps everything on the device.
"""
import os
from dataclasses import dataclass

import numpy as np


def _float64(a):
    return np.ascontiguousarray(a, dtype=np.float64)


@dataclass
class LinearSpec:
    """The fixed settings of a linear problem, as kernel codes."""

    loss_id: int
    loss_param: object          # epsilon, or the function of a custom loss
    n_outputs: int
    fit_intercept: bool
    alpha: float
    l1_ratio: float
    rule_id: int
    hyper: np.ndarray
    batch_size: int

    def __post_init__(self):
        self.hyper = _float64(self.hyper)


@dataclass
class MLPSpec:
    """The fixed settings of an MLP problem, as kernel codes."""

    loss_id: int
    layer_sizes: np.ndarray
    activation_id: int
    alpha: float
    l1_ratio: float
    rule_id: int
    hyper: np.ndarray
    batch_size: int

    def __post_init__(self):
        self.layer_sizes = np.ascontiguousarray(self.layer_sizes, dtype=np.int64)
        self.hyper = _float64(self.hyper)


@dataclass
class CustomSpec:
    """A custom per-sample model: its @njit function (or its Python code for the reference)."""

    fn: object
    rule_id: int
    hyper: np.ndarray
    batch_size: int

    def __post_init__(self):
        self.hyper = _float64(self.hyper)


class CPUEngine:
    """Runs a backend module's ``linear_epoch``/``mlp_epoch`` on host arrays.

    ``module`` is any object with the kernel functions of docs/kernels.md
    (``fastgd.reference.linear_epoch``, ``fastgd.kernels.cy.linear_epoch``, ...).
    theta and state are owned by the engine (copies of what it is given).
    ``prepare`` is given one epoch's order at a time (``order_block_bytes = 0``),
    so the driver can draw the next one while this one trains (when
    ``epoch_threads == 1``: the epoch leaves the other cores free).
    """

    order_block_bytes = 0

    def __init__(self, module, X, y, sw, spec, theta, state):
        self.module = module
        self.X, self.y, self.spec = X, y, spec
        self.sw = sw if sw is not None else np.empty(0, dtype=X.dtype)
        self.theta = np.array(theta, copy=True)
        self.state = np.array(state, copy=True)
        self.grad = np.zeros_like(self.theta)
        self.orders = None
        self.work = None
        # How many cores an epoch keeps busy: the driver draws the next epoch's order
        # on another thread only while the epoch runs on one (an MLP team, a paired or
        # chunked batch would be slowed down by it).
        self.epoch_threads = os.cpu_count() or 1
        if isinstance(spec, LinearSpec) and callable(spec.loss_param):
            self.epoch_threads = 1  # a user's loss runs on the calling thread (nb/config.py)
        elif isinstance(spec, LinearSpec):
            fn = getattr(module, "epoch_threads", None)
            n_batches = -(-X.shape[0] // spec.batch_size)
            self.epoch_threads = 1 if fn is None else int(fn(
                X.shape[0], X.shape[1], spec.n_outputs, spec.fit_intercept, spec.batch_size,
                n_batches, itemsize=X.dtype.itemsize))
        elif isinstance(spec, CustomSpec):
            self.epoch_threads = 1
        if isinstance(spec, MLPSpec):
            self.work = np.zeros(module.mlp_workspace_size(spec.layer_sizes, spec.batch_size),
                                 dtype=self.theta.dtype)
        elif isinstance(spec, CustomSpec):
            self.work = np.zeros_like(self.theta)  # the per-sample gradient buffer

    def prepare(self, orders):
        self.orders = orders

    def run_epoch(self, e, n_batches, lrs, step0, batch_loss):
        s = self.spec
        order = self.orders[e]
        if isinstance(s, LinearSpec):
            return int(self.module.linear_epoch(
                self.X, self.y, self.sw, order, s.batch_size, n_batches, s.loss_id,
                s.loss_param, s.n_outputs, s.fit_intercept, s.alpha, s.l1_ratio, s.rule_id,
                s.hyper, lrs, step0, self.theta, self.grad, self.state, batch_loss))
        if isinstance(s, CustomSpec):
            return int(self.module.custom_model_epoch(
                s.fn, self.X, self.y, self.sw, order, s.batch_size, n_batches, s.rule_id, s.hyper,
                lrs, step0, self.theta, self.grad, self.state, batch_loss, self.work))
        return int(self.module.mlp_epoch(
            self.X, self.y, self.sw, order, s.batch_size, n_batches, s.loss_id, s.layer_sizes,
            s.activation_id, s.alpha, s.l1_ratio, s.rule_id, s.hyper, lrs, step0, self.theta,
            self.grad, self.state, batch_loss, self.work))

    def get_theta(self):
        return self.theta.copy()

    def theta_is_finite(self):
        # the driver asks after every epoch: no copy (a loss can map a NaN margin to 0,
        # so the kernels' check of the batch losses does not see every divergence)
        return bool(np.isfinite(self.theta).all())

    def get_state(self):
        return self.state.copy()

    def set_theta_state(self, theta, state):
        self.theta[...] = theta
        self.state[...] = state
