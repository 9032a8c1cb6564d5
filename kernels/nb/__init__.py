"""fastgd.kernels.nb: the Numba backend (``backend="numba"``).

Every kernel below is callable from Python *and* from your own ``@njit`` code
(docs/numba.md has the details and a worked example).  Same files, functions
and signatures as the reference backend (``fastgd.reference``) and
docs/kernels.md; codes in :mod:`fastgd.kernels.ids`.

``updates``
    ``sgd_update(theta, grad, buf, lr, momentum, dampening, nesterov, weight_decay, step)``
    ``adam_update(theta, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay,
    decoupled, amsgrad, step)``
    ``adagrad_update(theta, grad, acc, lr, lr_decay, weight_decay, eps, step)``
    ``rmsprop_update(theta, grad, square_avg, buf, grad_avg, lr, alpha, eps,
    weight_decay, momentum, centered)``
    ``apply_update(rule_id, hyper, theta, grad, state, lr, step)``
    -- one fused in-place pass each (PyTorch's formulas).
``losses``
    ``loss_dloss(loss_id, loss_param, p, y) -> (loss, dloss)``,
    ``softmax_loss_dloss(p, y, dl) -> loss``,
    ``point_loss(loss_id, loss_param, p, y)`` (a built-in code or a user's
    ``@njit`` loss), ``loss_and_dloss(loss_id, loss_param, p, y)`` (batch form).
``linear_epoch``
    ``linear_batch_gradient(X, y, sw, rows, loss_id, loss_param, n_outputs,
    fit_intercept, theta, grad, scale) -> float``
    ``add_penalty(theta, grad, n_penalized, alpha, l1_ratio) -> float``
    ``linear_epoch(X, y, sw, order, batch_size, n_batches, loss_id, loss_param,
    n_outputs, fit_intercept, alpha, l1_ratio, rule_id, hyper, lrs, step0,
    theta, grad, state, batch_loss) -> int``
    -- ``loss_param`` is a float, or a user's ``@njit`` ``(p, y) -> (loss,
    dloss)`` with ``loss_id = LOSS_CUSTOM`` (compiled into the loop).
``custom_epoch``
    ``custom_model_batch_gradient(fn, X, y, sw, rows, theta, grad, scale, gbuf) -> float``
    ``custom_model_epoch(fn, X, y, sw, order, batch_size, n_batches, rule_id,
    hyper, lrs, step0, theta, grad, state, batch_loss, gbuf) -> int``
    ``custom_model_predict(predict, theta, X, out)``
    -- ``fn(params, x, y, grad_out) -> loss`` is a user's ``@njit`` per-sample model.
``mlp_epoch``
    ``mlp_epoch(X, y, sw, order, batch_size, n_batches, loss_id, layer_sizes,
    activation_id, alpha, l1_ratio, rule_id, hyper, lrs, step0, theta, grad, state,
    batch_loss, work) -> int`` (a Python function: it starts the epoch's thread team;
    from ``@njit`` code call ``mlp_epoch_serial``, the same arguments and bits),
    ``mlp_batch_gradient``, ``mlp_add_penalty``, ``mlp_workspace_size``,
    ``mlp_n_params`` (docs/mlp.md).
``simd`` (internal)
    ``dot4_rows(X, i0, i1, i2, i3, lo, hi, w)`` and
    ``axpy4_rows(c0, c1, c2, c3, X, i0, i1, i2, i3, lo, hi, g)``: the margins of
    four rows over features [lo, hi) and the gradient pass that adds four scaled
    rows, as explicit 4-lane LLVM IR for float64 (the Cython backend's C loops,
    operation for operation).
``config``
    the compile options in one place: ``fastmath={"reassoc", "contract", "nsz"}``,
    ``nogil=True``, ``error_model="numpy"``, ``cache=True`` only where a cache
    can be written (``config.CACHE``), the ``kernel`` decorator.

Embedding, in short::

    import numpy as np
    from numba import njit
    from fastgd.kernels import ids
    from fastgd.kernels.nb.linear_epoch import linear_epoch

    @njit
    def train(X, y, orders, theta, state, lr):
        nb = (orders.shape[1] + 31) // 32
        losses = np.empty(nb)
        for e in range(orders.shape[0]):
            linear_epoch(X, y, np.empty(0), orders[e], 32, nb, ids.LOSS_LOGISTIC, 0.0,
                         1, True, 0.0, 0.0, ids.RULE_SGD, np.zeros(4), np.full(nb, lr),
                         e * nb, theta, np.zeros_like(theta), state, losses)
        return theta

Importing this package compiles nothing; each kernel compiles (or loads from
the cache) on its first call with new argument types.
"""
