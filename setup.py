"""Builds the Cython kernels and nothing else; all metadata lives in pyproject.toml.

The kernels are built when a C++ compiler and the Python headers work here (probed first, so that
a machine without them gets a pure wheel rather than a compiler error); otherwise, or with
VASR_PUREPYTHON=1, the wheel is pure and vasr.kernels runs its Numba backends (the ``numba``
extra) or, without numba, the pure-Python references.
"""
import os
import sys
import sysconfig
import tempfile
from pathlib import Path

from setuptools import setup

NOTICE = ("vasr: {why}; installing without the compiled kernels -- `pip install vasr[numba]` gives fast "
          "kernels without a compiler (or install g++ and python3-dev and reinstall)")
PROBE = "#include <Python.h>\n#include <vector>\nint vasr_probe(void) { std::vector<int> v(1); return v[0]; }\n"


def compiler_problem() -> str | None:
    """Why the extensions cannot be compiled here, or None when a C++ source with Python.h compiles."""
    try:
        from setuptools._distutils.ccompiler import new_compiler
        from setuptools._distutils.sysconfig import customize_compiler
    except ImportError:            # a setuptools without its distutils: let the build itself tell
        return None
    compiler = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "probe.cpp")
        source.write_text(PROBE)
        try:
            compiler.compile([str(source)], output_dir=tmp, include_dirs=[sysconfig.get_paths()["include"]])
        except Exception as exc:   # CompileError, a missing executable, ...: the first line says which
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            return f"no working C++ compiler with the Python headers ({first.strip()[:160]})"
    return None


def extensions() -> list:
    if os.environ.get("VASR_PUREPYTHON") == "1":
        return []
    problem = compiler_problem()
    if problem is not None:
        print(NOTICE.format(why=problem), file=sys.stderr)
        return []
    import numpy
    from Cython.Build import cythonize
    from setuptools import Extension

    return cythonize(
        [
            Extension(
                f"vasr.kernels.{pyx.stem}",
                [str(pyx)],
                include_dirs=[numpy.get_include()],
                extra_compile_args=["-O3"],
            )
            for pyx in sorted(Path("kernels").glob("*.pyx"))
        ],
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False, "cdivision": True},
    )


setup(ext_modules=extensions())
