"""Corpus WER / CER on generated Vietnamese sentence pairs: vasr backends against jiwer, rapidfuzz, editdistance.

jiwer computes the same S/D/I counts as vasr; rapidfuzz and editdistance peers compute the distance
only (the error count), with words split by ``str.split`` and interned by a dict in Python, which is
what a caller of those libraries writes. Every implementation's error total is checked.
"""
from __future__ import annotations

import pytest
from conftest import QUICK, label
from vi_pairs import vi_pairs

from vasr.kernels import dispatch

PAIRS = 1_000 if QUICK else 10_000
SIZE = "1k" if QUICK else "10k"
MEASURES = ("wer", "cer")
GROUP = {measure: f"{measure.upper()} {SIZE} vi pairs" for measure in MEASURES}


@pytest.fixture(scope="module")
def pairs():
    return vi_pairs(PAIRS)


@pytest.fixture(scope="module")
def errors(pairs):
    """Error totals every implementation must reproduce."""
    lev = dispatch.load("levenshtein")
    return {"wer": lev.corpus_wer(*pairs).errors, "cer": lev.corpus_cer(*pairs).errors}


def _labelled(benchmark, measure: str, impl: str):
    label(benchmark, group=GROUP[measure], impl=impl, unit="us/pair", per=PAIRS)
    return benchmark


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("backend", dispatch.available("levenshtein"))
def test_vasr(benchmark, pairs, errors, backend, measure):
    corpus_rate = getattr(dispatch.load("levenshtein", backend), f"corpus_{measure}")
    corpus_rate(pairs[0][:2], pairs[1][:2])  # a JIT backend compiles (or loads its cache) outside the timing
    result = _labelled(benchmark, measure, f"vasr:{backend}")(corpus_rate, *pairs)
    assert result.errors == errors[measure]


@pytest.mark.parametrize("measure", MEASURES)
def test_jiwer(benchmark, pairs, errors, measure):
    jiwer = pytest.importorskip("jiwer")
    rate = _labelled(benchmark, measure, "peer:jiwer")(getattr(jiwer, measure), *pairs)
    expected = getattr(dispatch.load("levenshtein"), f"corpus_{measure}")(*pairs).rate
    assert rate == expected


def _word_ids(refs, hyps):
    ids: dict[str, int] = {}
    for ref, hyp in zip(refs, hyps):
        yield [ids.setdefault(w, len(ids)) for w in ref.split()], [ids.setdefault(w, len(ids)) for w in hyp.split()]


@pytest.mark.parametrize("measure", MEASURES)
def test_rapidfuzz(benchmark, pairs, errors, measure):
    distance = pytest.importorskip("rapidfuzz.distance").Levenshtein.distance

    def wer_errors(refs, hyps):
        return sum(distance(a, b) for a, b in _word_ids(refs, hyps))

    def cer_errors(refs, hyps):
        return sum(distance(ref.strip(), hyp.strip()) for ref, hyp in zip(refs, hyps))

    run = wer_errors if measure == "wer" else cer_errors
    assert _labelled(benchmark, measure, "peer:rapidfuzz")(run, *pairs) == errors[measure]


@pytest.mark.parametrize("measure", MEASURES)
def test_editdistance(benchmark, pairs, errors, measure):
    evaluate = pytest.importorskip("editdistance").eval

    def wer_errors(refs, hyps):
        return sum(evaluate(ref.split(), hyp.split()) for ref, hyp in zip(refs, hyps))

    def cer_errors(refs, hyps):
        return sum(evaluate(ref.strip(), hyp.strip()) for ref, hyp in zip(refs, hyps))

    run = wer_errors if measure == "wer" else cer_errors
    assert _labelled(benchmark, measure, "peer:editdistance")(run, *pairs) == errors[measure]
