"""Levenshtein distance, edit counts, alignment, and corpus WER / CER: the pure-Python reference.

The compiled twin ``levenshtein_cy`` (Cython) exports the same names with the same signatures,
docstrings and results; tests hold both to jiwer 4 and to a textbook dynamic programme.

Which minimal alignment is reported. When several alignments have the minimal number of edits, the
substitution / deletion / insertion split depends on how ties are broken. jiwer 4 takes its counts
from rapidfuzz's ``Levenshtein.opcodes``, so this module breaks ties the same way:

1. drop the common prefix, then the common suffix (they are hits);
2. on the remaining ``a`` (reference) and ``b`` (hypothesis), fill the edit-distance matrix
   ``D[i][j] = distance(a[:i], b[:j])`` and walk back from ``(len(a), len(b))``; at ``(i, j)``:
   delete ``a[i-1]`` if ``D[i][j] == D[i-1][j] + 1``; otherwise insert ``b[j-1]`` if
   ``D[i][j-1] == D[i-1][j-1] - 1``; otherwise take the diagonal (hit or substitution);
   leftover reference symbols are deletions, leftover hypothesis symbols insertions.

rapidfuzz switches to Hirschberg's divide and conquer when the trimmed pair needs more than
4 Mi matrix cells (e.g. two 2100-character sentences); there its split can differ from this one.
The distance, the error count and the error rate never depend on the tie-breaking.

The matrix is kept as bit-vectors of vertical deltas (Hyyrö's bit-parallel Levenshtein, one
Python integer per row), which makes this reference fast enough to score 10k sentence pairs.
"""
from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["EditCounts", "ErrorRate", "edit_distance", "edit_counts", "align", "corpus_wer", "corpus_cer"]

