"""From a chunk's CTC output to text: greedy or prefix beam search with hot words (context graph)
and n-gram LM shallow fusion, then the optional second pass: N-best rescoring with phonetic hot-word
expansion (``vasr.runtime.decode.rescore.SecondPass``).

One ``Decoder`` serves every caller (the recognizer, ``vasr eval`` on a checkpoint, ``vasr tune``,
``vasr bias-eval``): it needs the model's symbols and resolved ``DecodeSettings``, and the tokenizer
only to spell hot words and find word boundaries for the LM. The LM needs the ``kenlm`` module, the
second pass's embeddings faiss (the ``embed`` extra; they load pickle-free, see
``vasr.embeddings.vectors``); each is imported only when asked for.
``Decoder.stream`` decodes an utterance chunk by chunk (partial results as the audio comes);
``Decoder.decode`` is that stream fed the whole utterance at once.
"""
from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from vasr.kernels import ContextGraph, Hypothesis, PrefixBeamSearch, ctc_forced_align, ctc_greedy_search
from vasr.runtime.decode.rescore import Candidate, SecondPass
from vasr.runtime.decode.settings import DecodeSettings
from vasr.text.normalize import normalize

__all__ = ["Alternative", "Prepared", "Decoded", "Decoder", "DecodeStream"]


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
    second_pass: SecondPass | None  # None without LM and embeddings


@dataclass(frozen=True)
class Decoded:
    best: Hypothesis  # tokens, frames (first frame of each token) and text of the winner
    alternatives: tuple[Alternative, ...]  # best first
    substituted: tuple[str, ...] = ()  # hot words the second pass put into the best hypothesis
    second_pass_s: float = 0.0  # seconds spent in the second pass (expansion, scoring, ranking)
    candidates: tuple[Candidate, ...] = ()  # every second-pass candidate with its terms, best first


