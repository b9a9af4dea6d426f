"""Builds the Cython kernels and nothing else; all metadata lives in pyproject.toml.

VASR_PUREPYTHON=1 skips the extensions: vasr.kernels then runs its pure-Python references.
"""
import os
from pathlib import Path

from setuptools import setup

ext_modules = []
if os.environ.get("VASR_PUREPYTHON") != "1":
    import numpy
    from Cython.Build import cythonize
    from setuptools import Extension

    ext_modules = cythonize(
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

setup(ext_modules=ext_modules)
