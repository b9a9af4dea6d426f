"""Run the benchmark suites and turn pytest-benchmark's JSON into the report that `vasr bench` writes.

Three steps, each usable alone:

* ``run_bench`` runs pytest on ``benchmarks/`` in a subprocess (thread count pinned through the
  environment), streams its progress to the console, then calls the two functions below;
* ``summarize`` turns the raw pytest-benchmark JSON into a ``BenchReport``: one ``Row`` per
  benchmark (median time in the row's unit) and ``Ratio``s between implementations of one group;
* ``write_report`` writes ``bench.json`` (our summary), ``bench.md`` (tables) and ``bench.png``
  (bar charts, when matplotlib is installed) into the output directory.

Every benchmark labels itself with ``label()`` from benchmarks/conftest.py: ``benchmark.group`` names
what is compared, ``extra_info`` holds ``impl`` ("vasr:<backend>" or "peer:<library>"), ``unit``
(a key of ``UNITS``) and ``per`` (seconds of audio or items handled by one call).
"""
from __future__ import annotations

import codecs
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Unit name -> factor from seconds to the unit's time scale. benchmarks/conftest.py imports this
# table, so a new unit (e.g. "RTF": 1.0, seconds of compute per second of audio) is one line here.
UNITS: dict[str, float] = {"ms/s": 1e3, "us/pair": 1e6, "us/word": 1e6, "RTF": 1.0,
                           "ms/utt": 1e3,   # ms/utt: reading or writing shards (test_bench_shards)
                           "us/row": 1e6}   # us/row: corpus import, wall time per segment (test_bench_import)

# Import names of the libraries the kernels are measured against; any may be missing.
PEERS = ("kaldi_native_fbank", "librosa", "torch", "pyctcdecode", "jiwer", "rapidfuzz", "nemo_text_processing",
         "editdistance", "onnxruntime", "sherpa_onnx", "lhotse")
# Import names of our own stack, whose versions the report header shows beside the peers'.
CORE_LIBRARIES = ("vasr", "numpy", "scipy", "numba", "pytest_benchmark")

VASR_PREFIX = "vasr:"
PEER_PREFIX = "peer:"
# Environment variables that size the thread pools of OpenMP, OpenBLAS, MKL and numexpr.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                   "NUMEXPR_NUM_THREADS")
QUICK_ENV_VAR = "VASR_BENCH_QUICK"
# Quick runs: at least 3 rounds, at most 0.2 s of timing per benchmark.
QUICK_ARGS = ("--benchmark-min-rounds=3", "--benchmark-max-time=0.2")
# pytest-benchmark's console table with all columns is ~150 characters wide; these are the ones we use.
CONSOLE_COLUMNS = "--benchmark-columns=min,median,iqr,rounds"

RAW_JSON = "pytest-benchmark.json"
SUMMARY_JSON = "bench.json"
MARKDOWN = "bench.md"
PLOT = "bench.png"

STREAM_CHUNK_BYTES = 4096
TAIL_BYTES = 64 * 1024  # pytest output kept for error messages
TAIL_LINES = 40  # lines of it quoted when pytest fails
PYTEST_NO_TESTS_COLLECTED = 5  # pytest's exit code when nothing was selected

PLOT_WIDTH_IN = 8.0
PLOT_ROW_IN = 0.35  # height per bar, inches
PLOT_GROUP_PAD_IN = 0.9  # title and axis label of one subplot, inches
PLOT_DPI = 120
VASR_COLOUR = "#1f6fb4"
PEER_COLOUR = "#9a9a9a"


class BenchError(RuntimeError):
    """The benchmarks could not run, failed, or produced data the report cannot use."""


@dataclass(frozen=True)
class Row:
    """One benchmark's result."""

    group: str  # what is compared; rows of one group are compared with each other
    name: str  # pytest's test name, e.g. "test_fbank[cython]"
    impl: str  # "vasr:<backend>" or "peer:<library>"
    unit: str  # key of UNITS
    per: float  # seconds of audio (or items) handled by one call
    median_s: float  # median seconds per call
    min_s: float  # fastest call, seconds
    iqr_s: float  # interquartile range of the call times, seconds
    rounds: int  # timed rounds
    value: float  # median_s * UNITS[unit] / per: the figure the report shows, lower is better

    @property
    def is_vasr(self) -> bool:
        return self.impl.startswith(VASR_PREFIX)


