"""Vietnamese readings of numbers, and their expansion in running text.

Choices (one reading each, so that the same written text always gives the same transcript):

* Northern/standard forms: ``linh`` for a zero tens digit (101 = một trăm linh một; the southern
  ``lẻ`` is not produced), ``nghìn`` for 10^3 (not ``ngàn``), ``tỷ`` for 10^9 (not ``tỉ``).
* Units after ``mươi``: 1 -> ``mốt``, 4 -> ``tư``, 5 -> ``lăm``; after ``mười``: 5 -> ``lăm``,
  4 stays ``bốn`` (mười bốn).
* A group of three digits that is not the leading group is read in full: 1001 = một nghìn không
  trăm linh một, 2024 = hai nghìn không trăm hai mươi tư. All-zero groups are skipped:
  1000001 = một triệu không trăm linh một.
* Beyond 10^9 the count of tỷ is itself a number: 10^12 = một nghìn tỷ, 10^18 = một tỷ tỷ.
* A digit string with a leading zero (phone numbers, codes) or of more than 18 digits is read digit
  by digit.
* Decimals: Vietnamese writes ``,`` for the decimal point and ``.`` between thousands, so
  ``3,5`` = ba phẩy năm and ``1.000.000`` = một triệu. The part after the comma is read as a number
  when it has at most three digits and no leading zero (3,25 = ba phẩy hai mươi lăm), else digit by
  digit (3,05 = ba phẩy không năm). A ``.`` between digits that is not a thousands separator
  (version numbers, English decimals) is read ``chấm``.
"""
from __future__ import annotations

import re

__all__ = ["number_to_words", "digits_to_words", "expand_numbers"]

DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
# powers of 1000 below one tỷ; larger numbers recurse on the count of tỷ
GROUP_NAMES = ("", "nghìn", "triệu")
TY = 10**9
# a fractional part longer than this is read digit by digit
MAX_FRACTION_AS_NUMBER = 3
# longer digit strings (card numbers, ids) are read digit by digit
MAX_DIGITS_AS_NUMBER = 18
# ordinals that differ from the cardinal reading (thứ nhất, thứ tư)
ORDINALS = {1: "nhất", 4: "tư"}
MONTHS_SPECIAL = {4: "tư"}

# units written right after a number (5km, 3,5 kg); matched case-sensitively
UNITS = {
    "km/h": "ki lô mét trên giờ",
    "km²": "ki lô mét vuông", "km2": "ki lô mét vuông",
    "m²": "mét vuông", "m2": "mét vuông", "m³": "mét khối", "m3": "mét khối",
    "km": "ki lô mét", "cm": "xen ti mét", "mm": "mi li mét", "m": "mét",
    "kg": "ki lô gam", "mg": "mi li gam", "g": "gam",
    "ml": "mi li lít", "l": "lít", "ha": "héc ta",
    "°C": "độ xê", "°": "độ",
    "VND": "đồng", "VNĐ": "đồng", "vnd": "đồng", "vnđ": "đồng", "đ": "đồng", "đồng": "đồng",
    "USD": "đô la mỹ", "$": "đô la",
    "k": "nghìn", "tr": "triệu",
}


def _tens_and_units(value: int, after_hundreds: bool) -> str:
    """Reading of 0..99; ``after_hundreds`` marks a group whose hundreds were read (linh ...)."""
    tens, units = divmod(value, 10)
    if tens == 0:
        if units == 0:
            return ""
        return f"linh {DIGITS[units]}" if after_hundreds else DIGITS[units]
    if tens == 1:
        head, unit_words = "mười", {5: "lăm"}
    else:
        head, unit_words = f"{DIGITS[tens]} mươi", {1: "mốt", 4: "tư", 5: "lăm"}
    if units == 0:
        return head
    return f"{head} {unit_words.get(units, DIGITS[units])}"


def _group(value: int, leading: bool) -> str:
    """Reading of one group 1..999; a non-leading group always reads its hundreds (không trăm)."""
    hundreds, rest = divmod(value, 100)
    if leading and hundreds == 0:
        return _tens_and_units(rest, after_hundreds=False)
    tail = _tens_and_units(rest, after_hundreds=True)
    return f"{DIGITS[hundreds]} trăm {tail}".rstrip()


