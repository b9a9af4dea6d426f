"""Building the n-gram word language model with KenLM's ``lmplz`` (``vasr lm build``); the query
half that decoding uses is ``vasr.runtime.decode.lm``.

``build_lm(config, engine)`` writes the corpus (database transcripts of a split plus optional
extra text, normalised: ``vasr.embeddings.build.corpus_sentences``) one sentence per line, runs
``lmplz`` (modified Kneser-Ney, the ``--discount_fallback`` for small corpora) to ``lm.arpa`` and
``build_binary`` to ``lm.bin`` (faster to load). ``lmplz`` is not on PyPI: it is compiled from the
kenlm sources (the PyPI sdist) with Debian's boost (libboost-program-options-dev, -system-dev,
-thread-dev, zlib1g-dev); it is found on $PATH, beside the Python executable, or at
``$VASR_LMPLZ``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from vasr.embeddings.build import corpus_sentences
from vasr.staging import stage

__all__ = ["LMConfig", "LMReport", "find_tool", "build_lm"]

LMPLZ_ENV = "VASR_LMPLZ"
LM_FILES = ("corpus.txt", "lm.arpa", "lm.bin")  # what a build writes into its out_dir


@dataclass(frozen=True)
class LMConfig:
    """What `vasr lm build` builds and where."""

    out_dir: Path = Path("lm")  # receives LM_FILES
    order: int = 3  # n-gram order
    text: Path | None = None  # extra UTF-8 text, one sentence per line (normalised on reading)
    split: str | None = "train"  # transcripts of this split only (None: all)
    split_version: str = "default"
    memory: str = "20%"  # lmplz -S: sort memory (a share of RAM or a size such as 1G)
    prune: tuple[int, ...] = ()  # lmplz --prune thresholds per order (empty: no pruning)
    binary: bool = True  # also write lm.bin with build_binary


@dataclass(frozen=True)
class LMReport:
    """What a build produced."""

    sentences: int
    arpa: Path
    binary: Path | None
    ngrams: dict  # order -> count, from the ARPA header
    seconds: float

    def format(self) -> str:
        counts = ", ".join(f"{n}-grams {c}" for n, c in sorted(self.ngrams.items()))
        return (f"{self.sentences} sentences -> {self.binary or self.arpa} ({counts}) "
                f"in {self.seconds:.1f} s")


def find_tool(name: str) -> str:
    """Path of a KenLM tool (``lmplz``, ``build_binary``): $VASR_LMPLZ's folder, $PATH, or beside
    the Python executable (a virtual environment's bin/); RuntimeError saying how to get it."""
    candidates = []
    if os.environ.get(LMPLZ_ENV):
        candidates.append(Path(os.environ[LMPLZ_ENV]).with_name(name))
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    candidates.append(Path(sys.executable).with_name(name))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise RuntimeError(f"KenLM's {name} not found (on $PATH, beside {sys.executable} or via ${LMPLZ_ENV}); "
                       "build it from the kenlm sources: apt-get install libboost-program-options-dev "
                       "libboost-system-dev libboost-thread-dev zlib1g-dev cmake; pip download kenlm "
                       "--no-binary :all:; cmake + make lmplz build_binary")


def _arpa_counts(path: Path) -> dict[int, int]:
    counts = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("ngram "):
                order, count = line[6:].split("=")
                counts[int(order)] = int(count)
            elif line.startswith("\\1-grams:"):
                break
    return counts


def build_lm(config: LMConfig, engine: Engine | None = None) -> LMReport:
    """Build ``lm.arpa`` (and ``lm.bin``) in ``config.out_dir`` from the corpus."""
    sentences = corpus_sentences(engine, config.split, config.split_version, config.text)
    if not sentences:
        raise ValueError(f"no sentences to build a language model from (split {config.split!r})")
    if config.order < 1:
        raise ValueError(f"order must be >= 1, got {config.order}")
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: an existing file, not a directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # built in a sibling folder and moved in when complete: a failed or killed build leaves the
    # previous model as it was
    folder = stage(out.parent, out.name, "lm")
    try:
        counts, written = _build_into(config, sentences, folder)
        out.mkdir(exist_ok=True)
        for name in set(LM_FILES) - set(written):
            (out / name).unlink(missing_ok=True)       # an lm.bin of an earlier build with the binary
        for name in written:
            os.replace(folder / name, out / name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return LMReport(len(sentences), out / "lm.arpa", out / "lm.bin" if config.binary else None, counts,
                    time.perf_counter() - start)


def _build_into(config: LMConfig, sentences: list[str], out: Path) -> tuple[dict, list[str]]:
    """lmplz (and build_binary) in ``out``: the ARPA's n-gram counts and the files written."""
    corpus = out / "corpus.txt"
    corpus.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    arpa = out / "lm.arpa"
    command = [find_tool("lmplz"), "-o", str(config.order), "-S", config.memory, "--discount_fallback"]
    if config.prune:
        command += ["--prune", *map(str, config.prune)]
    with tempfile.TemporaryDirectory() as scratch, open(corpus, "rb") as text, open(arpa, "wb") as arpa_file:
        done = subprocess.run(command + ["-T", scratch], stdin=text, stdout=arpa_file, stderr=subprocess.PIPE)
    if done.returncode != 0:
        raise RuntimeError(f"lmplz failed ({done.returncode}): {done.stderr.decode(errors='replace')[-2000:]}")
    if config.binary:
        done = subprocess.run([find_tool("build_binary"), str(arpa), str(out / "lm.bin")], capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"build_binary failed: {done.stderr.decode(errors='replace')[-2000:]}")
    return _arpa_counts(arpa), [p.name for p in out.iterdir()]
