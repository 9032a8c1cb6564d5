"""The public entry points: ``fit`` and its three spellings ``bgd``, ``sgd``, ``mbgd``.

``fit`` validates everything once, turns names into kernel codes, draws the
batch order, then runs one compiled call per epoch.  The Python loop runs
once per epoch, never per batch.
"""
import inspect
import time

import numpy as np

from . import backends, losses, optim, schedules
from .batching import OrderStream, StreamState, _iterations_per_epoch
from .engines import LinearSpec, MLPSpec
from .kernels.checks import is_integer, is_real
from .models import MLP, Linear, split_linear_init
from .results import DivergenceError, FitResult
from .validation import (PENALTIES, check_batch_options, check_device_X, check_finite,
                         check_labels, check_penalty, check_sample_weight, check_seed, check_targets,
                         check_X, device_meta, on_device, resolve_dtype, to_host)


def fit(X, y, *, loss=None, model=None, batch_size=None, epochs=1, optimizer=None, lr=None,
        schedule=None, penalty=None, alpha=None, l1_ratio=None, fit_intercept=None,
        sample_weight=None, shuffle=None, sampling=None, drop_last=None, seed=None,
        init=None, backend="auto", dtype=None, callback=None, accumulate=None):
    """Train a model by mini-batch gradient descent and return a :class:`FitResult`.

    BGD, SGD and MBGD are one algorithm with batch sizes n (``batch_size=None``),
    1 and b.  An epoch is one pass over the data; an iteration is one update.

    Parameters beyond the obvious ones:

    loss : a name ("squared", "logistic", "softmax", "hinge", "squared_hinge",
        "modified_huber", "huber", "epsilon_insensitive",
        "squared_epsilon_insensitive", "perceptron"), a ``fastgd.losses`` object
        (e.g. ``Huber(epsilon=1.35)``) or ``fastgd.Loss(fn)`` for your own @njit loss.
        None: "squared", or the previous fit's loss when continuing one.
    model : None (linear), ``fastgd.MLP(...)`` or ``fastgd.CustomModel(...)``.
    optimizer : None (``SGD(lr=lr)``), a name ("sgd", "adam", ...) built with
        ``lr``, or an instance from ``fastgd.optim`` (it carries its own lr: an
        ``lr=`` that differs from it is an error).  The fit works on a copy: editing
        the instance later changes neither the fit nor its results, and each result's
        ``optimizer`` is its own.
    lr : the learning rate (None: 0.01, or the previous fit's when continuing).
    schedule : None (constant), a name from ``fastgd.schedules.NAMES``, a
        schedule object or a callable ``t -> lr`` of the 0-based iteration.
    penalty, alpha, l1_ratio : scikit-learn's penalty on the weights (never the
        intercept), part of the loss the gradient is taken of.  A penalty needs its
        ``alpha`` (no default: scikit-learn's is 1e-4, PyTorch's weight decay 0; when
        continuing a fit, that fit's); ``alpha`` without a penalty is an error, except
        for ``schedule="optimal"`` (which reads it, as scikit-learn's does), and so is
        ``l1_ratio`` (default 0.15) with any penalty but "elasticnet".
    fit_intercept, shuffle, sampling, drop_last : None means the default (True, True,
        "shuffle", False), or the continued fit's setting.
    sampling : "shuffle" (a permutation per epoch) or "replacement".
    seed : seeds the one ``np.random.default_rng`` of the fit (see ``batch_order``).
    init : initial parameters, or a previous FitResult to continue exactly
        where it stopped (parameters, optimizer state, random stream; the
        previous model, loss, optimizer, schedule, penalty, shuffle, sampling and
        drop_last are reused unless new ones are given; ``batch_size`` is not).  A
        new ``lr`` keeps the optimizer and its state and replaces a constant
        schedule's step size; a ``seed`` other than the first fit's is refused (the
        stream carries on).  Initial parameters of a linear model: ``coef`` alone
        (shape (d,), or (d, K) for softmax; the intercept starts at 0), the tuple
        ``(coef, intercept)``, or ``[(coef, intercept)]``; of an MLP, its list of
        ``(W, b)``; of a CustomModel, ``init`` is given to ``CustomModel`` itself.
    backend : "auto", "numpy", "cython", "numba" or "cuda" ("auto" continuing a fit:
        the backend it ran on).
    dtype : float32 or float64 (default: float32 input stays float32, else float64;
        continuing a fit: its dtype).
    accumulate : None, or "float64" to keep float32 data but accumulate
        gradients and parameters in float64 (continuing a fit: as it did).  The
        result's parameters are then float64: "float32 in, float32 out" holds for the
        default, where they are float32.
    callback : called after every epoch with the FitResult so far; returning
        True stops training.
    """
    if callback is not None and not callable(callback):
        raise TypeError(f"Invalid callback: {callback!r}; it must be callable(result) or None")
    run = Run(X, y, loss=loss, model=model, batch_size=batch_size, epochs=epochs, optimizer=optimizer,
              lr=lr, schedule=schedule, penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
              fit_intercept=fit_intercept, sample_weight=sample_weight, shuffle=shuffle,
              sampling=sampling, drop_last=drop_last, seed=seed, init=init, backend=backend,
              dtype=dtype, accumulate=accumulate)
    return run.train(epochs, callback)


