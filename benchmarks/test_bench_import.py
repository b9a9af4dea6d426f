"""Corpus import at scale: ``vasr import kaldi`` of a generated Kaldi data dir (1,000,000 segments over
20 audio files by default) into SQLite and into a PostgreSQL server, each in its own process.

Rows/s (segments written per second of the whole import process: start, reading, probing, checking,
writing, commit), the audio-probing share (hashing and decoding each distinct file), the times of
the other stages, the process's CPU time and peak RSS (ru_maxrss), and the same for a re-import
(everything present) go to extra_info and, with ``-s``, to the console. ``VASR_BENCH_IMPORT_ROWS`` sets the number of segments (quick runs:
20,000). The unit is "us/row": microseconds of wall time per imported segment.

The corpus: 20 files of 8 s of 16 kHz tone (distinct frequencies, so distinct hashes); segment j of
a file starts at j x 0.1 ms and lasts 1.5-2.3 s (overlapping segments are allowed in Kaldi: the key
is the file's hash and the segment); transcripts are drawn from 10,000 short Vietnamese phrases (a
read-speech corpus repeats its prompts; normalising a distinct transcript costs ~0.1 ms, see the
README); 200 speakers.
"""
from __future__ import annotations

import importlib.util
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import QUICK, label

ROWS_ENV_VAR = "VASR_BENCH_IMPORT_ROWS"
ROWS = int(os.environ.get(ROWS_ENV_VAR) or (20_000 if QUICK else 1_000_000))
FILES = 20
FILE_S = 8.0            # seconds of audio per file
RATE = 16000
START_STEP_S = 1e-4     # segment j of a file starts at j x this
SPEAKERS = 200
PHRASES = 10_000
WORDS = ("tôi bạn người nhà đi về học sinh trường hôm nay trời đẹp quá chúng ta cùng nhau ăn cơm uống nước "
         "làm việc thành phố hà nội sài gòn đà nẵng mua bán chợ xe máy đường sáng chiều tối đêm mùa xuân hạ "
         "thu đông gió mưa nắng biển sông núi rừng cây hoa lá quê hương đất nước yêu thương gia đình mẹ cha "
         "anh chị em").split()


