"""Contextual-biasing evaluation: WER split into U-WER and B-WER, and the table of decoders.

Metrics, as in the contextual-biasing literature (Le et al., 2021, "Contextualized streaming
end-to-end speech recognition with trie-based deep biasing and shallow fusion"): the hypothesis is
aligned to the reference word by word (minimal edit alignment). A reference word is *biased* when it
lies inside an occurrence of one of the utterance's spoken entities (the bias-list phrases marked as
entities); substitutions and deletions count against its class. An inserted word counts as biased
when it is a word of any phrase of the bias list (entities and distractors), else as unbiased.
U-WER = unbiased errors / unbiased reference words, B-WER = biased errors / biased reference words;
WER is the usual total.

``evaluate`` decodes a database split (by default the ``vasr synth --bias`` test split) once through
the exported model and scores five decoders on the same log-probs: greedy, beam, beam + LM, beam +
hot words (each utterance's bias list in the context graph), and beam + hot words + rescoring (LM,
phonetic hot-word expansion and the Phon2Vec term), with the time each takes per utterance.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vasr.data.utterance import DataSource, Utterance
from vasr.runtime.decode import DecodeOptions

__all__ = ["BiasedCounts", "biased_counts", "utterance_counts", "word_errors", "load_bias_split", "split_log_probs",
           "EvalConfig", "Row", "evaluate", "format_table"]


@dataclass(frozen=True)
class BiasedCounts:
    """Word-error totals split by bias class (sums over utterances)."""

    unbiased_errors: int = 0
    unbiased_words: int = 0  # reference words outside spoken entities
    biased_errors: int = 0
    biased_words: int = 0  # reference words inside spoken entities

    def __add__(self, other: BiasedCounts) -> BiasedCounts:
        return BiasedCounts(self.unbiased_errors + other.unbiased_errors, self.unbiased_words + other.unbiased_words,
                            self.biased_errors + other.biased_errors, self.biased_words + other.biased_words)

    @property
    def wer(self) -> float:
        words = self.unbiased_words + self.biased_words
        return (self.unbiased_errors + self.biased_errors) / words if words else 0.0

    @property
    def u_wer(self) -> float:
        return self.unbiased_errors / self.unbiased_words if self.unbiased_words else 0.0

    @property
    def b_wer(self) -> float:
        return self.biased_errors / self.biased_words if self.biased_words else 0.0


def _entity_positions(words: list[str], entities: Sequence[str]) -> list[bool]:
    """Per reference word: inside an occurrence of one of ``entities`` (phrases)."""
    inside = [False] * len(words)
    for entity in entities:
        target = entity.split()
        n = len(target)
        for i in range(len(words) - n + 1):
            if n and words[i:i + n] == target:
                inside[i:i + n] = [True] * n
    return inside


def biased_counts(ref: str, hyp: str, entities: Sequence[str], bias_list: Sequence[str]) -> BiasedCounts:
    """The U/B error counts of one utterance. ref, hyp: normalised text; entities: the bias-list
    phrases spoken in ``ref``; bias_list: every phrase of the list (entities and distractors)."""
    from vasr.kernels import align

    ref_words, hyp_words = ref.split(), hyp.split()
    inside = _entity_positions(ref_words, entities)
    bias_vocabulary = {w for phrase in bias_list for w in phrase.split()}
    counts = [0, 0, 0, 0]  # unbiased errors, unbiased words, biased errors, biased words
    for biased in inside:
        counts[3 if biased else 1] += 1
    ids = {w: k for k, w in enumerate(dict.fromkeys(ref_words + hyp_words))}  # the kernel aligns integers
    for op, i, j in align([ids[w] for w in ref_words], [ids[w] for w in hyp_words]):
        if op in ("S", "D"):
            counts[2 if inside[i] else 0] += 1
        elif op == "I":
            counts[2 if hyp_words[j] in bias_vocabulary else 0] += 1
    return BiasedCounts(*counts)


def utterance_counts(u: Utterance, hyp: str) -> BiasedCounts:
    """``biased_counts`` of a hypothesis of a ``load_bias_split`` utterance."""
    return biased_counts(u.text, hyp, u.custom["entities"], u.custom["bias_list"])


def word_errors(ref: str, hyp: str) -> int:
    """Word-level edit distance of two normalised texts."""
    from vasr.kernels import edit_distance

    ref_words, hyp_words = ref.split(), hyp.split()
    ids = {w: k for k, w in enumerate(dict.fromkeys(ref_words + hyp_words))}
    return edit_distance([ids[w] for w in ref_words], [ids[w] for w in hyp_words])


def load_bias_split(db: str | os.PathLike | None, source: DataSource = DataSource("test", "bias")) -> list[Utterance]:
    """The utterances of a split with their bias lists in ``custom`` (``entities``: the phrases
    spoken in it, ``bias_list``: entities and distractors in list order); ValueError when the split
    is empty or has no bias lists (render one with ``vasr synth --bias``)."""
    from vasr.db import store
    from vasr.db.runs import load_utterances

    if source.manifest:
        raise ValueError(f"{source.manifest}: bias lists live in the database; give a split (vasr synth --bias)")
    utterances = load_utterances(source, db)
    engine = store.connect(db)
    with engine.connect() as conn:
        lists = store.bias_lists(conn, source.split, source.version)
    engine.dispose()
    if not lists:
        raise ValueError(f"{source.describe()} has no bias lists (`vasr synth --bias` stores them)")
    out = []
    for u in utterances:
        phrases = lists.get(u.audio_id, [])
        out.append(replace(u, custom={"entities": tuple(p for p, entity in phrases if entity),
                                      "bias_list": tuple(p for p, _ in phrases)}))
    return out


@dataclass(frozen=True)
class EvalConfig:
    """What `vasr bias-eval` scores."""

    model_dir: Path  # written by vasr export
    db: str | None = None
    source: DataSource = DataSource("test", "bias")  # a split with bias lists (vasr synth --bias)
    beam: int = 8
    lm: Path | None = None  # vasr lm build's lm.bin (rows with "LM" are skipped without it)
    embeddings: Path | None = None  # vasr embed build's directory (the rescoring row needs it or an LM)
    fp32: bool = False  # model.onnx instead of model.int8.onnx
    threads: int = 1
    limit: int = 0  # first N utterances only (0: all)
    stream: bool = False  # log-probs of the streaming model, fed chunk by chunk (no endpoints inside a clip)


@dataclass(frozen=True)
class Row:
    name: str
    counts: BiasedCounts
    ms_per_utt: float  # decoding time (the model run is shared and not included)
    rescore_ms_per_utt: float | None = None  # of which the second pass (None: the decoder has none)
    examples: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (reference, hypothesis)


def split_log_probs(model_dir: str | os.PathLike, utterances: Sequence[Utterance], fp32: bool = False,
                    threads: int = 1, stream: bool = False) -> tuple[list[np.ndarray], object]:
    """(float32 (T, V) log-probs per utterance, the ``Recognizer``) of an exported model; ``stream``:
    of its streaming model, each clip fed in 100 ms blocks as one utterance (an incremental search
    over chunks gives exactly the search over their concatenation, so decoding these log-probs is
    decoding while streaming; a clip the VAD hears no speech in gets none)."""
    from vasr.runtime.audio import load
    from vasr.runtime.recognizer import MODEL_FP32, MODEL_INT8, Recognizer, RecognizerOptions
    from vasr.runtime.stream import EndpointRules, StreamOptions, feed

    recognizer = Recognizer(model_dir, RecognizerOptions(model_file=MODEL_FP32 if fp32 else MODEL_INT8,
                                                         threads=threads))
    whole = StreamOptions(endpoint=EndpointRules(math.inf, math.inf, math.inf))
    out = []
    for u in tqdm(utterances, desc="model", unit="utt", disable=None):
        wave = load(u.path, u.start_s, u.end_s)
        if not stream:
            out.extend(recognizer.log_probs([wave]))
            continue
        finals = []
        feed(recognizer.stream(options=whole), (wave[i: i + 1600] for i in range(0, len(wave), 1600)),
             on_event=lambda e: finals.append(e.log_probs) if e.final else None)
        out.append(finals[0] if finals else np.zeros((0, len(recognizer.symbols)), np.float32))
    return out, recognizer


def evaluate(config: EvalConfig) -> list[Row]:
    """The five decoders on the split's log-probs (a row is skipped when its model is missing)."""
    utterances = load_bias_split(config.db, config.source)
    if config.limit:
        utterances = utterances[:config.limit]
    log_probs, recognizer = split_log_probs(config.model_dir, utterances, config.fp32, config.threads, config.stream)
    lm = str(config.lm) if config.lm else None
    emb = str(config.embeddings) if config.embeddings else None
    setups = [("greedy", DecodeOptions(beam=1), False), (f"beam {config.beam}", DecodeOptions(beam=config.beam), False)]
    if lm:
        setups.append((f"beam {config.beam} + LM", DecodeOptions(beam=config.beam, lm=lm), False))
    setups.append((f"beam {config.beam} + hot words", DecodeOptions(beam=config.beam), True))
    if lm or emb:
        parts = " + ".join(p for p, on in (("LM", lm), ("phonetic", emb)) if on)
        setups.append((f"beam {config.beam} + hot words + rescoring ({parts})",
                       DecodeOptions(beam=config.beam, lm=lm, embeddings=emb), True))
    rows = []
    for name, options, biased in setups:
        decoder = recognizer.decoder_for(options)
        total, seconds, rescore_s = BiasedCounts(), 0.0, 0.0
        examples = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a bias list's phrase the tokenizer cannot spell is skipped
            for u, lp in zip(tqdm(utterances, desc=name, unit="utt", disable=None), log_probs):
                hotwords = [(p, None) for p in u.custom["bias_list"]] if biased else None
                start = time.perf_counter()
                decoded = decoder.decode(lp, hotwords)
                seconds += time.perf_counter() - start
                rescore_s += decoded.second_pass_s
                hyp = decoded.best.text.strip()
                total = total + utterance_counts(u, hyp)
                if hyp != u.text and len(examples) < 5:
                    examples.append((u.text, hyp))
        n = max(1, len(utterances))
        rows.append(Row(name, total, 1000 * seconds / n,
                        1000 * rescore_s / n if decoder.settings.second_pass else None, tuple(examples)))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """A markdown table of the rows (rates in %)."""
    lines = ["| decoder | WER % | U-WER % | B-WER % | ms/utt | of which rescoring |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        c = r.counts
        rescore = "" if r.rescore_ms_per_utt is None else f"{r.rescore_ms_per_utt:.2f}"
        lines.append(f"| {r.name} | {100 * c.wer:.2f} | {100 * c.u_wer:.2f} | {100 * c.b_wer:.2f} | "
                     f"{r.ms_per_utt:.2f} | {rescore} |")
    if rows:
        c = rows[0].counts
        lines.append(f"\n{c.unbiased_words} unbiased and {c.biased_words} biased reference words")
    return "\n".join(lines)
