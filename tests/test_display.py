"""Display words: written numbers, hot words as the user wrote them, punctuation, and the times of
the spoken words each display word stands for (vasr.runtime.display)."""
from __future__ import annotations

from vasr.runtime.display import Display, display_words
from vasr.runtime.recognizer import Word


def spoken(text: str) -> list[Word]:
    """One word per 0.5 s, confidence 0.9 except the second word (0.5)."""
    return [Word(w, 0.5 * i, 0.5 * i + 0.4, 0.5 if i == 1 else 0.9) for i, w in enumerate(text.split())]


def test_numbers_are_written_and_keep_the_span_of_their_words():
    words = spoken("ngày hai mươi tháng một năm hai nghìn không trăm hai mươi sáu lúc tám giờ ba mươi")
    shown = display_words(words, Display(), Word)
    assert [w.text for w in shown] == ["ngày", "20/1/2026", "lúc", "8:30"]
    # "20/1/2026" stands for spoken words 1..12: first start to last end, mean confidence
    assert (shown[1].start, shown[1].end) == (0.5, 6.4)
    assert shown[1].confidence == round((0.5 + 11 * 0.9) / 12, 4)
    assert (shown[2].start, shown[3].start, shown[3].end) == (6.5, 7.0, 8.9)


def test_hot_words_take_the_users_spelling_and_are_not_rewritten():
    words = spoken("gặp nguyễn văn a ở cà mau lúc hai giờ")
    shown = display_words(words, Display(hotwords=("Nguyễn Văn A", "Cà Mau", "Năm Căn")), Word)
    assert " ".join(w.text for w in shown) == "gặp Nguyễn Văn A ở Cà Mau lúc 2 giờ"
    # a hot word whose word count normalisation changes (TP.HCM -> thành phố hồ chí minh) is one
    # display word over the spoken words it stands for
    shown = display_words(spoken("đến thành phố hồ chí minh nhé"), Display(hotwords=("TP.HCM",)), Word)
    assert [(w.text, w.start, w.end) for w in shown] == [("đến", 0.0, 0.4), ("TP.HCM", 0.5, 2.9), ("nhé", 3.0, 3.4)]
    # a number inside a hot word stays as the user wrote it
    shown = display_words(spoken("phố hai bà trưng số hai mươi"), Display(hotwords=("Hai Bà Trưng",)), Word)
    assert [w.text for w in shown] == ["phố", "Hai", "Bà", "Trưng", "số", "20"]


def test_itn_off_and_empty_input():
    words = spoken("hai mươi người")
    assert [w.text for w in display_words(words, Display(itn=False), Word)] == ["hai", "mươi", "người"]
    assert display_words([], Display(), Word) == ()
