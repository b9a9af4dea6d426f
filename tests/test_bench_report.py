"""The `vasr bench` report: parsing pytest-benchmark JSON, ratios, files written, and one real run."""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from vasr.bench import (
    PEERS, PLOT_DPI, PLOT_WIDTH_IN, BenchError, default_benchmarks_dir, library_versions, run_bench,
    summarize, write_report,
)

# every peer present except these two
LIBRARIES = {**{name: "1.0" for name in PEERS}, "jiwer": None, "onnxruntime": None, "numpy": "2.1.0"}


def _bench(name, group, impl, unit, per, median):
    return {"name": name, "fullname": f"test_x.py::{name}", "group": group,
            "extra_info": {"impl": impl, "unit": unit, "per": per},
            "stats": {"median": median, "min": median * 0.9, "iqr": median * 0.1, "rounds": 7}}


def _raw():
    fb, wer = "fbank 10 s clip", "wer 1000 pairs"
    return {
        "machine_info": {"python_implementation": "CPython", "python_version": "3.11.7",
                         "system": "Linux", "release": "6.1", "machine": "x86_64",
                         "cpu": {"brand_raw": "Test CPU 9000", "count": 2}},
        "commit_info": {"id": "0123456789abcdef0123", "dirty": True, "branch": "main"},
        "datetime": "2026-01-02T03:04:05.678901+00:00",
        "benchmarks": [
            _bench("test_fbank[python]", fb, "vasr:python", "ms/s", 10.0, 0.02),  # 2 ms/s
            _bench("test_fbank[cython]", fb, "vasr:cython", "ms/s", 10.0, 0.001),  # 0.1 ms/s
            _bench("test_fbank_knf", fb, "peer:kaldi_native_fbank", "ms/s", 10.0, 0.012),  # 1.2
            _bench("test_fbank_torch", fb, "peer:torch", "ms/s", 10.0, 0.0015),  # 0.15 ms/s
            _bench("test_wer[cython]", wer, "vasr:cython", "us/pair", 1000, 0.004),  # 4 us/pair
            _bench("test_wer_jiwer", wer, "peer:jiwer", "us/pair", 1000, 0.016),  # 16 us/pair
            _bench("test_wer_rapidfuzz", wer, "peer:rapidfuzz", "us/pair", 1000, 0.0048),  # 4.8
        ],
    }


def _speedups(report):
    return {(r.group, r.impl, r.versus): r.speedup for r in report.ratios}


def test_summarize_values_and_ratios():
    report = summarize(_raw(), threads=1, quick=True, libraries=LIBRARIES)
    assert [(row.group, row.impl) for row in report.rows] == [
        ("fbank 10 s clip", "vasr:cython"), ("fbank 10 s clip", "peer:torch"),
        ("fbank 10 s clip", "peer:kaldi_native_fbank"), ("fbank 10 s clip", "vasr:python"),
        ("wer 1000 pairs", "vasr:cython"), ("wer 1000 pairs", "peer:rapidfuzz"),
        ("wer 1000 pairs", "peer:jiwer"),
    ]
    assert [row.value for row in report.rows] == pytest.approx([0.1, 0.15, 1.2, 2.0, 4.0, 4.8, 16.0])
    first = report.rows[0]
    assert (first.name, first.per, first.rounds) == ("test_fbank[cython]", 10.0, 7)
    assert (first.median_s, first.min_s, first.iqr_s) == pytest.approx((0.001, 0.0009, 0.0001))

    fb, wer = "fbank 10 s clip", "wer 1000 pairs"
    assert _speedups(report) == pytest.approx({
        (fb, "vasr:cython", "peer:torch"): 1.5,
        (fb, "vasr:cython", "peer:kaldi_native_fbank"): 12.0,
        (fb, "vasr:cython", "vasr:python"): 20.0,
        (fb, "vasr:python", "vasr:cython"): 0.05,
        (fb, "vasr:python", "peer:torch"): 0.075,
        (fb, "vasr:python", "peer:kaldi_native_fbank"): 0.6,
        (wer, "vasr:cython", "peer:rapidfuzz"): 1.2,
        (wer, "vasr:cython", "peer:jiwer"): 4.0,
    })
    assert report.missing_peers == ("jiwer", "onnxruntime")
    assert report.versions["numpy"] == "2.1.0" and "jiwer" not in report.versions
    assert report.date == "2026-01-02T03:04:05+00:00"
    assert (report.machine.cpu, report.machine.cores) == ("Test CPU 9000", 2)
    assert report.machine.python == "CPython 3.11.7"
    assert report.commit == "0123456789ab (dirty) on main"
    assert (report.threads, report.quick) == (1, True)
    assert report.json_path is None and report.markdown_path is None


