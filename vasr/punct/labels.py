"""Punctuated text -> the normalised words the recognizer prints, with the labels the model learns.

Each whitespace-separated token of the raw text is normalised on its own (``vasr.text.normalize``);
its words take the token's case and the last word takes the token's trailing mark. The words of all
tokens must equal ``normalize`` of the whole text, else the text is refused (an abbreviation or a
number spread over several tokens) and ``label_text`` returns None.

Marks: ``.`` also stands for …, ``,`` for ; : and dashes between words (lower case follows them);
?, ! as written; when a token ends with several (``?!``, ``.)``) the strongest counts (? ! . ,). A dotted abbreviation
(``v.d.``, ``v.v.``) ends with a period only at the end of the text. Case: a letter run written in
capitals (two letters or more) is UPPER, one with a capital first letter Capitalised; a token that
normalisation expands into other words (``TP.HCM``, ``12``) gives every word the case of its first
letter, Capitalised or lower.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from vasr.text.normalize import normalize

__all__ = ["Labelled", "label_text"]

# characters that stand for a mark, strongest first within equal rank; anything else is ignored
_MARK_OF = {".": 1, "…": 1, ",": 2, ";": 2, ":": 2, "–": 2, "—": 2, "?": 3, "!": 4}
_STRENGTH = {0: 0, 2: 1, 1: 2, 4: 3, 3: 4}      # , < . < ! < ?
_LETTERS = re.compile(r"[^\W\d_]+")
_TRAILING = re.compile(r"[\W_]*$")
_DOTTED_ABBREVIATION = re.compile(r"(?:[^\W\d_]{1,2}\.)+$")
# tokens repeat across a corpus: normalising each spelling once makes labelling ~10x faster
_normalize_token = functools.lru_cache(maxsize=1 << 17)(normalize)


@dataclass(frozen=True)
class Labelled:
    """One text as the model sees it."""
    words: tuple[str, ...]    # normalised words
    marks: tuple[int, ...]    # per word, an index into MARKS: the mark that follows it
    cases: tuple[int, ...]    # per word, an index into CASES


def _trailing_mark(token: str) -> int:
    best = 0
    for char in _TRAILING.search(token).group(0):
        mark = _MARK_OF.get(char, 0)
        if _STRENGTH[mark] > _STRENGTH[best]:
            best = mark
    return best


def _case(run: str) -> int:
    if len(run) > 1 and run.isupper():
        return 2
    return 1 if run[:1].isupper() else 0


def _token_cases(token: str, words: list[str]) -> list[int]:
    runs = _LETTERS.findall(token)
    if len(runs) == len(words) and all(_normalize_token(r) == w for r, w in zip(runs, words)):
        return [_case(r) for r in runs]
    first = 1 if runs and runs[0][:1].isupper() else 0  # expanded: TP.HCM, UBND, 12
    return [first] * len(words)


def label_text(text: str) -> Labelled | None:
    """The normalised words of ``text`` with their marks and cases; None when the words of its
    tokens, normalised one by one, are not those of the whole text."""
    words: list[str] = []
    marks: list[int] = []
    cases: list[int] = []
    tokens = text.split()
    for i, token in enumerate(tokens):
        token_words = _normalize_token(token).split()
        mark = _trailing_mark(token)
        if mark == 1 and i < len(tokens) - 1 and _DOTTED_ABBREVIATION.fullmatch(token):
            mark = 0
        if not token_words:  # punctuation standing alone (" – ", "…", "»") belongs to the word before
            if words and _STRENGTH[mark] > _STRENGTH[marks[-1]]:
                marks[-1] = mark
            continue
        words += token_words
        cases += _token_cases(token, token_words)
        marks += [0] * (len(token_words) - 1) + [mark]
    if not words or words != normalize(text).split():
        return None
    return Labelled(tuple(words), tuple(marks), tuple(cases))
