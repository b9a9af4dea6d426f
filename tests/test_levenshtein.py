"""vasr.kernels levenshtein, every backend: a textbook oracle, jiwer 4's numbers, edge cases.

The 10k Vietnamese pairs come from benchmarks/vi_pairs.py (loaded by path: the benchmarks share it).
"""
from __future__ import annotations

import importlib.util
import inspect
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vasr.kernels import dispatch

BACKENDS = dispatch.available("levenshtein")
CORPUS_PAIRS = 10_000
SAMPLE_PAIRS = 400  # pairs checked one by one against jiwer
# more cells than this in the trimmed pair make rapidfuzz (so jiwer) align by Hirschberg's method
HIRSCHBERG_CELLS = 4 * 1024 * 1024

_spec = importlib.util.spec_from_file_location("vi_pairs", Path(__file__).parents[1] / "benchmarks" / "vi_pairs.py")
vi_pairs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vi_pairs)

# letters that stress code-point handling: precomposed Vietnamese, bare and combining tone marks
VI_LETTERS = "aăâeêioôơuưyđàáảãạằắẳẵặầấẩẫậờớởỡợừứửữựỳýỷỹỵ\u0300\u0301\u0303\u0309\u0323 "


@pytest.fixture(scope="module", params=BACKENDS)
def lev(request):
    return dispatch.load("levenshtein", request.param)


@pytest.fixture(scope="module")
def reference():
    return dispatch.load("levenshtein", "python")


@pytest.fixture(scope="module")
def jiwer():
    return pytest.importorskip("jiwer")


@pytest.fixture(scope="module")
def corpus():
    return vi_pairs.vi_pairs(CORPUS_PAIRS)


@pytest.fixture(scope="module")
def jiwer_totals(jiwer, corpus):
    words = jiwer.process_words(*corpus)
    chars = jiwer.process_characters(*corpus)
    return {
        "wer": (jiwer.wer(*corpus), (words.hits, words.substitutions, words.deletions, words.insertions)),
        "cer": (jiwer.cer(*corpus), (chars.hits, chars.substitutions, chars.deletions, chars.insertions)),
    }


def textbook_matrix(a, b) -> list[list[int]]:
    """D[i][j] = Levenshtein distance of a[:i] and b[:j], filled cell by cell."""
    d = [[i + j if i == 0 or j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d


def textbook_counts(a, b) -> tuple[int, int, int, int]:
    """(hits, S, D, I) by jiwer's tie-breaking, walked on the full matrix of the trimmed pair."""
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(a), len(b)) - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    a, b = a[prefix:len(a) - suffix], b[prefix:len(b) - suffix]
    d = textbook_matrix(a, b)
    hits, subs, dels, ins = prefix + suffix, 0, 0, 0
    i, j = len(a), len(b)
    while i and j:
        if d[i][j] == d[i - 1][j] + 1:
            i, dels = i - 1, dels + 1
        elif d[i][j - 1] == d[i - 1][j - 1] - 1:
            j, ins = j - 1, ins + 1
        else:
            i, j = i - 1, j - 1
            hits, subs = hits + (a[i] == b[j]), subs + (a[i] != b[j])
    return hits, subs, dels + i, ins + j


def as_tuple(counts) -> tuple[int, int, int, int]:
    return counts.hits, counts.substitutions, counts.deletions, counts.insertions


def apply(alignment, ref, hyp) -> list:
    """Hypothesis rebuilt from ref by the alignment (checks indices and op letters on the way)."""
    out, next_ref, next_hyp = [], 0, 0
    for op, i, j in alignment:
        if op in "=SD":
            assert i == next_ref
            next_ref += 1
        if op in "=SI":
            assert j == next_hyp
            next_hyp += 1
        if op == "=":
            assert ref[i] == hyp[j]
            out.append(ref[i])
        elif op in "SI":
            assert op == "I" or ref[i] != hyp[j]
            out.append(hyp[j])
        else:
            assert op == "D" and j == -1
    assert (next_ref, next_hyp) == (len(ref), len(hyp))
    return out


def test_backend_exports_match_reference(lev, reference):
    assert lev.__all__ == reference.__all__ == ["EditCounts", "ErrorRate", "edit_distance", "edit_counts",
                                                "align", "corpus_wer", "corpus_cer"]
    for name in reference.__all__:
        ours, theirs = getattr(lev, name), getattr(reference, name)
        assert ours.__doc__ == theirs.__doc__
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(theirs).parameters)
    assert lev.EditCounts is reference.EditCounts and lev.ErrorRate is reference.ErrorRate


