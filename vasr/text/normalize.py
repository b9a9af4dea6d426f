"""Vietnamese text normalisation: the one spelling of a sentence that transcripts, language models
and tokenizers see.

``normalize(text)`` applies, in order:

1. NFC, then every letter is rebuilt from its base and combining marks whatever their order in the
   input (NFD with the tone mark before or after the vowel-quality mark both work); combining marks
   that cannot compose onto their letter are dropped; numerals other than ASCII digits (², ½) become
   spaces.
2. Abbreviations expanded from a table, only as whole words (TP.HCM, ThS, v.v.), case-sensitively
   where the lower-case spelling could be a word.
3. Numbers, dates, times, percentages and units read out (``vasr.text.numbers``).
   Then lower case (letters rebuilt again: lower() can add marks, İ -> i + U+0307).
4. Tone-mark placement, per syllable, in the spelling that puts the tone of an open oa/oe/uy on
   the first vowel: hòa, khỏe, thúy (also quý, giữ, hoàn, thuyền, quyết). It is the spelling of most
   current Vietnamese news text and keyboard defaults; some call it the "old" or "traditional" style,
   others the "new" one, so the rule is stated here instead of a name:

   * split the syllable into onset, vowel nucleus and final consonant; ``gi`` and ``qu`` are onsets
     when a vowel follows (gìn = g + in, giữ = gi + ư, quý = qu + y);
   * a nucleus vowel with a quality mark (ă â ê ô ơ ư) takes the tone; of two (ươ), the second
     (người, thuở, thuyền);
   * otherwise, with a final consonant, the last vowel of the nucleus (hoàn, toán, huỳnh, boóng);
   * otherwise one or two vowels: the first (mùa, túi, cháo, hòa, khỏe, thủy); three: the middle
     one (ngoài, khuỷu, ngoẹo).

   The other spelling (hoà, khoẻ, thuỷ: tone on the second vowel of an open oa/oe/uy) maps to the
   same string. A word that is not one Vietnamese syllable (foreign words, two tone marks) is left
   as written.
5. Every character that is not a letter becomes a space (punctuation, symbols, leftover digits of
   other scripts); whitespace collapsed to single spaces and stripped.

Letters of any script are kept as letters (f, j, w, z and foreign words included).
``normalize`` is idempotent. Bump ``NORMALIZER_VERSION`` on any change of behaviour: it is stored in
every model and export so that a model is always fed text spelt the way it was trained on.
"""
from __future__ import annotations

import re
import unicodedata

from vasr.text.numbers import expand_numbers

__all__ = ["NORMALIZER_VERSION", "ABBREVIATIONS", "ANY_CASE", "normalize", "place_tone_marks", "is_syllable"]

NORMALIZER_VERSION = "1"

