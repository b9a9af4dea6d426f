"""Levenshtein distance, edit counts, alignment, and corpus WER / CER: the Numba backend.

Mirrors ``levenshtein_cy.pyx`` (same names, signatures, docstrings and results as
``levenshtein_py``; the dataclasses and the input checks are the reference's, imported from it).
The work is split the same way as in the Cython backend:

* strings become ``int32`` code-point arrays in numpy (one ``utf-32-le`` encode per call: a whole
  corpus is joined first, so Python does nothing per word and almost nothing per sentence); a
  corpus goes to one jitted call as one symbol array plus sentence offsets;
* WER words are found inside the jitted call with jiwer's whitespace rule (the rule of
  ``levenshtein_py._words``: non-space characters, plus a lone non-" " whitespace character between
  two non-space ones) and interned into dense ids by an open-addressing table over FNV-1a hashes of
  their code points; CER sentences are ``str.strip()``-ed in Python, as in the reference;
* the trimmed pair (common prefix and suffix are hits) runs Hyyrö's bit-parallel recurrence in
  64-bit blocks (reference symbols along the bits, Myers' algorithm for Levenshtein), keeping every
  column's vertical deltas for the walk back, which applies the reference's tie-breaking rule;
  reference symbols are mapped to match-mask rows through a dense symbol -> row table, so the
  symbols of a pair are first made dense (``np.unique``) when they are arbitrary int64 values.

Memory is 2 bits per cell of the trimmed pair's matrix, as in the Cython backend. There are two
jitted functions, each used with one type signature only (read-only int32 symbols, int64 offsets)
and allocating arrays of two dtypes only, which keeps the first compile short; nothing is compiled
at import: the first call compiles, or loads from the on-disk cache, what it needs.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from vasr.kernels import levenshtein_py as _py
from vasr.kernels.levenshtein_py import EditCounts, ErrorRate

__all__ = ["EditCounts", "ErrorRate", "edit_distance", "edit_counts", "align", "corpus_wer", "corpus_cer"]

# alignment op codes, also the indices into the counts arrays; _OP_LETTERS[code] is the public letter
_HIT, _SUB, _DEL, _INS = 0, 1, 2, 3
_OP_LETTERS = ("=", "S", "D", "I")

_BITS = 64  # bits per block of the bit-parallel columns
_SHIFT, _LOW = 6, 63  # i >> _SHIFT: block of bit i, i & _LOW: bit within it
_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_TOP = np.uint64(63)
_SPACE = 32  # " ", the only whitespace jiwer splits words on
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@njit(cache=True, nogil=True)
def _score(sym, bounds, nsym, record):
    """Summed (hits, S, D, I) over the pairs of a corpus, and the walk of pair 0 when record.

    sym: int32 symbols in [0, nsym) of the sentences back to back; bounds: int64, 2P + 1 offsets,
    sentence k is sym[bounds[k]:bounds[k + 1]], references 0..P-1 then hypotheses P..2P-1.
    Returns counts and, when record, the walk's steps as flat (op, i, j) triples from the last step.
    """
    pairs = (bounds.shape[0] - 1) // 2
    # only np.empty of int64 and uint64 arrays (each array constructor compiles an overload)
    counts = np.empty(4, np.int64)
    counts[:] = 0
    row_of = np.empty(nsym, np.int64)  # symbol -> its match-mask row in peq (row 0: all zero)
    row_of[:] = 0
    peq = np.empty(0, np.uint64)
    vp = np.empty(0, np.uint64)
    vn = np.empty(0, np.uint64)
    carry = np.empty(0, np.uint64)  # per column, the horizontal deltas carried into the next block
    eq_at = np.empty(0, np.int64)  # per column, offset of its hypothesis symbol's row in peq
    steps = np.empty(3 * (bounds[2] - bounds[0]) if record else 0, np.int64)  # (op, i, j) triples
    done = 0  # entries of steps used
    for p in range(pairs):
        a0, n = bounds[p], bounds[p + 1] - bounds[p]
        b0, m = bounds[pairs + p], bounds[pairs + p + 1] - bounds[pairs + p]
        prefix = 0
        while prefix < n and prefix < m and sym[a0 + prefix] == sym[b0 + prefix]:
            prefix += 1
        suffix = 0
        while suffix < n - prefix and suffix < m - prefix and sym[a0 + n - 1 - suffix] == sym[b0 + m - 1 - suffix]:
            suffix += 1
        counts[_HIT] += prefix + suffix
        if record:
            for k in range(suffix):
                steps[done], steps[done + 1], steps[done + 2] = _HIT, n - 1 - k, m - 1 - k
                done += 3
        a0 += prefix
        b0 += prefix
        n -= prefix + suffix
        m -= prefix + suffix
        words = (n + _BITS - 1) >> _SHIFT
        if n > 0 and m > 0:
            rows = 1  # one row of `words` blocks per distinct reference symbol, after the zero row
            for i in range(n):
                s = sym[a0 + i]
                if row_of[s] == 0:
                    row_of[s] = rows
                    rows += 1
            if peq.shape[0] < rows * words:
                peq = np.empty(2 * rows * words, np.uint64)
            for k in range(rows * words):
                peq[k] = 0
            for i in range(n):
                peq[row_of[sym[a0 + i]] * words + (i >> _SHIFT)] |= _ONE << np.uint64(i & _LOW)
            if vp.shape[0] < (m + 1) * words:
                vp = np.empty(2 * (m + 1) * words, np.uint64)
                vn = np.empty(2 * (m + 1) * words, np.uint64)
            if carry.shape[0] < m:
                carry = np.empty(2 * m, np.uint64)
                eq_at = np.empty(2 * m, np.int64)
            for j in range(m):
                eq_at[j] = row_of[sym[b0 + j]] * words
                carry[j] = _ONE  # row 0: D[0][j] - D[0][j-1] = +1 (bit 0: +1 carry, bit 1: -1 carry)
            # block by block, each block's column deltas in registers along j; the horizontal
            # deltas leaving block w (its top row) enter block w + 1 through carry[j]
            for w in range(words):
                pv = _ALL  # column 0: D[i][0] = i
                nv = np.uint64(0)
                vp[w] = pv
                vn[w] = nv
                for j in range(m):
                    hp_in = carry[j] & _ONE
                    hn_in = carry[j] >> _ONE
                    x = peq[eq_at[j] + w] | hn_in
                    d0 = (((x & pv) + pv) ^ pv) | x | nv
                    hp = nv | ~(d0 | pv)
                    hn = d0 & pv
                    carry[j] = (hp >> _TOP) | ((hn >> _TOP) << _ONE)
                    hp = (hp << _ONE) | hp_in
                    hn = (hn << _ONE) | hn_in
                    pv = hn | ~(d0 | hp)
                    nv = hp & d0
                    vp[(j + 1) * words + w] = pv
                    vn[(j + 1) * words + w] = nv
            for i in range(n):
                row_of[sym[a0 + i]] = 0
        # the walk back of levenshtein_py's module docstring over the trimmed pair
        i, j = n, m
        while i > 0 or j > 0:
            if j == 0:
                op = _DEL
            elif i == 0:
                op = _INS
            else:
                w = (i - 1) >> _SHIFT
                bit = _ONE << np.uint64((i - 1) & _LOW)
                if vp[j * words + w] & bit:
                    op = _DEL
                elif vn[(j - 1) * words + w] & bit:
                    op = _INS
                else:
                    op = _HIT if sym[a0 + i - 1] == sym[b0 + j - 1] else _SUB
            if op != _INS:
                i -= 1
            if op != _DEL:
                j -= 1
            counts[op] += 1
            if record:
                steps[done] = op
                steps[done + 1] = prefix + i if op != _INS else -1
                steps[done + 2] = prefix + j if op != _DEL else -1
                done += 3
        if record:
            for k in range(prefix - 1, -1, -1):
                steps[done], steps[done + 1], steps[done + 2] = _HIT, k, k
                done += 3
    return counts, steps[:done]


@njit(cache=True, nogil=True)
def _word_ids(chars, bounds, space):
    """Dense word ids of every sentence under jiwer 4's wer_default, and their offsets.

    chars: int32 code points of the sentences back to back, sentence k is
    chars[bounds[k]:bounds[k + 1]]; space: bool table, space[c] for c < len(space) is
    ``chr(c).isspace()`` (no code point past the table is whitespace).
    Returns ids (the first offsets[-1] are used), offsets (as bounds, in words) and the vocabulary size.
    """
    ids = np.empty(chars.shape[0], np.int32)
    offsets = np.empty(bounds.shape[0], np.int64)
    offsets[0] = 0
    limit = space.shape[0]
    most = chars.shape[0]  # distinct words, at most one per code point (only touched pages cost)
    start = np.empty(most, np.int64)  # per id: offset of its first code point in chars
    length = np.empty(most, np.int64)
    hashes = np.empty(most, np.uint64)
    mask = 1023
    slots = np.empty(mask + 1, np.int64)  # open addressing: 1 + id per slot, 0 when empty
    slots[:] = 0
    vocab = 0
    out = 0
    for s in range(bounds.shape[0] - 1):
        lo, hi = bounds[s], bounds[s + 1]
        begin = lo
        inside = False
        h = _FNV_OFFSET
        for k in range(lo, hi + 1):
            keep = False
            if k < hi:
                c = chars[k]
                keep = not (c < limit and space[c])
                if not keep and c != _SPACE and lo < k < hi - 1:
                    left, right = chars[k - 1], chars[k + 1]
                    keep = not (left < limit and space[left]) and not (right < limit and space[right])
            if keep:
                if not inside:
                    inside = True
                    begin = k
                    h = _FNV_OFFSET
                h = (h ^ np.uint64(chars[k])) * _FNV_PRIME
                continue
            if not inside:
                continue
            inside = False
            size = k - begin
            slot = np.int64(h & np.uint64(mask))
            while True:
                ident = slots[slot] - 1
                if ident < 0:
                    break
                if hashes[ident] == h and length[ident] == size:
                    q = 0
                    other = start[ident]
                    while q < size and chars[other + q] == chars[begin + q]:
                        q += 1
                    if q == size:
                        break
                slot = (slot + 1) & mask
            if ident < 0:
                ident = vocab
                start[ident], length[ident], hashes[ident] = begin, size, h
                slots[slot] = ident + 1
                vocab += 1
                if 2 * vocab > mask + 1:  # keep the table at most half full
                    mask = 2 * mask + 1
                    slots = np.empty(mask + 1, np.int64)
                    slots[:] = 0
                    for known in range(vocab):
                        slot = np.int64(hashes[known] & np.uint64(mask))
                        while slots[slot]:
                            slot = (slot + 1) & mask
                        slots[slot] = known + 1
            ids[out] = ident
            out += 1
        offsets[s + 1] = out
    return ids, offsets, vocab


_whitespace: np.ndarray | None = None


def _space_table() -> np.ndarray:
    """space[c] == chr(c).isspace(), the rule of str.strip() and of re's \\s; built on first use.

    Every Unicode White_Space character is in the BMP (the last is U+3000); the table ends after it.
    """
    global _whitespace
    if _whitespace is None:
        spaces = [c for c in range(0x10000) if chr(c).isspace()]
        table = np.zeros(spaces[-1] + 1, np.bool_)
        table[spaces] = True
        _whitespace = table
    return _whitespace


def _codes(sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """int32 code points of the sentences back to back (read-only) and the 1 + len offsets."""
    sym = np.frombuffer("".join(sentences).encode("utf-32-le", "surrogatepass"), np.int32)
    bounds = np.zeros(len(sentences) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, sentences), np.int64, len(sentences)), out=bounds[1:])
    return sym, bounds


def _int64(seq) -> np.ndarray:
    """The values of an integer sequence as int64, checked as ``levenshtein_py._int_list`` does."""
    if isinstance(seq, np.ndarray) and seq.ndim == 1 and seq.dtype.kind in "iu" and seq.dtype != np.uint64:
        return seq.astype(np.int64)
    return np.array(_py._int_list(seq), dtype=np.int64)


def _pair(ref, hyp, record: bool):
    """_score over one pair whose symbols are made dense: str code points or int64 values."""
    if isinstance(ref, str) and isinstance(hyp, str):
        values, n = _codes([ref, hyp])[0], len(ref)
    else:
        if isinstance(ref, str) or isinstance(hyp, str):
            _py._symbols(ref, hyp)  # raises the reference's TypeError
        a, b = _int64(ref), _int64(hyp)
        values, n = np.concatenate([a, b]), len(a)
    uniques, dense = np.unique(values, return_inverse=True)
    bounds = np.array([0, n, len(values)], np.int64)
    return _score(_frozen(dense.astype(np.int32).reshape(-1)), bounds, len(uniques), record)


def _frozen(sym: np.ndarray) -> np.ndarray:
    """sym made read-only: every symbol array reaching _score is, so that it compiles only once."""
    sym.flags.writeable = False
    return sym


def edit_distance(ref, hyp):
    counts = _pair(ref, hyp, False)[0]
    return int(counts[_SUB] + counts[_DEL] + counts[_INS])


def edit_counts(ref, hyp):
    return EditCounts(*_pair(ref, hyp, False)[0].tolist())  # counts are in the dataclass's field order


def align(ref, hyp):
    steps = _pair(ref, hyp, True)[1].reshape(-1, 3)[::-1].tolist()
    return [(_OP_LETTERS[op], i, j) for op, i, j in steps]


def corpus_wer(refs, hyps):
    refs, hyps = _py._sentences(refs, hyps)
    ids, offsets, vocab = _word_ids(*_codes(refs + hyps), _space_table())
    return _py._error_rate(_score(_frozen(ids), offsets, vocab, False)[0].tolist())


def corpus_cer(refs, hyps):
    refs, hyps = _py._sentences(refs, hyps)
    sym, bounds = _codes([s.strip() for s in refs] + [s.strip() for s in hyps])
    nsym = int(sym.max()) + 1 if sym.shape[0] else 0
    return _py._error_rate(_score(sym, bounds, nsym, False)[0].tolist())


# one copy of each docstring: the reference's
for _name in ("edit_distance", "edit_counts", "align", "corpus_wer", "corpus_cer"):
    globals()[_name].__doc__ = getattr(_py, _name).__doc__
del _name