class Run:
    """A validated, ready-to-train fit: the engine, the random stream, the schedule.

    ``fit`` is ``Run(...).train(epochs)``.  ``train`` can be called again to go
    on (one compiled call per epoch, state kept on the engine); benchmarks use
    it to time epochs without re-validating the data.
    """

    def __init__(self, X, y, *, loss, model, batch_size, epochs, optimizer, lr, schedule, penalty,
                 alpha, l1_ratio, fit_intercept, sample_weight, shuffle, sampling, drop_last, seed,
                 init, backend, dtype, accumulate):
        prev = init if isinstance(init, FitResult) else None
        if prev is not None and seed is not None and not _same_seed(seed, prev._config["seed"]):
            raise ValueError(
                f"Invalid seed: {seed!r} with init=<a FitResult started with seed="
                f"{prev._config['seed']!r}>; a continued fit carries on that fit's random stream, so "
                f"a new seed would be ignored. Drop seed= to continue exactly, or start a new stream "
                f"from its parameters (init=(result.coef, result.intercept); an MLP's "
                f"init=result.params)")
        if loss is None:
            loss = prev.loss if prev is not None else "squared"
        if prev is not None and _is_name(backend, "auto"):
            backend = prev.backend  # the same kernels, so the same bits
            if backend not in backends.available_backends():
                raise ValueError(
                    f"Invalid init: the fit ran on backend={backend!r} (backend='auto' continues "
                    f"on it, for the same bits), which is not available here; pass one of "
                    f"{backends.available_backends()} as backend= to continue it there (the "
                    f"backends agree to 1e-9, not bit for bit)")
        if prev is not None and model is None:  # the model carries over like the loss
            if prev.model.kind == "linear":
                fit_intercept = prev.model.fit_intercept if fit_intercept is None else fit_intercept
            else:
                model = prev.model
        if fit_intercept is None:
            fit_intercept = True
        # options not given (None) carry over from a continued fit, else take their defaults
        carried = prev._config if prev is not None else {}
        sampling = carried.get("sampling", "shuffle") if sampling is None else sampling
        if _is_name(sampling, carried.get("sampling", "shuffle")):  # (another: its defaults)
            shuffle = carried.get("shuffle", True) if shuffle is None else shuffle
            drop_last = carried.get("drop_last", False) if drop_last is None else drop_last
        shuffle = True if shuffle is None else shuffle
        drop_last = False if drop_last is None else drop_last
        given_l1_ratio = l1_ratio is not None
        if alpha is None and _is_name(schedule, "optimal") and carried.get("optimal_alpha"):
            # "optimal" named again: the alpha it read carries, even without a penalty (whose
            # strength, 0 there, is what "alpha" holds)
            alpha = carried["optimal_alpha"]
        if prev is not None and penalty is None:
            # the penalty carries over like the loss (penalty="none" drops it); an alpha
            # or an l1_ratio alone changes its strength or an elasticnet's mix
            penalty, alpha = carried["penalty"], carried["alpha"] if alpha is None else alpha
        elif (alpha is None and prev is not None and penalty is not None
              and not _is_name(penalty, "none") and _is_name(penalty, carried["penalty"])):
            alpha = carried["alpha"]  # the same penalty restated: its strength carries over
        if l1_ratio is None:
            same = (prev is not None and _is_name(penalty, "elasticnet")
                    and carried["penalty"] == "elasticnet")
            l1_ratio = carried["l1_ratio"] if same else 0.15
        if (given_l1_ratio and (penalty is None or isinstance(penalty, str))
                and penalty != "elasticnet" and penalty in PENALTIES + (None, "none")):
            raise ValueError(
                f"Invalid l1_ratio: {l1_ratio!r} with penalty={penalty!r}; only the elasticnet "
                f"penalty mixes l1 and l2, so it would be ignored. Pass penalty='elasticnet' (with "
                f"alpha=) to use it, or leave l1_ratio out")
        alpha_missing = alpha is None
        if alpha_missing:
            alpha = 0.0
        loss_obj = losses.get(loss)
        custom_loss = not isinstance(loss_obj, losses.LinearLoss)
        kind = _model_kind(model)
        if kind == "mlp" and (custom_loss or loss_obj.name not in MLP.HEAD_LOSSES):
            raise ValueError(f"Invalid loss for an MLP: {getattr(loss_obj, 'name', loss_obj)!r}; an MLP "
                             f"head supports {list(MLP.HEAD_LOSSES)}")
        _check_model_options(kind, loss_obj, penalty, fit_intercept)

        # the scalar arguments first: a bad one is reported before X is converted
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"Invalid shuffle: {shuffle!r}; it must be True or False")
        if not isinstance(fit_intercept, (bool, np.bool_)):
            raise TypeError(f"Invalid fit_intercept: {fit_intercept!r}; it must be True or False")
        alpha_eff, l1r = check_penalty(penalty, alpha, l1_ratio)
        if alpha_missing and penalty in PENALTIES:
            raise ValueError(
                f"Invalid alpha: None with penalty={penalty!r}; a penalty needs its strength, and "
                f"without one it would do nothing. Pass alpha=, e.g. alpha=1e-4 (scikit-learn's "
                f"default)")
        if alpha_missing and _is_name(schedule, "optimal"):
            raise ValueError(
                "Invalid alpha: not given, with schedule='optimal', which sets the step size "
                "1/(alpha (t0 + t)) from it, so it needs alpha > 0. Pass alpha=, e.g. "
                "penalty='l2', alpha=1e-4 (scikit-learn's default)")
        if penalty in (None, "none") and alpha != 0 and not _is_name(schedule, "optimal"):
            raise ValueError(
                f"Invalid alpha: {alpha} with penalty={penalty!r}; without a penalty alpha would be "
                f"ignored. Pass penalty='l2' (or 'l1', 'elasticnet') to use it, or leave alpha out")
        if lr is not None:
            lr = optim._check_lr(lr)
        lr = _lr_from_schedule(lr, schedule, optimizer)
        if isinstance(optimizer, optim.Optimizer) and lr is not None and lr != optimizer.lr:
            raise ValueError(
                f"Invalid lr: {lr} with optimizer={optimizer!r}, whose lr is {optimizer.lr}; give the "
                f"learning rate once, in the optimizer or as lr= (with optimizer=None or a name)")
        ss = check_seed(seed)

        # X on a GPU stays there for the cuda backend (checked in place); an explicitly
        # chosen host backend gets one host copy.  y and sample_weight (1/d of X) are
        # always checked and encoded on the host; the cuda engine sends them back once.
        x_on_device = on_device(X)
        if x_on_device and backends.resolve(backend, kind, custom_loss, X) != "cuda":
            X, x_on_device = to_host("X", X), False
        if on_device(y):
            y = to_host("y", y)
        if on_device(sample_weight):
            sample_weight = to_host("sample_weight", sample_weight)

        if prev is not None and dtype is None:
            dtype = prev._config["dtype"]
        dtype = resolve_dtype(dtype, X)
        if (prev is not None and accumulate is None and dtype == prev._config["dtype"]
                and prev._theta.dtype != dtype):
            accumulate = "float64"  # float32 data accumulated in float64 goes on so
        acc = _accumulation_dtype(accumulate, dtype)
        if prev is not None and np.dtype(prev._theta.dtype) != acc:
            raise ValueError(f"Invalid init: the previous fit accumulated in {prev._theta.dtype}, this one "
                             f"would use {acc}; pass the same dtype/accumulate to continue it")

        Xc = check_device_X(X, dtype) if x_on_device else check_X(X, dtype)
        n, d = device_meta(Xc)[0] if x_on_device else Xc.shape
        y_int, encoding = check_labels(check_targets(y, n), getattr(loss_obj, "kind", "regression"),
                                       getattr(loss_obj, "name", "custom"),
                                       known=carried.get("label_encoding"))
        n_outputs = 1
        if getattr(loss_obj, "kind", None) == "multiclass":
            n_outputs = max(encoding, prev.model.n_outputs if prev is not None else 2, 2)
            if prev is None and init is not None and kind == "linear":
                # an explicit coef (d, K) keeps its K classes, as a result does, on data
                # that lacks the last ones
                n_outputs = max(n_outputs, _init_classes(init))
        sw = check_sample_weight(sample_weight, n, dtype)
        bs = n if batch_size is None else batch_size
        check_batch_options(n, bs, epochs, sampling, drop_last, shuffle)
        bs, epochs = int(bs), int(epochs)  # NumPy integers would wrap in ipe * epochs
        if prev is not None and optimizer is None:
            # a new step size, the same rule and state (checked again: the result's optimizer
            # is the user's to edit)
            opt = prev.optimizer.copy(**({} if lr is None else {"lr": lr}))
        else:
            if lr is None:  # the documented default, or the continued fit's step size
                lr = prev.optimizer.lr if prev is not None else 0.01
            opt = optim.get(optimizer, lr)
        mdl = _bind_model(model, kind, d, n_outputs, fit_intercept)
        name = backends.resolve(backend, kind, custom_loss, X)
        ipe = _iterations_per_epoch(n, bs, drop_last, sampling)
        if prev is not None and schedule is None:
            sched = prev._config["schedule"]
            if opt.lr != prev.optimizer.lr:
                if type(sched) is not schedules.Constant:
                    raise ValueError(
                        f"Invalid lr: {opt.lr} to continue a fit whose step sizes come from its "
                        f"schedule {sched!r}, which would ignore it. Pass schedule= as well (built "
                        f"with this lr), or leave lr out to go on with that schedule")
                sched = schedules.Constant(opt.lr)
            elif (not sched.needs_history and not schedules.user_function_inside(sched)
                  and not _epoch_lrs(sched, prev.n_iter, ipe, ()).any()):
                raise ValueError(
                    f"Invalid init: the schedule carried from the previous fit, {sched!r}, gives "
                    f"step size 0 to every update of this run's first epoch (updates "
                    f"{prev.n_iter + 1} to {prev.n_iter + ipe}): it has run its course, so the fit "
                    f"would not move. Pass schedule= for this run (a name such as 'cosine' is "
                    f"built over this run's length)")
        else:
            # "optimal" reads alpha even without a penalty (scikit-learn's rule); its t0
            # heuristic reads a scalar loss's derivative, and takes softmax as the logistic
            # loss, whose derivative there is below 1 (docs/decisions.md)
            dloss = None if n_outputs > 1 else getattr(loss_obj, "py_dloss", None)
            # a name sized by the run covers this run, from the continued fit's count on
            sched = schedules.get(schedule, opt.lr, ipe * epochs, float(alpha), dloss,
                                  start=prev.n_iter if prev is not None else 0)

        if prev is not None:
            _check_continuation(prev, mdl, loss_obj, opt)
            theta = prev._theta.copy()
            state = prev._opt_state.copy()
            stream0 = prev._stream
            step, epochs_done = prev.n_iter, prev.epochs
            history = {"loss": list(prev.history["loss"]), "time": list(prev.history["time"])}
        else:
            stream0 = StreamState(np.random.default_rng(ss).bit_generator.state)
            if init is not None:
                theta = mdl.theta_from_init(init, acc)
            else:
                # The init stream is the first child of the order stream's seed (what
                # ss.spawn(1)[0] gives, built without mutating a SeedSequence the caller
                # passed), so batch_order(seed) reproduces the fit's batches whatever the
                # model's initialisation draws.
                child = np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (0,),
                                               pool_size=ss.pool_size)
                theta = mdl.init_theta(np.random.default_rng(child), acc)
            state = opt.init(theta)
            step, epochs_done = 0, 0
            history = {"loss": [], "time": []}

        spec = _spec(mdl, loss_obj, name, alpha_eff, l1r, opt, bs)
        with np.errstate(over="ignore"):  # named below, with the value that overflowed
            yk = y_int.astype(dtype)
        check_finite("y", yk, source=y_int)
        if getattr(loss_obj, "kind", None) == "multiclass":
            encoding = n_outputs  # the model's K, which a later batch may not show in full
        config = {"dtype": dtype, "label_encoding": encoding, "schedule": sched, "seed": seed,
                  "penalty": penalty, "alpha": alpha_eff, "l1_ratio": l1r, "shuffle": shuffle,
                  "sampling": sampling, "drop_last": drop_last,
                  "optimal_alpha": float(alpha) if _is_name(schedule, "optimal") else
                  carried.get("optimal_alpha")}

        self.engine = backends.make_engine(name, kind, Xc, yk, sw, spec, theta, state)
        self.kind, self.backend, self.model, self.loss, self.optimizer = kind, name, mdl, loss_obj, opt
        self.X, self.y, self.sw, self.spec = Xc, yk, sw, spec
        self.schedule, self.config = sched, config
        self.n, self.batch_size, self.ipe = n, bs, ipe
        self.shuffle, self.sampling, self.drop_last = shuffle, sampling, drop_last
        # Engines that take one epoch's order at a time (the CPU ones) get the next
        # epoch's shuffle drawn in the background while an epoch trains on one core.
        self.order_block_bytes = getattr(self.engine, "order_block_bytes", 0)
        self.stream = OrderStream(stream0, n, bs, shuffle, sampling, drop_last,
                                  prefetch=(self.order_block_bytes == 0
                                            and getattr(self.engine, "epoch_threads", 1) == 1))
        self.trained = False
        # Reused every epoch: fresh 8-byte-per-iteration arrays would be page-faulted in
        # again each epoch (about 0.5 ms at 100,000 iterations on a VM).
        self._batch_loss = np.empty(ipe, dtype=np.float64)
        self._constant_lrs = None
        self.step, self.epochs_done, self.history = step, epochs_done, history

    def _lrs(self):
        """This epoch's step sizes (one array for the whole run when constant).

        Writeable, though no kernel writes it: Numba types a read-only array apart, so a
        read-only one would compile every epoch kernel a second time beside the one that a
        schedule's fresh arrays (or a direct kernel call) use.
        """
        if type(self.schedule) is not schedules.Constant:
            return _epoch_lrs(self.schedule, self.step, self.ipe, self.history["loss"])
        if self._constant_lrs is None:
            self._constant_lrs = _epoch_lrs(self.schedule, self.step, self.ipe, self.history["loss"])
        return self._constant_lrs

    def result(self, theta, state, n_iter, n_epochs):
        return FitResult(model=self.model, loss=self.loss, theta=theta, opt_state=state,
                         optimizer=self.optimizer.copy(), stream=self.stream.state(),
                         history={k: list(v) for k, v in self.history.items()}, n_iter=n_iter,
                         iterations_per_epoch=self.ipe, epochs=n_epochs, batch_size=self.batch_size,
                         backend=self.backend, config=self.config)

    def train(self, epochs, callback=None):
        """Run ``epochs`` more epochs; return the FitResult (DivergenceError on failure)."""
        engine, ipe, history, stream = self.engine, self.ipe, self.history, self.stream
        theta0, state0, step0, stream0 = engine.get_theta(), engine.get_state(), self.step, stream.state()
        block = max(1, min(epochs, self.order_block_bytes // (8 * stream.m)))
        # A divergence replay runs this call's epochs again, asking the schedule for their
        # step sizes again: each epoch's sum is kept to check it, not the arrays (n * 8
        # bytes an epoch at b = 1, which had grown without bound)
        sums = []
        try:
            for e in range(epochs):
                if e % block == 0:
                    engine.prepare(self._orders(min(block, epochs - e), e + 1 < epochs or self.trained))
                lrs = self._lrs()
                sums.append(None if lrs is self._constant_lrs else float(np.add.reduce(lrs)))
                batch_loss = self._batch_loss
                t0 = time.perf_counter()
                try:
                    n_done = engine.run_epoch(e % block, ipe, lrs, self.step, batch_loss)
                except Exception as exc:
                    self._note_user_error(exc)
                    raise
                elapsed = time.perf_counter() - t0
                if n_done < ipe or not _theta_is_finite(engine):
                    self._diverged(theta0, state0, step0, stream0, sums, lrs, e, n_done,
                                   batch_loss)
                self.step += ipe
                self.epochs_done += 1
                history["loss"].append(float(np.add.reduce(batch_loss)) / ipe)  # np.mean, less overhead
                history["time"].append(elapsed)
                if callback is not None and _stop(callback(self.result(
                        engine.get_theta(), engine.get_state(), self.step, self.epochs_done))):
                    break
        finally:
            self.trained = True
            stream.close()
        return self.result(engine.get_theta(), engine.get_state(), self.step, self.epochs_done)

    def _user_function(self):
        """'model' or 'loss' when the epoch runs the user's compiled code, else None."""
        from .custom import Loss

        return ("model" if self.kind == "custom" else "loss" if isinstance(self.loss, Loss)
                else None)

    def _note_user_error(self, exc):
        """Tell where an exception raised inside the user's compiled function came from.

        Only a Loss or a CustomModel runs user code inside an epoch; the kernel cannot say
        which batch it was on, but the driver knows the epoch.
        """
        if (type(exc).__module__.split(".")[0] == "numba"
                or type(exc).__name__ == "FunctionNotCompiled"):  # (kernels.nb.config)
            return  # Numba could not compile the function: nothing ran yet
        yours = self._user_function()
        if yours and hasattr(exc, "add_note"):  # Python >= 3.11
            first, last = self.step + 1, self.step + self.ipe
            updates = f"update {first}" if first == last else f"updates {first} to {last}"
            exc.add_note(f"fastgd: raised while your {yours} function ran in epoch "
                         f"{self.epochs_done} of the fit (0-based; {updates} overall). The "
                         f"parameters reached so far are not returned: pass callback= to keep "
                         f"each epoch's result")

    def _orders(self, count, more_to_come, stream=None):
        """The next ``count`` epochs' orders, (count, m), for ``engine.prepare``."""
        stream = self.stream if stream is None else stream
        if count == 1:
            return stream.next(prefetch=more_to_come)[None, :]
        orders = np.empty((count, stream.m), dtype=np.int64)
        for row in orders:  # next() reuses its buffer: copy each epoch out
            row[...] = stream.next(prefetch=False)
        return orders

    def _diverged(self, theta0, state0, step0, stream0, sums, lrs, e, k, batch_loss):
        """Find where this call's epoch ``e`` diverged, with the last finite parameters; raise.

        The epoch stopped before its update ``k`` (``k < ipe``: that batch's loss was
        not finite), or ran to its end (``k == ipe``) leaving non-finite parameters:
        a loss can map a NaN margin to a finite value, or an update rule can make
        them (Adam with eps = 0 on a constant column).  Either way an earlier update
        may already have made them non-finite, so replay the call deterministically
        on a fresh engine (every earlier epoch ended finite: the driver checks each),
        with the step sizes of the earlier epochs asked of the schedule again (a
        function of the update count and the loss history, checked against ``sums``),
        and find the first update whose result is not finite.  Divergence is rare: the
        normal path pays one finiteness check of the parameters an epoch.
        """
        engine = backends.make_engine(self.backend, self.kind, self.X, self.y, self.sw, self.spec,
                                      theta0, state0)
        stream = OrderStream(stream0, self.n, self.batch_size, self.shuffle, self.sampling,
                             self.drop_last)
        step, epoch, ipe = step0, self.epochs_done, len(lrs)
        losses = self.history["loss"]
        before = len(losses) - e  # the history as this call found it
        for ep in range(e):
            again = _epoch_lrs(self.schedule, step, ipe, losses[:before + ep])
            if sums[ep] is not None and float(np.add.reduce(again)) != sums[ep]:
                self._diverged_unreplayed(theta0, state0, step0, e, k, ep)
            engine.prepare(self._orders(1, False, stream))
            engine.run_epoch(0, ipe, again, step, np.empty(ipe))
            step += ipe
        engine.prepare(self._orders(1, False, stream))
        start_theta, start_state = engine.get_theta(), engine.get_state()

        def finite_after(j):  # the parameters after the epoch's first j updates
            engine.set_theta_state(start_theta, start_state)
            if j:
                engine.run_epoch(0, j, lrs[:j], step, np.empty(j))
            return _theta_is_finite(engine)

        if k == 0 or (k < ipe and finite_after(k)):
            j = k  # the batch loss of update k was the first non-finite value
            what = f"the batch loss became {batch_loss[k]}"
        else:
            # the first update that made them non-finite: lo's result is finite, hi's
            # is not (the start of the epoch is finite); the common case, the update
            # just before k, takes one more replay
            lo, hi = (k - 1, k) if k == 1 or finite_after(k - 1) else (0, k - 1)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if finite_after(mid):
                    lo = mid
                else:
                    hi = mid
            j = lo
            finite_after(j)
            what = (f"the update made the parameters non-finite (that batch's loss was "
                    f"{batch_loss[j]:g})")
        last = self.result(engine.get_theta(), engine.get_state(), step + j, epoch)
        yours = self._user_function()
        user_fn = (f"; or check your {yours} function at those parameters (a NaN or inf it "
                   f"returns stops the fit too)" if yours else "")
        raise DivergenceError(
            f"fit diverged at epoch {epoch}, iteration {j} of {ipe} (0-based; update "
            f"{step + j + 1} overall): {what}. The error's .result holds the last finite "
            f"parameters (after {step + j} updates). Lower the learning rate (it was "
            f"{lrs[j]:g}), standardise X{'' if self.kind == 'custom' else ', or add a penalty'}"
            f"{user_fn}.",
            epoch=epoch, iteration=j, result=last)

    def _diverged_unreplayed(self, theta0, state0, step0, e, k, ep):
        """The replay cannot run: the schedule gave epoch ``ep`` of this call other step
        sizes when asked again (a callable that keeps state of its own).  Report where the
        kernel stopped, with the parameters this call started from, the last known finite."""
        epoch, ipe = self.epochs_done, self.ipe
        j = min(k, ipe - 1)
        last = self.result(theta0, state0, step0, self.epochs_done - e)
        last.history = {key: values[:len(values) - e] for key, values in last.history.items()}
        raise DivergenceError(
            f"fit diverged at epoch {epoch}, by iteration {j} of {ipe} (0-based; update "
            f"{self.step + j + 1} overall). The update that made it is not located: your "
            f"schedule gave epoch {self.epochs_done - e + ep} other step sizes when asked again "
            f"(a schedule must be a function of the update count, and of the loss history, "
            f"alone), so the error's .result holds the parameters this call started from "
            f"(after {step0} updates). Lower the learning rate, or standardise X.",
            epoch=epoch, iteration=j, result=last)


def _lr_from_schedule(lr, schedule, optimizer):
    """The step size a schedule that fixes its own (a number, a Schedule object) gives
    the optimizer built from ``lr``.  An ``lr=`` or an optimizer object's lr as well
    would be ignored (and reported as what ran), so either is refused unless equal.
    ("optimal" and callables ignore lr as scikit-learn's "optimal" ignores eta0.)"""
    own = None
    if is_real(schedule):
        own = schedules.constant_step(schedule)
    elif isinstance(schedule, schedules.Schedule):
        own = getattr(schedule, "lr", None)
    if own is None:
        return lr
    if lr is not None and lr != own:
        raise ValueError(
            f"Invalid lr: {lr} with schedule={schedule!r}, which sets the step size ({own}) "
            f"and would ignore lr; give the learning rate once, in the schedule or as lr=")
    if isinstance(optimizer, optim.Optimizer):
        if optimizer.lr != own:
            raise ValueError(
                f"Invalid optimizer: {optimizer!r} with schedule={schedule!r}, which sets the "
                f"step size ({own}) and would ignore the optimizer's lr; build the optimizer "
                f"with lr={own}, or give the schedule that lr")
        return lr
    return optim._check_lr(own)


def _stop(answer):
    # only True stops: a callback that returns "no" or a loss value is a bug to point at
    if answer is None or isinstance(answer, (bool, np.bool_)):
        return bool(answer)
    raise TypeError(f"Invalid callback return value: {answer!r}; return True to stop training, "
                    f"None or False to go on")


def _same_seed(a, b):
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # an array-like seed: compare by value
        return np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))


