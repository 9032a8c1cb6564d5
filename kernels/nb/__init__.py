"""fastgd.kernels.nb: the Numba backend (``backend="numba"``).

Public ``@njit`` kernels, callable from Python and from your own ``@njit`` code
(see docs/numba.md).  Same file and function names as the reference backend:

- ``updates``: ``sgd_update``, ``adam_update``, ``adagrad_update``,
  ``rmsprop_update``, ``apply_update``.
- ``config``: the compilation options (fastmath flags, caching) in one place.
"""
