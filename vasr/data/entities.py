"""Vietnamese person and place names, carrier sentences, and the contextual-biasing test items built
from them.

A biasing test set measures how well a recogniser gets the words a user primes it with (hot words,
a contact list, a map's place names): each utterance comes with a bias list holding the entities it
speaks plus distractors that it does not, and WER is reported separately on the bias-list words
(B-WER) and the others (U-WER). The facts below are spelt the way ``vasr.text.normalize`` writes
them (lower case, NFC, old-style tone placement: "hòa", "thủy"), and every word is a Vietnamese
syllable, so espeak-ng reads them as Vietnamese and the transcripts survive normalisation unchanged.
"""
from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from vasr.text.normalize import is_syllable

__all__ = ["SURNAMES", "MIDDLE_NAMES", "GIVEN_NAMES", "PROVINCES", "TOWNS", "PLACES", "TEMPLATES", "BiasItem",
           "bias_items", "check_template"]

SURNAMES = ("nguyễn", "trần", "lê", "phạm", "hoàng", "huỳnh", "phan", "vũ", "võ", "đặng", "bùi", "đỗ", "hồ", "ngô",
            "dương", "lý", "trương", "đinh", "lâm", "mai", "trịnh", "đoàn", "lương", "cao", "tạ")
MIDDLE_NAMES = ("văn", "thị", "hữu", "đức", "minh", "thanh", "ngọc", "quốc", "thu", "kim", "xuân", "hồng", "gia",
                "bảo", "công", "đình", "quang", "mỹ", "thế", "diệu")
GIVEN_NAMES = ("an", "anh", "bình", "châu", "chi", "cường", "dũng", "dung", "đạt", "giang", "hà", "hải", "hạnh",
               "hiếu", "hoa", "hùng", "hương", "huy", "khoa", "khánh", "lan", "linh", "long", "mai", "nam", "nga",
               "ngân", "nghĩa", "nhung", "phong", "phúc", "phương", "quân", "quyên", "sơn", "tâm", "thảo", "thắng",
               "trang", "trinh", "trung", "tuấn", "tùng", "uyên", "vân", "việt", "vinh", "vy", "yến", "hằng",
               "hiền", "hòa", "khôi", "lộc", "nhi", "oanh", "thủy", "tiến", "toàn", "trâm", "tú", "hậu", "luân",
               "thịnh")

# The 63 provinces and centrally governed cities (2008-2025). Đắk Lắk and Đắk Nông are written with
# the older spelling "đắc" because a final k is not Vietnamese syllable spelling; they sound the same.
PROVINCES = (
    "hà nội", "hải phòng", "đà nẵng", "cần thơ", "thành phố hồ chí minh",
    "hà giang", "cao bằng", "bắc kạn", "tuyên quang", "lào cai", "điện biên", "lai châu", "sơn la",
    "yên bái", "hòa bình", "thái nguyên", "lạng sơn", "quảng ninh", "bắc giang", "phú thọ", "vĩnh phúc",
    "bắc ninh", "hải dương", "hưng yên", "thái bình", "hà nam", "nam định", "ninh bình", "thanh hóa",
    "nghệ an", "hà tĩnh", "quảng bình", "quảng trị", "thừa thiên huế", "quảng nam", "quảng ngãi",
    "bình định", "phú yên", "khánh hòa", "ninh thuận", "bình thuận", "kon tum", "gia lai", "đắc lắc",
    "đắc nông", "lâm đồng", "bình phước", "tây ninh", "bình dương", "đồng nai", "bà rịa vũng tàu",
    "long an", "tiền giang", "bến tre", "trà vinh", "vĩnh long", "đồng tháp", "an giang", "kiên giang",
    "hậu giang", "sóc trăng", "bạc liêu", "cà mau")