def _is_name(value, name):
    return isinstance(value, str) and value == name


def _theta_is_finite(engine):
    check = getattr(engine, "theta_is_finite", None)
    return check() if check is not None else bool(np.isfinite(engine.get_theta()).all())


def bgd(X, y, **kw):
    """Batch gradient descent: one update per epoch from all n samples.

    ``fit(X, y, batch_size=None, **kw)``: every keyword argument of :func:`fit` but
    ``batch_size``."""
    if kw.get("batch_size") is not None:
        raise ValueError(f"Invalid batch_size for bgd: {kw['batch_size']!r}; bgd always uses the "
                         f"whole data set (call mbgd for mini-batches)")
    kw["batch_size"] = None
    return fit(X, y, **kw)


def sgd(X, y, **kw):
    """Stochastic gradient descent: one update per sample (batch size 1).

    ``fit(X, y, batch_size=1, **kw)``: every keyword argument of :func:`fit` but
    ``batch_size``."""
    if "batch_size" in kw and not (is_integer(kw["batch_size"]) and kw["batch_size"] == 1):
        raise ValueError(f"Invalid batch_size for sgd: {kw['batch_size']!r}; sgd always uses "
                         f"batch_size=1 (call mbgd for mini-batches)")
    kw["batch_size"] = 1
    return fit(X, y, **kw)