@dataclass(frozen=True)
class Ratio:
    """How many times faster a vasr implementation is than another one in its group."""

    group: str
    impl: str  # a "vasr:*" implementation
    versus: str  # a peer, or another vasr backend
    speedup: float  # versus.value / impl.value: > 1 means impl is faster


@dataclass(frozen=True)
class Machine:
    """Where the benchmarks ran."""

    cpu: str  # CPU model name
    cores: int  # logical CPUs
    python: str  # e.g. "CPython 3.11.7"
    system: str  # e.g. "Linux 6.1.0 x86_64"


@dataclass(frozen=True)
class BenchReport:
    """Everything `vasr bench` reports; the ``*_path`` fields are set once the files are written."""

    date: str  # ISO 8601, seconds, of the benchmark run
    machine: Machine
    commit: str  # "<id> (dirty) on <branch>", or "" outside a git checkout
    threads: int  # thread-pool size the run was pinned to
    quick: bool  # smaller cases and fewer rounds
    versions: Mapping[str, str]  # import name -> version, for the libraries present
    missing_peers: tuple[str, ...]  # peers (import names) not installed: their benchmarks skip
    rows: tuple[Row, ...]  # grouped, fastest first within a group
    ratios: tuple[Ratio, ...]
    raw_json_path: Path | None = None  # pytest-benchmark's own JSON
    json_path: Path | None = None
    markdown_path: Path | None = None
    png_path: Path | None = None  # None when matplotlib is missing

    def groups(self) -> dict[str, list[Row]]:
        """Rows by group, groups in first-seen order, rows fastest first."""
        groups: dict[str, list[Row]] = {}
        for row in self.rows:
            groups.setdefault(row.group, []).append(row)
        return groups

    def summary(self) -> str:
        """A few lines for the console: per group, the fastest vasr row and its speed-ups."""
        run = "quick run" if self.quick else "full run"
        lines = [f"{len(self.rows)} benchmarks on {self.machine.cpu} ({self.machine.cores} cores), "
                 f"{self.threads} thread(s), {run}"]
        for group, rows in self.groups().items():
            unit = rows[0].unit
            ours = [row for row in rows if row.is_vasr]
            if not ours:
                best = rows[0]
                lines.append(f"  {group}: no vasr row; fastest {best.impl} {_fmt(best.value)} {unit}")
                continue
            best = ours[0]
            speedups = [f"{r.speedup:.3g}x vs {r.versus}" for r in self.ratios
                        if r.group == group and r.impl == best.impl]
            tail = f" ({', '.join(speedups)})" if speedups else ""
            lines.append(f"  {group}: {best.impl} {_fmt(best.value)} {unit}{tail}")
        if self.missing_peers:
            lines.append(f"missing peers (skipped): {', '.join(self.missing_peers)}")
        written = [p for p in (self.markdown_path, self.json_path, self.png_path) if p is not None]
        if written:
            lines.append("report: " + ", ".join(str(p) for p in written))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The content of bench.json: everything but the file paths."""
        data = dataclasses.asdict(self)
        for key in ("raw_json_path", "json_path", "markdown_path", "png_path"):
            del data[key]
        data["versions"] = dict(self.versions)
        data["missing_peers"] = list(self.missing_peers)
        return data


def run_bench(out_dir: Path, quick: bool = False, only: Sequence[str] = (), threads: int = 1,
              benchmarks_dir: Path | None = None) -> BenchReport:
    """Run the benchmark suites in a pytest subprocess and write the report into ``out_dir``.

    only: pytest ``-k`` expressions, OR-ed (e.g. ``("fbank", "ctc")``); empty runs everything.
    threads: size of the OpenMP/BLAS thread pools in the subprocess.
    benchmarks_dir: defaults to the installed package's benchmarks (``default_benchmarks_dir``).
    Raises BenchError when pytest-benchmark is missing, a benchmark fails, or nothing was measured;
    a benchmark skipped for a missing peer is not an error.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    bench_dir = Path(benchmarks_dir) if benchmarks_dir is not None else default_benchmarks_dir()
    if not bench_dir.is_dir():
        raise BenchError(f"benchmarks directory not found at {bench_dir}: pass --benchmarks DIR")
    for module, package in (("pytest", "pytest"), ("pytest_benchmark", "pytest-benchmark")):
        if importlib.util.find_spec(module) is None:
            raise BenchError(f"{package} is not installed; `pip install vasr[bench]` installs it "
                             "and the peer libraries")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw_path = out_dir / RAW_JSON
    raw_path.unlink(missing_ok=True)  # a stale file must not pass for this run's results

    cmd = [sys.executable, "-m", "pytest", str(bench_dir.resolve()), "--benchmark-only",
           f"--benchmark-json={raw_path.resolve()}", "-q", "-p", "no:cacheprovider", CONSOLE_COLUMNS]
    if quick:
        cmd += QUICK_ARGS
    if isinstance(only, str):
        only = (only,)
    if only:
        cmd += ["-k", " or ".join(f"({expr})" for expr in only)]
    env = dict(os.environ)
    env.update({var: str(threads) for var in THREAD_ENV_VARS})
    env["PYTHONUNBUFFERED"] = "1"  # progress reaches the console as it happens, through the pipe
    if quick:
        env[QUICK_ENV_VAR] = "1"
    else:
        env.pop(QUICK_ENV_VAR, None)

    returncode, tail = _run_streaming(cmd, env, cwd=bench_dir)
    if returncode == PYTEST_NO_TESTS_COLLECTED:
        raise BenchError(f"no benchmark in {bench_dir} matched -k {' or '.join(only)!r}"
                         if only else f"no benchmark found in {bench_dir}")
    if returncode != 0:
        raise BenchError(f"pytest exited with code {returncode}; last lines of its output:\n{tail}")
    if not raw_path.is_file():
        raise BenchError(f"pytest succeeded but wrote no {raw_path}; last lines:\n{tail}")
    raw = json.loads(raw_path.read_text(encoding="utf-8"))
    report = summarize(raw, threads=threads, quick=quick)
    return write_report(dataclasses.replace(report, raw_json_path=raw_path), out_dir)


