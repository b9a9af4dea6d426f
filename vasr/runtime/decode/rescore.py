"""The second pass: N-best rescoring with acoustic, language-model, semantic and phonetic evidence in
one linear score, and phonetic hot-word expansion.

    score = α·acoustic + β·lm + γ·semantic + δ·phonetic + bonus·words     (``combine``, the one formula)

* acoustic: the first pass's CTC log-probability (nats), as the runtime writes it per alternative;
* lm: ln P(text) under the n-gram model, sentence start and end included (``LMScorer``);
* semantic: cosine between the mean Word2Vec vector of the hypothesis's words and that of the
  context (a sentence or phrase list); words outside the vocabulary are skipped, none at all gives 0
  (``SemanticScorer``);
* phonetic: per hot word, the best Phon2Vec cosine between it and any span of as many words of the
  hypothesis, summed over hot words: a hypothesis that contains a hot word, or something that sounds
  like it, scores higher (``PhoneticScorer``);
* words: the word count (a word-insertion bonus, as in shallow fusion).

The lm, semantic and phonetic terms are ``Scorer`` objects (a small ABC: texts in, one float each
out); a term without a scorer is 0. ``SecondPass`` is the same scoring inside the recogniser: the
first pass's alternatives of a chunk, plus the phonetic hot-word substitutions the
``HotwordExpander`` proposes for them, each scored against the chunk's CTC output
(``ctc_log_likelihood``: the exact acoustic score of the substituted token sequence), ranked by the
combined score.

``rescore_file`` reads the runtime's ``--format jsonl`` output (one transcript per line, each
segment with its ``nbest`` list) and writes it back with every segment's alternatives re-ranked.
"""
from __future__ import annotations

import abc
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from vasr.embeddings.vectors import Embeddings
from vasr.kernels import WORD_SPACE, ctc_log_likelihood, tokens_to_text
from vasr.runtime.decode.expand import HotwordExpander, Proposal
from vasr.text.normalize import normalize

__all__ = ["TERMS", "RescoreWeights", "RescoreConfig", "Scored", "Scorer", "LMScorer", "SemanticScorer",
           "PhoneticScorer", "scorers", "combine", "Rescorer", "Candidate", "word_spans", "SecondPass",
           "rescore_file", "run"]

TERMS = ("acoustic", "lm", "semantic", "phonetic", "words")  # the order of every terms vector


@dataclass(frozen=True)
class RescoreWeights:
    """Weights of the rescoring terms (``vasr tune`` searches them on the dev split), in TERMS order."""

    acoustic: float = 1.0  # α, per nat of CTC log-probability
    lm: float = 0.5  # β, per nat of n-gram log-probability
    semantic: float = 0.0  # γ, per unit of cosine similarity to the context
    phonetic: float = 0.0  # δ, per unit of summed best cosine to the hot words
    word_bonus: float = 0.0  # per word of the hypothesis


def combine(terms: np.ndarray, weights: RescoreWeights) -> np.ndarray:
    """The combined second-pass score of float64 (n, 5) ``terms`` (TERMS order): (n,)."""
    w = weights  # spelt out: dataclasses.astuple deep-copies, and tuning calls this millions of times
    return np.asarray(terms, dtype=np.float64) @ np.array((w.acoustic, w.lm, w.semantic, w.phonetic, w.word_bonus))


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

    @property
    def terms(self) -> tuple[float, ...]:
        """The five terms in TERMS order."""
        return self.acoustic, self.lm, self.semantic, self.phonetic, float(self.words)


class Scorer(abc.ABC):
    """One term of the second pass (``term``: "lm", "semantic" or "phonetic")."""

    term: ClassVar[str]

    @abc.abstractmethod
    def score(self, texts: Sequence[str]) -> np.ndarray:
        """float64 (len(texts),): the term of each hypothesis text (normalised, words split by spaces).
        All alternatives of one utterance come in one call, so shared work is done once."""


class LMScorer(Scorer):
    """ln P(text) under a word LM with ``sentence_score(text)`` in nats (``KenLMWordLM``)."""

    term = "lm"

    def __init__(self, lm):
        self.lm = lm

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.lm.sentence_score(t) for t in texts], dtype=np.float64)


class SemanticScorer(Scorer):
    """Cosine between the mean Word2Vec vector of a text's known words and that of the context."""

    term = "semantic"

    def __init__(self, word2vec: Embeddings, context: Sequence[str]):
        """context: sentences or phrases (normalised) that the speech is about."""
        self.word2vec = word2vec
        self._context = self._mean(" ".join(context).split())

    def _mean(self, words: list[str]) -> np.ndarray | None:
        known = [w for w in words if w in self.word2vec]
        return self.word2vec.word_vector(" ".join(known)) if known else None

    def score(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(texts))
        if self._context is not None:
            for i, text in enumerate(texts):
                vector = self._mean(text.split())
                out[i] = 0.0 if vector is None else float(vector @ self._context)
        return out