def test_known_pairs(lev):
    assert lev.edit_distance("kitten", "sitting") == 3
    assert lev.edit_distance([], []) == 0
    # ties: jiwer (rapidfuzz) reports a deletion + an insertion, not two substitutions
    assert as_tuple(lev.edit_counts("ab", "ba")) == (1, 0, 1, 1)
    assert lev.align("ab", "ba") == [("I", -1, 0), ("=", 0, 1), ("D", 1, -1)]
    assert as_tuple(lev.edit_counts("hôm nay", "hôm qua")) == (5, 1, 1, 1)
    assert lev.align([1, 2, 3, 4], [2, 3, 5, 4, 6]) == [
        ("D", 0, -1), ("=", 1, 0), ("=", 2, 1), ("I", -1, 2), ("=", 3, 3), ("I", -1, 4)]
    counts = lev.edit_counts("kitten", "sitting")
    assert (as_tuple(counts), counts.errors) == ((4, 2, 0, 1), 3)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=12), st.lists(st.integers(0, 3), max_size=12))
def test_int_lists_match_textbook(lev, a, b):
    assert lev.edit_distance(a, b) == textbook_matrix(a, b)[len(a)][len(b)]
    assert as_tuple(lev.edit_counts(a, b)) == textbook_counts(a, b)
    assert apply(lev.align(a, b), a, b) == b


@settings(max_examples=300, deadline=None)
@given(st.text(VI_LETTERS[:8], max_size=20), st.text(VI_LETTERS, max_size=20))
def test_strings_match_textbook(lev, a, b):
    assert lev.edit_distance(a, b) == textbook_matrix(a, b)[len(a)][len(b)]
    assert as_tuple(lev.edit_counts(a, b)) == textbook_counts(a, b)
    assert "".join(apply(lev.align(a, b), a, b)) == b


@settings(max_examples=40, deadline=None)
@given(st.text("ab", min_size=60, max_size=200), st.text("ab", min_size=60, max_size=200))
def test_multi_block_strings_match_textbook(lev, a, b):
    """Sequences longer than 64 symbols span several bit blocks in the compiled backend."""
    assert as_tuple(lev.edit_counts(a, b)) == textbook_counts(a, b)


def test_integer_sequence_types(lev):
    ref, hyp = [5, 7, 7, 1, -3], [7, 5, 1, 2**40]
    expected = lev.align(ref, hyp)
    assert as_tuple(lev.edit_counts(ref, hyp)) == (2, 2, 1, 0)  # as rapidfuzz.Levenshtein.opcodes
    assert lev.align(tuple(ref), np.array(hyp, dtype=np.int64)) == expected
    assert lev.align(np.array(ref, dtype=np.int32), [np.int64(v) for v in hyp]) == expected
    assert lev.edit_distance(np.array([1, 2], dtype=np.uint8), np.array([2], dtype=np.uint64)) == 1


def test_bad_inputs(lev):
    with pytest.raises(TypeError, match="both be str"):
        lev.edit_distance("ab", [1, 2])
    with pytest.raises(TypeError):
        lev.edit_counts([1.5], [1])
    with pytest.raises(TypeError, match="integer array"):
        lev.align(np.array([1.0]), np.array([1]))
    with pytest.raises(OverflowError):
        lev.edit_distance([2**63], [1])
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        lev.corpus_wer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="1 references but 0 hypotheses"):
        lev.corpus_cer(["a"], [])
    with pytest.raises(TypeError, match="pair 1: expected two str, got str and NoneType"):
        lev.corpus_cer(["a", "b"], ["a", None])


def test_pairs_match_jiwer_one_by_one(lev, jiwer, corpus):
    rng = random.Random(7)
    for k in rng.sample(range(CORPUS_PAIRS), SAMPLE_PAIRS):
        ref, hyp = corpus[0][k], corpus[1][k]
        words, chars = jiwer.process_words(ref, hyp), jiwer.process_characters(ref, hyp)
        wer, cer = lev.corpus_wer([ref], [hyp]), lev.corpus_cer([ref], [hyp])
        assert as_tuple(wer) == (words.hits, words.substitutions, words.deletions, words.insertions)
        assert as_tuple(cer) == (chars.hits, chars.substitutions, chars.deletions, chars.insertions)
        assert as_tuple(lev.edit_counts(ref.strip(), hyp.strip())) == as_tuple(cer)
        ids = {w: n for n, w in enumerate(set(ref.split()) | set(hyp.split()))}
        word_counts = lev.edit_counts([ids[w] for w in ref.split()], [ids[w] for w in hyp.split()])
        assert as_tuple(word_counts) == as_tuple(wer)
        assert (wer.rate, cer.rate) == (words.wer, chars.cer)