class Decoder:
    """Decodes CTC log-probs of one model; not thread-safe (one per thread)."""

    def __init__(self, symbols: Sequence[str], settings: DecodeSettings = DecodeSettings(), tokenizer=None):
        """symbols: token id -> symbol (tokens.txt); tokenizer: the model's ``vasr.text.tokens.Tokenizer``
        (None: hot words cannot be spelt and are ignored with a warning; an LM then needs it)."""
        self.symbols, self.settings, self.tokenizer = list(symbols), settings, tokenizer
        self.lm = self.word2vec = self.phon2vec = None
        if settings.lm:
            from vasr.runtime.decode.lm import KenLMWordLM

            if tokenizer is None:
                raise ValueError("an LM needs the model's tokenizer (tokenizer.json) to find word boundaries")
            self.lm = KenLMWordLM(settings.lm, self.symbols)
            self.word_boundary = tokenizer.word_boundary_ids
        if settings.embeddings:
            from vasr.embeddings.vectors import Embeddings

            self.phon2vec = Embeddings.load(settings.embeddings, "phon2vec")
            if settings.context:
                self.word2vec = Embeddings.load(settings.embeddings, "word2vec")
        if settings.second_pass:
            _one_blas_thread()
        self.prepared = self.prepare(settings.hotwords)

    def prepare(self, hotwords: Sequence[str | tuple[str, float | None]]) -> Prepared:
        """The context graph, LM view and second pass for ``hotwords`` (phrases, or (phrase, bonus in
        nats per token) pairs; a phrase alone or a None bonus takes the settings' ``boost``); a warning
        names each hot word that cannot be used, and says so when none can."""
        hotwords = [(h, None) if isinstance(h, str) else h for h in hotwords]
        phrases, ids, boosts = [], [], []
        if hotwords and self.tokenizer is None:
            warnings.warn("no tokenizer to spell hot words with (the model directory has no tokenizer.json); "
                          "hot words ignored", stacklevel=2)
            hotwords = ()
        for phrase, boost in hotwords:
            text = normalize(phrase)
            try:
                spelt = self.tokenizer.encode(text)
            except ValueError as exc:
                warnings.warn(f"hot word {phrase!r} ignored: {exc}", stacklevel=2)
                continue
            if not spelt:
                warnings.warn(f"hot word {phrase!r} ignored: nothing left after normalisation", stacklevel=2)
                continue
            boost = self.settings.boost if boost is None else boost
            if boost <= 0 and self.phon2vec is None:
                warnings.warn(f"hot word {phrase!r} has boost {boost:g}: it changes nothing (a positive boost "
                              f"favours it in the search; --embeddings lets the second pass propose it)",
                              stacklevel=2)
            phrases.append(text)
            ids.append(spelt)
            boosts.append(boost)
        if hotwords and not phrases:
            warnings.warn("no hot word could be used", stacklevel=2)
        graph = ContextGraph(ids, boosts, vocab_size=len(self.symbols)) if ids else None
        lm = self.lm.with_hotwords(phrases) if self.lm is not None and phrases else self.lm
        return Prepared(graph, lm, self._second_pass(dict(zip(phrases, ids)), lm))

    def _second_pass(self, spellings: dict[str, list[int]], lm) -> SecondPass | None:
        """The second pass for hot words ``spellings`` (phrase -> token ids); None without LM and
        embeddings."""
        if lm is None and self.phon2vec is None:
            return None
        from vasr.runtime.decode.expand import ExpandOptions, HotwordExpander
        from vasr.runtime.decode.rescore import Rescorer, scorers

        s = self.settings
        hotwords = list(spellings)
        rescorer = Rescorer(s.rescore, scorers(lm, self.word2vec, self.phon2vec, s.context, hotwords))
        expander = None
        if self.phon2vec is not None and hotwords:
            expander = HotwordExpander(self.phon2vec, hotwords, ExpandOptions(threshold=s.expand_threshold))
        return SecondPass(rescorer, self.symbols, spellings, expander)

    def search(self, log_probs: np.ndarray, prepared: Prepared, nbest: int) -> list[Hypothesis]:
        """The first pass: greedy (beam 1) or prefix beam search with the prepared context graph
        and LM."""
        if self.settings.beam <= 1:
            return [ctc_greedy_search(log_probs, symbols=self.symbols)]
        search = self._beam_search(prepared, nbest)
        search.accept(log_probs)
        return search.finish()

    def _beam_search(self, prepared: Prepared, nbest: int) -> PrefixBeamSearch:
        """An incremental first pass (beam > 1) with the prepared context graph and LM."""
        beam = self.settings.beam
        lm = {}
        if prepared.lm is not None:
            lm = dict(lm=prepared.lm, lm_weight=self.settings.lm_weight, word_bonus=self.settings.word_bonus,
                      word_boundary=self.word_boundary)
        return PrefixBeamSearch(beam=beam, nbest=min(max(1, nbest), beam), context=prepared.context,
                                symbols=self.symbols, **lm)

    def stream(self, hotwords: Sequence[str | tuple[str, float | None]] | None = None) -> DecodeStream:
        """A decoder for one utterance fed chunk by chunk; ``hotwords`` as for ``decode``."""
        return DecodeStream(self, self.prepared if hotwords is None else self.prepare(hotwords))

    def decode(self, log_probs: np.ndarray, hotwords: Sequence[str | tuple[str, float | None]] | None = None
               ) -> Decoded:
        """Decode float32 (T, V) log-probs; ``hotwords`` replaces the settings' hot words for this call
        (e.g. an utterance's own bias list)."""
        stream = self.stream(hotwords)
        stream.accept(log_probs)
        return stream.finish()

    def _with_second_pass(self, log_probs: np.ndarray, prepared: Prepared, hyps: list[Hypothesis]) -> Decoded:
        """Decoded from the first pass's ``hyps`` (all ``beam`` of them) and the second pass."""
        nbest = self.settings.nbest
        start = time.perf_counter()
        ranked = prepared.second_pass.rank(log_probs, [(h.tokens, h.acoustic) for h in hyps])
        top = ranked[0]
        if top.substituted:
            best = Hypothesis(top.tokens, ctc_forced_align(log_probs, top.tokens), top.scored.score,
                              top.scored.acoustic, 0.0, top.scored.lm, top.text)
        else:
            best = replace(hyps[top.source], score=top.scored.score)
        alternatives = tuple(Alternative(c.text, c.tokens, c.scored.score, c.scored.acoustic)
                             for c in ranked[:max(1, nbest)])
        return Decoded(best, alternatives, tuple(p.hotword for p in top.substituted), time.perf_counter() - start,
                       tuple(ranked))


