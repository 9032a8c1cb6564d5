"""The batch order: made once per epoch in Python, identical on every backend.

One ``numpy.random.Generator`` per fit, ``np.random.default_rng(seed)``:

- ``sampling="shuffle"``, ``shuffle=True``: ``order = rng.permutation(n)`` at the
  start of each epoch; batch k is ``order[k*b:(k+1)*b]``; the last, shorter batch
  is kept unless ``drop_last``.
- ``shuffle=False``: ``order = np.arange(n)`` (the generator is not used).
- ``sampling="replacement"``: each of the ceil(n/b) iterations draws
  ``rng.integers(0, n, size=b)``.
"""
import math
import os

import numpy as np

SAMPLINGS = ("shuffle", "replacement")


def iterations_per_epoch(n, batch_size, drop_last=False, sampling="shuffle"):
    """Updates per epoch: ceil(n/b), or floor(n/b) with drop_last (shuffle sampling);
    ``batch_size=None`` is the full batch."""
    from .validation import check_batch_options, check_n_samples

    check_n_samples(n)
    batch_size = n if batch_size is None else batch_size
    check_batch_options(n, batch_size, 1, sampling, drop_last)
    return _iterations_per_epoch(n, batch_size, drop_last, sampling)


def _iterations_per_epoch(n, batch_size, drop_last=False, sampling="shuffle"):
    if sampling == "shuffle" and drop_last:
        return n // batch_size
    return math.ceil(n / batch_size)


