"""Sentence sources for the synthetic corpus (vasr.data.textsource)."""
from __future__ import annotations

import struct

import pytest

from vasr.data.textsource import catalogue_sentences, file_sentences, split_sentences

MO_MAGIC = 0x950412DE
HEADER = "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=1; plural=0;\n"


def write_mo(path, entries: dict[str, str]) -> None:
    """A GNU .mo catalogue of ``entries`` (msgid -> msgstr; a plural msgid/msgstr joins its forms
    with NUL), laid out as the format specifies: header, two (length, offset) tables, strings."""
    entries = {"": HEADER, **entries}
    keys = sorted(entries)
    ids = [k.encode() for k in keys]
    strs = [entries[k].encode() for k in keys]
    n = len(keys)
    header_size = 7 * 4
    data_start = header_size + 2 * n * 8
    tables, blob = [], b""
    for strings in (ids, strs):
        table = []
        for s in strings:
            table.append((len(s), data_start + len(blob)))
            blob += s + b"\0"
        tables.append(table)
    out = struct.pack("<7I", MO_MAGIC, 0, n, header_size, header_size + n * 8, 0, 0)
    for table in tables:
        out += b"".join(struct.pack("<2I", length, offset) for length, offset in table)
    path.write_bytes(out + blob)


GOOD = {
    "Cannot open the file": "Không thể mở tập tin này",
    "Done. Restart now?": "Đã xong. Khởi động lại ngay bây giờ?",  # split in two sentences
    "one file\0many files": "một tập tin đã được chọn\0nhiều tập tin đã được chọn",  # plural forms
    "It is 25%": "Năm ngoái đã có mười người",  # '%' only in the msgid: the msgstr is kept
    "Save to the city": "Lưu vào TP. Hồ Chí Minh nhé",  # no sentence break after "TP."
    "Error: bad input": "Lỗi: dữ liệu vào không hợp lệ",  # "Lỗi" alone is too short
}
BAD = {
    "a": "Không thể mở %s được",  # printf directive
    "b": "Không thể mở {0} được",  # brace directive
    "c": "Biến $HOME chưa được đặt",  # shell variable
    "d": "Hãy chạy `make` trước đã",  # code
    "e": "Xem <b>tài liệu</b> này nhé",  # markup
    "f": "Xem tại https://ví dụ.vn nhé bạn",  # URL
    "g": "Dùng tùy chọn --verbose để xem thêm",  # option
    "h": "Dùng -x để xóa tập tin đó",  # short option
    "h2": "”-e” có hiệu lực thì cũng nhận ra",  # option in quotes (as in coreutils.mo)
    "i": "Không tìm thấy /usr/bin/vasr đâu",  # path
    "j": "Ghi vào TỆP_KẾT_QUẢ đã chọn",  # placeholder
    "k": "Có\tlỗi khi đọc tập tin",  # control character
    "l": "Không thể mở GPG key này",  # acronym
    "m": "ĐÃ XẢY RA LỖI NGHIÊM TRỌNG",  # capitals
    "n": "The file could not be opened",  # English
    "o": "Tải lên được không",  # the one good entry of this file
    "p": "Đã lưu",  # too short
    "q": "Dùng git để lưu trữ mã nguồn",  # a word that is not a Vietnamese syllable
    "r": "Tệp   Sửa   Xem   Trợ giúp",  # column layout
    "s": "_Mở tập tin gần đây",  # menu mnemonic
    "t": " ".join(["một"] * 21),  # too long
    "u": "Lỗi ta la ban con in",  # syllables, but under 20% of the letters carry a mark
}


def test_catalogue_sentences(tmp_path):
    write_mo(tmp_path / "b.mo", GOOD)
    write_mo(tmp_path / "a.mo", BAD)
    assert catalogue_sentences(tmp_path) == [
        # a.mo first (file order), then msgid order
        "tải lên được không",
        # b.mo: msgids sorted: "Cannot...", "Done...", "Error...", "It is...", "Save...", "one file"
        "không thể mở tập tin này",
        "khởi động lại ngay bây giờ",
        "dữ liệu vào không hợp lệ",
        "năm ngoái đã có mười người",
        "lưu vào thành phố hồ chí minh nhé",
        "một tập tin đã được chọn",
        "nhiều tập tin đã được chọn",
    ]


def test_catalogue_dedupes(tmp_path):
    write_mo(tmp_path / "a.mo", {"x": "Không thể mở tập tin.", "y": "không thể mở tập tin"})
    write_mo(tmp_path / "b.mo", {"z": "Không thể mở tập tin!"})
    assert catalogue_sentences(tmp_path) == ["không thể mở tập tin"]


def test_catalogue_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        catalogue_sentences(tmp_path / "nope")


def test_catalogue_unreadable_file(tmp_path):
    (tmp_path / "broken.mo").write_bytes(b"not a catalogue")
    with pytest.raises(ValueError, match="broken.mo: not a readable .mo catalogue"):
        catalogue_sentences(tmp_path)


@pytest.mark.parametrize(("text", "sentences"), [
    ("Một. Hai! Ba? Bốn", ["Một.", "Hai!", "Ba?", "Bốn"]),
    ("Lỗi: không mở được", ["Lỗi:", "không mở được"]),
    ("Ở TP. Hồ Chí Minh. Tại Q. 1", ["Ở TP. Hồ Chí Minh.", "Tại Q. 1"]),
    ("Giá 3.5 hay 3,5", ["Giá 3.5 hay 3,5"]),
    ("dòng một\ndòng hai", ["dòng một", "dòng hai"]),
    ("Đang tải… xong", ["Đang tải…", "xong"]),
    ("", []),
])
def test_split_sentences(text, sentences):
    assert split_sentences(text) == sentences


def test_file_sentences(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("Xin chào các bạn.\n\nHôm nay là thứ 2. Trời đẹp!\nxin chào các bạn\n  \n"
                    "Tôi ở TP.HCM\n", encoding="utf-8")
    assert file_sentences(path) == [
        "xin chào các bạn", "hôm nay là thứ hai", "trời đẹp", "tôi ở thành phố hồ chí minh"]


def test_file_sentences_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("dòng một\ndòng hai\n".encode() + "Café\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt:3: not UTF-8"):
        file_sentences(path)
