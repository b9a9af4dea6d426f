"""Punctuated Vietnamese paragraphs for the punctuation model, and the windows it is trained on.

Sources (``SOURCES``), all on this machine and read without network:

* ``catalogues``: the translations of the system's message catalogues as written
  (``vasr.data.textsource.catalogue_entries``), split at blank lines;
* ``libreoffice``: the paragraphs of LibreOffice's Vietnamese help (Debian ``libreoffice-help-vi``,
  HTML under ``/usr/share/libreoffice/help/vi``);
* ``gnome``: the paragraphs of GNOME's Vietnamese help (Debian ``gnome-user-docs``, Mallard pages under
  ``/usr/share/help/vi``): the held-out source by default, prose of another project and translation team;
* ``generated``: everyday sentences from templates (``vasr.punct.sentences``);
* ``file``: a UTF-8 text file of one's own, one paragraph per line.

Every source keeps the same kind of paragraph: plain text (``textsource.is_plain_text``), starting with a
capital and ending with . ? or ! (so every sentence boundary is marked), at least ``MIN_WORDS`` words
once normalised, at least ``MIN_SYLLABLE_SHARE`` of them Vietnamese syllables, and labels that align
(``vasr.punct.labels``). Debian's Vietnamese manual pages and maintainers' guides are never read: they are
reserved for independent evaluation.
"""
from __future__ import annotations

import html
import random
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from vasr.data.textsource import catalogue_entries, is_plain_text
from vasr.punct.labels import Labelled, label_text
from vasr.punct.sentences import generated_paragraphs
from vasr.text.normalize import is_syllable

__all__ = ["SOURCES", "HELP_DIR", "GNOME_HELP_DIR", "help_root", "source_paragraphs", "keep_paragraph",
           "is_validation", "training_windows", "evaluation_windows"]

SOURCES = ("catalogues", "libreoffice", "gnome", "generated", "file")
HELP_DIR = "/usr/share/libreoffice/help/vi"
GNOME_HELP_DIR = "/usr/share/help/vi"
MIN_WORDS = 3
MIN_SYLLABLE_SHARE = 0.8        # of the normalised words: the rest may be names of software, keys, ...
_ENDS_SENTENCE = re.compile(r"[.?!][\"'”’»)\]]*$")
_FIRST_LETTER = re.compile(r"[^\W\d_]")
_BLANK_LINE = re.compile(r"\n\s*\n")
_HTML_BLOCK = re.compile(r"<(p|h[1-6]|li|td|th)\b[^>]*>(?P<text>.*?)</\1>", re.S)
_HTML_TAG = re.compile(r"<[^>]+>")
_MALLARD_PARAGRAPH = re.compile(r"<p\b[^>]*>(?P<text>.*?)</p>", re.S)
# help source -> (project, Debian package, page files, the pattern of a block of text)
_HELP = {"libreoffice": ("LibreOffice", "libreoffice-help-vi", "*.html", _HTML_BLOCK),
         "gnome": ("GNOME", "gnome-user-docs", "*.page", _MALLARD_PARAGRAPH)}


def keep_paragraph(text: str) -> Labelled | None:
    """The labelled words of one paragraph (whitespace collapsed) if it is the prose every source keeps."""
    text = " ".join(text.split())
    first = _FIRST_LETTER.search(text)
    if not first or not first.group(0).isupper() or not _ENDS_SENTENCE.search(text) or not is_plain_text(text):
        return None
    labelled = label_text(text)
    if labelled is None or len(labelled.words) < MIN_WORDS:
        return None
    if sum(map(is_syllable, labelled.words)) < MIN_SYLLABLE_SHARE * len(labelled.words):
        return None
    return labelled


def help_root(source: str, directory: str | Path) -> Path:
    """``directory`` when it holds the help pages of ``source`` (libreoffice, gnome); FileNotFoundError
    naming the Debian package otherwise."""
    project, package, _, _ = _HELP[source]
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"no {project} help at {root} (Debian package {package})")
    return root