def default_benchmarks_dir() -> Path:
    """The benchmarks the wheel ships (``vasr/benchmarks/``), else ``benchmarks/`` of the source
    checkout vasr runs from."""
    here = Path(__file__).resolve().parent
    shipped = here / "benchmarks"
    return shipped if shipped.is_dir() else here.parent / "benchmarks"


def _run_streaming(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run ``cmd``, copying its output to our stdout as it arrives; return (exit code, last lines)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    tail = bytearray()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                          cwd=cwd) as proc:
        assert proc.stdout is not None
        # read1 returns what is available, so pytest's dots show before their line ends
        while chunk := proc.stdout.read1(STREAM_CHUNK_BYTES):
            sys.stdout.write(decoder.decode(chunk))
            sys.stdout.flush()
            tail += chunk
            del tail[:-TAIL_BYTES]
        returncode = proc.wait()
    lines = tail.decode("utf-8", "replace").splitlines()[-TAIL_LINES:]
    return returncode, "\n".join(lines)


def library_versions(modules: Sequence[str] = PEERS + CORE_LIBRARIES) -> dict[str, str | None]:
    """Import name -> installed version ("unknown" without package metadata), None when absent.

    Nothing is imported: find_spec locates the module, package metadata gives the version.
    """
    distributions = importlib.metadata.packages_distributions()
    versions: dict[str, str | None] = {}
    for module in modules:
        if importlib.util.find_spec(module) is None:
            versions[module] = None
            continue
        # the distribution may be named differently (kaldi-native-fbank, onnxruntime-gpu)
        candidates = [*distributions.get(module, ()), module]
        versions[module] = next((v for v in map(_dist_version, candidates) if v), "unknown")
    return versions


