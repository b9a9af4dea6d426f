"""``vasr tune MODEL_DIR``: decoding weights searched on a dev split and stored in the model directory.

The split (by default the ``vasr synth --bias`` val split, whose utterances carry bias lists) goes
through the model once. Then, for every first-pass setting (hot-word boost x LM fusion weight x
fusion word bonus; the LM ones only with ``--lm``), each utterance is decoded with its own bias list
as hot words and its second-pass candidates are collected once with their terms (acoustic, LM,
semantic, phonetic, words) and their word errors against the reference. Because the second-pass
score is linear in its weights, every rescoring weight combination (and expansion threshold) is then
a re-ranking of the same candidates: cheap, so the grid can be wide.

The objective is the contextual-biasing target: the lowest corpus WER among the settings whose
U-WER (words outside the spoken entities) stays within ``u_wer_tolerance`` of plain beam search
without hot words — boosting names must not cost the other words. When no setting keeps that
promise, the lowest-WER one is taken and the report says so. Ties go to the first in grid order.
The result is written to ``decode.json`` (``vasr.runtime.decode.Tuned``) with the figures of the
untuned defaults beside it; ``vasr transcribe`` and ``vasr bias-eval`` read it from there.
"""
from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vasr.biasing import load_bias_split, split_log_probs, utterance_counts
from vasr.data.utterance import DataSource
from vasr.kernels import DEFAULT_BOOST
from vasr.runtime.decode import DecodeOptions, Tuned, write_tuned
from vasr.runtime.decode.rescore import RescoreWeights, combine
from vasr.runtime.decode.settings import DEFAULT_LM_WEIGHT

__all__ = ["TuneConfig", "TuneResult", "tune"]


@dataclass(frozen=True)
class TuneConfig:
    """The dev split, the models and the grids."""

    model_dir: Path
    db: str | None = None
    source: DataSource = DataSource("val", "bias")  # a split with bias lists (vasr synth --bias)
    beam: int = 8
    lm: Path | None = None  # lm.bin: tunes fusion and the LM rescoring weight
    embeddings: Path | None = None  # vasr embed build directory: tunes the phonetic weight and threshold
    fp32: bool = False
    threads: int = 1
    # hot-word bonus, nats per token; 0 (no biasing) keeps a setting that cannot cost U-WER in the grid
    boosts: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0)
    lm_weights: tuple[float, ...] = (0.0, 0.2, 0.4)  # shallow fusion (with an LM)
    fusion_bonuses: tuple[float, ...] = (0.0, 1.0)  # shallow-fusion word bonus (with an LM)
    rescore_lm: tuple[float, ...] = (0.0, 0.2, 0.5, 1.0)  # β (with an LM)
    rescore_phonetic: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)  # δ (with embeddings)
    rescore_bonus: tuple[float, ...] = (-1.0, 0.0, 0.5, 1.0, 2.0)  # second-pass word bonus
    thresholds: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8)  # expansion thresholds (with embeddings)
    u_wer_tolerance: float = 0.005  # largest U-WER increase over plain beam search allowed (absolute)


@dataclass(frozen=True)
class TuneResult:
    tuned: Tuned  # as written
    path: Path  # decode.json
    report: dict  # the figures also stored in decode.json
    settings_tried: int
    seconds: float

    def format(self) -> str:
        t, r = self.tuned, self.report
        lines = [f"{name:<24} WER {100 * r[key]['wer']:6.2f}%  U-WER {100 * r[key]['u_wer']:6.2f}%  "
                 f"B-WER {100 * r[key]['b_wer']:6.2f}%"
                 for name, key in (("beam search", "beam_search"), ("defaults", "defaults"), ("tuned", "tuned"))]
        promise = "kept" if r["u_wer_promise_kept"] else "NOT kept by any setting"
        return ("\n".join(lines) + f"\nU-WER within +{100 * r['u_wer_tolerance']:.1f} of beam search: {promise}; "
                f"{self.settings_tried} settings in {self.seconds:.1f} s\n"
                f"boost {t.boost}, fusion lm_weight {t.lm_weight} word_bonus {t.word_bonus}, rescoring "
                f"{t.rescore}, expansion threshold {t.expand_threshold}\nwritten to {self.path}")


@dataclass
class _Candidates:
    """One utterance's second-pass candidates under one first-pass setting."""

    terms: np.ndarray  # (n, 5) in rescore.TERMS order
    errors: np.ndarray  # (n, 2) word errors against the reference: unbiased, biased
    cosine: np.ndarray  # (n,) least expansion cosine (1.0 for a first-pass alternative)


def _errors(u, text: str) -> tuple[int, int]:
    counts = utterance_counts(u, text)
    return counts.unbiased_errors, counts.biased_errors


def _pick(candidates: list[_Candidates], weights: RescoreWeights, threshold: float) -> np.ndarray:
    """Summed (unbiased, biased) errors of the best-scoring candidate of every utterance under
    ``weights`` (the second pass's own ``combine``)."""
    total = np.zeros(2, dtype=np.int64)
    for c in candidates:
        scores = combine(c.terms, weights)
        scores[c.cosine < threshold] = -np.inf  # substitutions below the threshold are not proposed
        total += c.errors[int(np.argmax(scores))]
    return total