class PhoneticScorer(Scorer):
    """Per text, the sum over hot words of the best Phon2Vec cosine between the hot word and a span
    of as many of the text's words (0 where no span is long enough)."""

    term = "phonetic"

    def __init__(self, phon2vec: Embeddings, hotwords: Sequence[str]):
        """hotwords: phrases (normalised); duplicates and empty ones are dropped."""
        self.phon2vec = phon2vec
        # hot words grouped by word count: one (n, dim) matrix per length, scored against all spans at once
        by_length: dict[int, list[np.ndarray]] = {}
        for h in dict.fromkeys(" ".join(h.split()) for h in hotwords):
            if h:
                by_length.setdefault(len(h.split()), []).append(phon2vec.word_vector(h))
        self._hotwords = {length: np.stack(rows) for length, rows in sorted(by_length.items())}

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """The alternatives of one utterance share most of their words, so each distinct word is
        looked up once and the spans of every text come from one prefix sum."""
        out = np.zeros(len(texts))
        words = [t.split() for t in texts]
        vocabulary = list(dict.fromkeys(w for ws in words for w in ws))
        if not self._hotwords or not vocabulary:
            return out
        position = {w: i for i, w in enumerate(vocabulary)}
        unit = self.phon2vec.unit_rows(vocabulary)
        rows = unit[[position[w] for ws in words for w in ws]]
        prefix = np.concatenate([np.zeros((1, rows.shape[1]), np.float32), np.cumsum(rows, axis=0)])
        sizes = np.array([len(ws) for ws in words])
        firsts = np.cumsum(sizes) - sizes  # where each text's words begin in ``rows``
        for length, hot in self._hotwords.items():
            # spans of `length` words that stay inside one text: text k has sizes[k] - length + 1
            owners = np.flatnonzero(sizes >= length)
            if not len(owners):
                continue
            counts = sizes[owners] - length + 1
            first = np.cumsum(counts) - counts  # each owner's first span among all spans
            starts = np.repeat(firsts[owners] - first, counts) + np.arange(counts.sum())
            spans = prefix[starts + length] - prefix[starts]
            norms = np.linalg.norm(spans, axis=1, keepdims=True)
            cosines = (spans / np.where(norms > 0, norms, 1.0)) @ hot.T
            out[owners] += np.maximum.reduceat(cosines, first, axis=0).sum(axis=1)
        return out


def scorers(lm=None, word2vec: Embeddings | None = None, phon2vec: Embeddings | None = None,
            context: Sequence[str] = (), hotwords: Sequence[str] = ()) -> list[Scorer]:
    """The built-in scorers for the models given (a term whose model or input is missing has none)."""
    out: list[Scorer] = []
    if lm is not None:
        out.append(LMScorer(lm))
    if word2vec is not None and context:
        out.append(SemanticScorer(word2vec, context))
    if phon2vec is not None and hotwords:
        out.append(PhoneticScorer(phon2vec, hotwords))
    return out


class Rescorer:
    """Scores the alternatives of one utterance: the acoustic and word-count terms, plus one term
    per ``Scorer`` (at most one scorer per term)."""

    def __init__(self, weights: RescoreWeights = RescoreWeights(), scorers: Sequence[Scorer] = ()):
        self.weights = weights
        self.scorers = {s.term: s for s in scorers}
        if len(self.scorers) != len(scorers) or not set(self.scorers) <= set(TERMS[1:4]):
            raise ValueError(f"one scorer per term of {TERMS[1:4]}, got {[s.term for s in scorers]}")

    def score(self, alternatives: Sequence[tuple[str, float]]) -> list[Scored]:
        """(text, acoustic nats) alternatives with their terms and combined score, in input order."""
        texts = [text for text, _ in alternatives]
        terms = np.zeros((len(texts), len(TERMS)))
        terms[:, 0] = [acoustic for _, acoustic in alternatives]
        terms[:, 4] = [len(t.split()) for t in texts]
        for column, term in enumerate(TERMS[1:4], start=1):
            if term in self.scorers and texts:
                terms[:, column] = self.scorers[term].score(texts)
        totals = combine(terms, self.weights)
        return [Scored(text, *row[:4].tolist(), int(row[4]), float(total))
                for text, row, total in zip(texts, terms, totals)]

    def rescore(self, alternatives: Sequence[tuple[str, float]]) -> list[Scored]:
        """(text, acoustic nats) alternatives, best combined score first (ties: input order)."""
        scored = self.score(alternatives)
        order = sorted(range(len(scored)), key=lambda i: (-scored[i].score, i))
        return [scored[i] for i in order]