def test_summary_names_the_fastest_vasr_row_and_its_speedups():
    summary = summarize(_raw(), threads=2, quick=False, libraries=LIBRARIES).summary()
    assert summary.splitlines() == [
        "7 benchmarks on Test CPU 9000 (2 cores), 2 thread(s), full run",
        "  fbank 10 s clip: vasr:cython 0.1 ms/s "
        "(1.5x vs peer:torch, 12x vs peer:kaldi_native_fbank, 20x vs vasr:python)",
        "  wer 1000 pairs: vasr:cython 4 us/pair (1.2x vs peer:rapidfuzz, 4x vs peer:jiwer)",
        "missing peers (skipped): jiwer, onnxruntime",
    ]


def test_write_report_files(tmp_path):
    report = write_report(summarize(_raw(), threads=1, quick=True, libraries=LIBRARIES),
                          tmp_path / "out")
    assert report.markdown_path == tmp_path / "out" / "bench.md"
    assert report.json_path == tmp_path / "out" / "bench.json"
    assert report.png_path == tmp_path / "out" / "bench.png"

    md = report.markdown_path.read_text(encoding="utf-8").splitlines()
    for line in [
        "- date: 2026-01-02T03:04:05+00:00",
        "- CPU: Test CPU 9000, 2 cores",
        "- threads: 1; quick run (smaller cases, fewer rounds)",
        "- commit: 0123456789ab (dirty) on main",
        "## fbank 10 s clip (ms/s)",
        "| impl | ms/s | vs vasr:cython | vs peer:torch | vs peer:kaldi_native_fbank | vs vasr:python |",
        "|---|---:|---:|---:|---:|---:|",
        "| vasr:cython | 0.1 | — | 1.5x | 12x | 20x |",
        "| peer:torch | 0.15 | 0.667x | — | 8x | 13.3x |",
        "| peer:kaldi_native_fbank | 1.2 | 0.0833x | 0.125x | — | 1.67x |",
        "| vasr:python | 2 | 0.05x | 0.075x | 0.6x | — |",
        "## wer 1000 pairs (us/pair)",
        "| impl | us/pair | vs vasr:cython | vs peer:rapidfuzz | vs peer:jiwer |",
        "| vasr:cython | 4 | — | 1.2x | 4x |",
        "| peer:jiwer | 16 | 0.25x | 0.3x | — |",
        "Not installed, so the benchmarks that need them were skipped: jiwer, onnxruntime.",
        "![benchmark chart](bench.png)",
    ]:
        assert line in md, line

    data = json.loads(report.json_path.read_text(encoding="utf-8"))
    assert data["threads"] == 1 and data["quick"] is True
    assert data["missing_peers"] == ["jiwer", "onnxruntime"]
    assert data["machine"]["cpu"] == "Test CPU 9000"
    assert [row["value"] for row in data["rows"]] == pytest.approx([0.1, 0.15, 1.2, 2.0, 4.0, 4.8, 16.0])
    assert {(r["impl"], r["versus"]): r["speedup"] for r in data["ratios"]
            if r["group"] == "wer 1000 pairs"} == pytest.approx(
        {("vasr:cython", "peer:rapidfuzz"): 1.2, ("vasr:cython", "peer:jiwer"): 4.0})

    png = report.png_path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, _height = struct.unpack(">II", png[16:24])
    assert width == round(PLOT_WIDTH_IN * PLOT_DPI)


@pytest.mark.parametrize("edit, message", [
    (lambda b: b[0].pop("extra_info"), "not labelled"),
    (lambda b: b[0]["extra_info"].update(unit="fortnights"), "unknown unit"),
    (lambda b: b[0]["extra_info"].update(unit="us/pair"), "mixes units"),
    (lambda b: b[1]["extra_info"].update(impl="vasr:python"), "more than once"),
    (lambda b: b.clear(), "no measurement"),
])
def test_summarize_rejects_unusable_data(edit, message):
    raw = _raw()
    edit(raw["benchmarks"])
    with pytest.raises(BenchError, match=message):
        summarize(raw, threads=1, quick=False, libraries=LIBRARIES)


