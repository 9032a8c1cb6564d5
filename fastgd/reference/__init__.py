"""The reference backend: plain, vectorised NumPy, readable first.

It is the oracle every compiled backend is tested against, and the fallback
when nothing compiled is available.  File and function names match the
compiled backends in ``fastgd.kernels.{cy,nb,cuda}``.
"""