def mbgd(X, y, batch_size, **kw):
    """Mini-batch gradient descent with batches of ``batch_size`` samples.

    ``fit(X, y, batch_size=batch_size, **kw)``: every keyword argument of :func:`fit`.
    ``batch_size`` is an integer from 1 to n; None (the whole set) is refused here, as
    a ``batch_size`` that went missing, not a request for :func:`bgd`."""
    if batch_size is None:
        raise ValueError("Invalid batch_size for mbgd: None; mbgd needs the number of samples "
                         "per batch, an integer from 1 to n (call bgd for the whole data set)")
    return fit(X, y, batch_size=batch_size, **kw)


def _signature_from_fit(batch_size):
    """fit's signature for bgd / sgd (``batch_size=False``: theirs is fixed) and mbgd
    (``True``: a positional argument after y), so help() and IDEs show every option."""
    params = [p for p in inspect.signature(fit).parameters.values() if p.name != "batch_size"]
    if batch_size:
        params.insert(2, inspect.Parameter("batch_size", inspect.Parameter.POSITIONAL_OR_KEYWORD))
    return inspect.Signature(params)


bgd.__signature__ = sgd.__signature__ = _signature_from_fit(batch_size=False)
mbgd.__signature__ = _signature_from_fit(batch_size=True)


