"""Deterministic Vietnamese reference / hypothesis sentence pairs for the Levenshtein tests and benchmarks.

One generator for both: benchmarks import it as ``vi_pairs`` (pytest puts benchmarks/ on sys.path),
tests/test_levenshtein.py loads this file by path.

References are 5-25 syllables drawn from real Vietnamese syllables (precomposed NFC letters with
diacritics). Hypotheses copy the reference and then apply ASR-like damage: word substitutions,
deletions and insertions, character edits inside words (a dropped or swapped tone mark), and a few
special cases: identical pairs, empty hypotheses, hypotheses much longer or shorter than the reference.
"""
from __future__ import annotations

import random

SEED = 20240607
MIN_WORDS, MAX_WORDS = 5, 25

SYLLABLES = """
anh ba bà bác bạn bán bánh bao bảo bắt bây bé bên bị biết bình bố bỏ bộ bởi buổi bữa cả các cách
cái cao cảm cần câu cây có cô còn con công cũng của cùng cuộc chạy chào chỉ chị chiều cho chó chơi
chúng chưa chương dạy dài đang đánh đã đâu đây đấy để đêm đến đi điều đó đọc đôi đội đợi đúng được
em gà gạo gần gặp gì già gia giờ giúp hai hàng hát hay hãy hết hiểu học hỏi hơn hôm hơi hội không
khi khó khỏe khu kia kể kết làm lại lâu lên lòng lớn lúc lửa mà mai mặt mấy mẹ mình mới mọi một mua
mùa muốn mưa năm nào nay này nên nếu nghe ngày nghĩ ngoài người nhà nhanh nhau nhỏ nhiều nhưng
những nói nơi nước ông phải phố phòng quá quan quê ra rằng rất rồi sao sáng sau sẽ sống sớm sức
tay tại tám tên tết thành thấy thế thì thích thôi thời thương tiền tiếng tin tối tôi tốt trà trái
trên trong trời trường từ tuổi ta tạm uống vào vẫn về việc viết vui vừa xa xanh xem xe xin xong yêu
ăn ở ướt ấm ngủ nghỉ đường biển sông núi rừng chợ thuyền
""".split()

# a tone-marked vowel -> the same vowel with another tone (the commonest ASR character error)
TONE_SWAPS = {
    "a": "àáảãạ", "à": "aáả", "á": "aàạ", "ả": "aãá", "ạ": "aáà", "ă": "ằắẳặ", "â": "ầấẩậ",
    "e": "èéẻẹ", "ê": "ềếểệ", "ế": "êề", "ệ": "êế", "i": "ìíỉị", "o": "òóỏọ", "ô": "ồốổộ",
    "ố": "ôồ", "ộ": "ôố", "ơ": "ờớởợ", "ờ": "ơớ", "ớ": "ơờ", "u": "ùúủụ", "ư": "ừứửự",
    "ừ": "ưứ", "ứ": "ưừ", "y": "ỳýỷỹ", "đ": "d", "d": "đ",
}


def _damage_word(word: str, rng: random.Random) -> str:
    """One character edit inside a word: a tone swap, a dropped letter or an extra letter."""
    k = rng.randrange(len(word))
    kind = rng.random()
    if kind < 0.6 and word[k] in TONE_SWAPS:
        return word[:k] + rng.choice(TONE_SWAPS[word[k]]) + word[k + 1:]
    if kind < 0.8 and len(word) > 1:
        return word[:k] + word[k + 1:]
    return word[:k] + rng.choice("aeiouhngt") + word[k:]


def _hypothesis(ref: list[str], rng: random.Random) -> list[str]:
    special = rng.random()
    if special < 0.12:  # recognised perfectly
        return list(ref)
    if special < 0.14:  # nothing recognised
        return []
    if special < 0.17:  # hallucinated a long tail
        return ref + [rng.choice(SYLLABLES) for _ in range(rng.randint(10, 30))]
    if special < 0.20:  # only the beginning recognised
        return ref[: rng.randint(1, max(1, len(ref) // 3))]
    error_rate = rng.choice((0.05, 0.1, 0.2, 0.4))
    hyp = []
    for word in ref:
        r = rng.random()
        if r < error_rate * 0.4:
            hyp.append(rng.choice(SYLLABLES))
        elif r < error_rate * 0.6:
            continue
        elif r < error_rate * 0.8:
            hyp.extend((word, rng.choice(SYLLABLES)))
        elif r < error_rate:
            hyp.append(_damage_word(word, rng))
        else:
            hyp.append(word)
    return hyp


def vi_pairs(count: int, seed: int = SEED) -> tuple[list[str], list[str]]:
    """``count`` (reference, hypothesis) sentences as two lists of str, identical for a given seed."""
    rng = random.Random(seed)
    refs, hyps = [], []
    for _ in range(count):
        ref = [rng.choice(SYLLABLES) for _ in range(rng.randint(MIN_WORDS, MAX_WORDS))]
        refs.append(" ".join(ref))
        hyps.append(" ".join(_hypothesis(ref, rng)))
    return refs, hyps