def _dist_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def summarize(raw: Mapping[str, Any], threads: int, quick: bool,
              libraries: Mapping[str, str | None] | None = None) -> BenchReport:
    """Turn pytest-benchmark's JSON (as a dict) into a BenchReport without file paths.

    libraries: import name -> version or None (absent), as from ``library_versions()`` (the default).
    Raises BenchError for a benchmark without ``label()``, an unknown unit, a group that mixes units
    or holds one impl twice, or a run without any measurement.
    """
    if libraries is None:
        libraries = library_versions()
    rows = [_row(bench) for bench in raw.get("benchmarks", ())]
    if not rows:
        raise BenchError("the benchmark run recorded no measurement "
                         "(every benchmark was skipped or deselected)")
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row.group, []).append(row)
    ratios: list[Ratio] = []
    for group, members in grouped.items():
        _check_group(group, members)
        members.sort(key=lambda row: row.value)
        ratios += [Ratio(group, ours.impl, other.impl, other.value / ours.value)
                   for ours in members if ours.is_vasr
                   for other in members if other is not ours]
    info = raw.get("machine_info", {})
    return BenchReport(
        date=_run_date(raw.get("datetime")),
        machine=_machine(info),
        commit=_commit(raw.get("commit_info", {})),
        threads=threads,
        quick=quick,
        versions={name: version for name, version in libraries.items() if version is not None},
        missing_peers=tuple(name for name in PEERS if libraries.get(name) is None),
        rows=tuple(row for members in grouped.values() for row in members),
        ratios=tuple(ratios),
    )


def _row(bench: Mapping[str, Any]) -> Row:
    name = bench.get("fullname") or bench.get("name", "?")
    extra = bench.get("extra_info") or {}
    missing = [key for key in ("impl", "unit", "per") if key not in extra]
    if missing or not bench.get("group"):
        raise BenchError(f"benchmark {name} is not labelled (no group or {missing}): call "
                         "label(benchmark, group=..., impl=..., unit=..., per=...) from "
                         "benchmarks/conftest.py")
    unit, per = extra["unit"], float(extra["per"])
    if unit not in UNITS:
        raise BenchError(f"benchmark {name}: unknown unit {unit!r}; known: {', '.join(UNITS)}")
    if per <= 0:
        raise BenchError(f"benchmark {name}: per must be > 0, got {per}")
    stats = bench["stats"]
    return Row(group=bench["group"], name=bench.get("name", name), impl=extra["impl"], unit=unit,
               per=per, median_s=stats["median"], min_s=stats["min"], iqr_s=stats["iqr"],
               rounds=int(stats["rounds"]), value=stats["median"] * UNITS[unit] / per)


def _check_group(group: str, rows: list[Row]) -> None:
    units = sorted({row.unit for row in rows})
    if len(units) > 1:
        raise BenchError(f"group {group!r} mixes units {units}: its rows cannot be compared")
    impls = [row.impl for row in rows]
    twice = sorted({impl for impl in impls if impls.count(impl) > 1})
    if twice:
        raise BenchError(f"group {group!r} holds {twice} more than once: give each case its own "
                         "group (e.g. put the clip length or beam in the group name)")


def _run_date(stamp: str | None) -> str:
    moment = datetime.fromisoformat(stamp) if stamp else datetime.now(timezone.utc)
    return moment.isoformat(timespec="seconds")


def _machine(info: Mapping[str, Any]) -> Machine:
    cpu = info.get("cpu") or {}
    system = " ".join(filter(None, (info.get("system"), info.get("release"), info.get("machine"))))
    python = " ".join(filter(None, (info.get("python_implementation"), info.get("python_version"))))
    return Machine(cpu=cpu.get("brand_raw") or cpu_model(),
                   cores=int(cpu.get("count") or os.cpu_count() or 1),
                   python=python or f"{platform.python_implementation()} {platform.python_version()}",
                   system=system or platform.platform())


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _commit(info: Mapping[str, Any]) -> str:
    commit_id = info.get("id")
    if not commit_id or commit_id == "unversioned" or info.get("error"):
        return ""
    dirty = " (dirty)" if info.get("dirty") else ""
    branch = info.get("branch")
    on_branch = f" on {branch}" if branch and branch != "(unknown)" else ""
    return f"{commit_id[:12]}{dirty}{on_branch}"