def epoch_order(rng, n, batch_size, shuffle=True, sampling="shuffle", drop_last=False, out=None):
    """One epoch's row order (int64) as the kernels read it, drawn from ``rng``.

    ``out`` (optional) receives it in place.  The shuffle is ``rng.shuffle`` of
    an ``arange``, which is exactly what ``rng.permutation(n)`` does, without
    the extra copies.
    """
    if sampling == "replacement":
        k = _iterations_per_epoch(n, batch_size, sampling=sampling)
        if type(rng.bit_generator) is np.random.PCG64 and _one_draw_is_k_draws():
            order = rng.integers(0, n, size=k * batch_size, dtype=np.int64)
        else:
            order = np.concatenate([rng.integers(0, n, size=batch_size, dtype=np.int64)
                                    for _ in range(k)])
        if out is None:
            return order
        out[...] = order
        return out
    m = (n // batch_size) * batch_size if drop_last else n
    full = out if (out is not None and m == n) else np.empty(n, dtype=np.int64)
    if not (shuffle and _compiled_permutation(rng, full)):
        full[...] = np.arange(n, dtype=np.int64)
        if shuffle:
            rng.shuffle(full)
    if out is None:
        return full[:m]
    if full is not out:
        out[...] = full[:m]
    return out


_one_draw = None  # whether one rng.integers call of k*b draws what k calls of b draw


def _one_draw_is_k_draws():
    """True if ``rng.integers(0, n, size=k*b)`` gives exactly ``k`` calls of ``size=b``
    and leaves the stream where they leave it (checked once per process).

    The contract draws each replacement batch with its own call, which from Python costs
    a few microseconds a batch: 75 times the epoch itself at b = 1.  NumPy draws int64
    integers below 2**32 from 32-bit halves of 64-bit outputs, and the bit generator (not
    the call) keeps the unused half, so one call draws the same numbers; this is checked
    here on both of NumPy's paths (ranges below and above 2**32, odd and even batch sizes,
    a half kept back from before) rather than assumed of every NumPy.
    """
    global _one_draw
    if _one_draw is None:
        ok = True
        for n, b, pending in ((11, 3, False), (1000, 1, True), (2**32 + 7, 3, False),
                              (2**40 + 3, 2, True)):
            ours, theirs = np.random.default_rng(n), np.random.default_rng(n)
            if pending:
                ours.integers(0, 10, dtype=np.uint32), theirs.integers(0, 10, dtype=np.uint32)
            got = ours.integers(0, n, size=5 * b, dtype=np.int64)
            want = np.concatenate([theirs.integers(0, n, size=b, dtype=np.int64)
                                   for _ in range(5)])
            ok &= (np.array_equal(got, want)
                   and ours.bit_generator.state == theirs.bit_generator.state)
        _one_draw = bool(ok)
    return _one_draw


_permutation = None  # the compiled rng.permutation, once checked against NumPy's; False: none


def _checked_permutation():
    """``fastgd.kernels.cy.orders.permutation`` if it is built and draws exactly what this
    NumPy's ``rng.permutation`` draws (checked once per process), else False."""
    global _permutation
    if _permutation is None:
        _permutation = False
        try:
            from fastgd.kernels.cy import orders
        except ImportError:
            return False
        if orders.AVAILABLE:
            ok = True
            for n, pending in ((1, False), (2, True), (1000, False), (3001, True)):
                ours, theirs = np.random.default_rng(n), np.random.default_rng(n)
                if pending:  # start with half of a 64-bit draw kept back
                    ours.integers(0, 10, dtype=np.uint32), theirs.integers(0, 10, dtype=np.uint32)
                out = np.empty(n, dtype=np.int64)
                orders.permutation(ours, out)
                ok &= (np.array_equal(out, theirs.permutation(n))
                       and ours.bit_generator.state == theirs.bit_generator.state)
            if ok:
                _permutation = orders.permutation
    return _permutation


def _compiled_permutation(rng, out):
    """``out[...] = rng.permutation(len(out))`` in compiled code; False if it cannot."""
    if type(rng.bit_generator) is not np.random.PCG64 or out.dtype != np.int64 \
            or not out.flags.c_contiguous:
        return False
    fn = _checked_permutation()
    if not fn:
        return False
    fn(rng, out)
    return True


def epoch_length(n, batch_size, sampling="shuffle", drop_last=False):
    """Entries in one epoch's order: n, floor(n/b)*b with drop_last, ceil(n/b)*b with replacement."""
    if sampling == "replacement":
        return _iterations_per_epoch(n, batch_size, sampling=sampling) * batch_size
    return (n // batch_size) * batch_size if drop_last else n


def batch_order(n, batch_size, epochs, seed, shuffle=True, sampling="shuffle", drop_last=False):
    """An iterator over the index array of every batch, epoch after epoch, exactly as
    ``fit`` uses them (the arguments are checked at the call, the batches drawn lazily).

    >>> batches = list(batch_order(500, 10, epochs=1, seed=0))
    >>> len(batches), batches[0].shape
    (50, (10,))
    """
    from .validation import check_batch_options, check_n_samples, check_seed

    check_n_samples(n)
    batch_size = n if batch_size is None else batch_size
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"Invalid shuffle: {shuffle!r}; it must be True or False")
    check_batch_options(n, batch_size, epochs, sampling, drop_last, shuffle)
    rng = np.random.default_rng(check_seed(seed))
    # checked above, at the call: only the batches are drawn lazily
    return _batches(rng, n, batch_size, epochs, shuffle, sampling, drop_last)


def _batches(rng, n, batch_size, epochs, shuffle, sampling, drop_last):
    for _ in range(epochs):
        order = epoch_order(rng, n, batch_size, shuffle, sampling, drop_last)
        for k in range(_iterations_per_epoch(n, batch_size, drop_last, sampling)):
            yield order[k * batch_size:(k + 1) * batch_size]


# -- the fit's stream of epoch orders ------------------------------------------------

#: Below this many rows a background draw costs more than it hides.
PREFETCH_MIN_ROWS = 16_384

_executor = None


def _forget_worker():
    # A forked child has the parent's executor object but not its thread: jobs submitted
    # to it would wait for ever.  The child starts its own when it first needs one.
    global _executor
    _executor = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_worker)


def _worker():
    global _executor
    if _executor is None:
        from concurrent.futures import ThreadPoolExecutor

        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastgd-order")
    return _executor


def _generator_at(state):
    """A Generator in a given PCG64 state (seeded with 0 first: a bare PCG64() reads OS entropy)."""
    rng = np.random.Generator(np.random.PCG64(0))
    rng.bit_generator.state = state
    return rng


def _skip_permutations(state, n, count):
    """The PCG64 state after ``count`` draws of ``rng.permutation(n)`` from ``state``."""
    if count == 0:
        return state
    rng = _generator_at(state)
    scratch = np.empty(n, dtype=np.int64)
    for _ in range(count):
        epoch_order(rng, n, n, out=scratch)
    return rng.bit_generator.state