def _help_paragraphs(directory: str | Path, source: str = "libreoffice") -> Iterator[str]:
    """The text of each block of every help page of ``source`` under ``directory``: LibreOffice's HTML
    paragraphs, headings, list items and table cells, GNOME's Mallard paragraphs (inline elements such
    as ``<gui>`` and ``<key>`` keep their text). The pages are generated, every text in such an element,
    so a pattern reads them ten times faster than html.parser (0.5 s against 4.8 s); the little
    navigation text among them is English, which the syllable share of ``keep_paragraph`` drops."""
    _, _, pages, block = _HELP[source]
    for path in sorted(help_root(source, directory).rglob(pages)):
        for match in block.finditer(path.read_text(encoding="utf-8", errors="replace")):
            yield html.unescape(_HTML_TAG.sub("", match.group("text")))


def _raw_paragraphs(source: str, *, locale_dir: str, help_dir: str, gnome_dir: str, text_file: str | None,
                    generated: int, seed: int) -> Iterable[str]:
    if source == "catalogues":
        return (p for entry in catalogue_entries(locale_dir) for p in _BLANK_LINE.split(entry))
    if source == "libreoffice":
        return _help_paragraphs(help_dir)
    if source == "gnome":
        return _help_paragraphs(gnome_dir, "gnome")
    if source == "generated":
        return generated_paragraphs(generated, seed)
    if source == "file":
        if not text_file:
            raise ValueError("source 'file' needs a text file (the text_file option)")
        return Path(text_file).read_text(encoding="utf-8").splitlines()
    raise ValueError(f"unknown text source {source!r}; sources: {', '.join(SOURCES)}")


def source_paragraphs(source: str, *, locale_dir: str, help_dir: str = HELP_DIR, gnome_dir: str = GNOME_HELP_DIR,
                      text_file: str | None = None, generated: int = 0, seed: int = 0) -> list[Labelled]:
    """The labelled paragraphs of ``source`` that ``keep_paragraph`` keeps, without duplicates, in the
    source's order."""
    raw = dict.fromkeys(" ".join(p.split()) for p in _raw_paragraphs(
        source, locale_dir=locale_dir, help_dir=help_dir, gnome_dir=gnome_dir, text_file=text_file, generated=generated,
        seed=seed))
    return [labelled for labelled in map(keep_paragraph, raw) if labelled is not None]


def is_validation(paragraph: Labelled, share: float) -> bool:
    """Whether ``paragraph`` is in the validation share of its source: a hash of its words, so that
    the choice depends neither on order nor on the other paragraphs."""
    return zlib.crc32(" ".join(paragraph.words).encode("utf-8")) % 10_000 < share * 10_000


def _concat(paragraphs: Iterable[Labelled]) -> Labelled:
    words, marks, cases = [], [], []
    for p in paragraphs:
        words += p.words
        marks += p.marks
        cases += p.cases
    return Labelled(tuple(words), tuple(marks), tuple(cases))


def training_windows(paragraphs: list[Labelled], rng: random.Random, min_words: int,
                     max_words: int) -> list[Labelled]:
    """The paragraphs in a random order as one stream, cut into windows of ``min_words`` to ``max_words``
    words anywhere (a recognizer's segment may end inside a sentence, and periods then fall inside
    windows as well as at their ends)."""
    order = list(paragraphs)
    rng.shuffle(order)
    stream = _concat(order)
    windows, start = [], 0
    while start < len(stream.words):
        end = start + rng.randint(min_words, max_words)
        windows.append(Labelled(stream.words[start:end], stream.marks[start:end], stream.cases[start:end]))
        start = end
    return windows


def evaluation_windows(paragraphs: list[Labelled], max_words: int) -> list[Labelled]:
    """Consecutive paragraphs packed into windows of at most ``max_words`` words (a longer paragraph is a
    window of its own), cut only between paragraphs: each window ends a sentence, as the runtime
    assumes of its input."""
    windows, pending, size = [], [], 0
    for p in paragraphs:
        if pending and size + len(p.words) > max_words:
            windows.append(_concat(pending))
            pending, size = [], 0
        pending.append(p)
        size += len(p.words)
    if pending:
        windows.append(_concat(pending))
    return windows