def test_library_versions_without_importing():
    import importlib.metadata

    import numpy

    versions = library_versions(("numpy", "kaldi_native_fbank", "vasr_no_such_module"))
    assert versions["numpy"] == numpy.__version__
    # import name and distribution name differ here
    assert versions["kaldi_native_fbank"] == importlib.metadata.version("kaldi-native-fbank")
    assert versions["vasr_no_such_module"] is None


def test_default_benchmarks_dir_is_the_checkouts():
    assert (default_benchmarks_dir() / "conftest.py").is_file()


def test_run_bench_without_benchmarks_dir(tmp_path):
    with pytest.raises(BenchError, match="--benchmarks DIR"):
        run_bench(tmp_path / "out", benchmarks_dir=tmp_path / "nowhere")


TINY_BENCH = '''
import os

import pytest
from conftest import QUICK, label

N = 1000 if QUICK else 100_000
GROUP = "sum, threads=" + os.environ["OMP_NUM_THREADS"]


def test_ours(benchmark):
    label(benchmark, group=GROUP, impl="vasr:python", unit="us/pair", per=N)
    assert benchmark(sum, range(N)) == N * (N - 1) // 2


def test_peer(benchmark):
    math = pytest.importorskip("math")
    label(benchmark, group=GROUP, impl="peer:math", unit="us/pair", per=N)
    benchmark(math.fsum, range(N))


def test_absent_peer(benchmark):
    pytest.importorskip("vasr_no_such_peer")
'''


@pytest.fixture
def tiny_benchmarks(tmp_path):
    bench_dir = tmp_path / "benchmarks"
    bench_dir.mkdir()
    shutil.copy(default_benchmarks_dir() / "conftest.py", bench_dir / "conftest.py")
    (bench_dir / "test_tiny.py").write_text(TINY_BENCH, encoding="utf-8")
    return bench_dir


def test_run_bench_end_to_end(tiny_benchmarks, tmp_path, capsys):
    out = tmp_path / "report"
    report = run_bench(out, quick=True, threads=2, benchmarks_dir=tiny_benchmarks)
    assert "2 passed, 1 skipped" in capsys.readouterr().out  # pytest's progress reached the console
    assert sorted((row.group, row.impl, row.unit, row.per) for row in report.rows) == [
        ("sum, threads=2", "peer:math", "us/pair", 1000.0),
        ("sum, threads=2", "vasr:python", "us/pair", 1000.0),
    ]
    assert all(row.rounds >= 3 and row.value > 0 for row in report.rows)
    assert [(r.impl, r.versus) for r in report.ratios] == [("vasr:python", "peer:math")]
    assert (report.threads, report.quick) == (2, True)
    for name in ("bench.json", "bench.md", "bench.png", "pytest-benchmark.json"):
        assert (out / name).is_file(), name
    assert report.raw_json_path == out / "pytest-benchmark.json"
    assert "## sum, threads=2 (us/pair)" in (out / "bench.md").read_text(encoding="utf-8")


def test_run_bench_only_selects(tiny_benchmarks, tmp_path):
    report = run_bench(tmp_path / "report", quick=True, only=["ours"], benchmarks_dir=tiny_benchmarks)
    assert [(row.group, row.impl) for row in report.rows] == [("sum, threads=1", "vasr:python")]
    assert report.ratios == ()
    with pytest.raises(BenchError, match="matched -k 'nothing_like_this'"):
        run_bench(tmp_path / "report", quick=True, only=["nothing_like_this"],
                  benchmarks_dir=tiny_benchmarks)


def test_run_bench_surfaces_a_failing_benchmark(tiny_benchmarks, tmp_path):
    (tiny_benchmarks / "test_broken.py").write_text(
        "from conftest import label\n\n"
        "def test_broken(benchmark):\n"
        "    label(benchmark, group='g', impl='vasr:python', unit='ms/s', per=1.0)\n"
        "    benchmark(lambda: 1 / 0)\n", encoding="utf-8")
    with pytest.raises(BenchError, match="pytest exited with code 1") as failure:
        run_bench(tmp_path / "report", quick=True, benchmarks_dir=tiny_benchmarks)
    assert "ZeroDivisionError" in str(failure.value)
