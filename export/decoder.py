"""From a chunk's CTC output to text: greedy or prefix beam search with hot words (context graph)
and n-gram LM shallow fusion, then the optional second pass: N-best rescoring with phonetic hot-word
expansion (``vasr.embeddings.rescore.SecondPass``).

Torch-free. The LM needs the ``kenlm`` module, the second pass's embeddings gensim and faiss (the
``embed`` extra); each is imported only when asked for.

Tuned settings: ``vasr tune`` writes ``decode.json`` into the model directory (hot-word boost, LM
fusion weight and word bonus, rescoring weights, expansion threshold). An option left unset (None)
takes its value from there, else the built-in default.
"""
from __future__ import annotations

import functools
import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vasr.config import from_dict, to_dict
from vasr.embeddings.expand import ExpandOptions
from vasr.embeddings.rescore import RescoreWeights
from vasr.kernels import ContextGraph, Hypothesis, ctc_forced_align, ctc_greedy_search, ctc_prefix_beam_search
from vasr.kernels.ctc_py import DEFAULT_BOOST

TUNED_FILE = "decode.json"
HOTWORD_BEAM = 4  # prefixes kept when hot words or an LM are given without --beam
DEFAULT_LM_WEIGHT = 0.3  # shallow-fusion nats of LM per nat of acoustic score, untuned


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode; None means "the tuned value (decode.json), else the default"."""

    beam: int = 1  # 1 = greedy search; N > 1 = prefix beam search (hot words or an LM need N > 1)
    nbest: int = 1  # alternatives reported per chunk
    hotwords: tuple[tuple[str, float | None], ...] = ()  # (phrase, bonus in nats per matched token)
    lm: str | None = None  # n-gram LM (lm.bin / lm.arpa): shallow fusion, and a rescoring term
    lm_weight: float | None = None  # shallow-fusion weight of the LM
    word_bonus: float | None = None  # shallow-fusion bonus per word
    embeddings: str | None = None  # `vasr embed build` directory: phonetic expansion + rescoring
    context: tuple[str, ...] = ()  # phrases the speech is about (semantic rescoring term)
    rescore: RescoreWeights | None = None  # second-pass weights
    expand_threshold: float | None = None  # least Phon2Vec cosine for a hot-word substitution


@dataclass(frozen=True)
class Tuned:
    """The settings ``vasr tune`` found on a dev split (the defaults until it has run)."""

    boost: float = DEFAULT_BOOST  # hot-word bonus, nats per matched token
    lm_weight: float = DEFAULT_LM_WEIGHT
    word_bonus: float = 0.0
    rescore: RescoreWeights = RescoreWeights()
    expand_threshold: float = ExpandOptions().threshold
    report: dict = field(default_factory=dict)  # what the tuning measured (split, WER before/after, grid)


def read_tuned(model_dir: str | os.PathLike) -> Tuned:
    """The model directory's tuned settings (defaults when it has no decode.json); ValueError naming
    the file and field when it is malformed."""
    path = Path(model_dir) / TUNED_FILE
    if not path.is_file():
        return Tuned()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    try:
        return from_dict(Tuned, data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def write_tuned(model_dir: str | os.PathLike, tuned: Tuned) -> Path:
    """Write decode.json atomically; returns its path."""
    path = Path(model_dir) / TUNED_FILE
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(to_dict(tuned), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


@functools.cache
def _one_blas_thread() -> None:
    """Limit numpy's BLAS to one thread for the rest of the process. The second pass multiplies
    small matrices that OpenBLAS would spread over every core, whose idle threads then spin:
    measured, `vasr tune` on 2 cores spent 51 s in the kernel with the default against 0.4 s with
    one thread, at the same wall time."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


@dataclass(frozen=True)
class Alternative:
    text: str
    tokens: tuple[int, ...]
    score: float  # nats: the first pass's acoustic + context + LM, or the second pass's combined score
    acoustic: float  # nats: log P(tokens | audio) under CTC


class Prepared(NamedTuple):
    """What decoding with one set of hot words uses."""

    context: ContextGraph | None  # the hot words' context graph (None: no usable hot word)
    lm: object  # the LM (KenLMWordLM view with the hot words' unknown words free) or None
    second_pass: object  # vasr.embeddings.rescore.SecondPass, or None without LM and embeddings


@dataclass(frozen=True)
class Decoded:
    best: Hypothesis  # tokens, frames (first frame of each token) and text of the winner
    alternatives: tuple[Alternative, ...]  # best first
    substituted: tuple[str, ...] = ()  # hot words the second pass put into the best hypothesis
    second_pass_s: float = 0.0  # seconds spent in the second pass (expansion, scoring, ranking)