def _below_ty(value: int, leading: bool) -> list[str]:
    groups = [(value // 1000**i) % 1000 for i in range(len(GROUP_NAMES))]
    words: list[str] = []
    for power in reversed(range(len(GROUP_NAMES))):
        group = groups[power]
        if group == 0:
            continue
        words.append(_group(group, leading=leading and not words))
        if GROUP_NAMES[power]:
            words.append(GROUP_NAMES[power])
    return words


def number_to_words(n: int) -> str:
    """Vietnamese reading of the integer ``n`` (any size, negative numbers read ``âm ...``)."""
    if n < 0:
        return f"âm {number_to_words(-n)}"
    if n == 0:
        return DIGITS[0]
    words: list[str] = []
    count_of_ty, rest = divmod(n, TY)
    if count_of_ty:
        words += [number_to_words(count_of_ty), "tỷ"]
    words += _below_ty(rest, leading=not count_of_ty)
    return " ".join(words)


def digits_to_words(digits: str) -> str:
    """Reading of a digit string one digit at a time: ``"09"`` -> ``"không chín"``."""
    return " ".join(DIGITS[int(d)] for d in digits)


def _integer(digits: str) -> str:
    """An integer written as ASCII digits; a leading zero or more than ``MAX_DIGITS_AS_NUMBER``
    digits mean a code, read digit by digit."""
    if (len(digits) > 1 and digits[0] == "0") or len(digits) > MAX_DIGITS_AS_NUMBER:
        return digits_to_words(digits)
    return number_to_words(int(digits))


def _fraction(digits: str) -> str:
    if len(digits) <= MAX_FRACTION_AS_NUMBER and digits[0] != "0":
        return number_to_words(int(digits))
    return digits_to_words(digits)


# A number as written: two or more ',' thousands groups (1,000,000), or thousands groups with '.' or
# plain digits, then an optional decimal part after ','.
_NUM = r"(?:\d{1,3}(?:,\d{3}){2,}(?![,\d])|(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?)"
_THOUSANDS_COMMAS = re.compile(r"\d{1,3}(?:,\d{3}){2,}")
_THOUSANDS_DOTS = re.compile(r"\d{1,3}(?:\.\d{3})+")
_START = r"(?<![\w.,])"  # not inside a word or another number
_END = r"(?![\w.,]\w|\w)"  # not followed by more of a word or number ("5." at a sentence end is fine)
_UNIT = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))


def _read_number(text: str) -> str:
    """Reading of one match of ``_NUM``."""
    if _THOUSANDS_COMMAS.fullmatch(text):
        return _integer(text.replace(",", ""))
    whole, _, fraction = text.partition(",")
    words = _integer(whole.replace(".", ""))
    return f"{words} phẩy {_fraction(fraction)}" if fraction else words


def _month(value: int) -> str:
    return MONTHS_SPECIAL.get(value, number_to_words(value))


def _unit_words(unit: str | None) -> str:
    if not unit:
        return ""
    return " phần trăm" if unit == "%" else f" {UNITS[unit]}"


def _date(m: re.Match) -> str | None:
    day, month = int(m["d"]), int(m["m"])
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return None
    words = f"{m['prefix'] or 'ngày'} {number_to_words(day)} tháng {_month(month)}"
    return f"{words} năm {_integer(m['y'])}" if m["y"] else words


def _month_year(m: re.Match) -> str | None:
    month = int(m["m"])
    if not 1 <= month <= 12:
        return None
    return f"{m['prefix'] or 'tháng'} {_month(month)} năm {_integer(m['y'])}"


def _month_alone(m: re.Match) -> str | None:
    month = int(m["m"])
    return f"{m['prefix']} {_month(month)}" if 1 <= month <= 12 else None


def _time(m: re.Match) -> str | None:
    hour, minute, second = int(m["h"]), m["min"], m["s"]
    if hour > 24 or (minute and int(minute) > 59) or (second and int(second) > 59):
        return None
    words = f"{number_to_words(hour)} giờ"
    if minute and (int(minute) or second):
        words += f" {number_to_words(int(minute))} phút"
    if second:
        words += f" {number_to_words(int(second))} giây"
    return words


def _ordinal(m: re.Match) -> str:
    value = int(m["n"])
    return f"{m['prefix']} {ORDINALS.get(value, number_to_words(value))}"


def _range(m: re.Match) -> str:
    return f"{_read_number(m['a'])} đến {_read_number(m['b'])}{_unit_words(m['unit'])}"


