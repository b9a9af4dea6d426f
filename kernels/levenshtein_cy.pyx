# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
# distutils: language = c++
"""Levenshtein distance, edit counts, alignment, and corpus WER / CER: the Cython backend.

Mirrors ``levenshtein_py`` (same names, signatures, docstrings and results; the dataclasses are
re-exported from it). Differences are only in how the work is done:

* sentences are read in place through the str object's code-point buffer; WER words are found
  with jiwer's whitespace rule and interned into ints by a hash table over code points, so no
  word str object is ever created;
* the trimmed pair runs Hyyrö's bit-parallel recurrence in 64-bit blocks (reference symbols
  along the bits), keeping every column's vertical deltas for the walk back, which applies the
  same tie-breaking rule as the reference. That is 2 bits per matrix cell: two 10k-symbol
  sequences take 25 MB, two 100k-symbol documents 2.5 GB (score long texts in segments).
"""
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memset
from libcpp.vector cimport vector
from cpython.unicode cimport (Py_UNICODE_ISSPACE, PyUnicode_DATA, PyUnicode_GET_LENGTH,
                              PyUnicode_KIND, PyUnicode_READ)

import numpy as np

from vasr.kernels import levenshtein_py as _py
from vasr.kernels.levenshtein_py import EditCounts, ErrorRate

__all__ = ["EditCounts", "ErrorRate", "edit_distance", "edit_counts", "align", "corpus_wer", "corpus_cer"]

cdef enum:  # alignment op codes, also the indices into the counts arrays
    HIT = 0
    SUB = 1
    DEL = 2
    INS = 3

cdef enum:
    WORD_BITS = 64  # bits per block of the bit-parallel columns
    SPACE = 32  # " ", the only whitespace jiwer splits words on

# Fibonacci hashing multiplier (2**64 / golden ratio) and FNV-1a constants for word hashes
cdef uint64_t FIB_MULT = 0x9E3779B97F4A7C15
cdef uint64_t FNV_OFFSET = 0xCBF29CE484222325
cdef uint64_t FNV_PRIME = 0x100000001B3

# public op letters, indexed by op code
_OP_LETTERS = ("=", "S", "D", "I")


cdef struct Step:
    int op  # HIT, SUB, DEL or INS
    Py_ssize_t i  # reference index or -1
    Py_ssize_t j  # hypothesis index or -1


