"""What a source distribution ships: an sdist on PyPI is how most people build fastgd.

Until the twentieth session the sdist held the C that Cython had made but not the .pyx
sources, and setup.py, finding no .pyx, built nothing: `pip install fastgd-*.tar.gz`
succeeded and left only the reference and Numba backends.
"""
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_IN_COPY = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info",
                                      "__pycache__", "*.so", "*.c", ".benchmarks", ".hypothesis",
                                      ".pytest_cache")

pytestmark = pytest.mark.skipif(not (ROOT / "setup.py").is_file() or not (ROOT / "kernels").is_dir(),
                                reason="needs the source tree (setup.py, kernels/)")


def _source_copy(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=SKIP_IN_COPY)
    return src


def test_the_sdist_ships_the_cython_sources_and_no_generated_c(tmp_path):
    pytest.importorskip("build")
    src = _source_copy(tmp_path)
    r = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation",
                        "--skip-dependency-check", "-o", str(tmp_path / "dist"), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (sdist,) = (tmp_path / "dist").glob("fastgd-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {Path(*Path(m).parts[1:]).as_posix() for m in tar.getnames()}
    kernels = {p.relative_to(src).as_posix() for p in (src / "kernels").rglob("*")
               if p.suffix in (".py", ".pyx", ".pxd", ".h")}
    needed = kernels | {"setup.py", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in",
                        "fastgd/data/digits.npz", "tests/cimport_demo/fgd_cimport_demo.pyx"}
    assert any(n.endswith(".pyx") for n in kernels)
    assert needed <= names, sorted(needed - names)
    assert not [n for n in names if n.endswith((".c", ".so"))]


def test_setup_refuses_a_tree_without_the_cython_sources(tmp_path):
    src = _source_copy(tmp_path)
    for pyx in (src / "kernels" / "cy").glob("*.pyx"):
        pyx.unlink()
    r = subprocess.run([sys.executable, "setup.py", "--version"], cwd=src, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0
    assert "no kernels/cy/*.pyx" in r.stdout + r.stderr
