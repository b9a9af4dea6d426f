"""The n-gram word language model: built with KenLM's ``lmplz``, queried with the ``kenlm`` module,
and fused into the CTC prefix beam search at word boundaries.

Build: ``build_lm(config, engine)`` writes the corpus (database transcripts of a split plus optional
extra text, normalised: ``vasr.embeddings.build.corpus_sentences``) one sentence per line, runs
``lmplz`` (modified Kneser-Ney, the ``--discount_fallback`` for small corpora) to ``lm.arpa`` and
``build_binary`` to ``lm.bin`` (faster to load). ``lmplz`` is not on PyPI: it is compiled from the
kenlm sources (the PyPI sdist) with Debian's boost (libboost-program-options-dev, -system-dev,
-thread-dev, zlib1g-dev); it is found on $PATH, beside the Python executable, or at
``$VASR_LMPLZ``.

Query: ``KenLMWordLM`` implements ``vasr.kernels.ctc_py.WordLM``: a word (token ids from a word
boundary to the next) is detokenised to text and scored with ``kenlm.Model.BaseScore``; KenLM
returns log10, the search wants natural logs, so scores are multiplied by ln 10.

Hot words: a name the LM never saw would be charged the ``<unk>`` probability, which says nothing
about the name and works against biasing. ``with_hotwords(phrases)`` gives a view of the same model
in which the hot words' out-of-vocabulary words are free (score 0; the words after them back off as
after any unknown word); words the LM knows keep their scores.
"""
from __future__ import annotations

import copy
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from vasr.embeddings.build import corpus_sentences
from vasr.kernels.ctc_py import WordLM, tokens_to_text

__all__ = ["LMConfig", "LMReport", "find_tool", "build_lm", "KenLMWordLM"]

LN10 = math.log(10.0)  # KenLM scores are log10; the decoder works in nats
LMPLZ_ENV = "VASR_LMPLZ"


@dataclass(frozen=True)
class LMConfig:
    """What `vasr lm build` builds and where."""

    out_dir: Path = Path("lm")  # receives lm.arpa, lm.bin, corpus.txt
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
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
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
    binary = None
    if config.binary:
        binary = out / "lm.bin"
        done = subprocess.run([find_tool("build_binary"), str(arpa), str(binary)], capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"build_binary failed: {done.stderr.decode(errors='replace')[-2000:]}")
    return LMReport(len(sentences), arpa, binary, _arpa_counts(arpa), time.perf_counter() - start)


class KenLMWordLM(WordLM):
    """A KenLM model as the beam search's word LM (scores in nats).

    States are ``kenlm.State`` objects, never mutated after they are returned. A word's text is its
    tokens detokenised (``▁`` stripped); a "word" of no letters (e.g. a lone ``▁``) scores 0 and
    keeps the state.
    """

    def __init__(self, path: str | os.PathLike, symbols: Sequence[str] = ()):
        """path: an ARPA or KenLM binary file; symbols: token id -> symbol (the model's tokens.txt;
        not needed for ``sentence_score`` alone)."""
        import kenlm

        self._kenlm = kenlm
        self.model = kenlm.Model(str(path))
        self.symbols = list(symbols)
        self._text: dict[tuple[int, ...], str] = {}
        self.free: frozenset[str] = frozenset()  # words scored 0 (out-of-vocabulary hot-word words)

    def with_hotwords(self, phrases: Sequence[str]) -> KenLMWordLM:
        """A view sharing this model in which the words of ``phrases`` (normalised) that the LM does
        not know score 0 instead of the ``<unk>`` probability."""
        view = copy.copy(self)
        view.free = frozenset(w for p in phrases for w in p.split() if w not in self.model)
        return view

    def initial_state(self):
        state = self._kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def word_text(self, word: tuple[int, ...]) -> str:
        text = self._text.get(word)
        if text is None:
            text = self._text[word] = tokens_to_text(word, self.symbols).strip()
        return text

    def score(self, state, word: tuple[int, ...]):
        text = self.word_text(word)
        if not text:
            return 0.0, state
        out = self._kenlm.State()
        score = self.model.BaseScore(state, text, out)
        return (0.0 if text in self.free else LN10 * score), out

    def final(self, state) -> float:
        return LN10 * self.model.BaseScore(state, "</s>", self._kenlm.State())

    def sentence_score(self, text: str) -> float:
        """ln P(text) with sentence start and end (for N-best rescoring); free words add 0."""
        if not self.free:
            return LN10 * self.model.score(text, bos=True, eos=True)
        state, total = self.initial_state(), 0.0
        for word in text.split():
            out = self._kenlm.State()
            score = self.model.BaseScore(state, word, out)
            total += 0.0 if word in self.free else score
            state = out
        return LN10 * (total + self.model.BaseScore(state, "</s>", self._kenlm.State()))