# -- helpers ------------------------------------------------------------------------

def _init_classes(init):
    """The classes of an explicit linear init, its coef's columns (0 unless 2-D)."""
    try:
        shape = np.shape(split_linear_init(init)[0])
    except ValueError:  # ragged: theta_from_init words the error
        return 0
    return int(shape[1]) if len(shape) == 2 else 0


def _model_kind(model):
    if model is None or isinstance(model, Linear):
        return "linear"
    if isinstance(model, MLP):
        return "mlp"
    if hasattr(model, "fn") and hasattr(model, "init") and getattr(model, "kind", None) == "custom":
        return "custom"
    raise TypeError(f"Invalid model: {model!r}; pass None (linear), fastgd.MLP(...) or "
                    f"fastgd.CustomModel(fn, init)")


def _check_model_options(kind, loss_obj, penalty, fit_intercept):
    """Options that a model kind has no use for are refused, not ignored."""
    if kind == "linear":
        return
    if fit_intercept is not True:
        what = "every layer of an MLP has its bias" if kind == "mlp" else "a CustomModel's fn owns every parameter"
        raise ValueError(f"Invalid fit_intercept: {fit_intercept!r}; {what}, so leave "
                         f"fit_intercept at its default (True)")
    if kind == "custom":
        if penalty not in (None, "none"):
            raise ValueError(f"Invalid penalty for a CustomModel: {penalty!r}; its fn returns each "
                             f"sample's whole loss, so add the penalty there (or leave penalty=None)")
        if not (isinstance(loss_obj, losses.LinearLoss) and loss_obj.name == "squared"):
            raise ValueError(f"Invalid loss for a CustomModel: {getattr(loss_obj, 'name', loss_obj)!r}; "
                             f"its fn returns each sample's loss, so leave loss at its default")


