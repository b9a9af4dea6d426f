"""Checks a build made with VASR_PUREPYTHON=1 (`make test` runs this against such a build)."""
from __future__ import annotations

import os
import warnings

import pytest

from vasr.kernels import dispatch

pytestmark = pytest.mark.skipif(os.environ.get("VASR_PUREPYTHON") != "1",
                                reason="only meaningful on a build made with VASR_PUREPYTHON=1")


def test_pure_build_has_no_cython_kernels():
    for kernel in dispatch.KERNELS:
        assert "cython" not in dispatch.available(kernel), kernel


def test_pure_build_falls_back_with_a_warning():
    assert [dispatch.available(k) for k in dispatch.KERNELS] == [["python"]] * len(dispatch.KERNELS)
    dispatch._chosen.pop("fbank", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert dispatch.backend_of("fbank") == "python"
    assert any("pure-Python reference" in str(w.message) for w in caught)
