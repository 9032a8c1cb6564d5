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


def epoch_order(rng, n, batch_size, shuffle=True, sampling="shuffle", drop_last=False, out=None):
    """One epoch's row order (int64) as the kernels read it, drawn from ``rng``.

    ``out`` (optional) receives it in place.  The shuffle is ``rng.shuffle`` of
    an ``arange``, which is exactly what ``rng.permutation(n)`` does, without
    the extra copies.
    """
    if sampling == "replacement":
        k = iterations_per_epoch(n, batch_size, sampling=sampling)
        order = np.concatenate([rng.integers(0, n, size=batch_size) for _ in range(k)]).astype(np.int64)
        if out is None:
            return order
        out[...] = order
        return out
    m = (n // batch_size) * batch_size if drop_last else n
    full = out if (out is not None and m == n) else np.empty(n, dtype=np.int64)
    full[...] = np.arange(n, dtype=np.int64)
    if shuffle:
        rng.shuffle(full)
    if out is None:
        return full[:m]
    if full is not out:
        out[...] = full[:m]
    return out


def epoch_length(n, batch_size, sampling="shuffle", drop_last=False):
    """Entries in one epoch's order: n, floor(n/b)*b with drop_last, ceil(n/b)*b with replacement."""
    if sampling == "replacement":
        return iterations_per_epoch(n, batch_size, sampling=sampling) * batch_size
    return (n // batch_size) * batch_size if drop_last else n


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