def make_kaldi_dir(root: Path, rows: int, files: int = FILES, seed: int = 0) -> Path:
    """A Kaldi data dir of ``rows`` segments over ``files`` wav files under ``root``; returns it."""
    audio = root / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(FILE_S * RATE)) / RATE
    scp = []
    for f in range(files):
        path = audio / f"rec{f:02d}.wav"
        sf.write(str(path), (0.3 * np.sin(2 * np.pi * (200 + 37 * f) * t)).astype(np.float32), RATE)
        scp.append(f"rec{f:02d} {path}\n")
    rng = random.Random(seed)
    phrases = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))).capitalize() + "."
               for _ in range(PHRASES)]
    per_file = -(-rows // files)
    if (per_file - 1) * START_STEP_S + 2.3 > FILE_S:
        raise ValueError(f"{rows} segments do not fit in {files} files of {FILE_S} s")
    data = root / "train"
    data.mkdir(parents=True, exist_ok=True)
    with open(data / "segments", "w", encoding="utf-8") as seg, open(data / "text", "w", encoding="utf-8") as txt, \
            open(data / "utt2spk", "w", encoding="utf-8") as spk:
        for k in range(rows):
            f, j = k % files, k // files
            speaker = f"spk{k % SPEAKERS:03d}"
            utt = f"{speaker}-rec{f:02d}-{j:06d}"
            start = j * START_STEP_S
            seg.write(f"{utt} rec{f:02d} {start:.4f} {start + 1.5 + (j % 5) * 0.2:.4f}\n")
            txt.write(f"{utt} {phrases[rng.randrange(PHRASES)]}\n")
            spk.write(f"{utt} {speaker}\n")
    (data / "wav.scp").write_text("".join(scp), encoding="utf-8")
    return data


_RUNNER = """
import json, resource, sys, time
t0 = time.perf_counter()
from vasr.data.importers import ImportOptions, import_corpus
from vasr.db import store
engine = store.connect(sys.argv[2])
report = import_corpus("kaldi", sys.argv[1], engine, ImportOptions())
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"imported": report.imported, "present": report.already_present, "rejected": len(report.rejects),
                  "wall_s": time.perf_counter() - t0, "timings": report.timings, "maxrss_mb": usage.ru_maxrss / 1024,
                  "cpu_s": usage.ru_utime + usage.ru_stime}))
"""


def run_import(data: Path, db: str) -> dict:
    """``vasr import kaldi DATA --db DB`` in a fresh process: its wall time and peak RSS (ru_maxrss of
    the child), plus the import's own timings (read, probe, rows)."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = subprocess.run([sys.executable, "-c", _RUNNER, str(data), db], capture_output=True, text=True,
                            env={**os.environ, "TQDM_DISABLE": "1"})
    wall = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    # RUSAGE_CHILDREN is the largest child so far: a smaller later child reads the earlier peak
    out.update(command_wall_s=wall, children_maxrss_mb=max(before, resource.getrusage(
        resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)
    return out


def _load_tests_conftest():
    """tests/conftest.py of the source checkout (its postgres_server fixture), or None (a wheel)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "conftest.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("vasr_tests_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_tests_conftest = _load_tests_conftest()
if _tests_conftest is not None:
    postgres_server = _tests_conftest.postgres_server   # re-exposed: the benchmarks' conftest is another file
else:
    @pytest.fixture(scope="session")
    def postgres_server():
        if os.environ.get("VASR_TEST_POSTGRES_URL"):
            return os.environ["VASR_TEST_POSTGRES_URL"]
        pytest.skip("no PostgreSQL: set VASR_TEST_POSTGRES_URL")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_kaldi_dir(tmp_path_factory.mktemp("import-corpus"), ROWS)


def _database(backend: str, tmp_path: Path, request) -> str:
    if backend == "sqlite":
        return str(tmp_path / "bench.db")
    if _tests_conftest is None:
        pytest.skip("creating a PostgreSQL database needs tests/conftest.py (a source checkout)")
    return _tests_conftest.new_database(request.getfixturevalue("postgres_server"), "vasr_bench")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_import(benchmark, corpus, backend, tmp_path, request):
    db = _database(backend, tmp_path, request)
    label(benchmark, group=f"import, Kaldi dir of {ROWS:,} segments over {FILES} files", impl=f"vasr:{backend}",
          unit="us/row", per=ROWS)   # before it runs: pytest-benchmark takes the group then
    results = []
    benchmark.pedantic(lambda: results.append(run_import(corpus, db)), rounds=1, iterations=1)
    first = results[0]
    assert first["imported"] == ROWS and first["rejected"] == 0, first
    again = run_import(corpus, db)   # idempotent: everything present, nothing written
    assert again["imported"] == 0 and again["present"] == ROWS, again
    timings = first["timings"]
    probe_share = timings["probe_s"] / first["wall_s"]
    figures = dict(rows=ROWS, files=FILES, rows_per_s=ROWS / first["wall_s"],
                   rows_per_s_command=ROWS / first["command_wall_s"], wall_s=first["wall_s"], cpu_s=first["cpu_s"],
                   probe_s=timings["probe_s"], probe_share=probe_share, read_s=timings["read_s"],
                   rows_s=timings["rows_s"], check_s=timings["check_s"], peak_rss_mb=first["maxrss_mb"],
                   reimport_rows_per_s=ROWS / again["wall_s"], reimport_peak_rss_mb=again["maxrss_mb"])
    benchmark.extra_info.update(figures)
    print(f"\nimport {backend}: {ROWS:,} rows in {first['wall_s']:.1f} s = {figures['rows_per_s']:,.0f} rows/s "
          f"(probing {timings['probe_s']:.2f} s = {100 * probe_share:.1f}%, reading {timings['read_s']:.1f} s, "
          f"rows {timings['rows_s']:.1f} s), peak RSS {first['maxrss_mb']:.0f} MB; re-import "
          f"{figures['reimport_rows_per_s']:,.0f} rows/s, peak RSS {again['maxrss_mb']:.0f} MB")
