"""Punctuation and capitalisation of recognised text: a punctuation model directory + onnxruntime.

    from vasr.runtime.punct import find_punctuator
    punctuator = find_punctuator("model/")          # None when the directory has no punctuation model
    punctuator.apply(["xin", "chào", "anh", "nam"])   # ['Xin', 'chào', 'anh', 'Nam.']

The recognizer prints normalised words (``vasr.text.normalize``: lower case, no punctuation). For each
word the model (``vasr punct train``) predicts the mark that follows it (none . , ? !) and its case
(lower, Capitalised, UPPER). A directory holds ``punct.onnx`` and ``punct.json``: the features
(``Features``: a syllable vocabulary plus hashed character n-grams, so that a word outside the
vocabulary, a name never seen, still gets an input), the label sets, a version and the held-out
figures measured when it was trained.

ONNX contract: inputs ``word_ids`` int64 (N, T) (0 padding, 1 unknown), ``gram_ids`` int64 (N, T, G)
(0 padding), ``lengths`` int64 (N,); outputs ``mark_logits`` float32 (N, T, 5) and ``case_logits``
float32 (N, T, 3). Outputs at valid positions do not depend on padding.

Imports numpy, onnxruntime and vasr.text only: never torch.
"""
from __future__ import annotations

import functools
import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from vasr.text.normalize import NORMALIZER_VERSION

__all__ = ["PUNCT_ONNX", "PUNCT_JSON", "MARKS", "CASES", "Features", "Punctuator", "display", "find_punctuator"]

PUNCT_ONNX, PUNCT_JSON = "punct.onnx", "punct.json"
FORMAT = 1                                   # the layout of punct.json; bumped on any change
MARKS = ("", ".", ",", "?", "!")             # label ids 0..4: the mark that follows a word
CASES = ("lower", "capital", "upper")        # label ids 0..2: lower, first letter upper, every letter upper
SENTENCE_END = frozenset((1, 3, 4))          # . ? !: the next word starts a sentence
INPUT_NAMES = ("word_ids", "gram_ids", "lengths")
OUTPUT_NAMES = ("mark_logits", "case_logits")
UNKNOWN_ID = 1                               # word ids: 0 pads, the vocabulary starts at 2
MAX_WORDS = 128                              # longer inputs run in windows of this many words: attention
                                             # grows with the square of the length, and training windows
                                             # are shorter (64 words by default)