@pytest.mark.parametrize("measure", ["wer", "cer"])
def test_corpus_totals_equal_jiwer(lev, corpus, jiwer_totals, measure):
    result = getattr(lev, f"corpus_{measure}")(*corpus)
    rate, counts = jiwer_totals[measure]
    assert result.rate == rate
    assert as_tuple(result) == counts
    assert result.errors == sum(counts[1:]) and result.ref_len == sum(counts[:3])


def test_corpus_totals_concrete(lev, corpus):
    """Pins the generator and the totals, so a change to either shows up here."""
    assert lev.corpus_wer(*corpus) == lev.ErrorRate(errors=35579, substitutions=14675, deletions=10402,
                                                    insertions=10502, hits=126374, ref_len=151451)
    assert lev.corpus_cer(*corpus).to_dict() == {
        "errors": 126894, "substitutions": 27322, "deletions": 50410, "insertions": 49162, "hits": 561211,
        "ref_len": 638943, "rate": 126894 / 638943}


def test_whitespace_follows_jiwer(lev, jiwer):
    refs = ["a\tb c", "  tôi  đi\u00a0học ", "x \t\ny", "\tmột hai\n", "e\u0301 e"]
    hyps = ["a b c", "tôi đi học", "x y", "một  hai", "é e"]
    for measure in ("wer", "cer"):
        ours = getattr(lev, f"corpus_{measure}")(refs, hyps)
        theirs = getattr(jiwer, f"process_{'words' if measure == 'wer' else 'characters'}")(refs, hyps)
        assert as_tuple(ours) == (theirs.hits, theirs.substitutions, theirs.deletions, theirs.insertions)
    # the same word read from 1-, 2- and 4-byte str storage must get the same id
    refs, hyps = ["ban ba", "ban bà", "ban 😀 ba"], ["ban 😀", "ba ban", "ban ba"]
    words = jiwer.process_words(refs, hyps)
    assert as_tuple(lev.corpus_wer(refs, hyps)) == (words.hits, words.substitutions, words.deletions,
                                                     words.insertions) == (4, 1, 2, 1)
    # jiwer keeps a lone tab inside a word: "a\tb" is one word
    assert as_tuple(lev.corpus_wer(["a\tb c"], ["a b c"])) == (1, 1, 0, 1)


def test_empty_sentences_follow_jiwer(lev, jiwer):
    cases = [([""], ["một hai"]), (["   "], [""]), (["a b"], [""]), ([""], [""]), ([], []),
             (["", "tôi đi"], ["xin chào", "tôi về"])]
    for refs, hyps in cases:
        for measure in ("wer", "cer"):
            ours = getattr(lev, f"corpus_{measure}")(refs, hyps)
            assert ours.rate == getattr(jiwer, measure)(refs, hyps), (refs, hyps, measure)
            assert isinstance(ours.rate, float)
    no_reference = lev.corpus_wer([""], ["một hai"])
    assert (no_reference.insertions, no_reference.ref_len, no_reference.rate) == (2, 0, 2.0)
    assert lev.corpus_cer(" ", " ").rate == 0.0  # a bare str is one sentence, as in jiwer


def test_long_pair_rate_equals_jiwer(lev, jiwer):
    """Past rapidfuzz's Hirschberg threshold jiwer's S/D/I split may differ; the rate may not."""
    rng = random.Random(11)
    ref = "".join(rng.choice("ab") for _ in range(2100))
    hyp = "".join(rng.choice("ab") for _ in range(2100))
    assert len(ref) * len(hyp) > HIRSCHBERG_CELLS
    ours, theirs = lev.corpus_cer([ref], [hyp]), jiwer.process_characters(ref, hyp)
    assert ours.rate == theirs.cer
    assert ours.errors == theirs.substitutions + theirs.deletions + theirs.insertions


def test_backend_alignments_equal_reference(lev, reference, corpus):
    if lev is reference:
        pytest.skip("compares a compiled backend with the reference")
    refs, hyps = corpus
    for k in range(0, CORPUS_PAIRS, 50):
        assert lev.align(refs[k], hyps[k]) == reference.align(refs[k], hyps[k])
    rng = random.Random(3)
    for _ in range(200):
        a = [rng.randrange(5) for _ in range(rng.randrange(300))]
        b = [rng.randrange(5) for _ in range(rng.randrange(300))]
        assert lev.align(a, b) == reference.align(a, b)


