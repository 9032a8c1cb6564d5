"""FitResult (what a fit returns, and how to continue it) and DivergenceError."""
import numpy as np


class FitResult:
    """The outcome of a fit.

    Public attributes: ``coef`` ((d,), or (d, K) for softmax; None for an MLP or a
    CustomModel), ``intercept`` (a scalar of the parameters' dtype, or (K,); None for an
    MLP or a CustomModel), ``params`` (list of (W, b); a CustomModel's ``[params]``), ``history``
    ({"loss": per-epoch mean batch loss, "time": per-epoch seconds}), ``n_iter``
    (total updates), ``iterations_per_epoch``, ``epochs``, ``batch_size``,
    ``backend``, ``loss`` and ``optimizer``.

    Passing it back as ``fit(..., init=result)`` continues exactly where it
    stopped: parameters, optimizer state and the random stream are all carried,
    so 3 epochs then 2 more equal 5 epochs bit for bit.  (A schedule that spans the
    run's length, such as "cosine", spans the first fit's 3 epochs; once it has run its
    course, continuing is refused until ``schedule=`` is passed again:
    docs/decisions.md.)
    """

    def __init__(self, *, model, loss, theta, opt_state, optimizer, stream, history, n_iter,
                 iterations_per_epoch, epochs, batch_size, backend, config):
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.history = history
        self.n_iter = n_iter
        self.iterations_per_epoch = iterations_per_epoch
        self.epochs = epochs
        self.batch_size = batch_size
        self.backend = backend
        self._theta = theta
        self._opt_state = opt_state
        self._stream = stream  # a batching.StreamState: where the fit's random stream stands
        self._config = config
        self.params = model.unpack(theta)
        self.coef, self.intercept = model.coef_intercept(theta)

    @property
    def _rng_state(self):
        """The PCG64 state a continuation starts from (owed full-batch permutations drawn)."""
        return self._stream.state

    # -- prediction -----------------------------------------------------------------
    def _check_X(self, X):
        from .validation import check_X, on_device, to_host

        if on_device(X):  # predictions are computed on the host (NumPy)
            X = to_host("X", X)
        X = check_X(X, self._theta.dtype,
                    overflow_fix="The model's parameters are float32; refit with dtype='float64'")
        if X.shape[1] != self.model.n_features:
            raise ValueError(f"Invalid X: it has {X.shape[1]} features but the model was fitted "
                             f"on {self.model.n_features}")
        return X

    def decision_function(self, X):
        """Raw model outputs: (n,) for one output, (n, K) for softmax."""
        return self.model.decision(self._theta, self._check_X(X))

    def predict(self, X):
        """Predicted targets (regression) or labels in the encoding y was given in."""
        out = self.decision_function(X)
        kind = getattr(self.loss, "kind", "regression")
        if kind == "regression":
            return out
        if kind == "multiclass":
            return np.argmax(out, axis=1)
        if kind == "binary_pm1" and self._config.get("label_encoding") == "pm1":
            return np.where(out > 0, 1, -1)
        return (out > 0).astype(np.int64)

    @property
    def predict_proba(self):
        """``predict_proba(X)``, class probabilities: (n, 2) for logistic, (n, K) for softmax.

        The other losses have none: there the attribute does not exist (``hasattr`` is
        False), as with scikit-learn's ``available_if`` methods, so code that probes for it
        sees the truth.
        """
        kind = getattr(self.loss, "kind", None)
        if kind not in ("binary01", "multiclass") or self.loss.name not in ("logistic", "softmax"):
            raise AttributeError(f"predict_proba is available for loss='logistic' and 'softmax', "
                                 f"not {getattr(self.loss, 'name', self.loss)!r}")
        return self._predict_proba

    def _predict_proba(self, X):
        out = self.decision_function(X)
        if getattr(self.loss, "kind", None) == "binary01":
            e = np.exp(-np.abs(out))
            p1 = np.where(out >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
            return np.column_stack([1.0 - p1, p1])
        z = np.exp(out - out.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def score(self, X, y):
        """Accuracy for classification losses, R² for regression losses.

        ``y`` is checked like ``fit``'s: labels in either binary encoding the loss
        accepts (0/1 or -1/+1 for the hinge family) are compared in it, and labels the
        model cannot predict are an error, not a silently low accuracy.
        """
        from .validation import _show, check_labels, check_targets

        out = self.decision_function(X)
        y = check_targets(y, out.shape[0])
        kind = getattr(self.loss, "kind", "regression")
        if kind == "regression":
            ss_res = float(np.sum((y - out) ** 2))
            ss_tot = float(np.sum((y - y.mean()) ** 2))
            return 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
        if kind == "multiclass":
            K = out.shape[1]
            if not (np.array_equal(y, np.round(y)) and y.min() >= 0 and y.max() < K):
                raise ValueError(f"Invalid y: labels must be the model's classes, integers 0..{K - 1}; "
                                 f"got values {_show(np.unique(y).tolist())}. Encode y as the fit's y was")
            return float(np.mean(np.argmax(out, axis=1) == y))
        y_int, _ = check_labels(y, kind, self.loss.name)
        if kind == "binary_pm1":  # y_int is -1/+1 whichever encoding y came in
            return float(np.mean(np.where(out > 0, 1.0, -1.0) == y_int))
        return float(np.mean((out > 0) == (y_int == 1.0)))

    def __repr__(self):
        last = self.history["loss"][-1] if self.history["loss"] else float("nan")
        # a CustomModel's loss is its fn's
        loss = self.model if getattr(self.model, "kind", None) == "custom" else \
            getattr(self.loss, "name", self.loss)
        return (f"FitResult(backend={self.backend!r}, loss={loss!r}, "
                f"epochs={self.epochs}, batch_size={self.batch_size}, n_iter={self.n_iter}, "
                f"final_loss={last:.6g})")


class DivergenceError(FloatingPointError):
    """The loss or the parameters became non-finite during training.

    ``epoch`` and ``iteration`` (both 0-based, the iteration within its epoch)
    say where; ``result`` is a FitResult holding the last finite parameters.
    """

    def __init__(self, message, *, epoch, iteration, result):
        super().__init__(message)
        self.epoch = epoch
        self.iteration = iteration
        self.result = result
