"""Checks a build made with VASR_PUREPYTHON=1, the wheel a machine without a C compiler gets
(`make test` runs this against such a build)."""
from __future__ import annotations

import importlib.util
import os
import warnings

import pytest

from vasr.kernels import dispatch

pytestmark = pytest.mark.skipif(os.environ.get("VASR_PUREPYTHON") != "1",
                                reason="only meaningful on a build made with VASR_PUREPYTHON=1")
HAVE_NUMBA = importlib.util.find_spec("numba") is not None


def test_pure_build_has_no_cython_kernels():
    for kernel in dispatch.KERNELS:
        assert "cython" not in dispatch.available(kernel), kernel


def test_pure_build_chooses_numba_when_it_is_installed():
    expected = ["numba", "python"] if HAVE_NUMBA else ["python"]
    assert [dispatch.available(k) for k in dispatch.KERNELS] == [expected] * len(dispatch.KERNELS)
    dispatch._chosen.pop("fbank", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert dispatch.backend_of("fbank") == expected[0]
    slow = [w for w in caught if "pure-Python reference" in str(w.message)]
    assert bool(slow) == (not HAVE_NUMBA)
