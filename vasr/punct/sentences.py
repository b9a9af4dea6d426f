"""Generated everyday Vietnamese sentences, punctuated and cased, for the punctuation model.

The message catalogues and the LibreOffice help are written prose about software: statements, few
questions, almost no exclamations and no names of people. These templates add what a recognizer
hears in everyday speech: questions (``không``, ``chưa``, ``gì``, ``đâu``, ``bao giờ`` ...), requests
and exclamations, an address or an opening phrase set off by a comma, lists, and names of people and
places in capitals (``vasr.data.entities``). Sentences come in paragraphs of one to four.
"""
from __future__ import annotations

import random
import re

from vasr.data.entities import GIVEN_NAMES, MIDDLE_NAMES, PLACES, SURNAMES

__all__ = ["generated_paragraphs"]

KIN = ("anh", "chị", "em", "cô", "chú", "bác", "ông", "bà", "bạn", "thầy")
TIMES = ("hôm qua", "sáng nay", "tối nay", "ngày mai", "tuần trước", "tuần sau", "năm ngoái", "chiều thứ bảy",
         "sáng chủ nhật", "cuối tuần này", "tháng trước", "lúc tám giờ", "đêm qua", "hôm kia", "sáng mai")
THINGS = ("rau", "thịt", "cá", "gạo", "trứng", "sữa", "bánh mì", "hoa quả", "cà phê", "nước mắm", "sách", "quần áo",
          "giày", "vở", "bút", "điện thoại", "máy tính", "áo mưa", "mũ bảo hiểm", "kính")
# one clause each, lower case; {p} a person, {k} a kin term + given name, {l} a place, {t} a time, {x} a thing
STATEMENTS = ("{p} đã đến {l}", "{k} đang làm việc ở {l}", "tôi vừa gọi điện cho {k}", "chúng tôi sẽ đi du lịch {l}",
              "thời tiết ở {l} hôm nay rất đẹp", "{p} mới mua một căn nhà", "mẹ tôi quê ở {l}",
              "tôi muốn đặt vé đi {l}", "{k} gửi lời hỏi thăm cả nhà", "cuộc họp bị hoãn đến chiều nay",
              "em gái tôi đang học đại học ở {l}", "giá nhà ở {l} tăng nhanh", "đường về {l} đang được sửa",
              "trời bắt đầu mưa to", "tôi quên mang {x}", "cả nhà đã ăn cơm xong", "{k} sẽ đón chúng ta ở sân bay",
              "xe buýt đến muộn mười phút", "chúng tôi gặp {p} ở {l}", "anh ấy sinh ra và lớn lên ở {l}",
              "món này ngon lắm", "tôi rất thích {l}", "bố tôi đi làm từ sáng sớm", "cửa hàng đóng cửa lúc chín giờ",
              "{k} là bạn học cũ của tôi", "tôi đã mua {x} cho {k}", "con mèo ngủ trên ghế", "mọi người đang chờ {k}",
              "học sinh được nghỉ hai ngày", "{p} làm bác sĩ ở bệnh viện tỉnh", "tôi sẽ gửi tài liệu trước thứ sáu",
              "chuyến bay đi {l} bị hủy", "nhà tôi ở gần chợ", "tôi chưa đọc tin nhắn của {k}",
              "ngày mai tôi phải dậy sớm", "trận đấu rất hấp dẫn")
QUESTIONS = ("{k} có khỏe không", "bạn đã ăn cơm chưa", "{k} đang ở đâu", "bao giờ {k} về {l}", "khi nào chúng ta đi",
             "tại sao {k} không đến", "bạn muốn uống gì", "vé đi {l} giá bao nhiêu", "có phải {p} đã đến {l} không",
             "mấy giờ rồi", "ai sẽ đón {k}", "bạn thích {l} hay {l}", "{k} đã gặp {p} chưa", "bạn có biết {p} không",
             "từ đây đến {l} mất bao lâu", "món ăn nổi tiếng nhất của {l} là gì", "sao {k} về muộn thế",
             "bạn có mang {x} không", "chúng ta gặp nhau ở đâu", "bạn làm việc ở {l} à", "{k} có nhà không",
             "hôm nay là thứ mấy", "khách sạn còn phòng trống không", "tôi có thể giúp gì cho bạn",
             "bạn đã bao giờ đến {l} chưa", "làm thế nào để đến {l}", "{k} đi {l} bằng gì")