# whitespace of every kind str.isspace() knows, and look-alikes it does not (zero-width space, BOM)
SPACES = " \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u200a\u2028\u202f\u3000\u200b\ufeff"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text("ab" + SPACES, max_size=14), st.text("abc" + SPACES, max_size=14)), max_size=6))
def test_whitespace_rules_match_reference(lev, reference, pairs):
    """Words and stripping under every whitespace character, against the reference's own rules."""
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    assert lev.corpus_wer(refs, hyps) == reference.corpus_wer(refs, hyps)
    assert lev.corpus_cer(refs, hyps) == reference.corpus_cer(refs, hyps)


def test_long_and_astral_inputs_match_reference(lev, reference):
    """Many 64-bit blocks, words past 64 per sentence, code points beyond the BMP, lone surrogates."""
    rng = random.Random(5)
    long_ref = [rng.randrange(7) for _ in range(1000)]
    long_hyp = [rng.randrange(7) for _ in range(900)]
    assert lev.align(long_ref, long_hyp) == reference.align(long_ref, long_hyp)
    words = [" ".join(rng.choice(["một", "hai", "ba", "😀", "𝒜b"]) for _ in range(rng.randrange(60, 150)))
             for _ in range(6)]
    refs, hyps = words[:3], words[3:]
    assert lev.corpus_wer(refs, hyps) == reference.corpus_wer(refs, hyps)
    assert lev.corpus_cer(refs, hyps) == reference.corpus_cer(refs, hyps)
    for ref, hyp in [("😀a𝒜", "a😀𝒜😁"), ("\ud800x\udfff", "x\ud800"), ("", "😀"), ("𝒜" * 70, "𝒜" * 65 + "a")]:
        assert lev.align(ref, hyp) == reference.align(ref, hyp)
    assert lev.corpus_cer(["😀 "], [" 😁😀"]) == reference.corpus_cer(["😀 "], [" 😁😀"])
    # thousands of distinct one-letter sentences: more words than half the code points, a growing lexicon
    letters = [chr(0x4E00 + k) for k in range(3000)]
    refs, hyps = letters, letters[1:1000] + [" "] + [""] * 2000
    assert lev.corpus_wer(refs, hyps) == reference.corpus_wer(refs, hyps)


def test_empty_and_odd_integer_inputs(lev, reference):
    cases = [([], [3, 4]), ([3, 4], []), ((), ()), (np.arange(10)[::3], np.arange(10)[::2]),
             (np.array([], dtype=np.uint64), np.array([2**63 - 1, -(2**63)], dtype=np.int64))]
    for ref, hyp in cases:
        assert lev.align(ref, hyp) == reference.align(ref, hyp)
        assert lev.edit_counts(ref, hyp) == reference.edit_counts(ref, hyp)
    with pytest.raises(OverflowError):
        lev.edit_distance(np.array([2**63], dtype=np.uint64), [1])
    with pytest.raises(TypeError, match="integer array"):
        lev.edit_distance(np.zeros((2, 2), dtype=np.int64), [1])
    assert lev.corpus_wer(["", " ", ""], ["", "a", " "]) == reference.corpus_wer(["", " ", ""], ["", "a", " "])


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba is not installed")
def test_numba_import_compiles_nothing():
    """Importing the Numba backend is cheap: no jitted function has a compiled signature yet."""
    import subprocess
    import sys

    code = ("import numba.core.dispatcher as d, vasr.kernels.levenshtein_nb as m; "
            "jitted = [f for f in vars(m).values() if isinstance(f, d.Dispatcher)]; "
            "print(len(jitted), [f.signatures for f in jitted])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    count, signatures = out.stdout.split(" ", 1)
    assert int(count) >= 1 and signatures.strip() == "[" + ", ".join(["[]"] * int(count)) + "]"


def test_generator_is_deterministic_and_varied():
    refs, hyps = vi_pairs.vi_pairs(2000)
    assert (refs, hyps) == vi_pairs.vi_pairs(2000)
    lengths = [len(r.split()) for r in refs]
    assert (min(lengths), max(lengths)) == (vi_pairs.MIN_WORDS, vi_pairs.MAX_WORDS)
    assert sum(r == h for r, h in zip(refs, hyps)) > 100
    assert sum(h == "" for h in hyps) > 10
    assert sum(len(h.split()) > len(r.split()) + 9 for r, h in zip(refs, hyps)) > 20
    assert len(vi_pairs.SYLLABLES) == len(set(vi_pairs.SYLLABLES)) >= 200
