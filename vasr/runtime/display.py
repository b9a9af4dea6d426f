"""Display text: what a person reads, made from the words the acoustic model spells.

The recognizer's words are normalised speech: lower case, no punctuation, numbers as words. For
display, per chunk (segment):

1. hot words come back as the user wrote them: a run of words equal to a hot word's normalised form
   is shown in the hot word's own spelling ("nguyễn văn a" -> "Nguyễn Văn A");
2. inverse text normalisation (``vasr.text.itn``) turns number words, dates, times, money and units
   into their written form ("hai nghìn không trăm hai mươi sáu" -> "2026") in the stretches between
   hot words;
3. the punctuation model (``vasr.runtime.punct``, when the model directory has one) gives each word
   its case and the mark that follows it; a written span takes the mark of its last spoken word and,
   when it starts with a letter, the case of its first.

Each display word keeps the time of the spoken words it came from (first start to last end) and their
mean confidence, so subtitles and word timestamps stay attached to what is shown.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from vasr.text.itn import inverse_normalize
from vasr.text.normalize import normalize

__all__ = ["Display", "display_words"]

TRAILING_MARKS = ".,?!;:…"


@dataclass(frozen=True)
class Display:
    """How display words are made: the punctuator (None: no model) and the hot words' spellings."""

    punctuator: object = None                 # vasr.runtime.punct.Punctuator or None
    hotwords: tuple[str, ...] = ()            # phrases as the user wrote them
    itn: bool = True                          # written numbers, dates, times, money, units

    @functools.cached_property  # normalised once per recognizer, not per chunk
    def spellings(self) -> dict[tuple[str, ...], tuple[str, ...]]:
        """Normalised words of each hot word -> its written words (a word count that normalisation
        changes, such as "TP.HCM", is shown as one written word over the spoken ones)."""
        out: dict[tuple[str, ...], tuple[str, ...]] = {}
        for phrase in self.hotwords:
            spoken = tuple(normalize(phrase).split())
            written = tuple(phrase.split())
            if spoken:
                out.setdefault(spoken, written if len(written) == len(spoken) else (" ".join(written),))
        return out


def _hotword_runs(words: Sequence[str], spellings: dict[tuple[str, ...], tuple[str, ...]]) -> list[tuple[int, int]]:
    """(first, end) word ranges that read as a hot word, longest first at each position, not overlapping."""
    lengths = sorted({len(k) for k in spellings}, reverse=True)
    runs, i = [], 0
    while i < len(words):
        for n in lengths:
            if tuple(words[i:i + n]) in spellings:
                runs.append((i, i + n))
                i += n
                break
        else:
            i += 1
    return runs


def _cased(text: str, like: str) -> str:
    """``text`` with its first letter upper-cased when ``like`` (a display word) starts upper-case."""
    if text[:1].isalpha() and like[:1].isupper():
        return text[0].upper() + text[1:]
    return text


def display_words(words: Sequence, display: Display, word_type) -> tuple:
    """Display words (``word_type`` instances: text, start, end, confidence) of a segment's
    spoken ``words``; see the module docstring."""
    spoken = [w.text for w in words]
    if not spoken:
        return ()
    marked = display.punctuator.apply(spoken) if display.punctuator is not None else list(spoken)
    spellings = display.spellings
    pieces: list[tuple[str, int, int, bool]] = []  # (written text, first, end, is a hot word)
    start = 0
    for first, end in _hotword_runs(spoken, spellings) + [(len(spoken), len(spoken))]:
        if display.itn:
            pieces += [(s.text, start + s.first, start + s.end, False) for s in inverse_normalize(spoken[start:first])]
        else:
            pieces += [(spoken[k], k, k + 1, False) for k in range(start, first)]
        written = spellings.get(tuple(spoken[first:end]), ())
        if len(written) == end - first:
            pieces += [(text, first + k, first + k + 1, True) for k, text in enumerate(written)]
        elif written:
            pieces.append((written[0], first, end, True))
        start = end
    out = []
    for text, first, end, hot in pieces:
        last = marked[end - 1]
        mark = last[len(last.rstrip(TRAILING_MARKS)):]
        if not hot and end - first == 1 and text == spoken[first]:
            shown = marked[first]                                     # the punctuator's word as it is
        else:
            shown = (text if hot else _cased(text, marked[first])) + mark
        group = words[first:end]
        out.append(word_type(shown, group[0].start, group[-1].end,
                             round(sum(w.confidence for w in group) / len(group), 4)))
    return tuple(out)