# combining marks of the five tones; the vowel-quality marks (breve, circumflex, horn) stay with
# their letter
TONE_MARKS = ("\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # huyền sắc hỏi ngã nặng
VOWELS = "aăâeêioôơuưy"
QUALITY_VOWELS = "ăâêôơư"
ONSETS = ("ngh", "ng", "gh", "gi", "kh", "nh", "ph", "th", "tr", "ch", "qu",
          "b", "c", "d", "đ", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x")
FINALS = ("ch", "ng", "nh", "c", "m", "n", "p", "t")
STOP_FINALS = frozenset(("c", "ch", "p", "t"))
STOP_TONES = frozenset(("\u0301", "\u0323"))  # the only tones a syllable ending in a stop can carry
# vowel nuclei that occur in Vietnamese spelling (after a gi/qu onset has been taken off)
NUCLEI = frozenset(VOWELS) | frozenset((
    "ai", "ao", "au", "ay", "âu", "ây", "eo", "êu", "ia", "iu", "iê", "oa", "oă", "oe", "oi", "oo",
    "ôi", "ơi", "ua", "uâ", "uê", "ui", "uô", "uơ", "uy", "ưa", "ưi", "ưu", "ươ", "yê",
    "iêu", "oai", "oay", "oeo", "uây", "uôi", "uya", "uyê", "uyu", "ươi", "ươu", "yêu"))

# Matched as whole words (no letter directly before or after), longest key first. Expansions are
# already normalised. ABBREVIATIONS match case-sensitively (TS, ThS: "ts" stays); ANY_CASE keys in any
# case: a key written in lower-case letters only must be one of them, else a mixed-case spelling
# ("tP") would pass the first normalisation and be expanded by the second.
ABBREVIATIONS = {
    "Q.": "quận", "P.": "phường", "TX.": "thị xã", "H.": "huyện",
    "GS.TS": "giáo sư tiến sĩ", "PGS.TS": "phó giáo sư tiến sĩ",
    "ThS.": "thạc sĩ", "ThS": "thạc sĩ", "TS.": "tiến sĩ", "TS": "tiến sĩ",
    "PGS.": "phó giáo sư", "PGS": "phó giáo sư", "GS.": "giáo sư", "GS": "giáo sư",
    "BS.": "bác sĩ", "BS": "bác sĩ", "KS.": "kỹ sư", "KS": "kỹ sư",
    "v.v.": "vân vân", "v.v": "vân vân", "&": "và",
    "UBND": "ủy ban nhân dân", "HĐND": "hội đồng nhân dân", "THPT": "trung học phổ thông",
    "THCS": "trung học cơ sở", "ĐH": "đại học", "CSGT": "cảnh sát giao thông", "BV": "bệnh viện",
    "VN": "việt nam", "SĐT": "số điện thoại", "TW": "trung ương",
}
ANY_CASE = {
    "tp.hcm": "thành phố hồ chí minh", "tp. hcm": "thành phố hồ chí minh",
    "tp hcm": "thành phố hồ chí minh", "tphcm": "thành phố hồ chí minh", "hcm": "hồ chí minh",
    "tp.": "thành phố", "tp": "thành phố",
}
_ABBREVIATION_RE = re.compile(r"(?<![^\W\d_])(?:" + "|".join(
    re.escape(k) if k in ABBREVIATIONS else f"(?i:{re.escape(k)})"
    for k in sorted([*ABBREVIATIONS, *ANY_CASE], key=len, reverse=True)) + r")(?![^\W\d_])")
_LETTER_RUN = re.compile(r"[^\W\d_]+")
# onset, nucleus (vowels incl. the glide), final of a toneless lower-case syllable
SYLLABLE = re.compile(f"({'|'.join(ONSETS)})?([{VOWELS}]+)({'|'.join(FINALS)})?")


def _vowel_table() -> dict[str, tuple[str, str]]:
    """Every precomposed Vietnamese vowel (either case) -> (vowel without tone, tone mark or '')."""
    table = {}
    for vowel in VOWELS + VOWELS.upper():
        base = unicodedata.normalize("NFD", vowel)
        for tone in ("", *TONE_MARKS):
            table[unicodedata.normalize("NFC", base + tone)] = (vowel, tone)
    return table


_VOWEL_TONE = _vowel_table()


def _rebuild_letters(text: str) -> str:
    """NFC with every letter recomposed from its marks in any order; stray marks dropped, numerals
    other than ASCII digits turned into spaces."""
    out: list[str] = []
    marks: list[str] = []

    def flush() -> None:
        if not out:
            marks.clear()
            return
        # quality marks before tones: both have combining class 230 and NFC composes only the first
        ordered = sorted(marks, key=lambda m: (m in TONE_MARKS, unicodedata.combining(m)))
        composed = unicodedata.normalize("NFC", out[-1] + "".join(ordered))
        out[-1] = "".join(c for c in composed if not unicodedata.combining(c))
        marks.clear()

    for char in unicodedata.normalize("NFD", text):
        if unicodedata.combining(char):
            marks.append(char)
        else:
            flush()
            out.append(char)
    flush()
    # other numerals (², ½, ٣) would count as letters in regex classes; they are symbols here
    return unicodedata.normalize("NFC", "".join(
        " " if c.isnumeric() and not c.isascii() else c for c in out))


def _place_in_word(word: str) -> str:
    """One run of letters with its tone mark moved to the canonical vowel, if it is a syllable."""
    parts = [_VOWEL_TONE.get(c, (c, "")) for c in word]
    tones = [i for i, (_, tone) in enumerate(parts) if tone]
    if len(tones) != 1:
        return word
    plain = "".join(base for base, _ in parts)
    match = SYLLABLE.fullmatch(plain.lower())
    if match is None or match.group(2) not in NUCLEI:
        return word
    onset, nucleus, final = (g or "" for g in match.groups())
    quality = [i for i, v in enumerate(nucleus) if v in QUALITY_VOWELS]
    if quality:
        index = quality[-1]
    elif final or len(nucleus) == 1:
        index = len(nucleus) - 1
    else:
        index = 0 if len(nucleus) == 2 else 1
    target = len(onset) + index
    tone = parts[tones[0]][1]
    return "".join(unicodedata.normalize("NFC", base + tone) if i == target else base
                   for i, (base, _) in enumerate(parts))


def place_tone_marks(text: str) -> str:
    """``text`` (NFC) with each syllable's tone mark where the module docstring's rule puts it;
    case is kept."""
    return _LETTER_RUN.sub(lambda m: _place_in_word(m.group(0)), text)


def is_syllable(word: str) -> bool:
    """Whether ``word`` (one normalised word) is spelt as a Vietnamese syllable: onset, vowel
    nucleus, final consonant, at most one tone, and a stop final (c ch p t) only with sắc or nặng."""
    parts = [_VOWEL_TONE.get(c, (c, "")) for c in word]
    tones = [tone for _, tone in parts if tone]
    match = SYLLABLE.fullmatch("".join(base for base, _ in parts))
    if len(tones) > 1 or match is None or match.group(2) not in NUCLEI:
        return False
    return match.group(3) not in STOP_FINALS or (bool(tones) and tones[0] in STOP_TONES)


def _expand_abbreviations(text: str) -> str:
    def expansion(m: re.Match) -> str:
        key = m.group(0)
        return f" {ABBREVIATIONS[key] if key in ABBREVIATIONS else ANY_CASE[key.lower()]} "
    return _ABBREVIATION_RE.sub(expansion, text)


def normalize(text: str) -> str:
    """The normalised spelling of ``text``: lower case, letters and single spaces only (see the
    module docstring for every step)."""
    text = expand_numbers(_expand_abbreviations(_rebuild_letters(text)))
    # tones are placed on the lower-cased text: lower() can change letters (İ -> i + U+0307)
    text = place_tone_marks(_rebuild_letters(text.lower()))
    return " ".join("".join(c if c.isalpha() else " " for c in text).split())