cdef class _Matcher:
    """Reusable buffers for aligning many pairs: symbol map, bit matrix, symbol arrays."""

    cdef vector[int64_t] a, b  # the pair's symbols
    cdef vector[int64_t] slot_key  # open-addressing table: reference symbol per slot
    cdef vector[uint32_t] slot_stamp  # slot is live when its stamp equals `stamp`
    cdef vector[uint64_t] peq  # per slot, W words: bit i set where a[i] is the slot's symbol
    cdef vector[uint64_t] zeros  # W zero words: the match mask of symbols absent from a
    cdef vector[uint64_t] vp, vn  # (m + 1) x W vertical-delta bits, column 0 first
    cdef uint32_t stamp
    cdef int slot_bits

    def __cinit__(self):
        self.stamp = 0
        self.slot_bits = 0

    cdef void _map_reference(self, const int64_t* a, Py_ssize_t n, Py_ssize_t words) except *:
        cdef int bits = 5
        while (1 << bits) < 2 * n:
            bits += 1
        cdef Py_ssize_t size = 1 << bits
        if bits != self.slot_bits or self.stamp == 0xFFFFFFFF:
            self.slot_bits = bits
            self.slot_key.resize(size)
            self.slot_stamp.assign(size, 0)
            self.stamp = 0
        self.stamp += 1
        if <Py_ssize_t>self.peq.size() < size * words:
            self.peq.resize(size * words)
        if <Py_ssize_t>self.zeros.size() < words:
            self.zeros.assign(words, 0)
        cdef Py_ssize_t i, slot
        for i in range(n):
            slot = self._find(a[i])
            if self.slot_stamp[slot] != self.stamp:
                self.slot_stamp[slot] = self.stamp
                self.slot_key[slot] = a[i]
                memset(&self.peq[slot * words], 0, words * sizeof(uint64_t))
            self.peq[slot * words + i // WORD_BITS] |= (<uint64_t>1) << (i % WORD_BITS)

    cdef inline Py_ssize_t _find(self, int64_t key) noexcept:
        """The slot holding key, or the empty slot where it would go."""
        cdef Py_ssize_t mask = (1 << self.slot_bits) - 1
        cdef Py_ssize_t slot = <Py_ssize_t>((<uint64_t>key * FIB_MULT) >> (64 - self.slot_bits))
        while self.slot_stamp[slot] == self.stamp and self.slot_key[slot] != key:
            slot = (slot + 1) & mask
        return slot

    cdef void count(self, Py_ssize_t* counts, vector[Step]* steps) except *:
        """Adds the pair's hits, S, D, I to counts; appends the walk (last step first) to steps."""
        cdef const int64_t* a = self.a.data()
        cdef const int64_t* b = self.b.data()
        cdef Py_ssize_t n = self.a.size(), m = self.b.size()
        cdef Py_ssize_t prefix = 0, suffix = 0, k
        while prefix < n and prefix < m and a[prefix] == b[prefix]:
            prefix += 1
        while suffix < n - prefix and suffix < m - prefix and a[n - 1 - suffix] == b[m - 1 - suffix]:
            suffix += 1
        counts[HIT] += prefix + suffix
        if steps != NULL:
            for k in range(suffix):
                steps.push_back(Step(HIT, n - 1 - k, m - 1 - k))
        a += prefix
        b += prefix
        n -= prefix + suffix
        m -= prefix + suffix
        if n > 0 and m > 0:
            self._fill(a, n, b, m)
        self._walk(a, n, b, m, prefix, counts, steps)
        if steps != NULL:
            for k in range(prefix - 1, -1, -1):
                steps.push_back(Step(HIT, k, k))

    cdef void _fill(self, const int64_t* a, Py_ssize_t n, const int64_t* b, Py_ssize_t m) except *:
        """Vertical deltas of every column of D(a, b), Hyyrö's recurrence in 64-bit blocks."""
        cdef Py_ssize_t words = (n + WORD_BITS - 1) // WORD_BITS
        self._map_reference(a, n, words)
        if <Py_ssize_t>self.vp.size() < (m + 1) * words:
            self.vp.resize((m + 1) * words)
            self.vn.resize((m + 1) * words)
        cdef uint64_t* vp = self.vp.data()
        cdef uint64_t* vn = self.vn.data()
        cdef Py_ssize_t j, w, slot
        for w in range(words):
            vp[w] = ~(<uint64_t>0)  # column 0: D[i][0] = i
            vn[w] = 0
        cdef const uint64_t* eq
        cdef uint64_t x, d0, hp, hn, hp_carry, hn_carry, pv, nv
        for j in range(1, m + 1):
            slot = self._find(b[j - 1])
            eq = &self.peq[slot * words] if self.slot_stamp[slot] == self.stamp else self.zeros.data()
            hp_carry = 1  # row 0: D[0][j] - D[0][j-1] = +1
            hn_carry = 0
            for w in range(words):
                pv = vp[w]
                nv = vn[w]
                x = eq[w] | hn_carry
                d0 = (((x & pv) + pv) ^ pv) | x | nv
                hp = nv | ~(d0 | pv)
                hn = d0 & pv
                x = hp >> (WORD_BITS - 1)
                hp = (hp << 1) | hp_carry
                hp_carry = x
                x = hn >> (WORD_BITS - 1)
                hn = (hn << 1) | hn_carry
                hn_carry = x
                vp[words + w] = hn | ~(d0 | hp)
                vn[words + w] = hp & d0
            vp += words
            vn += words

    cdef void _walk(self, const int64_t* a, Py_ssize_t n, const int64_t* b, Py_ssize_t m,
                    Py_ssize_t offset, Py_ssize_t* counts, vector[Step]* steps) except *:
        """The walk back of the module docstring over the trimmed pair (indices shifted by offset)."""
        cdef Py_ssize_t words = (n + WORD_BITS - 1) // WORD_BITS
        cdef const uint64_t* vp = self.vp.data()
        cdef const uint64_t* vn = self.vn.data()
        cdef Py_ssize_t i = n, j = m, w
        cdef uint64_t bit
        cdef int op
        while i > 0 and j > 0:
            w = (i - 1) // WORD_BITS
            bit = (<uint64_t>1) << ((i - 1) % WORD_BITS)
            if vp[j * words + w] & bit:
                i -= 1
                op = DEL
            elif vn[(j - 1) * words + w] & bit:
                j -= 1
                op = INS
            else:
                i -= 1
                j -= 1
                op = HIT if a[i] == b[j] else SUB
            counts[op] += 1
            if steps != NULL:
                steps.push_back(Step(op, offset + i if op != INS else -1, offset + j if op != DEL else -1))
        counts[DEL] += i
        counts[INS] += j
        if steps != NULL:
            while i > 0:
                i -= 1
                steps.push_back(Step(DEL, offset + i, -1))
            while j > 0:
                j -= 1
                steps.push_back(Step(INS, -1, offset + j))


cdef class _Lexicon:
    """Interns words (spans of code points) into dense int ids without creating str objects."""

    cdef vector[uint32_t] chars  # code points of every distinct word, back to back
    cdef vector[Py_ssize_t] start  # per id: offset in chars
    cdef vector[Py_ssize_t] length  # per id: number of code points
    cdef vector[uint64_t] hashes  # per id
    cdef vector[Py_ssize_t] slots  # open addressing: id per slot, -1 when empty

    def __cinit__(self):
        self.slots.assign(1024, -1)

    cdef int64_t intern(self, int kind, void* data, Py_ssize_t begin, Py_ssize_t end, uint64_t h) except -1:
        cdef Py_ssize_t mask = self.slots.size() - 1
        cdef Py_ssize_t slot = <Py_ssize_t>(h & mask), ident, k
        cdef Py_ssize_t size = end - begin
        cdef const uint32_t* stored
        while True:
            ident = self.slots[slot]
            if ident < 0:
                break
            if self.hashes[ident] == h and self.length[ident] == size:
                stored = &self.chars[self.start[ident]]
                k = 0
                while k < size and stored[k] == <uint32_t>PyUnicode_READ(kind, data, begin + k):
                    k += 1
                if k == size:
                    return ident
            slot = (slot + 1) & mask
        ident = self.start.size()
        self.start.push_back(self.chars.size())
        self.length.push_back(size)
        self.hashes.push_back(h)
        for k in range(begin, end):
            self.chars.push_back(<uint32_t>PyUnicode_READ(kind, data, k))
        self.slots[slot] = ident
        if 2 * self.start.size() > self.slots.size():
            self._grow()
        return ident

    cdef void _grow(self) except *:
        cdef Py_ssize_t size = 2 * self.slots.size(), mask = size - 1, ident, slot
        self.slots.assign(size, -1)
        for ident in range(<Py_ssize_t>self.start.size()):
            slot = <Py_ssize_t>(self.hashes[ident] & mask)
            while self.slots[slot] >= 0:
                slot = (slot + 1) & mask
            self.slots[slot] = ident

    cdef void words(self, object sentence, vector[int64_t]& out) except *:
        """Word ids of sentence under jiwer 4's wer_default transform.

        A word is a maximal run of characters that survive RemoveMultipleSpaces + Strip +
        split(" "): non-space characters, plus a single non-" " whitespace character that has a
        non-space character on each side (jiwer keeps it inside the word).
        """
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(sentence), k, begin = 0
        cdef int kind = PyUnicode_KIND(sentence)
        cdef void* data = PyUnicode_DATA(sentence)
        cdef uint32_t c
        cdef bint inside = False, keep
        cdef uint64_t h = FNV_OFFSET
        out.clear()
        for k in range(n):
            c = <uint32_t>PyUnicode_READ(kind, data, k)
            keep = not Py_UNICODE_ISSPACE(c)
            if not keep and c != SPACE and 0 < k < n - 1:
                keep = (not Py_UNICODE_ISSPACE(<uint32_t>PyUnicode_READ(kind, data, k - 1))
                        and not Py_UNICODE_ISSPACE(<uint32_t>PyUnicode_READ(kind, data, k + 1)))
            if keep:
                if not inside:
                    inside = True
                    begin = k
                    h = FNV_OFFSET
                h = (h ^ c) * FNV_PRIME
            elif inside:
                inside = False
                out.push_back(self.intern(kind, data, begin, k, h))
        if inside:
            out.push_back(self.intern(kind, data, begin, n, h))


cdef void _stripped_chars(object sentence, vector[int64_t]& out) except *:
    """Code points of sentence.strip() (jiwer 4's cer_default)."""
    cdef Py_ssize_t begin = 0, end = PyUnicode_GET_LENGTH(sentence), k
    cdef int kind = PyUnicode_KIND(sentence)
    cdef void* data = PyUnicode_DATA(sentence)
    while begin < end and Py_UNICODE_ISSPACE(<uint32_t>PyUnicode_READ(kind, data, begin)):
        begin += 1
    while end > begin and Py_UNICODE_ISSPACE(<uint32_t>PyUnicode_READ(kind, data, end - 1)):
        end -= 1
    out.resize(end - begin)
    for k in range(begin, end):
        out[k - begin] = <uint32_t>PyUnicode_READ(kind, data, k)


cdef void _load(object seq, vector[int64_t]& out) except *:
    """Symbols of one side for edit_distance / edit_counts / align (as ``levenshtein_py._symbols``)."""
    cdef const int64_t[::1] view
    cdef Py_ssize_t k
    if isinstance(seq, str):
        _chars(seq, out)
        return
    if isinstance(seq, np.ndarray) and seq.dtype != np.uint64:
        if seq.ndim != 1 or seq.dtype.kind not in "iu":
            raise TypeError(f"expected a 1-D integer array, got dtype {seq.dtype} with shape {seq.shape}")
        view = np.ascontiguousarray(seq, dtype=np.int64)
        out.resize(view.shape[0])
        for k in range(view.shape[0]):
            out[k] = view[k]
        return
    values = _py._int_list(seq)
    out.resize(len(values))
    for k in range(len(values)):
        out[k] = values[k]


cdef void _chars(str s, vector[int64_t]& out) except *:
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s), k
    cdef int kind = PyUnicode_KIND(s)
    cdef void* data = PyUnicode_DATA(s)
    out.resize(n)
    for k in range(n):
        out[k] = <uint32_t>PyUnicode_READ(kind, data, k)