class DecodeStream:
    """One utterance decoded chunk by chunk (``Decoder.stream``): ``accept`` each chunk's log-probs,
    ``partial`` for the best hypothesis so far, ``finish`` for exactly what ``Decoder.decode`` gives on
    the concatenated chunks. The beam search runs as the chunks come; the log-probs are kept for the
    greedy search (beam 1) and the second pass, which need the whole utterance (bounded by the
    endpointer). After ``finish`` the stream accepts nothing more (RuntimeError)."""

    def __init__(self, decoder: Decoder, prepared: Prepared):
        self._decoder, self._prepared = decoder, prepared
        # the second pass ranks the whole beam; without it the first pass's n-best is the answer
        nbest = decoder.settings.beam if prepared.second_pass is not None else decoder.settings.nbest
        self._search = decoder._beam_search(prepared, nbest) if decoder.settings.beam > 1 else None
        self._keep = self._search is None or prepared.second_pass is not None  # whether to keep log-probs
        self._chunks: list[np.ndarray] = []
        self._frames = 0
        self._finished = False

    @property
    def num_frames(self) -> int:
        """Model frames accepted so far."""
        return self._frames

    def accept(self, log_probs: np.ndarray) -> None:
        """Append float32 (t, V) log-probs (t >= 0); ValueError as ``Decoder.decode`` for bad input."""
        if self._finished:
            raise RuntimeError("DecodeStream.accept() after finish(): start a new stream")
        if self._search is not None:
            self._search.accept(log_probs)
        else:
            ctc_greedy_search(log_probs, symbols=self._decoder.symbols)  # the checks the beam search makes
        if self._keep:
            self._chunks.append(np.array(log_probs, copy=True))  # the caller may reuse its buffer
        self._frames += log_probs.shape[0]

    def partial(self) -> Hypothesis:
        """The best hypothesis so far, before end-of-utterance corrections and the second pass; later
        chunks may revise it."""
        if self._search is not None:
            return self._search.best()
        return ctc_greedy_search(self._log_probs(), symbols=self._decoder.symbols)

    def finish(self) -> Decoded:
        """End of utterance: ``Decoder.decode`` of every accepted chunk, concatenated."""
        if self._finished:
            raise RuntimeError("DecodeStream.finish() after finish(): start a new stream")
        self._finished = True
        if self._search is not None:
            hyps = self._search.finish()
        else:
            hyps = [ctc_greedy_search(self._log_probs(), symbols=self._decoder.symbols)]
        if self._prepared.second_pass is None:
            return Decoded(hyps[0], tuple(Alternative(h.text, h.tokens, h.score, h.acoustic) for h in hyps))
        return self._decoder._with_second_pass(self._log_probs(), self._prepared, hyps)

    def _log_probs(self) -> np.ndarray:
        """float32 (T, V): every chunk accepted so far (when kept), as one array from now on."""
        if len(self._chunks) != 1:
            V = len(self._decoder.symbols)
            self._chunks = [np.concatenate(self._chunks) if self._chunks else np.zeros((0, V), np.float32)]
        return self._chunks[0]