TOWNS = ("hội an", "sa pa", "đà lạt", "phú quốc", "vũng tàu", "nha trang", "hạ long", "buôn ma thuột",
         "phan thiết", "quy nhơn", "mũi né", "huế", "côn đảo", "mỹ tho", "châu đốc", "rạch giá", "hà tiên",
         "tam cốc", "mộc châu", "tam đảo", "cát bà", "phong nha", "mai châu", "sầm sơn", "cửa lò", "đồng hới",
         "tuy hòa", "cam ranh", "biên hòa", "thủ dầu một", "long xuyên", "cao lãnh", "bảo lộc", "móng cái")
PLACES = PROVINCES + TOWNS

# Carrier sentences of everyday speech; each has at least one {person} or {place} slot.
TEMPLATES = (
    "hôm qua {person} đã đến {place}",
    "chuyến tàu đi {place} khởi hành lúc tám giờ",
    "tôi vừa gọi điện cho {person}",
    "{person} đang làm việc ở {place}",
    "cuối tuần này chúng tôi sẽ đi du lịch {place}",
    "bạn có biết {person} không",
    "xin hãy chuyển lời nhắn này cho {person}",
    "thời tiết ở {place} hôm nay rất đẹp",
    "{person} và {person} là bạn học cũ",
    "máy bay từ {place} đến {place} mất khoảng hai tiếng",
    "anh ấy sinh ra và lớn lên ở {place}",
    "chị {person} vừa mua một căn nhà mới",
    "ngày mai {person} sẽ bay ra {place}",
    "tôi muốn đặt vé xe đi {place}",
    "gia đình {person} chuyển về {place} năm ngoái",
    "đường từ {place} về {place} đang được sửa",
    "{person} gửi lời hỏi thăm cả nhà",
    "món ăn nổi tiếng nhất của {place} là gì",
    "cuộc họp với {person} bị hoãn đến chiều nay",
    "mẹ tôi quê ở {place}",
    "hãy gửi tài liệu này cho {person} trước thứ sáu",
    "bác sĩ {person} làm việc ở bệnh viện tỉnh",
    "em gái tôi đang học đại học ở {place}",
    "{person} đã gặp {person} ở {place}",
    "giá nhà ở {place} tăng nhanh trong năm nay",
    "thầy {person} dạy môn toán rất hay",
    "mùa này ở {place} có nhiều mưa",
    "chúng ta hẹn gặp nhau ở {place} nhé",
    "tin nhắn mới từ {person}",
    "hãy mở bản đồ đường đi đến {place}",
    "cô {person} là giám đốc của công ty",
    "bao giờ {person} trở về {place}",
    "lễ hội ở {place} thu hút rất nhiều du khách",
    "tôi nhớ những ngày sống ở {place}",
    "ông {person} năm nay đã tám mươi tuổi",
    "gọi cho {person} giúp tôi với",
    "đội bóng của {place} thắng trận hôm qua",
    "{person} hẹn tôi cà phê ở {place} sáng mai",
    "khách sạn ở {place} còn phòng trống không",
    "bạn của {person} đang chờ ở cổng",
)

SLOT = re.compile(r"\{(\w+)\}")
KINDS = ("person", "place")
PERSON_SYLLABLES = (2, 3, 4)          # surname [+ middle names] + given name
PERSON_SYLLABLE_WEIGHTS = (1, 6, 1)   # three syllables is by far the commonest
MAX_DRAWS = 1000                      # person names tried before giving up (a fit is found in a few)


@dataclass(frozen=True)
class BiasItem:
    """One utterance of the biasing test set."""
    text: str                       # the sentence spoken (normalised words)
    entities: tuple[str, ...]       # the names/places spoken, in order of appearance
    bias_list: tuple[str, ...]      # the entities plus distractors (absent from text), shuffled


