"""The one place that chooses, per kernel, a compiled backend or its pure-Python reference.

Each kernel ``K`` has a reference module ``K_py`` (always present), a Cython module ``K_cy``
(built by setup.py when a C compiler works and VASR_PUREPYTHON is not 1) and a Numba module ``K_nb``
(importable when the ``numba`` extra is installed; it compiles on first call and caches on disk).
A backend module exports exactly the names in the reference's ``__all__``.
``VASR_KERNELS=cython|numba|python`` forces a backend; a forced or preferred backend that cannot
load falls back with a warning.
"""
from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

KERNELS = ("fbank", "ctc", "levenshtein")
BACKEND_ORDER = ("cython", "numba", "python")
ENV_VAR = "VASR_KERNELS"
_SUFFIX = {"cython": "_cy", "numba": "_nb", "python": "_py"}
_loaded: dict[tuple[str, str], ModuleType | None] = {}
_chosen: dict[str, ModuleType] = {}


def _try_import(kernel: str, backend: str) -> ModuleType | None:
    key = (kernel, backend)
    if key not in _loaded:
        try:
            _loaded[key] = importlib.import_module(f"vasr.kernels.{kernel}{_SUFFIX[backend]}")
        except ImportError:
            _loaded[key] = None
    return _loaded[key]


def available(kernel: str) -> list[str]:
    """Backends of ``kernel`` that import on this machine, fastest first."""
    _check_kernel(kernel)
    return [b for b in BACKEND_ORDER if _try_import(kernel, b) is not None]


def load(kernel: str, backend: str | None = None) -> ModuleType:
    """The module implementing ``kernel``: exactly ``backend`` when given, else the chosen one."""
    _check_kernel(kernel)
    if backend is not None:
        if backend not in _SUFFIX:
            raise ValueError(f"unknown kernel backend {backend!r}; expected one of {BACKEND_ORDER}")
        module = _try_import(kernel, backend)
        if module is None:
            raise ImportError(f"kernel {kernel!r} has no {backend} backend on this machine")
        return module
    if kernel not in _chosen:
        _chosen[kernel] = _choose(kernel)
    return _chosen[kernel]


def _choose(kernel: str) -> ModuleType:
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced and forced not in _SUFFIX:
        raise ValueError(f"{ENV_VAR}={forced!r}: expected one of {', '.join(BACKEND_ORDER)}")
    if forced:
        module = _try_import(kernel, forced)
        if module is not None:
            return module
        warnings.warn(f"{ENV_VAR}={forced}: kernel {kernel!r} has no {forced} backend here; "
                      "using the fastest available one", RuntimeWarning, stacklevel=3)
    for backend in BACKEND_ORDER:
        module = _try_import(kernel, backend)
        if module is None:
            continue
        if backend == "python" and forced != "python":
            warnings.warn(f"kernel {kernel!r}: no compiled backend could be loaded, using the "
                          "pure-Python reference (slow); `pip install vasr[numba]` gives fast kernels "
                          "without a compiler",
                          RuntimeWarning, stacklevel=3)
        return module
    raise ImportError(f"kernel {kernel!r}: even the reference module failed to import")


def backend_of(kernel: str) -> str:
    """Name of the backend that ``load(kernel)`` returns."""
    module = load(kernel)
    return next(b for b, s in _SUFFIX.items() if module.__name__.endswith(s))


def _check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")
