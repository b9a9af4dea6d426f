"""Sentences for the synthetic corpus: the Vietnamese message catalogues every Linux system ships, or a
text file of one's own.

``catalogue_sentences`` reads the compiled gettext catalogues (``*.mo``) of the ``vi`` locale with the
standard library and keeps the translations that read as Vietnamese prose: no format directives,
markup, URLs, paths, command-line options or column layouts, mostly Vietnamese letters, no
acronyms, 3 to 20 words once normalised, every word spelt as a Vietnamese syllable (so no English
words, which a Vietnamese voice would mispronounce). Entries are split into sentences at sentence
punctuation and line breaks. Both functions return normalised sentences (``vasr.text.normalize``), without
duplicates, in a deterministic order.
"""
from __future__ import annotations

import gettext
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from vasr.text.normalize import ABBREVIATIONS, ANY_CASE, TONE_MARKS, VOWELS, is_syllable, normalize

__all__ = ["DEFAULT_LOCALE_DIR", "catalogue_entries", "catalogue_sentences", "file_sentences", "is_plain_text",
           "split_sentences"]

DEFAULT_LOCALE_DIR = "/usr/share/locale/vi/LC_MESSAGES"
MIN_WORDS = 3  # after normalisation
MAX_WORDS = 20
MIN_MARKED_FRACTION = 0.2  # of the letters, those with a Vietnamese mark (đ, ă, â, ê, ô, ơ, ư, tones)
MAX_UPPER_FRACTION = 0.5  # of the letters, capitals

# An entry with any of these is not prose: format directives (%s, {0}, $VAR), markup, code,
# paths and placeholders (FILE_NAME), tables.
_REJECT_CHARS = frozenset("%{}$`<>\\|=@#_*^~[]/")
_REJECT_PATTERNS = re.compile(
    r"://|www\.|"  # URLs
    r"(?:^|[\s(“”‘’«\"'])--?[A-Za-z0-9]|"  # command-line options
    r"&\w|"  # menu accelerators (&Open)
    r"\S {2,}\S"  # column layouts inside a line
)
_SENTENCE_END = re.compile(r"[.!?…;:]+(?=\s|$)|\n")
# dotted abbreviations that do not end a sentence (TP. Hồ Chí Minh); "v.v." may end one
_NO_BREAK_AFTER = frozenset(k for k in ABBREVIATIONS if k.endswith(".") and not k.startswith("v.v"))
_NO_BREAK_AFTER_ANY_CASE = frozenset(k for k in ANY_CASE if k.endswith("."))
_WORD = re.compile(r"[^\W\d_]+")
# capitalised words that normalisation expands, so they are not unreadable acronyms
_EXPANDED_WORDS = frozenset(w for k in ABBREVIATIONS for w in _WORD.findall(k))
_EXPANDED_WORDS_ANY_CASE = frozenset(w for k in ANY_CASE for w in _WORD.findall(k))


def _vietnamese_letters() -> tuple[frozenset[str], frozenset[str]]:
    """(every lowercase letter of Vietnamese spelling plus f j w z, those with a Vietnamese mark)."""
    marked = {"đ"}
    for vowel in VOWELS:
        marked.add(vowel)
        for tone in TONE_MARKS:
            marked.add(unicodedata.normalize("NFC", unicodedata.normalize("NFD", vowel) + tone))
    marked -= set("aeiouy")
    return frozenset(marked | set("abcdefghijklmnopqrstuvwxyz")), frozenset(marked)


_ALPHABET, _MARKED = _vietnamese_letters()


def split_sentences(text: str) -> list[str]:
    """``text`` cut after sentence punctuation (. ! ? … ; :) followed by a space, and at line breaks;
    not after a dotted title or place abbreviation such as ``TP.`` or ``ThS.``."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        words = text[start:match.end()].split()
        if match.group(0) != "\n" and words and (
                words[-1] in _NO_BREAK_AFTER or words[-1].lower() in _NO_BREAK_AFTER_ANY_CASE):
            continue
        pieces.append(text[start:match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def _is_prose(sentence: str) -> bool:
    """Whether one sentence (as written, before normalisation) reads as Vietnamese prose."""
    letters = [c for c in sentence if c.isalpha()]
    if not letters:
        return False
    lower = [c.lower() for c in letters]
    if any(c not in _ALPHABET for c in lower):
        return False
    marked = sum(c in _MARKED for c in lower)
    if marked == 0 or marked < MIN_MARKED_FRACTION * len(letters):
        return False
    if sum(c.isupper() for c in letters) > MAX_UPPER_FRACTION * len(letters):
        return False
    return not any(len(word) >= 2 and word.isupper() and word not in _EXPANDED_WORDS
                   and word.lower() not in _EXPANDED_WORDS_ANY_CASE for word in _WORD.findall(sentence))


def is_plain_text(entry: str) -> bool:
    """Whether a catalogue entry (or any paragraph) is free of format directives, markup, code, URLs,
    paths, command-line options, column layouts and control characters other than line breaks."""
    if any(c in _REJECT_CHARS for c in entry) or _REJECT_PATTERNS.search(entry):
        return False
    return not any(unicodedata.category(c) == "Cc" and c != "\n" for c in entry)


def _entry_sentences(entry: str) -> Iterable[str]:
    if not is_plain_text(entry):
        return
    for sentence in split_sentences(entry):
        if not _is_prose(sentence):
            continue
        words = normalize(sentence).split()
        if MIN_WORDS <= len(words) <= MAX_WORDS and all(is_syllable(w) for w in words):
            yield " ".join(words)


def _dedupe(sentences: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(s for s in sentences if s))


def catalogue_sentences(locale_dir: str | os.PathLike = DEFAULT_LOCALE_DIR) -> list[str]:
    """Normalised Vietnamese sentences from the translations (plural forms too) of every ``*.mo``
    catalogue in ``locale_dir``, in order of file name, then msgid, then position in the entry."""
    return _dedupe(s for entry in catalogue_entries(locale_dir) for s in _entry_sentences(entry))


def catalogue_entries(locale_dir: str | os.PathLike = DEFAULT_LOCALE_DIR) -> Iterable[str]:
    """The translations (plural forms too) of every ``*.mo`` catalogue in ``locale_dir`` as written
    (case, punctuation, line breaks), in order of file name, then msgid."""
    directory = Path(locale_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"no message catalogue directory {directory}")
    for path in sorted(directory.glob("*.mo")):
        with open(path, "rb") as f:
            try:
                catalog = gettext.GNUTranslations(f)._catalog
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"{path}: not a readable .mo catalogue ({exc})") from None
        # msgids are str, plural forms (msgid, index); the "" entry is the header
        keys = sorted(catalog, key=lambda k: (k, -1) if isinstance(k, str) else k)
        yield from (catalog[key] for key in keys if key != "")


def file_sentences(path: str | os.PathLike) -> list[str]:
    """Normalised sentences of a UTF-8 text file: each non-empty line, split at sentence punctuation.
    ValueError naming the file and line if it is not UTF-8."""
    sentences: list[str] = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}:{number}: not UTF-8 ({exc.reason} at byte {exc.start} "
                                 "of the line)") from None
            sentences += (normalize(s) for s in split_sentences(line))
    return _dedupe(sentences)
