"""Phonetic decomposition of Vietnamese syllables (vasr.embeddings.phonetic)."""
from __future__ import annotations

import unicodedata

import pytest

from vasr.embeddings.phonetic import Syllable, decompose, phonetic_tokens, sentence_tokens

# word -> "onset rhyme tone" (Telex letters; z = ngang)
CASES = {
    # the six tones on one rhyme
    "ma": "m a z", "mà": "m a f", "má": "m a s", "mả": "m a r", "mã": "m a x", "mạ": "m a j",
    # vowel letters with quality marks, đ
    "việt": "v ieet j", "ăn": "awn z", "ấy": "aay s", "ô": "oo z", "ở": "ow r", "ừ": "uw f",
    "đường": "dd uwowng f", "người": "ng uwowi f", "đẹp": "dd ep j", "tết": "t eet s",
    # gi: an onset when a vowel follows, and before i/in; the dropped i of iê restored
    "gì": "gi i f", "gìn": "gi in f", "giữ": "gi uw x", "già": "gi a f", "giường": "gi uwowng f",
    "giếng": "gi ieeng s", "giẻ": "gi e r", "giành": "gi anh f", "dành": "d anh f",
    # qu
    "quốc": "qu ooc s", "qua": "qu a z", "quý": "qu i s", "quyết": "qu ieet s", "quyền": "qu ieen f",
    "quần": "qu aan f", "quê": "qu ee z",
    # ng/ngh, g/gh, c/k: one onset per sound
    "nghiêng": "ng ieeng z", "ngủ": "ng u r", "nghe": "ng e z", "ngã": "ng a x",
    "ghi": "g i z", "gà": "g a f", "ghế": "g ee s", "kể": "c ee r", "cá": "c a s", "kìa": "c ia f",
    # y and i
    "lý": "l i s", "lí": "l i s", "mỹ": "m i x", "yêu": "ieeu z", "yến": "ieen s", "tiếng": "t ieeng s",
    "khuya": "kh uya z", "uyên": "uyeen z", "thuyền": "th uyeen f", "huỳnh": "h uynh f",
    "tay": "t ay z", "tai": "t ai z",
    # glides and triphthongs
    "oanh": "oanh z", "hòa": "h oa f", "khỏe": "kh oe r", "thuở": "th uow r", "hươu": "h uwowu z",
    "ngoài": "ng oai f", "khuỷu": "kh uyu r", "ngoẹo": "ng oeo j", "muốn": "m uoon s",
    "tường": "t uwowng f", "tưởng": "t uwowng r", "chữ": "ch uw x", "trăng": "tr awng z",
    "nhà": "nh a f", "phở": "ph ow r", "thích": "th ich s", "xin": "x in z", "rồi": "r ooi f",
}


@pytest.mark.parametrize("word,expected", sorted(CASES.items()))
def test_decompose_table(word, expected):
    assert str(decompose(word)) == expected


def test_decompose_parts_and_decomposed_input():
    assert decompose("việt") == Syllable("v", "ieet", "j")
    assert decompose("an") == Syllable("", "an", "z")
    # NFD input (as some keyboards send it) gives the same key
    assert decompose(unicodedata.normalize("NFD", "nghiễm")) == Syllable("ng", "ieem", "x")


@pytest.mark.parametrize("word", ["email", "ok", "zalo", "wifi", "hcm", "bánhh", "mátt", "máf", "cap"])
def test_non_syllables_fall_back_to_letters(word):
    assert decompose(word) is None
    assert phonetic_tokens(word) == tuple(word)


def test_phonetic_tokens():
    assert phonetic_tokens("việt") == ("v", "ieet", "_j")
    # merged onsets carry a sound class: d/gi share three of four tokens
    assert phonetic_tokens("dành") == ("d", "~z", "anh", "_f")
    assert phonetic_tokens("giành") == ("gi", "~z", "anh", "_f")
    assert phonetic_tokens("xa") == ("x", "~s", "a", "_z")
    assert phonetic_tokens("trăng") == ("tr", "~c", "awng", "_z")
    # a tone token never equals an onset token
    assert phonetic_tokens("sả") == ("s", "~s", "a", "_r")
    assert phonetic_tokens("yêu") == ("ieeu", "_z")


def test_sentence_tokens():
    assert sentence_tokens("xin chào ok") == ["x", "~s", "in", "_z", "ch", "~c", "ao", "_f", "o", "k"]
    assert sentence_tokens("") == []