@dataclass(frozen=True)
class Candidate:
    """An alternative of the second pass with its scores."""

    tokens: tuple[int, ...]  # token ids (no blanks)
    scored: Scored  # text, terms and combined score
    source: int  # index of the first-pass alternative it is, or was made from
    substituted: tuple[Proposal, ...]  # the hot-word substitutions applied (empty: a first-pass alternative)

    @property
    def text(self) -> str:
        return self.scored.text


def word_spans(tokens: Sequence[int], symbols: Sequence[str]) -> list[tuple[str, int, int]]:
    """The words of a token sequence as (word, first token, one past the last token): a token whose
    symbol starts with ``▁`` begins a word; tokens that spell no letter (a lone ``▁``) belong to the
    next word's range only when they begin it."""
    words: list[list] = []
    for i, token in enumerate(tokens):
        symbol = symbols[token]
        if symbol.startswith(WORD_SPACE) or not words:
            words.append(["", i, i + 1])
        words[-1][0] += symbol.replace(WORD_SPACE, "")
        words[-1][2] = i + 1
    return [(w, a, b) for w, a, b in words if w]


class SecondPass:
    """Re-ranks a chunk's first-pass alternatives together with their phonetic hot-word
    substitutions. Not thread-safe (the LM and embeddings caches are shared)."""

    def __init__(self, rescorer: Rescorer, symbols: Sequence[str], spellings: Mapping[str, Sequence[int]],
                 expander: HotwordExpander | None = None, expand_top: int = 4):
        """spellings: each hot word (normalised) -> its token ids under the model's tokenizer;
        expander: proposes substitutions among those hot words (None: only the first-pass
        alternatives are re-ranked); expand_top: how many of the best first-pass alternatives are
        expanded."""
        self.rescorer, self.symbols, self.spellings, self.expander = rescorer, list(symbols), spellings, expander
        self.expand_top = expand_top

    def _substitute(self, tokens: tuple[int, ...], spans: list[tuple[str, int, int]],
                    proposals: Sequence[Proposal]) -> tuple[int, ...]:
        out = list(tokens)
        for p in sorted(proposals, key=lambda p: -p.start):  # right to left: earlier indices stay valid
            first, last = spans[p.start][1], spans[p.end - 1][2]
            replacement = list(self.spellings[p.hotword])
            if self.symbols[out[first]] == WORD_SPACE and self.symbols[replacement[0]] != WORD_SPACE:
                replacement = [out[first], *replacement]  # keep the word boundary before the span
            out[first:last] = replacement
        return tuple(out)

    def rank(self, log_probs: np.ndarray, alternatives: Sequence[tuple[Sequence[int], float]]) -> list[Candidate]:
        """Candidates best first (ties: first-pass order). alternatives: the first pass's (token ids,
        acoustic nats), best first; log_probs: float32 (T, V) of the chunk."""
        candidates: list[tuple[tuple[int, ...], float, int, tuple[Proposal, ...]]] = []
        seen: set[tuple[int, ...]] = set()
        for i, (tokens, acoustic) in enumerate(alternatives):
            tokens = tuple(tokens)
            if tokens not in seen:
                seen.add(tokens)
                candidates.append((tokens, acoustic, i, ()))
        if self.expander is not None:
            top = [tuple(tokens) for tokens, _ in alternatives[:self.expand_top]]
            spans_of = [word_spans(tokens, self.symbols) for tokens in top]
            sets_of = self.expander.substitutions([[w for w, _, _ in spans] for spans in spans_of])
            for i, (tokens, spans, sets) in enumerate(zip(top, spans_of, sets_of)):
                for proposals in sets:
                    new = self._substitute(tokens, spans, proposals)
                    if new not in seen:
                        seen.add(new)
                        candidates.append((new, ctc_log_likelihood(log_probs, new), i, tuple(proposals)))
        terms = self.rescorer.score([(tokens_to_text(tokens, self.symbols).strip(), acoustic)
                                     for tokens, acoustic, _, _ in candidates])
        scored = [Candidate(tokens, t, source, subs) for (tokens, _, source, subs), t in zip(candidates, terms)]
        order = sorted(range(len(scored)), key=lambda k: (-scored[k].scored.score, k))
        return [scored[k] for k in order]


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
        from vasr.runtime.decode.lm import KenLMWordLM

        lm = KenLMWordLM(config.lm)
    if config.embeddings is not None:
        word2vec = Embeddings.load(config.embeddings, "word2vec") if config.context else None
        phon2vec = Embeddings.load(config.embeddings, "phon2vec") if config.hotwords else None
    elif config.context or config.hotwords:
        raise ValueError("context and hot words need embeddings (--embeddings DIR from vasr embed build)")
    rescorer = Rescorer(config.weights, scorers(lm, word2vec, phon2vec, [normalize(c) for c in config.context],
                                                [normalize(h) for h in config.hotwords]))
    return rescore_file(config.nbest, rescorer)
