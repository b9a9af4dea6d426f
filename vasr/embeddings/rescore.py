"""N-best rescoring: acoustic, language-model, semantic and phonetic evidence in one linear score.

    score = α·acoustic + β·lm + γ·semantic + δ·phonetic + bonus·words

* acoustic: the first pass's CTC log-probability (nats), as the runtime writes it per alternative;
* lm: ln P(text) under the n-gram model, sentence start and end included (``KenLMWordLM``);
* semantic: cosine between the mean Word2Vec vector of the hypothesis's words and that of the
  context (a sentence or phrase list); words outside the vocabulary are skipped, none at all gives 0;
* phonetic: per hot word, the best Phon2Vec cosine between it and any span of as many words of the
  hypothesis, summed over hot words: a hypothesis that contains a hot word, or something that sounds
  like it, scores higher;
* words: the word count (a word-insertion bonus, as in shallow fusion).

``rescore_file`` reads the runtime's ``--format jsonl`` output (one transcript per line, each
segment with its ``nbest`` list) and writes it back with every segment's alternatives re-ranked.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vasr.embeddings.vectors import Embeddings
from vasr.text.normalize import normalize

__all__ = ["RescoreWeights", "RescoreConfig", "Scored", "Rescorer", "rescore_file", "run"]


@dataclass(frozen=True)
class RescoreWeights:
    """Weights of the rescoring terms (``vasr tune`` searches them on the dev split)."""

    acoustic: float = 1.0  # α, per nat of CTC log-probability
    lm: float = 0.5  # β, per nat of n-gram log-probability
    semantic: float = 0.0  # γ, per unit of cosine similarity to the context
    phonetic: float = 0.0  # δ, per unit of summed best cosine to the hot words
    word_bonus: float = 0.0  # per word of the hypothesis


@dataclass(frozen=True)
class RescoreConfig:
    """What `vasr rescore` loads; a missing model leaves its term at 0."""

    nbest: Path = Path("nbest.jsonl")  # the runtime's jsonl output (vasr transcribe --format jsonl --nbest N)
    weights: RescoreWeights = RescoreWeights()
    lm: Path | None = None  # lm.bin or lm.arpa (vasr lm build)
    embeddings: Path | None = None  # directory of word2vec/phon2vec (vasr embed build)
    context: tuple[str, ...] = ()  # sentences or phrases the speech is about (normalised on loading)
    hotwords: tuple[str, ...] = ()  # phrases (normalised on loading)


@dataclass(frozen=True)
class Scored:
    """One alternative with its terms (nats or cosines) and the combined ``score``."""

    text: str
    acoustic: float
    lm: float
    semantic: float
    phonetic: float
    words: int
    score: float


class Rescorer:
    """Scores alternatives of one utterance; each model is optional (its term is 0 without it)."""

    def __init__(self, weights: RescoreWeights = RescoreWeights(), lm=None, word2vec: Embeddings | None = None,
                 phon2vec: Embeddings | None = None, context: Sequence[str] = (), hotwords: Sequence[str] = ()):
        """lm: a ``vasr.lm.KenLMWordLM`` (or anything with ``sentence_score(text)`` in nats);
        context: sentences or phrases (normalised) that the speech is about; hotwords: phrases."""
        self.weights, self.lm, self.word2vec, self.phon2vec = weights, lm, word2vec, phon2vec
        self._context = self._mean_word2vec(" ".join(context).split()) if word2vec is not None else None
        self._hotwords = [(len(h.split()), phon2vec.word_vector(h)) for h in hotwords if h.split()] \
            if phon2vec is not None else []

    def _mean_word2vec(self, words: list[str]) -> np.ndarray | None:
        known = [w for w in words if w in self.word2vec]
        return self.word2vec.word_vector(" ".join(known)) if known else None

    def semantic(self, text: str) -> float:
        """Cosine between the hypothesis and the context (0 without either)."""
        if self._context is None:
            return 0.0
        vector = self._mean_word2vec(text.split())
        return 0.0 if vector is None else float(vector @ self._context)

    def phonetic(self, text: str) -> float:
        """Sum over hot words of the best cosine to a same-length span of the hypothesis."""
        words = text.split()
        if not self._hotwords or not words:
            return 0.0
        rows = self.phon2vec.unit_rows(words)
        # span means from prefix sums: every span of every length in one pass per hot word
        prefix = np.concatenate([np.zeros((1, rows.shape[1]), np.float32), np.cumsum(rows, axis=0)])
        total = 0.0
        for length, hot in self._hotwords:
            if length <= len(words):
                spans = prefix[length:] - prefix[:-length]
                norms = np.linalg.norm(spans, axis=1)
                total += float(((spans @ hot) / np.where(norms > 0, norms, 1.0)).max())
        return total

    def score(self, text: str, acoustic: float) -> Scored:
        w = self.weights
        lm = self.lm.sentence_score(text) if self.lm is not None else 0.0
        semantic, phonetic, words = self.semantic(text), self.phonetic(text), len(text.split())
        total = (w.acoustic * acoustic + w.lm * lm + w.semantic * semantic + w.phonetic * phonetic
                 + w.word_bonus * words)
        return Scored(text, acoustic, lm, semantic, phonetic, words, total)

    def rescore(self, alternatives: Sequence[tuple[str, float]]) -> list[Scored]:
        """(text, acoustic nats) alternatives, best combined score first (ties: input order)."""
        scored = [self.score(text, acoustic) for text, acoustic in alternatives]
        order = sorted(range(len(scored)), key=lambda i: (-scored[i].score, i))
        return [scored[i] for i in order]


def rescore_file(path: str | os.PathLike, rescorer: Rescorer) -> list[dict]:
    """The transcripts of a runtime jsonl file with each segment's ``nbest`` re-ranked.

    Per segment, ``text`` becomes the new best and each alternative gains ``lm``, ``semantic``,
    ``phonetic`` and ``rescore``; per transcript, ``text`` is rebuilt from the segments, the first
    pass's text is kept as ``first_pass``, and ``words``/``tokens`` (timings of the first-pass best)
    are dropped. Lines with an ``error`` pass through unchanged."""
    out = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
            if "error" in record:
                out.append(record)
                continue
            if "segments" not in record:
                raise ValueError(f"{path}:{number}: no 'segments' (write it with vasr transcribe --format jsonl)")
            segments = []
            for segment in record["segments"]:
                ranked = rescorer.rescore([(a["text"], a["acoustic"]) for a in segment["nbest"]])
                nbest = [{"text": s.text, "acoustic": s.acoustic, "lm": round(s.lm, 4),
                          "semantic": round(s.semantic, 4), "phonetic": round(s.phonetic, 4),
                          "rescore": round(s.score, 4)} for s in ranked]
                segments.append({**segment, "text": ranked[0].text if ranked else segment["text"], "nbest": nbest})
            rescored = {k: v for k, v in record.items() if k not in ("words", "tokens", "segments")}
            rescored.update(first_pass=record.get("text", ""), segments=segments,
                            text=" ".join(s["text"] for s in segments if s["text"]))
            out.append(rescored)
    return out


def run(config: RescoreConfig) -> list[dict]:
    """Load the models ``config`` names and rescore its n-best file (``rescore_file``)."""
    lm = word2vec = phon2vec = None
    if config.lm is not None:
        from vasr.lm import KenLMWordLM

        lm = KenLMWordLM(config.lm)
    if config.embeddings is not None:
        word2vec = Embeddings.load(config.embeddings, "word2vec") if config.context else None
        phon2vec = Embeddings.load(config.embeddings, "phon2vec") if config.hotwords else None
    elif config.context or config.hotwords:
        raise ValueError("context and hot words need embeddings (--embeddings DIR from vasr embed build)")
    rescorer = Rescorer(config.weights, lm, word2vec, phon2vec, [normalize(c) for c in config.context],
                        [normalize(h) for h in config.hotwords])
    return rescore_file(config.nbest, rescorer)