# jiwer 4's RemoveMultipleSpaces: a run of two or more whitespace characters becomes one space
_MULTI_SPACE = re.compile(r"\s\s+")
# symbols of integer sequences are stored as C int64 by the compiled backend
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class EditCounts:
    """Counts of one minimal alignment of a reference against a hypothesis."""

    hits: int  # reference symbols matched unchanged
    substitutions: int  # reference symbols replaced by a different hypothesis symbol
    deletions: int  # reference symbols missing from the hypothesis
    insertions: int  # hypothesis symbols with no reference counterpart

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions: the Levenshtein distance."""
        return self.substitutions + self.deletions + self.insertions


@dataclass(frozen=True)
class ErrorRate:
    """Corpus totals of a word or character error rate (jiwer's corpus definition: sums over pairs)."""

    errors: int  # substitutions + deletions + insertions
    substitutions: int  # reference tokens replaced
    deletions: int  # reference tokens missing from the hypothesis
    insertions: int  # hypothesis tokens with no reference counterpart
    hits: int  # reference tokens matched unchanged
    ref_len: int  # reference tokens in the corpus (hits + substitutions + deletions)

    @property
    def rate(self) -> float:
        """errors / ref_len; with no reference token at all, the insertion count (jiwer 4's value)."""
        if self.ref_len == 0:
            return float(self.insertions)
        return self.errors / self.ref_len

    def to_dict(self) -> dict:
        """The fields and ``rate`` as a plain dict."""
        return {**asdict(self), "rate": self.rate}


def edit_distance(ref, hyp) -> int:
    """Levenshtein distance (unit costs) between two sequences.

    ref, hyp: two ``str`` (compared by code point, nothing stripped or normalised) or two
              sequences of integers (list, tuple or 1-D integer numpy array; values must fit in
              int64). Mixing a ``str`` with an integer sequence raises TypeError.
    Returns the minimal number of substitutions, deletions and insertions turning ref into hyp.
    """
    return edit_counts(ref, hyp).errors


def edit_counts(ref, hyp) -> EditCounts:
    """Hits, substitutions, deletions and insertions of the minimal alignment jiwer 4 reports.

    ref, hyp: as for ``edit_distance``. Among minimal alignments the split is the one rapidfuzz's
    ``Levenshtein.opcodes`` (hence jiwer 4) yields; see the module docstring.
    """
    a, b = _symbols(ref, hyp)
    return _count(a, b)


def align(ref, hyp) -> list[tuple[str, int, int]]:
    """The minimal alignment behind ``edit_counts``, from the first symbol to the last.

    ref, hyp: as for ``edit_distance``.
    Returns ``(op, ref_index, hyp_index)`` tuples: ``("=", i, j)`` hit, ``("S", i, j)``
    substitution, ``("D", i, -1)`` deletion of ref[i], ``("I", -1, j)`` insertion of hyp[j].
    Every reference index and every hypothesis index appears exactly once, in increasing order.
    """
    a, b = _symbols(ref, hyp)
    return _alignment(a, b)


def corpus_wer(refs: Sequence[str], hyps: Sequence[str]) -> ErrorRate:
    """Corpus word error rate with the numbers of ``jiwer.wer`` / ``jiwer.process_words`` (jiwer 4).

    refs, hyps: equally long sequences of sentences (a bare ``str`` counts as one sentence).
    Words are what jiwer's default transform leaves: runs of two or more whitespace characters
    become one space, the sentence is stripped, then split on " " (so a lone tab between two
    letters stays inside a word, as in jiwer). Counts are summed over the pairs.
    Empty sentences are valid, as in jiwer 4: an empty reference adds its hypothesis words as
    insertions; if the corpus has no reference word at all, ``rate`` is the insertion count.
    Raises ValueError when the numbers of sentences differ, TypeError for a non-str sentence.
    """
    ids: dict[str, int] = {}
    totals = [0, 0, 0, 0]
    for ref, hyp in zip(*_sentences(refs, hyps)):
        a = [ids.setdefault(w, len(ids)) for w in _words(ref)]
        b = [ids.setdefault(w, len(ids)) for w in _words(hyp)]
        _add(totals, _count(a, b))
    return _error_rate(totals)


def corpus_cer(refs: Sequence[str], hyps: Sequence[str]) -> ErrorRate:
    """Corpus character error rate with the numbers of ``jiwer.cer`` / ``jiwer.process_characters``.

    refs, hyps: equally long sequences of sentences (a bare ``str`` counts as one sentence).
    Characters are the code points of each sentence after ``str.strip()`` (jiwer 4's cer
    transform): inner spaces count as characters and runs of spaces are kept. Counts are summed
    over the pairs. Empty sentences behave as in ``corpus_wer``.
    Raises ValueError when the numbers of sentences differ, TypeError for a non-str sentence.
    """
    totals = [0, 0, 0, 0]
    for ref, hyp in zip(*_sentences(refs, hyps)):
        _add(totals, _count(ref.strip(), hyp.strip()))
    return _error_rate(totals)


def _words(sentence: str) -> list[str]:
    """jiwer 4's wer_default: RemoveMultipleSpaces, Strip, ReduceToListOfListOfWords."""
    return [w for w in _MULTI_SPACE.sub(" ", sentence).strip().split(" ") if w]


def _sentences(refs, hyps) -> tuple[list[str], list[str]]:
    """Checked reference and hypothesis lists of a corpus; shared with the compiled backend."""
    refs = [refs] if isinstance(refs, str) else list(refs)
    hyps = [hyps] if isinstance(hyps, str) else list(hyps)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses: one hypothesis per reference")
    if {*map(type, refs), *map(type, hyps)} - {str}:  # cheap screen; the loop names the culprit
        for k, (ref, hyp) in enumerate(zip(refs, hyps)):
            if not (isinstance(ref, str) and isinstance(hyp, str)):
                raise TypeError(f"pair {k}: expected two str, got {type(ref).__name__} and {type(hyp).__name__}")
    return refs, hyps


def _symbols(ref, hyp):
    """Two comparable symbol sequences: both str, or both lists of int64-range ints."""
    if isinstance(ref, str) and isinstance(hyp, str):
        return ref, hyp
    if isinstance(ref, str) or isinstance(hyp, str):
        raise TypeError("ref and hyp must both be str or both be integer sequences")
    return _int_list(ref), _int_list(hyp)


def _int_list(seq) -> list[int]:
    if isinstance(seq, np.ndarray):
        if seq.ndim != 1 or seq.dtype.kind not in "iu":
            raise TypeError(f"expected a 1-D integer array, got dtype {seq.dtype} with shape {seq.shape}")
        seq = seq.tolist()
    out = [operator.index(v) for v in seq]
    if any(v < INT64_MIN or v > INT64_MAX for v in out):
        raise OverflowError("sequence values must fit in int64")
    return out


def _error_rate(totals: list[int]) -> ErrorRate:
    """ErrorRate from [hits, substitutions, deletions, insertions]; shared with the compiled backend."""
    h, s, d, i = totals
    return ErrorRate(errors=s + d + i, substitutions=s, deletions=d, insertions=i, hits=h, ref_len=h + s + d)


def _add(totals: list[int], counts: EditCounts) -> None:
    totals[0] += counts.hits
    totals[1] += counts.substitutions
    totals[2] += counts.deletions
    totals[3] += counts.insertions


def _count(a, b) -> EditCounts:
    ops = [op for op, _, _ in _alignment(a, b)]
    return EditCounts(hits=ops.count("="), substitutions=ops.count("S"), deletions=ops.count("D"),
                      insertions=ops.count("I"))


def _vertical_deltas(a, b) -> list[tuple[int, int]]:
    """Per column j = 0..len(b) of D, bit masks (vp, vn): bit i-1 set where D[i][j] - D[i-1][j] is +1 / -1.

    Hyyrö's bit-parallel recurrence with ``a`` as the pattern; one Python int holds a whole column.
    """
    full = (1 << len(a)) - 1
    match: dict = {}
    for i, sym in enumerate(a):
        match[sym] = match.get(sym, 0) | (1 << i)
    vp, vn = full, 0  # column 0: D[i][0] = i
    columns = [(vp, vn)]
    for sym in b:
        x = match.get(sym, 0) | vn
        d0 = (((x & vp) + vp) ^ vp) | x  # diagonal delta is zero
        hp = vn | ~(d0 | vp)
        hn = d0 & vp
        hp = (hp << 1) | 1  # row 0: D[0][j] - D[0][j-1] = +1
        hn <<= 1
        vp = (hn | ~(d0 | hp)) & full
        vn = hp & d0 & full
        columns.append((vp, vn))
    return columns


def _alignment(a, b) -> list[tuple[str, int, int]]:
    n, m = len(a), len(b)
    prefix = 0
    while prefix < min(n, m) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(n, m) - prefix and a[n - 1 - suffix] == b[m - 1 - suffix]:
        suffix += 1
    core_a, core_b = a[prefix:n - suffix], b[prefix:m - suffix]
    columns = _vertical_deltas(core_a, core_b)

    backwards = [("=", n - 1 - k, m - 1 - k) for k in range(suffix)]
    i, j = len(core_a), len(core_b)
    while i and j:
        bit = 1 << (i - 1)
        if columns[j][0] & bit:
            i -= 1
            backwards.append(("D", prefix + i, -1))
        elif columns[j - 1][1] & bit:
            j -= 1
            backwards.append(("I", -1, prefix + j))
        else:
            i -= 1
            j -= 1
            backwards.append(("=" if core_a[i] == core_b[j] else "S", prefix + i, prefix + j))
    backwards.extend(("D", prefix + k, -1) for k in reversed(range(i)))
    backwards.extend(("I", -1, prefix + k) for k in reversed(range(j)))
    backwards.extend(("=", k, k) for k in reversed(range(prefix)))
    backwards.reverse()
    return backwards
