"""fastgd.kernels.cy: the Cython backend (compiled ahead of time, ``nogil``, OpenMP).

Modules (the same file and function names as ``fastgd.reference``):

- ``losses``        per-sample losses (inline C in ``losses.pxd``; ``py_loss``,
                    ``py_dloss``, ``loss_and_dloss`` reach them from Python)
- ``updates``       fused update rules: ``sgd_update``, ``adam_update``,
                    ``adagrad_update``, ``rmsprop_update``, ``apply_update``
- ``linear_epoch``  ``linear_batch_gradient``, ``add_penalty``, ``linear_epoch``
- ``mlp_epoch``     ``mlp_epoch``, ``mlp_batch_gradient``, ``mlp_add_penalty``,
                    ``mlp_workspace_size`` (docs/mlp.md)
- ``orders``        ``permutation(rng, out)``: ``rng.permutation(n)`` bit for bit, in C
                    (the driver's epoch orders; docs/decisions.md)

The ``nogil`` C-level functions are declared in the ``.pxd`` files; cimport
them from your own Cython code, with ``cythonize(..., include_path=[get_include()])``
(Cython's search path for ``.pxd`` files; ``include_dirs`` is the C compiler's)::

    from fastgd.kernels.cy.updates cimport c_sgd_update

See docs/cython.md.
"""
import hashlib
import os
from pathlib import Path

__all__ = ["get_include"]


def get_include():
    """A directory from which ``fastgd/kernels/cy/updates.pxd`` resolves.

    Pass it to Cython's ``include_path`` when you ``cimport fastgd.kernels.cy...``.
    ``include_dirs`` needs nothing from fastgd: the public ``.pxd`` files name no C
    header (``losses.pxd``'s C is inline, ``team.pxd``'s header is internal).

    Installed package: the directory holding ``fastgd/`` (site-packages).
    Source/editable checkout (where ``kernels/`` is mapped to
    ``fastgd.kernels``): the ``build/cyinclude`` tree that setup.py makes, or,
    if there is none, the same small tree (``fastgd/__init__.pxd`` and a link
    ``fastgd/kernels``) made once in a cache directory.
    """
    here = Path(__file__).resolve().parent          # .../kernels/cy
    kernels_dir = here.parent
    if kernels_dir.name == "kernels" and kernels_dir.parent.name == "fastgd":
        return str(kernels_dir.parent.parent)       # installed: site-packages
    # Source layout: fastgd.kernels lives in <repo>/kernels.
    tree = kernels_dir.parent / "build" / "cyinclude"
    if (tree / "fastgd" / "kernels" / "cy" / "updates.pxd").is_file():
        return str(tree)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")  # "" is unset
    tree = cache / "fastgd" / "cyinclude" / hashlib.sha1(str(kernels_dir).encode()).hexdigest()[:12]
    pkg = tree / "fastgd"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.pxd").touch()
    link = pkg / "kernels"
    if not link.exists():
        try:
            link.symlink_to(kernels_dir, target_is_directory=True)
        except FileExistsError:
            pass
    return str(tree)
