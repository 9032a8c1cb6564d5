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

import numpy as np

SAMPLINGS = ("shuffle", "replacement")


def iterations_per_epoch(n, batch_size, drop_last=False, sampling="shuffle"):
    """Updates per epoch: ceil(n/b), or floor(n/b) with drop_last (shuffle sampling)."""
    if sampling == "shuffle" and drop_last:
        return n // batch_size
    return math.ceil(n / batch_size)


def epoch_order(rng, n, batch_size, shuffle=True, sampling="shuffle", drop_last=False):
    """One epoch's row order (int64) as the kernels read it, drawn from ``rng``."""
    if sampling == "replacement":
        k = iterations_per_epoch(n, batch_size, sampling=sampling)
        return np.concatenate([rng.integers(0, n, size=batch_size) for _ in range(k)]).astype(np.int64)
    order = rng.permutation(n) if shuffle else np.arange(n)
    if drop_last:
        order = order[:(n // batch_size) * batch_size]
    return order.astype(np.int64, copy=False)


def batch_order(n, batch_size, epochs, seed, shuffle=True, sampling="shuffle", drop_last=False):
    """Yield the index array of every batch, epoch after epoch, exactly as ``fit`` uses them.

    >>> batches = list(batch_order(500, 10, epochs=1, seed=0))
    >>> len(batches), batches[0].shape
    (50, (10,))
    """
    from .validation import check_batch_options

    batch_size = n if batch_size is None else batch_size
    check_batch_options(n, batch_size, epochs, sampling, drop_last)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = epoch_order(rng, n, batch_size, shuffle, sampling, drop_last)
        for k in range(iterations_per_epoch(n, batch_size, drop_last, sampling)):
            yield order[k * batch_size:(k + 1) * batch_size]