def write_report(report: BenchReport, out_dir: Path) -> BenchReport:
    """Write bench.png (when matplotlib is installed), bench.md and bench.json into ``out_dir``.

    Returns the report with the paths of the files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png_path = out_dir / PLOT
    if not _write_plot(report, png_path):
        png_path.unlink(missing_ok=True)  # an old chart must not sit beside new tables
        png_path = None
    md_path = out_dir / MARKDOWN
    json_path = out_dir / SUMMARY_JSON
    written = dataclasses.replace(report, json_path=json_path, markdown_path=md_path,
                                  png_path=png_path)
    md_path.write_text(render_markdown(written), encoding="utf-8")
    json_path.write_text(json.dumps(written.to_dict(), indent=2, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    return written


def render_markdown(report: BenchReport) -> str:
    """bench.md: a header about the machine and libraries, one table per group, missing peers."""
    run = "quick run (smaller cases, fewer rounds)" if report.quick else "full run"
    ours = ", ".join(f"{name} {version}" for name, version in report.versions.items()
                     if name not in PEERS)
    peers = ", ".join(f"{name} {version}" for name, version in report.versions.items()
                      if name in PEERS)
    lines = [
        "# vasr benchmark report",
        "",
        f"- date: {report.date}",
        f"- CPU: {report.machine.cpu}, {report.machine.cores} cores",
        f"- threads: {report.threads}; {run}",
        f"- Python: {report.machine.python} on {report.machine.system}",
        f"- libraries: {ours or 'none found'}",
        f"- peers: {peers or 'none installed'}",
    ]
    if report.commit:
        lines.append(f"- commit: {report.commit}")
    lines += [
        "",
        "Values are median times in the group's unit (lower is better). A `vs X` cell is X's value "
        "divided by the row's value: above 1 the row is faster than X.",
    ]
    for group, rows in report.groups().items():
        unit = rows[0].unit
        lines += ["", f"## {group} ({unit})", "",
                  "| impl | " + unit + " | " + " | ".join(f"vs {r.impl}" for r in rows) + " |",
                  "|---|---:|" + "---:|" * len(rows)]
        for row in rows:
            cells = ["—" if other is row else f"{_fmt(other.value / row.value)}x" for other in rows]
            lines.append(f"| {row.impl} | {_fmt(row.value)} | " + " | ".join(cells) + " |")
    lines += ["", "## Missing peers", ""]
    if report.missing_peers:
        lines.append("Not installed, so the benchmarks that need them were skipped: "
                     + ", ".join(report.missing_peers) + ".")
    else:
        lines.append(f"None: every peer ({', '.join(PEERS)}) is installed.")
    lines.append("")
    if report.png_path is not None:
        lines.append(f"![benchmark chart]({report.png_path.name})")
    else:
        lines.append(f"_{PLOT} not written: matplotlib is not installed (`pip install vasr[bench]`)._")
    return "\n".join(lines) + "\n"


def _write_plot(report: BenchReport, path: Path) -> bool:
    """One horizontal bar chart per group on a log axis; False when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, NullFormatter
    except ImportError:
        return False
    groups = report.groups()
    heights = [PLOT_ROW_IN * len(rows) + PLOT_GROUP_PAD_IN for rows in groups.values()]
    # a bare Figure on an Agg canvas leaves pyplot's global backend alone
    fig = Figure(figsize=(PLOT_WIDTH_IN, sum(heights)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(groups), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (group, rows) in zip(axes, groups.items()):
        values = [row.value for row in rows]
        bars = ax.barh([row.impl for row in rows], values,
                       color=[VASR_COLOUR if row.is_vasr else PEER_COLOUR for row in rows])
        ax.invert_yaxis()  # fastest on top, as in the tables
        ax.set_xscale("log")
        # room left of the shortest bar and right of the longest for its label
        ax.set_xlim(min(values) / 2, max(values) * 6)
        ax.bar_label(bars, labels=[_fmt(v) for v in values], padding=3, fontsize=8)
        ax.set_title(group, loc="left", fontsize=10)
        ax.set_xlabel(f"{rows[0].unit} (log scale, lower is better)", fontsize=8)
        # plain numbers on the decades; minor ticks unlabelled (their labels collide within a decade)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: _fmt(value)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(labelsize=8)
    fig.savefig(path, dpi=PLOT_DPI)
    return True


def _fmt(value: float) -> str:
    """Three significant digits; whole numbers from 1000 up (no exponent in the tables)."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"
