"""Engines: the thin layer between the fit driver and a backend's kernels.

An engine is built once per fit with the data and the problem's fixed
settings, is handed every epoch's batch order once (``prepare``), and then runs
one whole epoch per call inside compiled code.  The CPU engine below serves the
reference, Cython and Numba backends (they share one function signature, see
docs/kernels.md); the CUDA engine in ``fastgd.kernels.cuda.engine`` has the same
methods but keeps everything on the device.
"""
import numpy as np


class LinearSpec:
    """The fixed settings of a linear problem, as kernel codes."""

    __slots__ = ("loss_id", "loss_param", "n_outputs", "fit_intercept", "alpha", "l1_ratio",
                 "rule_id", "hyper", "batch_size")

    def __init__(self, loss_id, loss_param, n_outputs, fit_intercept, alpha, l1_ratio,
                 rule_id, hyper, batch_size):
        self.loss_id = loss_id
        self.loss_param = loss_param
        self.n_outputs = n_outputs
        self.fit_intercept = fit_intercept
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.rule_id = rule_id
        self.hyper = np.ascontiguousarray(hyper, dtype=np.float64)
        self.batch_size = batch_size


class MLPSpec:
    """The fixed settings of an MLP problem, as kernel codes."""

    __slots__ = ("loss_id", "layer_sizes", "activation_id", "alpha", "l1_ratio", "rule_id",
                 "hyper", "batch_size")

    def __init__(self, loss_id, layer_sizes, activation_id, alpha, l1_ratio, rule_id, hyper,
                 batch_size):
        self.loss_id = loss_id
        self.layer_sizes = np.ascontiguousarray(layer_sizes, dtype=np.int64)
        self.activation_id = activation_id
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.rule_id = rule_id
        self.hyper = np.ascontiguousarray(hyper, dtype=np.float64)
        self.batch_size = batch_size


class CustomSpec:
    """A custom per-sample model: its function (the @njit one, or its Python code for the reference)."""

    __slots__ = ("fn", "rule_id", "hyper", "batch_size")

    def __init__(self, fn, rule_id, hyper, batch_size):
        self.fn = fn
        self.rule_id = rule_id
        self.hyper = np.ascontiguousarray(hyper, dtype=np.float64)
        self.batch_size = batch_size


class CPUEngine:
    """Runs a backend module's ``linear_epoch``/``mlp_epoch`` on host arrays.

    ``module`` is any object with the kernel functions of docs/kernels.md
    (``fastgd.reference.linear_epoch``, ``fastgd.kernels.cy.linear_epoch``, ...).
    theta and state are owned by the engine (copies of what it is given).
    """

    def __init__(self, module, X, y, sw, spec, theta, state):
        self.module = module
        self.X, self.y, self.spec = X, y, spec
        self.sw = sw if sw is not None else np.empty(0, dtype=X.dtype)
        self.theta = np.array(theta, copy=True)
        self.state = np.array(state, copy=True)
        self.grad = np.zeros_like(self.theta)
        self.orders = None
        self.work = None
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

    def get_state(self):
        return self.state.copy()

    def set_theta_state(self, theta, state):
        self.theta[...] = theta
        self.state[...] = state