def _with_unit(m: re.Match) -> str:
    sign = "âm " if m["sign"] else ""
    return f"{sign}{_read_number(m['n'])}{_unit_words(m['unit'])}"


def _dollar_first(m: re.Match) -> str:
    return f"{_read_number(m['n'])} đô la"


def _dotted(m: re.Match) -> str:
    text = m.group(0)
    if _THOUSANDS_DOTS.fullmatch(text):
        return _read_number(text)
    return " chấm ".join(_integer(part) for part in text.split("."))


def _negative(m: re.Match) -> str:
    return f"âm {_read_number(m['n'])}"


def _plain(m: re.Match) -> str:
    return _read_number(m.group(0))


# Applied in order, the more specific shapes first. A callback returning None leaves the match as
# written (an impossible date or time is then read by the later, plainer rules).
_RULES = (
    # 25/11/2026, ngày 25/11/2026, 01-02-2024: with a year
    (r"(?<!\w)(?:(?P<prefix>[Nn]gày)\s+)?(?P<d>\d{1,2})(?P<sep>[/-])(?P<m>\d{1,2})(?P=sep)(?P<y>\d{4})"
     + _END, _date),
    # ngày 1/5: without a year only after the word "ngày" (else it may be a fraction)
    (r"(?<!\w)(?P<prefix>[Nn]gày)\s+(?P<d>\d{1,2})/(?P<m>\d{1,2})(?P<y>)(?![\w/])", _date),
    # 11/2026, tháng 11/2026
    (r"(?<!\w)(?:(?P<prefix>[Tt]háng)\s+)?(?P<m>\d{1,2})/(?P<y>\d{4})" + _END, _month_year),
    # tháng 4
    (r"(?<!\w)(?P<prefix>[Tt]háng)\s+(?P<m>\d{1,2})(?![\w/]|[.,]\d)", _month_alone),
    # 14:30, 14:30:15
    (r"(?<![\w.,:])(?P<h>\d{1,2}):(?P<min>\d{2})(?::(?P<s>\d{2}))?(?![\w:])", _time),
    # 14h30, 8h
    (r"(?<![\w.,])(?P<h>\d{1,2})h(?P<min>\d{2})?(?P<s>)(?!\w)", _time),
    # thứ 2
    (r"(?<!\w)(?P<prefix>[Tt]hứ)\s+(?P<n>\d+)(?![\w/-]|[.,]\d)", _ordinal),
    # 3-5, 3 – 5 kg
    (rf"{_START}(?P<a>{_NUM})\s*[-–]\s*(?P<b>{_NUM})(?:\s?(?P<unit>%|{_UNIT}))?(?![\w.,/-])", _range),
    # 50%, -5°C, 100.000đ, 3,5 kg, 50k
    (rf"(?:(?<![\w.,-])(?P<sign>-))?{_START}(?P<n>{_NUM})\s?(?P<unit>%|{_UNIT})(?![^\W\d_])", _with_unit),
    # $5
    (rf"\$\s?(?P<n>{_NUM})(?!\w)", _dollar_first),
    # 1.000 (thousands), 1.2.3 (versions) and 3.5 (English decimals, read "chấm")
    (r"(?<![\w.,])\d+(?:\.\d+)+(?![\w.,]\w|\w)", _dotted),
    # -5
    (rf"(?<![\w.,-])-(?P<n>{_NUM})(?!\w)", _negative),
    (_NUM, _plain),
)
_COMPILED = tuple((re.compile(pattern), reader) for pattern, reader in _RULES)


def _substitute(pattern: re.Pattern, reader, text: str) -> str:
    """Replace each match with its reading, with a space against any neighbouring letter or digit."""
    def replace(m: re.Match) -> str:
        words = reader(m)
        if words is None:
            return m.group(0)
        before = " " if m.start() > 0 and text[m.start() - 1].isalnum() else ""
        after = " " if m.end() < len(text) and text[m.end()].isalnum() else ""
        return f"{before}{words}{after}"
    return pattern.sub(replace, text)


def expand_numbers(text: str) -> str:
    """``text`` with every ASCII-digit number, date, time, percentage, range, ordinal and
    number-with-unit written out in Vietnamese words; everything else is left as it is."""
    for pattern, reader in _COMPILED:
        text = _substitute(pattern, reader, text)
    return text
