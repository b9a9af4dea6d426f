"""Inverse text normalisation on a 10k-word mixed Vietnamese text: vasr's ``inverse_normalize``
against NeMo's Vietnamese ITN (nemo-text-processing, WFST grammars run by pynini) when installed.

The text is sentences of everyday syllables with numbers, dates, times, money, units and phone
numbers spoken as ``normalize`` reads them (about a third of the words belong to a number). Both
sides get one sentence per call, as a recognizer hands them over; the figure is microseconds per
spoken word. NeMo's grammar build (seconds, cached on disk) is outside the timing.
"""
from __future__ import annotations

import random

import pytest
from conftest import QUICK, label
from vi_pairs import SYLLABLES

from vasr.text.itn import inverse_normalize
from vasr.text.normalize import normalize

SEED = 20260120
WORDS = 1_000 if QUICK else 10_000
GROUP = f"ITN {WORDS // 1000}k words"
MIN_PLAIN, MAX_PLAIN = 3, 12  # everyday syllables around each number expression
# written number expressions; {n} a count, {d}/{m} a day and month, {h}:{mm} a time
TEMPLATES = (
    "{n} người", "năm {y}", "ngày {d}/{m}/{y}", "tháng {m}/{y}", "lúc {h}:{mm}", "{h} giờ",
    "{n}%", "{n},{f}%", "{n} đồng", "{n}.000 đồng", "{n},{f} kg", "{n} km", "{n} m2", "{n}°C",
    "thứ {n}", "{n}-{n2} người", "0{phone}", "{n},{f} triệu đồng",
)


def mixed_text(words: int, seed: int = SEED) -> list[list[str]]:
    """Normalised sentences (lists of words) totalling at least ``words`` words."""
    rng = random.Random(seed)
    sentences, total = [], 0
    while total < words:
        n = rng.choice((rng.randint(10, 99), rng.randint(100, 9999), rng.randint(10_000, 10**9)))
        written = rng.choice(TEMPLATES).format(
            n=n, n2=n + rng.randint(1, 50), y=rng.randint(1900, 2030), d=rng.randint(1, 28),
            m=rng.randint(1, 12), h=rng.randint(0, 23), mm=f"{rng.randint(1, 59):02d}",
            f=rng.randint(1, 9), phone="".join(rng.choice("0123456789") for _ in range(9)))
        plain = [rng.choice(SYLLABLES) for _ in range(rng.randint(MIN_PLAIN, MAX_PLAIN))]
        cut = rng.randint(0, len(plain))
        sentence = normalize(" ".join([*plain[:cut], written, *plain[cut:]])).split()
        sentences.append(sentence)
        total += len(sentence)
    return sentences


@pytest.fixture(scope="module")
def sentences():
    return mixed_text(WORDS)


def _labelled(benchmark, impl: str, sentences):
    label(benchmark, group=GROUP, impl=impl, unit="us/word", per=sum(map(len, sentences)))
    return benchmark


def test_vasr(benchmark, sentences):
    def run(batch):
        return [inverse_normalize(words) for words in batch]

    result = _labelled(benchmark, "vasr:python", sentences)(run, sentences)
    assert [spans[-1].end for spans in result] == [len(words) for words in sentences]


def test_nemo(benchmark, sentences):
    pytest.importorskip("nemo_text_processing")
    from nemo_text_processing.inverse_text_normalization.inverse_normalize import InverseNormalizer

    normalizer = InverseNormalizer(lang="vi")
    texts = [" ".join(words) for words in sentences]

    def run(batch):
        return [normalizer.inverse_normalize(text, verbose=False) for text in batch]

    result = _labelled(benchmark, "peer:nemo_text_processing", sentences)(run, texts)
    assert len(result) == len(texts)