class Decoder:
    """Decodes CTC log-probs of one model; not thread-safe (one per thread)."""

    def __init__(self, model_dir: str | os.PathLike, symbols: Sequence[str], options: DecodeOptions = DecodeOptions()):
        from vasr.text.normalize import normalize

        self.model_dir, self.symbols = Path(model_dir), list(symbols)
        self.tuned = tuned = read_tuned(model_dir)
        self.options = replace(
            options, lm_weight=tuned.lm_weight if options.lm_weight is None else options.lm_weight,
            word_bonus=tuned.word_bonus if options.word_bonus is None else options.word_bonus,
            rescore=tuned.rescore if options.rescore is None else options.rescore,
            expand_threshold=tuned.expand_threshold if options.expand_threshold is None else options.expand_threshold)
        self.beam = options.beam
        if options.beam <= 1 and (options.hotwords or options.lm):
            what = "hot words need" if options.hotwords else "an LM needs"
            warnings.warn(f"{what} beam search; greedy search cannot use them: decoding with --beam {HOTWORD_BEAM}",
                          stacklevel=2)
            self.beam = HOTWORD_BEAM
        self._tokenizer = None
        self.lm = self.word2vec = self.phon2vec = None
        if options.lm:
            from vasr.lm import KenLMWordLM

            self.lm = KenLMWordLM(options.lm, self.symbols)
            self.word_boundary = self.tokenizer.word_boundary_ids
        if options.embeddings:
            from vasr.embeddings.vectors import Embeddings

            self.phon2vec = Embeddings.load(options.embeddings, "phon2vec")
            if options.context:
                self.word2vec = Embeddings.load(options.embeddings, "word2vec")
        self.context = [normalize(c) for c in options.context]
        if self.lm is not None or self.phon2vec is not None:
            _one_blas_thread()
        self.prepared = self.prepare(options.hotwords)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from vasr.text.tokens import Tokenizer

            self._tokenizer = Tokenizer.load(self.model_dir)
        return self._tokenizer

    def prepare(self, hotwords: Sequence[tuple[str, float | None]]) -> Prepared:
        """The context graph, LM view and second pass for ``hotwords``; a warning names each hot
        word that cannot be used, and says so when none can."""
        from vasr.text.normalize import normalize

        phrases, ids, boosts = [], [], []
        if hotwords:
            try:
                tokenizer = self.tokenizer
            except (OSError, ValueError, ImportError) as exc:
                warnings.warn(f"{self.model_dir}: cannot load the tokenizer to spell hot words ({exc}); "
                              f"hot words ignored", stacklevel=2)
                hotwords = ()
            for phrase, boost in hotwords:
                text = normalize(phrase)
                try:
                    spelt = tokenizer.encode(text)
                except ValueError as exc:
                    warnings.warn(f"hot word {phrase!r} ignored: {exc}", stacklevel=2)
                    continue
                if not spelt:
                    warnings.warn(f"hot word {phrase!r} ignored: nothing left after normalisation", stacklevel=2)
                    continue
                boost = self.tuned.boost if boost is None else boost
                if boost <= 0 and self.phon2vec is None:
                    warnings.warn(f"hot word {phrase!r} has boost {boost:g}: it changes nothing (a positive boost "
                                  f"favours it in the search; --embeddings lets the second pass propose it)",
                                  stacklevel=2)
                phrases.append(text)
                ids.append(spelt)
                boosts.append(boost)
            if not phrases:
                warnings.warn("no hot word could be used", stacklevel=2)
        graph = ContextGraph(ids, boosts, vocab_size=len(self.symbols)) if ids else None
        lm = self.lm.with_hotwords(phrases) if self.lm is not None and phrases else self.lm
        return Prepared(graph, lm, self._second_pass(dict(zip(phrases, ids)), lm))

    def _second_pass(self, spellings: dict[str, list[int]], lm):
        """The second pass for hot words ``spellings`` (phrase -> token ids); None without LM and
        embeddings."""
        if lm is None and self.phon2vec is None:
            return None
        from vasr.embeddings.expand import ExpandOptions, HotwordExpander
        from vasr.embeddings.rescore import Rescorer, SecondPass

        o = self.options
        hotwords = list(spellings)
        rescorer = Rescorer(o.rescore, lm, self.word2vec, self.phon2vec, self.context, hotwords)
        expander = None
        if self.phon2vec is not None and hotwords:
            expander = HotwordExpander(self.phon2vec, hotwords, ExpandOptions(threshold=o.expand_threshold))
        return SecondPass(rescorer, self.symbols, spellings, expander)

    def search(self, log_probs: np.ndarray, prepared: Prepared, nbest: int) -> list[Hypothesis]:
        """The first pass: greedy (beam 1) or prefix beam search with the prepared context graph
        and LM."""
        if self.beam <= 1:
            return [ctc_greedy_search(log_probs, symbols=self.symbols)]
        lm = {}
        if prepared.lm is not None:
            lm = dict(lm=prepared.lm, lm_weight=self.options.lm_weight, word_bonus=self.options.word_bonus,
                      word_boundary=self.word_boundary)
        return ctc_prefix_beam_search(log_probs, beam=self.beam, nbest=min(max(1, nbest), self.beam),
                                      context=prepared.context, symbols=self.symbols, **lm)

    def decode(self, log_probs: np.ndarray, hotwords: Sequence[tuple[str, float | None]] | None = None) -> Decoded:
        """Decode float32 (T, V) log-probs; ``hotwords`` replaces the options' hot words for this call
        (e.g. an utterance's own bias list)."""
        prepared = self.prepared if hotwords is None else self.prepare(hotwords)
        nbest = self.options.nbest
        if prepared.second_pass is None:
            hyps = self.search(log_probs, prepared, nbest)
            return Decoded(hyps[0], tuple(Alternative(h.text, h.tokens, h.score, h.acoustic) for h in hyps))
        hyps = self.search(log_probs, prepared, self.beam)
        start = time.perf_counter()
        ranked = prepared.second_pass.rank(log_probs, [(h.tokens, h.acoustic) for h in hyps])
        top = ranked[0]
        if top.substituted:
            best = Hypothesis(top.tokens, ctc_forced_align(log_probs, top.tokens), top.scored.score, top.scored.acoustic, 0.0, top.scored.lm, top.text)
        else:
            best = replace(hyps[top.source], score=top.scored.score)
        alternatives = tuple(Alternative(c.text, c.tokens, c.scored.score, c.scored.acoustic)
                             for c in ranked[:max(1, nbest)])
        return Decoded(best, alternatives, tuple(p.hotword for p in top.substituted), time.perf_counter() - start)