def _collect(decoder, log_probs: Sequence[np.ndarray], utterances, boost: float) -> list[_Candidates]:
    """Every utterance's second-pass candidates, decoded with its bias list at ``boost``."""
    out = []
    for u, lp in zip(utterances, log_probs):
        ranked = decoder.decode(lp, [(p, boost) for p in u.custom["bias_list"]]).candidates
        terms = np.array([c.scored.terms for c in ranked])
        errors = np.array([_errors(u, c.text) for c in ranked])
        cosine = np.array([min((p.cosine for p in c.substituted), default=1.0) for c in ranked])
        out.append(_Candidates(terms, errors, cosine))
    return out


def _best_rescoring(candidates: list[_Candidates], config: TuneConfig, lm: bool, phonetic: bool, u_limit: float):
    """(errors (unbiased, biased), weights, threshold) of the best second-pass setting: fewest errors
    with at most ``u_limit`` unbiased errors, else fewest errors."""
    betas = config.rescore_lm if lm else (0.0,)
    deltas = config.rescore_phonetic if phonetic else (0.0,)
    thresholds = config.thresholds if phonetic else (1.0,)
    best = None
    for threshold, beta, delta, bonus in itertools.product(sorted(thresholds, reverse=True), betas, deltas,
                                                           config.rescore_bonus):
        weights = RescoreWeights(1.0, beta, 0.0, delta, bonus)
        errors = _pick(candidates, weights, threshold)
        if best is None or _better(errors, best[0], u_limit):
            best = (errors, weights, threshold)
    return best


def _better(errors: np.ndarray, than: np.ndarray, u_limit: float) -> bool:
    """Whether (unbiased, biased) ``errors`` beat ``than``: keeping the U-WER promise first, then total."""
    keeps, kept = errors[0] <= u_limit, than[0] <= u_limit
    return bool(keeps > kept or (keeps == kept and errors.sum() < than.sum()))


def tune(config: TuneConfig) -> TuneResult:
    """Search the grids on the split and write decode.json."""
    start = time.perf_counter()
    lm = str(config.lm) if config.lm else None
    emb = str(config.embeddings) if config.embeddings else None
    if not (lm or emb):
        raise ValueError("nothing to tune the second pass with: give --lm and/or --embeddings")
    utterances = load_bias_split(config.db, config.source)
    log_probs, recognizer = split_log_probs(config.model_dir, utterances, config.fp32, config.threads)
    counts = [utterance_counts(u, u.text) for u in utterances]
    unbiased_words = sum(c.unbiased_words for c in counts)
    words = unbiased_words + sum(c.biased_words for c in counts)
    # the reference point of the U-WER promise: beam search without hot words, LM or second pass
    plain = recognizer.decoder_for(DecodeOptions(beam=config.beam))
    base = np.sum([_errors(u, plain.decode(lp).best.text) for u, lp in zip(utterances, log_probs)], axis=0)
    u_limit = base[0] + config.u_wer_tolerance * unbiased_words
    fusion = list(itertools.product(config.lm_weights, config.fusion_bonuses)) if lm else [(0.0, 0.0)]
    first_passes = [(b, w, f) for w, f in fusion for b in config.boosts]
    default_pass = (DEFAULT_BOOST, DEFAULT_LM_WEIGHT if lm else 0.0, 0.0)
    if default_pass not in first_passes:
        first_passes.append(default_pass)
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bias-list phrases the tokenizer cannot spell are skipped
        for boost, lm_weight, bonus in tqdm(first_passes, desc="tune", unit="setting", disable=None):
            decoder = recognizer.decoder_for(DecodeOptions(beam=config.beam, lm=lm, lm_weight=lm_weight,
                                                           word_bonus=bonus, embeddings=emb,
                                                           expand_threshold=min(config.thresholds)))
            results[(boost, lm_weight, bonus)] = _collect(decoder, log_probs, utterances, boost)
    defaults = Tuned()
    default_errors = _pick(results[default_pass], defaults.rescore, defaults.expand_threshold)
    best = None
    for key, candidates in results.items():
        errors, rescore, threshold = _best_rescoring(candidates, config, bool(lm), bool(emb), u_limit)
        if best is None or _better(errors, best[0], u_limit):
            best = (errors, key, rescore, threshold)
    errors, (boost, lm_weight, bonus), rescore, threshold = best
    grid = len(config.rescore_bonus) * (len(config.rescore_lm) if lm else 1) * \
        (len(config.rescore_phonetic) * len(config.thresholds) if emb else 1)

    def rates(e: np.ndarray) -> dict:
        return {"wer": float(e.sum()) / max(1, words), "u_wer": float(e[0]) / max(1, unbiased_words),
                "b_wer": float(e[1]) / max(1, words - unbiased_words)}

    report = {"split": config.source.split, "split_version": config.source.version, "utterances": len(utterances),
              "words": words, "beam": config.beam, "lm": lm, "embeddings": emb, "beam_search": rates(base),
              "defaults": rates(default_errors), "tuned": rates(errors),
              "u_wer_tolerance": config.u_wer_tolerance, "u_wer_promise_kept": bool(errors[0] <= u_limit),
              "first_pass_settings": len(first_passes), "second_pass_settings": grid}
    tuned = Tuned(boost=boost, lm_weight=lm_weight if lm else defaults.lm_weight,
                  word_bonus=bonus if lm else defaults.word_bonus, rescore=rescore,
                  expand_threshold=threshold if emb else defaults.expand_threshold, report=report)
    path = write_tuned(config.model_dir, tuned)
    return TuneResult(tuned, path, report, len(first_passes) * grid, time.perf_counter() - start)