def _bind_model(model, kind, d, n_outputs, fit_intercept):
    if kind == "linear":
        return Linear(d, n_outputs, bool(fit_intercept))
    if kind == "mlp":
        return model.bind(d, n_outputs)
    return model.bind(d) if hasattr(model, "bind") else model


def _accumulation_dtype(accumulate, dtype):
    if accumulate is None:
        return np.dtype(dtype)
    if accumulate in ("float64", np.float64) or (isinstance(accumulate, np.dtype) and accumulate == np.float64):
        return np.dtype(np.float64)
    raise ValueError(f"Invalid accumulate: {accumulate!r}; it must be None or 'float64'")


def _spec(model, loss, backend, alpha, l1_ratio, opt, batch_size):
    if model.kind == "mlp":
        return MLPSpec(loss.code, model.layer_sizes, model.activation_id, alpha, l1_ratio,
                       opt.rule_id, opt.hyper, batch_size)
    if model.kind == "custom":
        from .engines import CustomSpec

        return CustomSpec(model.fn, opt.rule_id, opt.hyper, batch_size)
    if isinstance(loss, losses.LinearLoss):
        code, param = loss.code, loss.param
    else:  # a custom loss: the kernel gets the function itself
        from .kernels import ids

        code, param = ids.LOSS_CUSTOM, (loss.fn if backend == "numba" else loss.py_loss_dloss)
    return LinearSpec(code, param, model.n_outputs, model.fit_intercept, alpha, l1_ratio,
                      opt.rule_id, opt.hyper, batch_size)


