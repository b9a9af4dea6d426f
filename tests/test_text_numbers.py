"""Vietnamese number readings (vasr.text.numbers): integers, and numbers in running text."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vasr.text.numbers import digits_to_words, expand_numbers, number_to_words

NUMBERS = [
    (0, "không"),
    (1, "một"),
    (4, "bốn"),
    (5, "năm"),
    (10, "mười"),
    (11, "mười một"),
    (14, "mười bốn"),
    (15, "mười lăm"),
    (19, "mười chín"),
    (20, "hai mươi"),
    (21, "hai mươi mốt"),
    (24, "hai mươi tư"),
    (25, "hai mươi lăm"),
    (31, "ba mươi mốt"),
    (44, "bốn mươi tư"),
    (55, "năm mươi lăm"),
    (99, "chín mươi chín"),
    (100, "một trăm"),
    (101, "một trăm linh một"),
    (104, "một trăm linh bốn"),
    (105, "một trăm linh năm"),
    (110, "một trăm mười"),
    (111, "một trăm mười một"),
    (115, "một trăm mười lăm"),
    (121, "một trăm hai mươi mốt"),
    (200, "hai trăm"),
    (999, "chín trăm chín mươi chín"),
    (1000, "một nghìn"),
    (1001, "một nghìn không trăm linh một"),
    (1010, "một nghìn không trăm mười"),
    (1015, "một nghìn không trăm mười lăm"),
    (1100, "một nghìn một trăm"),
    (1234, "một nghìn hai trăm ba mươi tư"),
    (2000, "hai nghìn"),
    (2024, "hai nghìn không trăm hai mươi tư"),
    (2026, "hai nghìn không trăm hai mươi sáu"),
    (10005, "mười nghìn không trăm linh năm"),
    (15000, "mười lăm nghìn"),
    (21000, "hai mươi mốt nghìn"),
    (100000, "một trăm nghìn"),
    (105000, "một trăm linh năm nghìn"),
    (1000000, "một triệu"),
    (1000001, "một triệu không trăm linh một"),
    (1005000, "một triệu không trăm linh năm nghìn"),
    (2500000, "hai triệu năm trăm nghìn"),
    (1000000000, "một tỷ"),
    (1000000005, "một tỷ không trăm linh năm"),
    (1000000000000, "một nghìn tỷ"),
    (25 * 10**9 + 21, "hai mươi lăm tỷ không trăm hai mươi mốt"),
    (10**18, "một tỷ tỷ"),
    (-5, "âm năm"),
    (-2024, "âm hai nghìn không trăm hai mươi tư"),
]


@pytest.mark.parametrize(("n", "words"), NUMBERS)
def test_number_to_words(n, words):
    assert number_to_words(n) == words


def test_digits_to_words():
    assert digits_to_words("0912") == "không chín một hai"


RUNNING_TEXT = [
    ("có 5 người", "có năm người"),
    ("1.000.000 đồng", "một triệu đồng"),
    ("dân số 96.208.984 người", "dân số chín mươi sáu triệu hai trăm linh tám nghìn chín trăm tám mươi tư người"),
    ("1,000,000", "một triệu"),
    ("3,5", "ba phẩy năm"),
    ("3,25", "ba phẩy hai mươi lăm"),
    ("3,05", "ba phẩy không năm"),
    ("tăng 50%", "tăng năm mươi phần trăm"),
    ("lãi 6,5 %", "lãi sáu phẩy năm phần trăm"),
    ("25/11/2026", "ngày hai mươi lăm tháng mười một năm hai nghìn không trăm hai mươi sáu"),
    ("Ngày 25/11/2026", "Ngày hai mươi lăm tháng mười một năm hai nghìn không trăm hai mươi sáu"),
    ("01-04-2024", "ngày một tháng tư năm hai nghìn không trăm hai mươi tư"),
    ("ngày 1/5", "ngày một tháng năm"),
    ("tháng 4", "tháng tư"),
    ("tháng 12 này", "tháng mười hai này"),
    ("vào tháng 4.", "vào tháng tư."),
    ("tháng 11/2026", "tháng mười một năm hai nghìn không trăm hai mươi sáu"),
    ("năm 2024.", "năm hai nghìn không trăm hai mươi tư."),
    ("14:30", "mười bốn giờ ba mươi phút"),
    ("14h30", "mười bốn giờ ba mươi phút"),
    ("8h sáng", "tám giờ sáng"),
    ("8:00", "tám giờ"),
    ("10:05:09", "mười giờ năm phút chín giây"),
    ("thứ 2", "thứ hai"),
    ("thứ 4", "thứ tư"),
    ("hôm nay là thứ 4.", "hôm nay là thứ tư."),
    ("hạng thứ 1", "hạng thứ nhất"),
    ("lần thứ 21", "lần thứ hai mươi mốt"),
    ("3-5 người", "ba đến năm người"),
    ("từ 10 – 15%", "từ mười đến mười lăm phần trăm"),
    ("100.000đ", "một trăm nghìn đồng"),
    ("50.000 VND", "năm mươi nghìn đồng"),
    ("$5", "năm đô la"),
    ("20$", "hai mươi đô la"),
    ("5km", "năm ki lô mét"),
    ("3,5 kg", "ba phẩy năm ki lô gam"),
    ("-5°C", "âm năm độ xê"),
    ("nhiệt độ -3", "nhiệt độ âm ba"),
    ("50k", "năm mươi nghìn"),
    ("gọi 0912345678", "gọi không chín một hai ba bốn năm sáu bảy tám"),
    ("bản 1.2.3", "bản một chấm hai chấm ba"),
    ("phòng A5", "phòng A năm"),
    ("5 mét", "năm mét"),
    ("32/13/2020", "ba mươi hai/mười ba/hai nghìn không trăm hai mươi"),
    ("mã 1234567890123456789", "mã một hai ba bốn năm sáu bảy tám chín không một hai ba bốn năm sáu bảy tám chín"),
    ("không có số", "không có số"),
]


@pytest.mark.parametrize(("text", "expanded"), RUNNING_TEXT)
def test_expand_numbers(text, expanded):
    assert expand_numbers(text) == expanded


def test_expanded_text_has_no_digits():
    assert not any(c.isdigit() for c in expand_numbers("1 2,5 3.000 4% 5/6/2007 8h9 10:11 12-13 -14 $15"))


def test_very_long_digit_string():
    assert expand_numbers("7" * 5000) == " ".join(["bảy"] * 5000)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.,:/-–%hđk$ °C", max_size=30))
def test_any_number_shape_expands_to_words(text):
    assert not any("0" <= c <= "9" for c in expand_numbers(text))
