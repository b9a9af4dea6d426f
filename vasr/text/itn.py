"""Inverse text normalisation (ITN): normalised spoken Vietnamese back to written numbers.

The input is what ``vasr.text.normalize.normalize`` produces: lower-case words, numbers read out
by ``vasr.text.numbers``. Each written form below is one that ``normalize`` reads back into the
same words, so ``itn(normalize(x)) == x`` for ``x`` written in these forms, with the numbers that
the rules further down keep as words written in words.

Written forms:

* integers in digits, with ``.`` between thousands from 10 000 up: 15, 2024, 10.005, 1.000.000;
  decimals with ``,``: 3,5, 0,05, 3,5 triệu (a scale word after a decimal stays a word);
* units after a space, spelt as the keys of ``numbers.UNITS``: 5 km, 3,5 kg, 100 m2, 60 km/h,
  20 USD; ``%``, ``°`` and ``°C`` written against the number (50%, 30°, -5°C); ``lít``, ``đô la``
  and ``đồng`` stay words (2 lít, 5 đô la, 100.000 đồng);
* dates: ngày 20/1/2026, ngày 1/5, tháng 11/2026, tháng 4 (the spoken ngày/tháng is kept, a year
  only with four digits, as ``numbers`` reads it);
* times: 8:30, 8:05, 14:30:15 (a minute without ``phút`` only from 10 up: tám giờ ba mươi);
  a whole hour is ``8 giờ``, which also reads as a duration;
* ranges ``A đến B`` -> 3-5 kg, 20-30%, 10-15 when B > A, not after ``từ`` (từ 10 đến 15 is kept
  as said), and the larger end is at least 10 or a unit or a decimal comes with it;
* ``âm`` before a number that is written in digits: -15, -3,5, -5°C;
* a run of at least ``MIN_DIGIT_RUN`` digit words read one by one: 0912345678;
* ordinals follow the integer rule: thứ 20, thứ hai mươi mốt -> thứ 21; thứ nhất, thứ tư stay.

When a number stays words (the ambiguity rule):

1. An integer below ``MIN_DIGITS_ALONE`` (10) stays a word unless a unit, ``phần trăm`` or
   ``giờ`` follows, or it is part of a date, time, decimal or range: một số, năm nay, ba mẹ,
   bốn phương, tôi có hai con mèo, thứ hai, ba tháng, năm đồng (Vietnamese style writes small
   counts in words; ``đồng`` is not a unit here: ba đồng chí, hai đồng nghiệp; nor is a bare
   ``độ``, the noun of độ tuổi, độ dài: một độ tuổi stays, năm độ xê is 5°C, ba mươi độ is 30°).
2. ``không`` is zero only before ``phẩy`` or ``phần trăm``, as the hour of a time with minutes
   (0:30), as a minute or second, and in digit runs and decimals: không đồng ý, không một ai,
   không đến mười người, không giờ keep it as a word.
3. A number followed by ``mấy`` or by a ``mươi``/``trăm``/scale word it could not take stays
   words: mười mấy người, mười mươi.
4. trăm, nghìn, triệu, tỷ need a digit word before them: hàng trăm, nghìn năm, vài triệu stay.
5. After ``mười``/``mươi``, ``năm`` is the noun "year", not 5 (mười năm = 10 năm; 15 is mười lăm);
   a lone digit after ``trăm`` or a scale word is not part of the number unless a scale word
   follows it: một trăm năm = 100 năm, hai nghìn năm = 2000 năm, một tỷ hai triệu = 1.002.000.000.
6. ``tháng`` + 1..12 alone is a month, except ``năm`` (ngày tháng năm sinh) and after a number
   or a quantifier (ba tháng hai ngày, mỗi tháng một lần); with a day or a year, May is read too.
7. Idioms whose numbers are figurative (``FIXED_PHRASES``) stay words: mười phân vẹn mười.

Spoken variants that ``normalize`` never produces are read as well: lẻ for linh, ngàn, tỉ,
mười tư, hai mươi một, nhăm, a missing ``không trăm`` (hai nghìn hai mươi sáu = 2026),
linh/lẻ after a scale word (một nghìn lẻ một = 1001).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ITN_VERSION", "Span", "inverse_normalize", "itn"]

ITN_VERSION = "1"  # bump on any change of output; exports record it in config.json

DIGITS = {"không": 0, "một": 1, "hai": 2, "ba": 3, "bốn": 4, "năm": 5, "sáu": 6, "bảy": 7,
          "tám": 8, "chín": 9}
# unit digit after mười (mười lăm, mười bốn or the southern mười tư; never năm: mười năm = 10 years)
UNITS_AFTER_MUOI = {"một": 1, "hai": 2, "ba": 3, "bốn": 4, "tư": 4, "lăm": 5, "sáu": 6, "bảy": 7,
                    "tám": 8, "chín": 9}
# unit digit after mươi (hai mươi mốt, hai mươi tư, hai mươi lăm/nhăm)
UNITS_AFTER_MUOI_TENS = {**UNITS_AFTER_MUOI, "mốt": 1, "nhăm": 5}
LINH = frozenset(("linh", "lẻ"))
SCALES = {"nghìn": 10**3, "ngàn": 10**3, "triệu": 10**6}
TY = frozenset(("tỷ", "tỉ"))
TY_VALUE = 10**9
# words that continue a number begun by a digit word
CONTINUATIONS = frozenset(("mươi", "trăm", *SCALES, *TY))
# a number right before one of these stays words (rule 3)
BLOCKERS = CONTINUATIONS | {"mấy"}
MIN_DIGITS_ALONE = 10  # smaller integers standing alone stay words (rule 1)
MIN_DIGIT_RUN = 7  # digit words read one by one that become a digit string (phone numbers)
THOUSANDS_FROM = 10_000  # integers from here up get "." between thousands
MAX_FRACTION_AS_NUMBER = 3  # as in numbers.py: longer fractions are read digit by digit
MAX_HOUR, MAX_MINUTE, MAX_DAY, MAX_MONTH = 24, 59, 31, 12
YEAR_DIGITS = 4  # numbers.py reads a date's year only with four digits
MONTH_WORDS = {"tư": 4}  # tháng tư; other months are cardinals
AMBIGUOUS_MONTH = 5  # tháng năm alone is the phrase "months and years"
# words after which "tháng N" counts months instead of naming one (rule 6)
QUANTIFIERS = frozenset(("mỗi", "hằng", "hàng", "mấy", "vài", "các", "những", "nhiều", "mọi"))
NUMBER_WORDS = frozenset((*DIGITS, *UNITS_AFTER_MUOI_TENS, "mười", *LINH, *CONTINUATIONS))
# spoken unit -> written unit (keys of numbers.UNITS or words numbers.py leaves alone)
UNITS = {
    "ki lô mét trên giờ": "km/h", "ki lô mét vuông": "km2", "mét vuông": "m2", "mét khối": "m3",
    "ki lô mét": "km", "xen ti mét": "cm", "mi li mét": "mm", "mét": "m",
    "ki lô gam": "kg", "mi li gam": "mg", "gam": "g", "mi li lít": "ml", "lít": "lít",
    "héc ta": "ha", "độ xê": "°C", "độ": "°", "phần trăm": "%",
    "đô la mỹ": "USD", "đô la": "đô la",
}
ATTACHED_UNITS = frozenset(("%", "°", "°C"))  # written without a space after the number
# "độ" alone is also the noun of độ cao, độ tuổi, độ dài: after a number below 10 it stays a word
# (một độ tuổi, hai độ dài); with a larger number or a decimal it is the degree sign (30°, 2,5°)
BARE_DEGREE = "°"
# first word -> (spoken words, written), longest first
_UNITS_BY_FIRST: dict[str, list[tuple[tuple[str, ...], str]]] = {}
for _spoken, _written in sorted(UNITS.items(), key=lambda item: -len(item[0].split())):
    _UNITS_BY_FIRST.setdefault(_spoken.split()[0], []).append((tuple(_spoken.split()), _written))
TRIGGERS = frozenset((*DIGITS, "mười", "âm", "ngày", "tháng"))
# idioms whose numbers are figurative; they stay words (rule 7)
FIXED_PHRASES = ("mười phân vẹn mười", "chín người mười ý", "một mất mười ngờ", "mười năm trồng cây",
                 "chín phương trời mười phương phật")
_FIXED_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _phrase in FIXED_PHRASES:
    _FIXED_BY_FIRST.setdefault(_phrase.split()[0], []).append(tuple(_phrase.split()))


@dataclass(frozen=True)
class Span:
    text: str  # the written form, e.g. "2026" or "20/1/2026" or "xin"
    first: int  # index of the first spoken word it replaces
    end: int  # one past the last spoken word it replaces


@dataclass(frozen=True)
class _Number:
    value: int  # the integer part
    fraction: str | None  # digits after the decimal comma, None for an integer
    end: int  # one past its last word

    @property
    def written(self) -> str:
        whole = f"{self.value:,}".replace(",", ".") if self.value >= THOUSANDS_FROM else str(self.value)
        return whole if self.fraction is None else f"{whole},{self.fraction}"

    @property
    def magnitude(self) -> float:
        return float(f"{self.value}.{self.fraction or 0}")


def _at(words: Sequence[str], i: int) -> str:
    """words[i], or "" outside the sequence."""
    return words[i] if 0 <= i < len(words) else ""


def _tens(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """10..99 at ``i`` (mười ..., D mươi ...): (value, end)."""
    word = _at(words, i)
    if word == "mười":
        value, j, units = 10, i + 1, UNITS_AFTER_MUOI
    elif DIGITS.get(word, 0) >= 2 and _at(words, i + 1) == "mươi":
        value, j, units = 10 * DIGITS[word], i + 2, UNITS_AFTER_MUOI_TENS
    else:
        return None
    # the unit digit is not taken when it begins the next number (hai mươi ba mươi)
    if _at(words, j) in units and _at(words, j + 1) not in ("mươi", "trăm"):
        return value + units[words[j]], j + 1
    return value, j


def _linh(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """linh/lẻ D at ``i``."""
    if _at(words, i) in LINH and DIGITS.get(_at(words, i + 1), 0) > 0:
        return DIGITS[words[i + 1]], i + 2
    return None


def _group(words: Sequence[str], i: int, leading: bool) -> tuple[int, int] | None:
    """0..999 at ``i``; a group after a scale word (``leading`` False) is not a lone digit unless
    a scale word follows it (rule 5)."""
    digit = DIGITS.get(_at(words, i))
    if digit is not None and _at(words, i + 1) == "trăm" and (digit or not leading):
        tail = _linh(words, i + 2) or _tens(words, i + 2) or (0, i + 2)
        return 100 * digit + tail[0], tail[1]
    found = _tens(words, i) or (None if leading else _linh(words, i))
    if found:
        return found
    if digit is not None and (leading or _at(words, i + 1) in SCALES):
        return digit, i + 1
    return None


def _below_ty(words: Sequence[str], i: int, leading: bool) -> tuple[int, int] | None:
    """0..999 999 999 at ``i``: groups with decreasing scale words, a lone zero alone."""
    total, j, last_scale = 0, i, TY_VALUE
    while True:
        group = _group(words, j, leading and j == i)
        if group is None:
            break
        value, k = group
        if j == i and leading and value == 0 and _at(words, i) == "không":
            return 0, k
        scale = SCALES.get(_at(words, k))
        if scale is None:
            total, j = total + value, k
            break
        if scale >= last_scale:
            break
        total, j, last_scale = total + value * scale, k + 1, scale
    return (total, j) if j > i else None


def _cardinal(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """An integer at ``i`` as numbers.number_to_words reads it (tỷ repeats: một tỷ tỷ = 10^18)."""
    found = _below_ty(words, i, leading=True)
    if found is None or found[0] == 0:
        return found
    value, j = found
    while _at(words, j) in TY:
        value, j = value * TY_VALUE, j + 1
        rest = _below_ty(words, j, leading=False)
        if rest:
            value, j = value + rest[0], rest[1]
    return value, j


def _digit_run(words: Sequence[str], i: int) -> int:
    """End of the run of digit words at ``i`` that do not begin a longer number."""
    j = i
    while _at(words, j) in DIGITS and _at(words, j + 1) not in CONTINUATIONS:
        j += 1
    return j


def _fraction(words: Sequence[str], i: int) -> tuple[str, int] | None:
    """The digits after ``phẩy``: digit by digit when they start with zero or are longer than
    ``MAX_FRACTION_AS_NUMBER``, else one number below 1000."""
    run_end = _digit_run(words, i)
    if run_end > i and (words[i] == "không" or run_end - i > MAX_FRACTION_AS_NUMBER):
        return "".join(str(DIGITS[w]) for w in words[i:run_end]), run_end
    group = _group(words, i, leading=True)
    return (str(group[0]), group[1]) if group and group[0] else None


def _number(words: Sequence[str], i: int) -> _Number | None:
    """An integer or decimal at ``i``; a lone zero only before phẩy or phần trăm (rule 2)."""
    found = _cardinal(words, i)
    if found is None:
        return None
    value, end = found
    if _at(words, end) == "phẩy":
        fraction = _fraction(words, end + 1)
        if fraction:
            return _Number(value, fraction[0], fraction[1])
    unit = _unit(words, end) if value == 0 else None
    if value == 0 and (unit is None or unit[0] != "%"):
        return None
    return _Number(value, None, end)


def _unit(words: Sequence[str], i: int) -> tuple[str, int] | None:
    """(written unit, end) of the spoken unit at ``i``, the longest that matches."""
    for spoken, written in _UNITS_BY_FIRST.get(_at(words, i), ()):
        if tuple(words[i:i + len(spoken)]) == spoken:
            return written, i + len(spoken)
    return None


def _with_unit(text: str, first: int, end: int, words: Sequence[str]) -> list[Span] | None:
    """The written number ``text`` over words[first:end] and the unit after it, if any."""
    unit = _unit(words, end)
    if unit is None:
        return None
    if unit[0] in ATTACHED_UNITS:
        return [Span(text + unit[0], first, unit[1])]
    return [Span(text, first, end), Span(unit[0], end, unit[1])]


def _quantity(words: Sequence[str], i: int, number: _Number) -> list[Span] | None:
    """A number with its unit, or alone when rules 1 and 3 let it be written in digits."""
    small = number.fraction is None and number.value < MIN_DIGITS_ALONE
    spans = _with_unit(number.written, i, number.end, words)
    if spans and not (small and spans[0].text.endswith(BARE_DEGREE)):
        return spans
    if number.fraction is None and (number.value < MIN_DIGITS_ALONE or _at(words, number.end) in BLOCKERS):
        return None
    return [Span(number.written, i, number.end)]


def _time(words: Sequence[str], i: int, hour: int, after: int) -> list[Span] | None:
    """H giờ [M [phút [S giây]]] with ``after`` the index past giờ."""
    minute = _cardinal(words, after)
    if minute and minute[0] <= MAX_MINUTE:
        m, j = minute
        if _at(words, j) == "phút":
            second = _cardinal(words, j + 1)
            if second and second[0] <= MAX_MINUTE and _at(words, second[1]) == "giây":
                return [Span(f"{hour}:{m:02d}:{second[0]:02d}", i, second[1] + 1)]
            if m:
                return [Span(f"{hour}:{m:02d}", i, j + 1)]
        elif m >= MIN_DIGITS_ALONE and _at(words, j) not in BLOCKERS:
            return [Span(f"{hour}:{m:02d}", i, j)]
    return [Span(str(hour), i, after - 1)] if hour else None


def _range(words: Sequence[str], i: int, low: _Number) -> list[Span] | None:
    """low đến high [unit] -> "low-high" when high > low, not after từ, and a unit, a decimal or
    a high end of at least ``MIN_DIGITS_ALONE`` says that it is a range of numbers."""
    high = _number(words, low.end + 1)
    if high is None or high.magnitude <= low.magnitude or _at(words, i - 1) == "từ":
        return None
    text = f"{low.written}-{high.written}"
    spans = _with_unit(text, i, high.end, words)
    if spans:
        return spans
    if high.value >= MIN_DIGITS_ALONE or low.fraction or high.fraction:
        return [Span(text, i, high.end)]
    return None


def _numeric(words: Sequence[str], i: int) -> list[Span] | None:
    """Spans of the number that starts at ``i`` (a digit word or mười), None if it stays words."""
    run_end = _digit_run(words, i)
    if run_end - i >= MIN_DIGIT_RUN:
        return [Span("".join(str(DIGITS[w]) for w in words[i:run_end]), i, run_end)]
    found = _cardinal(words, i)
    if found and found[0] <= MAX_HOUR and _at(words, found[1]) == "giờ":
        return _time(words, i, found[0], found[1] + 1)
    number = _number(words, i)
    if number is None:
        return None
    if _at(words, number.end) == "đến":
        spans = _range(words, i, number)
        if spans:
            return spans
    return _quantity(words, i, number)


def _negative(words: Sequence[str], i: int) -> list[Span] | None:
    """âm N -> -N when N is written in digits."""
    number = _number(words, i + 1)
    spans = _quantity(words, i + 1, number) if number else None
    if not spans:
        return None
    return [Span("-" + spans[0].text, i, spans[0].end), *spans[1:]]


def _month(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """A month 1..12 at ``i`` (tháng tư, tháng mười hai), not the head of a larger number."""
    if _at(words, i) in MONTH_WORDS:
        return MONTH_WORDS[words[i]], i + 1
    found = _cardinal(words, i)
    return found if found and 1 <= found[0] <= MAX_MONTH else None


def _year(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """năm Y at ``i`` with a four-digit Y."""
    found = _cardinal(words, i + 1) if _at(words, i) == "năm" else None
    return found if found and len(str(found[0])) == YEAR_DIGITS else None


def _date(words: Sequence[str], i: int) -> list[Span] | None:
    """ngày D tháng M [năm Y] -> ngày D/M[/Y]."""
    day = _cardinal(words, i + 1)
    if not day or not 1 <= day[0] <= MAX_DAY or _at(words, day[1]) != "tháng":
        return None
    month = _month(words, day[1] + 1)
    if not month:
        return None
    text, end = f"{day[0]}/{month[0]}", month[1]
    year = _year(words, end)
    if year:
        text, end = f"{text}/{year[0]}", year[1]
    return [Span(words[i], i, i + 1), Span(text, i + 1, end)]


def _month_spans(words: Sequence[str], i: int) -> list[Span] | None:
    """tháng M [năm Y] -> tháng M[/Y] (rule 6)."""
    month = _month(words, i + 1)
    if not month:
        return None
    year = _year(words, month[1])
    if year:
        return [Span(words[i], i, i + 1), Span(f"{month[0]}/{year[0]}", i + 1, year[1])]
    previous = _at(words, i - 1)
    if month[0] == AMBIGUOUS_MONTH or previous in QUANTIFIERS or previous in NUMBER_WORDS:
        return None
    return [Span(words[i], i, i + 1), Span(str(month[0]), i + 1, month[1])]


def _fixed_phrase(words: Sequence[str], i: int) -> list[Span] | None:
    """One span per word of the fixed phrase at ``i``, if one starts there."""
    for phrase in _FIXED_BY_FIRST.get(words[i], ()):
        if tuple(words[i:i + len(phrase)]) == phrase:
            return [Span(word, i + k, i + k + 1) for k, word in enumerate(phrase)]
    return None


_READERS = {"âm": _negative, "ngày": _date, "tháng": _month_spans}


def inverse_normalize(words: Sequence[str]) -> list[Span]:
    """Written spans covering ``words`` (normalised spoken words) in order, each word in exactly one span."""
    spans: list[Span] = []
    i, n = 0, len(words)
    while i < n:
        word = words[i]
        found = None
        if word in TRIGGERS:
            found = _fixed_phrase(words, i) or _READERS.get(word, _numeric)(words, i)
        if found:
            spans += found
            i = found[-1].end
        else:
            spans.append(Span(word, i, i + 1))
            i += 1
    return spans


def itn(text: str) -> str:
    """" ".join of the spans' texts of text.split()."""
    return " ".join(span.text for span in inverse_normalize(text.split()))