class StreamState:
    """Where a fit's random stream stands: a PCG64 state plus full-batch permutations owed.

    A full batch (b = n, shuffle sampling) is the same set of rows whatever the
    permutation, so its epochs do not shuffle; the permutations DESIGN.md says
    they draw are only counted, and drawn (exactly, in order) when somebody
    needs the stream: a later epoch with smaller batches, or ``.state``.
    """

    def __init__(self, state, n=0, owed=0):
        self._state, self.n, self.owed = state, n, owed

    @property
    def state(self):
        """The PCG64 state dict, as if every owed permutation had been drawn."""
        if self.owed:
            self._state, self.owed = _skip_permutations(self._state, self.n, self.owed), 0
        return self._state


class OrderStream:
    """Epoch orders (DESIGN.md §1) from the fit's one generator, as the kernels read them.

    ``next()`` returns the next epoch's order (an int64 array owned by the
    stream, valid until the next call).  Two things make it cheaper than
    drawing in front of every epoch, without changing a single draw:

    - a full batch (b = n, shuffle sampling) is handed the rows in storage
      order (the same set of rows; the sum differs in rounding only), so X is
      streamed; its permutation is owed, not drawn (see :class:`StreamState`);
    - with ``prefetch``, the next epoch's order is drawn on a background thread
      from a copy of the generator while the current epoch trains; it is used
      only if the generator is still where the copy started (otherwise it is
      drawn again), so the stream is exactly the one DESIGN.md specifies.
    """

    def __init__(self, stream_state, n, batch_size, shuffle, sampling, drop_last, prefetch=False):
        if stream_state.n == n:  # owed permutations of this n stay owed
            self.rng, self.owed = _generator_at(stream_state._state), stream_state.owed
        else:
            self.rng, self.owed = _generator_at(stream_state.state), 0
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.sampling, self.drop_last = sampling, drop_last
        self.m = epoch_length(n, batch_size, sampling, drop_last)
        self.full_batch = sampling == "shuffle" and batch_size >= n
        self.random = sampling == "replacement" or shuffle
        self.prefetch = prefetch and self.random and not self.full_batch and n >= PREFETCH_MIN_ROWS
        self._identity = None
        self._bufs = [np.empty(self.m, dtype=np.int64)] if self.random and not self.full_batch else []
        self._pending = None  # (future, start state, buffer, [end state]) of a background draw
        self.prefetch_hits = 0  # epochs whose order came from a background draw
        self._spare = None

    def state(self):
        """A :class:`StreamState` snapshot (cheap: owed permutations stay owed)."""
        return StreamState(self.rng.bit_generator.state, self.n, self.owed)

    def next(self, prefetch=True):
        """The next epoch's order; ``prefetch=False``: no epoch follows soon, draw nothing ahead."""
        if not self.random or self.full_batch:
            if self.full_batch and self.shuffle:
                self.owed += 1
            if self._identity is None:
                self._identity = np.arange(self.m, dtype=np.int64)
            return self._identity
        if self.owed:
            self.rng.bit_generator.state = _skip_permutations(self.rng.bit_generator.state, self.n,
                                                              self.owed)
            self.owed = 0
        order = self._take_prefetched()
        if order is None:
            order = epoch_order(self.rng, self.n, self.batch_size, self.shuffle, self.sampling,
                                self.drop_last, out=self._bufs[0])
        if self.prefetch and prefetch:
            self._start_prefetch(order)
        return order

    def _take_prefetched(self):
        if self._pending is None:
            return None
        future, start, buf, end = self._pending
        self._pending = None
        future.result()
        if self.rng.bit_generator.state != start:  # somebody drew meanwhile: not ours to use
            return None
        self.rng.bit_generator.state = end[0]
        self.prefetch_hits += 1
        self._bufs = [buf] + [b for b in self._bufs if b is not buf]
        return buf

    def _start_prefetch(self, current):
        buf = next((b for b in self._bufs if b is not current), None)
        if buf is None:
            buf = np.empty(self.m, dtype=np.int64)
            self._bufs.append(buf)
        start = self.rng.bit_generator.state
        end = []
        if self._spare is None:  # the worker's generator, reused
            self._spare = _generator_at(start)
        rng = self._spare

        def draw():
            rng.bit_generator.state = start
            epoch_order(rng, self.n, self.batch_size, self.shuffle, self.sampling, self.drop_last,
                        out=buf)
            end.append(rng.bit_generator.state)

        self._pending = (_worker().submit(draw), start, buf, end)

    def close(self):
        """Wait for a background draw (its buffer must not be written after the fit)."""
        if self._pending is not None:
            self._pending[0].result()