def _epoch_lrs(sched, start, count, history):
    lrs = np.ascontiguousarray(sched.lrs(start, count, history), dtype=np.float64)
    if lrs.shape != (count,):
        raise ValueError(f"Invalid schedule: it gave {lrs.shape} step sizes for {count} iterations")
    if not (np.isfinite(lrs.sum()) and lrs.min() >= 0):  # two cheap passes; locate only on failure
        bad = ~(np.isfinite(lrs) & (lrs >= 0))
        if bad.any():
            k = int(np.argmax(bad))
            raise ValueError(f"Invalid schedule: it gave lr={lrs[k]} at iteration {start + k}; step "
                             f"sizes must be finite and >= 0")
    return lrs


_SAME_FUNCTION = ("another function under the same name: a fit continues with the very "
                  "function object it started with (closures made by one factory share a name)")


def _check_continuation(prev, model, loss, opt):
    if (prev.model.kind == model.kind == "custom" and prev.model.fn is not model.fn
            and prev.model.signature()[:4] == model.signature()[:4]):
        raise ValueError(f"Invalid init: the previous fit's model {prev.model!r} ran {_SAME_FUNCTION}; "
                         f"pass its CustomModel (result.model) to continue it")
    if prev.model.signature() != model.signature():
        raise ValueError(f"Invalid init: the previous fit's model {prev.model.signature()} does not "
                         f"match this one {model.signature()} (same features, classes and intercept needed)")
    if prev.loss != loss:
        same = f" ({_SAME_FUNCTION})" if repr(prev.loss) == repr(loss) else ""
        raise ValueError(f"Invalid init: the previous fit used loss {prev.loss!r}, this one {loss!r}"
                         f"{same}; leave loss out (or pass the previous one) to continue it")
    if prev.optimizer.rule_id != opt.rule_id:
        raise ValueError(f"Invalid init: the previous fit used {type(prev.optimizer).__name__}, this one "
                         f"{type(opt).__name__}; its state cannot carry over")
    if (isinstance(opt, optim.SGD) and opt.momentum != 0 and opt.dampening != 0
            and prev.optimizer.momentum == 0 and prev.n_iter > 0
            and not prev._opt_state[0].any()):
        # PyTorch starts a momentum buffer as the first gradient it sees with momentum on; the
        # kernels do that at step 1 only, so later a never-started buffer would be damped
        raise ValueError(
            f"Invalid optimizer: momentum={opt.momentum} with dampening={opt.dampening} "
            f"continues a fit that ran without momentum, so its momentum buffer never started; "
            f"PyTorch would start it as the next gradient, undamped, which a continued fit "
            f"cannot do; use dampening=0 (then the two agree) or start a new fit")