def check_template(template: str) -> tuple[str, ...]:
    """The slot kinds of ``template`` in order; ValueError if it has none, an unknown one, or a
    word that is not a Vietnamese syllable."""
    kinds = tuple(SLOT.findall(template))
    if not kinds:
        raise ValueError(f"template {template!r} has no {{person}} or {{place}} slot")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"template {template!r}: unknown slot(s) {unknown}; expected {KINDS}")
    bad = [w for w in SLOT.sub(" ", template).split() if not is_syllable(w)]
    if bad:
        raise ValueError(f"template {template!r}: {bad} not Vietnamese syllables")
    return kinds


class _Deck:
    """Draws from ``items`` without repeats until all have been drawn, then reshuffles: spreads the
    names so most of them occur at least once."""

    def __init__(self, items: tuple[str, ...], rng: random.Random):
        self.items, self.rng, self.pile = items, rng, []

    def draw(self, accept: Callable[[str], bool] = lambda _: True) -> str:
        """The next item that ``accept`` takes (a rejected one is skipped for this round)."""
        for _ in range(2 * len(self.items)):
            if not self.pile:
                self.pile = list(self.items)
                self.rng.shuffle(self.pile)
            item = self.pile.pop()
            if accept(item):
                return item
        raise ValueError(f"no item of {self.items[:3]}... fits")


def _contains(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as a whole word sequence."""
    return f" {phrase} " in f" {text} "


def bias_items(n: int, seed: int = 0, distractors: int = 20,
               templates: tuple[str, ...] = TEMPLATES) -> list[BiasItem]:
    """``n`` biasing test items, deterministic for ``seed`` (the first k items do not depend on n).

    Templates are used in a shuffled cycle; spoken names and places are drawn from shuffled decks so
    most of them occur. The bias list holds the item's entities and ``distractors`` other entities
    (drawn from decks of their own), split between the kinds the item speaks in proportion to its
    entities of each kind. No entity is part of another in the same item, and no distractor occurs
    in the text.
    """
    if n <= 0 or distractors < 0:
        raise ValueError(f"bias_items needs n > 0 and distractors >= 0, got n={n}, distractors={distractors}")
    slots = [check_template(t) for t in templates]
    rng = random.Random(seed)
    spoken, distract = _drawers(rng), _drawers(rng)
    order = list(range(len(templates)))
    rng.shuffle(order)
    items = []
    for i in range(n):
        t = order[i % len(order)]
        entities: list[str] = []
        for kind in slots[t]:
            entities.append(spoken[kind](lambda e: not any(_contains(e, x) or _contains(x, e) for x in entities)))
        fill = iter(entities)
        text = SLOT.sub(lambda _: next(fill), templates[t])
        wanted = {k: distractors * slots[t].count(k) // len(slots[t]) for k in KINDS if k in slots[t]}
        wanted[slots[t][0]] += distractors - sum(wanted.values())
        others: list[str] = []
        for kind, count in wanted.items():
            for _ in range(count):
                others.append(distract[kind](lambda e: e not in others and not _contains(text, e)))
        phrases = entities + others
        rng.shuffle(phrases)
        items.append(BiasItem(text, tuple(entities), tuple(phrases)))
    return items


def _drawers(rng: random.Random) -> dict[str, Callable[[Callable[[str], bool]], str]]:
    """Per kind, a function that draws an entity accepted by its argument (a predicate)."""
    surnames, middles, givens, places = (_Deck(items, rng) for items in (SURNAMES, MIDDLE_NAMES, GIVEN_NAMES,
                                                                         PLACES))

    def person(accept: Callable[[str], bool]) -> str:
        for _ in range(MAX_DRAWS):
            size = rng.choices(PERSON_SYLLABLES, PERSON_SYLLABLE_WEIGHTS)[0]
            chosen: list[str] = []
            while len(chosen) < size - 2:
                chosen.append(middles.draw(lambda m: m not in chosen))
            name = " ".join([surnames.draw(), *chosen, givens.draw()])
            if accept(name):
                return name
        raise ValueError("no person name fits")

    return {"person": person, "place": places.draw}