cdef _Matcher _pair(ref, hyp):
    if isinstance(ref, str) != isinstance(hyp, str):
        raise TypeError("ref and hyp must both be str or both be integer sequences")
    cdef _Matcher matcher = _Matcher()
    _load(ref, matcher.a)
    _load(hyp, matcher.b)
    return matcher


def edit_distance(ref, hyp):
    cdef Py_ssize_t counts[4]
    memset(counts, 0, sizeof(counts))
    _pair(ref, hyp).count(counts, NULL)
    return counts[SUB] + counts[DEL] + counts[INS]


def edit_counts(ref, hyp):
    cdef Py_ssize_t counts[4]
    memset(counts, 0, sizeof(counts))
    _pair(ref, hyp).count(counts, NULL)
    return EditCounts(hits=counts[HIT], substitutions=counts[SUB], deletions=counts[DEL], insertions=counts[INS])


def align(ref, hyp):
    cdef Py_ssize_t counts[4]
    cdef vector[Step] steps
    memset(counts, 0, sizeof(counts))
    _pair(ref, hyp).count(counts, &steps)
    return [(_OP_LETTERS[steps[k].op], steps[k].i, steps[k].j) for k in range(<Py_ssize_t>steps.size() - 1, -1, -1)]


def corpus_wer(refs, hyps):
    refs, hyps = _py._sentences(refs, hyps)
    cdef Py_ssize_t counts[4]
    memset(counts, 0, sizeof(counts))
    cdef _Matcher matcher = _Matcher()
    cdef _Lexicon lexicon = _Lexicon()
    for ref, hyp in zip(refs, hyps):
        lexicon.words(ref, matcher.a)
        lexicon.words(hyp, matcher.b)
        matcher.count(counts, NULL)
    return _py._error_rate([counts[HIT], counts[SUB], counts[DEL], counts[INS]])


def corpus_cer(refs, hyps):
    refs, hyps = _py._sentences(refs, hyps)
    cdef Py_ssize_t counts[4]
    memset(counts, 0, sizeof(counts))
    cdef _Matcher matcher = _Matcher()
    for ref, hyp in zip(refs, hyps):
        _stripped_chars(ref, matcher.a)
        _stripped_chars(hyp, matcher.b)
        matcher.count(counts, NULL)
    return _py._error_rate([counts[HIT], counts[SUB], counts[DEL], counts[INS]])


# one copy of each docstring: the reference's
for _name in ("edit_distance", "edit_counts", "align", "corpus_wer", "corpus_cer"):
    globals()[_name].__doc__ = getattr(_py, _name).__doc__
del _name
