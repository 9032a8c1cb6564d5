"""Build the Cython kernels in ``kernels/cy`` as ``fastgd.kernels.cy.*``.

The folder ``kernels/`` is installed as the package ``fastgd.kernels``.  Cython
resolves ``from .updates cimport ...`` by the module's full dotted name, so a
small include tree ``build/cyinclude/fastgd/kernels -> ../../../kernels`` lets it
find the ``.pxd`` files under their installed names.

Compiler flags: -O3 with OpenMP and value-safe reassociation (so reductions
vectorise) but never -ffast-math, which would link crtfastmath and flush
subnormals to zero for the whole process.  Set FASTGD_NATIVE=1 to add
-march=native for a machine-local build.

The modules are translated and compiled on every core (FASTGD_BUILD_JOBS=N to
choose): the build is in CI twice and on a lent GPU machine before its first test.
"""
import os
import sys
from glob import glob
from pathlib import Path

import numpy as np
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def build_jobs():
    return max(1, int(os.environ.get("FASTGD_BUILD_JOBS") or os.cpu_count() or 1))


class ParallelBuildExt(build_ext):
    """build_ext compiling the extensions side by side unless told otherwise (-j N)."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = build_jobs()

HERE = Path(__file__).resolve().parent


def include_tree() -> str:
    root = HERE / "build" / "cyinclude"
    pkg = root / "fastgd"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.pxd").touch()
    link = pkg / "kernels"
    if not link.exists():
        link.symlink_to(Path("..", "..", "..", "kernels"), target_is_directory=True)
    return str(root)


def compile_flags():
    if sys.platform == "win32":
        return ["/O2", "/openmp", "/fp:precise"], []
    cflags = [
        "-O3",
        "-fopenmp",
        "-fassociative-math",
        "-fno-signed-zeros",
        "-fno-trapping-math",
        "-fno-math-errno",
        "-Wno-unused-function",
        "-Wno-unreachable-code",
        "-g0",  # no debug info (Python's own CFLAGS carry -g): 4.1 -> 0.8 MB a module
    ]
    if os.environ.get("FASTGD_NATIVE", "") not in ("", "0"):
        cflags.append("-march=native")
    return cflags, ["-fopenmp"]


def module_name(src):
    """kernels/cy/x.pyx -> fastgd.kernels.cy.x (the installed name, which Cython needs)."""
    return "fastgd." + ".".join(Path(src).with_suffix("").parts)


def extensions():
    sources = sorted(glob("kernels/cy/**/*.pyx", recursive=True))
    if not sources:
        raise SystemExit("setup.py: no kernels/cy/*.pyx here, so the Cython backend cannot be "
                         "built: this source tree or sdist is incomplete (MANIFEST.in ships them)")
    if "sdist" in sys.argv:  # the sdist ships the .pyx sources; the build translates them
        return [Extension(module_name(src), [src]) for src in sources]
    from Cython.Build import cythonize

    cflags, lflags = compile_flags()
    exts = []
    for src in sources:
        exts.append(
            Extension(
                module_name(src),
                [src],
                include_dirs=[np.get_include(), "kernels/cy"],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=cflags,
                extra_link_args=lflags,
            )
        )
    return cythonize(
        exts,
        nthreads=build_jobs() if len(exts) > 1 else 0,
        include_path=[include_tree()],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )


setup(
    packages=[
        "fastgd",
        "fastgd.data",
        "fastgd.reference",
        "fastgd.kernels",
        "fastgd.kernels.cy",
        "fastgd.kernels.nb",
        "fastgd.kernels.cuda",
    ],
    package_dir={"fastgd": "fastgd", "fastgd.kernels": "kernels"},
    ext_modules=extensions(),
    cmdclass={"build_ext": ParallelBuildExt},
)
