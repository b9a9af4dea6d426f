"""Shared pieces of the pytest-benchmark suites that `vasr bench` runs.

Every benchmark labels itself with ``label(benchmark, ...)`` so that the report can turn medians
into per-unit figures and ratios between implementations measured in the same run.
"""
from __future__ import annotations

import os

import pytest

from vasr.bench import UNITS  # the one table of units: the report converts with it too

QUICK = os.environ.get("VASR_BENCH_QUICK") == "1"


def label(benchmark, *, group: str, impl: str, unit: str, per: float) -> None:
    """Name one measurement.

    group: what is compared, e.g. "fbank 10 s clip" (rows in one group are compared to each other).
    impl:  "vasr:<backend>" for our kernels, "peer:<library>" for the others.
    unit:  "ms/s" (milliseconds per second of audio) or "us/pair" (microseconds per item).
    per:   seconds of audio, or items, processed by one call of the benchmarked function.
    """
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}")
    benchmark.group = group
    benchmark.extra_info.update(impl=impl, unit=unit, per=float(per))


THREADS = int(os.environ.get("OMP_NUM_THREADS", "1"))  # `vasr bench --threads N` sets it


@pytest.fixture(autouse=True)
def _thread_limit():
    """Thread pools of numpy/BLAS (and so of peers that use them) get the run's thread count."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=THREADS):
        yield