EXCLAMATIONS = ("chúc mừng sinh nhật {k}", "cảm ơn {k} rất nhiều", "đẹp quá", "muộn rồi", "nhanh lên", "hay quá",
                "cố lên", "chúc cả nhà năm mới vui vẻ", "tuyệt vời", "cẩn thận", "ngon quá",
                "chúc {k} thượng lộ bình an", "mừng quá", "đừng đi", "xin chào {k}", "tạm biệt {k}", "vui quá",
                "giúp tôi với")
EXCLAIM_OPENINGS = ("ôi", "trời ơi", "chao ôi", "ồ", "a")
OPENINGS = ("{t}", "theo {k}", "nếu trời mưa", "khi đến {l}", "sau bữa tối", "vì bận việc", "thật ra", "tuy nhiên",
            "ngoài ra", "{k} ơi", "dạ", "vâng", "ừ", "này", "thưa {k}", "nói thật", "may quá", "ở {l}",
            "trước khi đi", "theo tôi", "nhân tiện", "thế thì", "nếu có thời gian")
LINKS = ("nhưng", "nên", "còn", "vì", "rồi", "vì vậy", "thế nhưng", "sau đó", "trong khi")
_SLOT = re.compile(r"\{(\w)\}")


def _person(rng: random.Random) -> str:
    middle = rng.sample(MIDDLE_NAMES, rng.choice((0, 1, 1, 1, 2)))
    return " ".join([rng.choice(SURNAMES), *middle, rng.choice(GIVEN_NAMES)]).title()


def _place(rng: random.Random) -> str:
    place = rng.choice(PLACES)
    prefix = "thành phố "  # "Thành phố Hồ Chí Minh": the common noun keeps its lower case
    if place.startswith(prefix):
        return "thành phố " + place[len(prefix):].title()
    return place.title()


def _fill(template: str, rng: random.Random) -> str:
    fillers = {"p": lambda: _person(rng), "k": lambda: f"{rng.choice(KIN)} {rng.choice(GIVEN_NAMES).title()}",
               "l": lambda: _place(rng), "t": lambda: rng.choice(TIMES), "x": lambda: rng.choice(THINGS)}
    return _SLOT.sub(lambda m: fillers[m.group(1)](), template)


def _list(rng: random.Random) -> str:
    items = rng.sample(THINGS, rng.randint(3, 5))
    head = rng.choice(("tôi đã mua", "mẹ dặn tôi mua", "chợ hôm nay có", "trong túi có", "cần chuẩn bị"))
    return f"{head} {', '.join(items[:-1])} và {items[-1]}."


def _sentence(rng: random.Random) -> str:
    """One sentence: a statement, question, exclamation or list, maybe opened or continued."""
    kind = rng.choices(("statement", "question", "exclamation", "list"), (0.5, 0.3, 0.12, 0.08))[0]
    if kind == "list":
        text = _list(rng)
    elif kind == "exclamation":
        opening = f"{rng.choice(EXCLAIM_OPENINGS)}, " if rng.random() < 0.4 else ""
        text = opening + _fill(rng.choice(EXCLAMATIONS), rng) + "!"
    else:
        pool = STATEMENTS if kind == "statement" else QUESTIONS
        text = _fill(rng.choice(pool), rng)
        if rng.random() < 0.35:
            text = _fill(rng.choice(OPENINGS), rng) + ", " + text
        if kind == "statement" and rng.random() < 0.3:
            text += f", {rng.choice(LINKS)} " + _fill(rng.choice(STATEMENTS), rng)
        text += "." if kind == "statement" else "?"
    return text[0].upper() + text[1:]


def generated_paragraphs(n: int, seed: int = 0) -> list[str]:
    """``n`` sentences, deterministic for ``seed``, in paragraphs of one to four sentences."""
    rng = random.Random(seed)
    sentences = [_sentence(rng) for _ in range(n)]
    paragraphs, i = [], 0
    while i < len(sentences):
        size = rng.randint(1, 4)
        paragraphs.append(" ".join(sentences[i:i + size]))
        i += size
    return paragraphs
