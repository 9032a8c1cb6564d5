"""fastgd.kernels: the engine room.

One folder per backend, the same file and function names in each:

- ``cy/``   Cython, compiled ahead of time (``nogil``, OpenMP); ``.pxd`` files for ``cimport``.
- ``nb/``   Numba ``@njit`` kernels, callable from your own ``@njit`` code.
- ``cuda/`` ``numba.cuda`` kernels (data resident on the device).

Shared codes live in :mod:`fastgd.kernels.ids`.  The calling convention every
backend keeps is written down in ``docs/kernels.md``.  Nothing here imports
``fastgd``: the API depends on the kernels, never the reverse.
"""
