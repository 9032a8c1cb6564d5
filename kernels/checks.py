"""Checks made by the kernels' Python entry points before a compiled loop runs.

The compiled loops trust their inputs (docs/kernels.md), so a row index outside X, or
more batches than the order holds, would read or write outside an array.  The entries
that Python code calls (``linear_epoch``, ``linear_batch_gradient``, ``mlp_epoch``, ...)
check those two things first, in one pass over the order (about 10 us for 100,000
rows); the fit driver's orders pass by construction.  Kernels called from users' own
``@njit`` code trust their inputs, as the compiled loops do.
"""
import numpy as np


def rows_in_range(name, rows, n):
    """Every entry of ``rows`` (int64, 1-D) is a row of an X with ``n`` rows."""
    rows = np.asarray(rows)
    if rows.size == 0:
        return
    as_unsigned = rows.view(np.uint64) if rows.dtype == np.int64 else rows.astype(np.uint64)
    if as_unsigned.max() >= n:  # a negative index is a huge unsigned one
        k = int(np.argmax(as_unsigned >= n))
        raise ValueError(f"Invalid {name}: it holds {int(rows[k])} at position {k}, but X has "
                         f"{n} rows (indices 0..{n - 1})")


def batches_in_order(order, batch_size, n_batches):
    """``n_batches`` batches of ``batch_size`` rows fit in ``order`` (the last may be short)."""
    m = len(order)
    if batch_size < 1:
        raise ValueError(f"Invalid batch_size: {batch_size}; it must be >= 1")
    most = -(-m // batch_size)
    if not 0 <= n_batches <= most:
        raise ValueError(f"Invalid n_batches: {n_batches}; an order of {m} rows holds 0..{most} "
                         f"batches of {batch_size}")


def epoch_order(order, n, batch_size, n_batches):
    """Both checks for an epoch entry: ``order`` indexes X's ``n`` rows and holds the batches."""
    rows_in_range("order", order, n)
    batches_in_order(order, batch_size, n_batches)