@dataclass(frozen=True)
class Features:
    """How a normalised word becomes model input: its vocabulary id and its hashed character n-grams."""
    vocabulary: tuple[str, ...]      # word i has id i + 2
    buckets: int                     # n-gram hash buckets; gram ids are 1..buckets
    orders: tuple[int, ...] = (2, 3)  # n-gram lengths over "<word>" (the brackets mark its edges)

    @functools.cached_property
    def _ids(self) -> dict[str, int]:
        return {w: i + 2 for i, w in enumerate(self.vocabulary)}

    def word_id(self, word: str) -> int:
        return self._ids.get(word, UNKNOWN_ID)

    def gram_ids(self, word: str) -> tuple[int, ...]:
        """The bucket of each n-gram of ``word`` (crc32: the same in every process, unlike ``hash``)."""
        return _gram_ids(word, self.buckets, self.orders)

    def encode(self, batch: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(word_ids (N, T), gram_ids (N, T, G), lengths (N,)), int64, zero-padded."""
        lengths = np.array([len(words) for words in batch], np.int64)
        grams = [[self.gram_ids(w) for w in words] for words in batch]
        width = max([1] + [len(g) for row in grams for g in row])
        word_ids = np.zeros((len(batch), max(1, int(lengths.max(initial=0)))), np.int64)
        gram_ids = np.zeros((*word_ids.shape, width), np.int64)
        for n, words in enumerate(batch):
            word_ids[n, : len(words)] = [self.word_id(w) for w in words]
            for t, g in enumerate(grams[n]):
                gram_ids[n, t, : len(g)] = g
        return word_ids, gram_ids, lengths

    def to_dict(self) -> dict:
        return {"vocabulary": list(self.vocabulary), "buckets": self.buckets, "orders": list(self.orders)}

    @classmethod
    def from_dict(cls, data: dict) -> Features:
        return cls(tuple(data["vocabulary"]), int(data["buckets"]), tuple(int(n) for n in data["orders"]))


@functools.lru_cache(maxsize=1 << 16)  # hashing is most of the cost of a call; words repeat
def _gram_ids(word: str, buckets: int, orders: tuple[int, ...]) -> tuple[int, ...]:
    if not buckets:
        return ()
    text = f"<{word}>"
    return tuple(zlib.crc32(text[i:i + n].encode("utf-8")) % buckets + 1
                 for n in orders for i in range(len(text) - n + 1))


def display(word: str, mark: int, case: int) -> str:
    """``word`` in case ``CASES[case]`` followed by ``MARKS[mark]``."""
    if case == 2:
        word = word.upper()
    elif case == 1:
        word = word[:1].upper() + word[1:]
    return word + MARKS[mark]


class Punctuator:
    """Marks and case for normalised words, from a directory written by ``vasr punct train``."""

    def __init__(self, directory: str | os.PathLike, threads: int = 1):
        """ValueError naming the file when punct.json or punct.onnx is missing or unreadable."""
        root = Path(directory)
        meta = _read_meta(root / PUNCT_JSON)
        self.features = Features.from_dict(meta["features"])
        self.version: str = meta["version"]
        self.heldout: dict = meta.get("heldout", {})
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        path = root / PUNCT_ONNX
        if not path.is_file():
            raise ValueError(f"{path}: missing (a punctuation model directory holds {PUNCT_ONNX} and {PUNCT_JSON})")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise ValueError(f"{path}: not a readable ONNX model ({' '.join(str(exc).split())})") from None

    def labels(self, words: Sequence[str]) -> tuple[list[int], list[int]]:
        """(mark ids, case ids), one each per word, as ``apply`` shows them: the model's choice, the
        first word and every word after a sentence end at least Capitalised, a final mark ensured."""
        marks: list[int] = []
        cases: list[int] = []
        for start in range(0, len(words), MAX_WORDS):
            word_ids, gram_ids, lengths = self.features.encode([words[start:start + MAX_WORDS]])
            mark_logits, case_logits = self._session.run(
                list(OUTPUT_NAMES), dict(zip(INPUT_NAMES, (word_ids, gram_ids, lengths))))
            marks += mark_logits[0].argmax(-1).tolist()
            cases += case_logits[0].argmax(-1).tolist()
        for i in range(len(words)):
            if i == 0 or marks[i - 1] in SENTENCE_END:
                cases[i] = max(cases[i], 1)
        if marks and marks[-1] not in SENTENCE_END:
            marks[-1] = 1
        return marks, cases

    def apply(self, words: Sequence[str]) -> list[str]:
        """Display form of each normalised word: case applied, trailing punctuation attached;
        same length as ``words``; the first word capitalised, a final mark ensured."""
        marks, cases = self.labels(words)
        return [display(w, m, c) for w, m, c in zip(words, marks, cases)]


def find_punctuator(model_dir: str | os.PathLike, threads: int = 1) -> Punctuator | None:
    """The punctuator of ``model_dir``, or None when it has no punctuation files (older model
    directories); ValueError when they are there but unusable."""
    root = Path(model_dir)
    if not (root / PUNCT_JSON).exists() and not (root / PUNCT_ONNX).exists():
        return None
    return Punctuator(root, threads)


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: missing (a punctuation model directory holds {PUNCT_ONNX} and "
                         f"{PUNCT_JSON})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a punctuation model description of format {FORMAT}")
    if list(meta.get("marks", ())) != list(MARKS) or list(meta.get("cases", ())) != list(CASES):
        raise ValueError(f"{path}: label sets differ from this vasr's {MARKS} / {CASES}")
    if meta.get("normalizer_version") != NORMALIZER_VERSION:
        raise ValueError(f"{path}: trained on text of normaliser version {meta.get('normalizer_version')!r}, "
                         f"this vasr normalises with {NORMALIZER_VERSION!r}")
    try:
        Features.from_dict(meta["features"])
        str(meta["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: bad or missing field ({exc!r})") from None
    return meta
