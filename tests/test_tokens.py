"""Tokenizers and tokens.txt (vasr.text.tokens)."""
from __future__ import annotations

import json

import pytest

from vasr.text.normalize import normalize
from vasr.text.tokens import BpeTokenizer, CharTokenizer, Tokenizer, read_tokens, write_tokens

SENTENCES = [normalize(s) for s in (
    "Hôm nay trời đẹp quá.", "Tôi đi học lúc 7 giờ sáng.", "Chúng tôi yêu Việt Nam.",
    "Người Việt nói tiếng Việt.", "Thành phố Hồ Chí Minh có nhiều xe máy.",
    "Mẹ tôi nấu phở rất ngon.", "Hòa bình và hạnh phúc cho mọi người.",
    "Quyển sách này của ai?", "Giữ gìn sự trong sáng của tiếng Việt.", "Khỏe không, anh Thúy?",
)]


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    return BpeTokenizer.train(SENTENCES * 5, 80, tmp_path_factory.mktemp("bpe"))


def test_char_symbols():
    tok = CharTokenizer.build(["ba bà", "bá"])
    assert tok.symbols == ["<blk>", "▁", "a", "b", "à", "á"]
    assert tok.vocab_size == 6
    assert tok.blank_id == 0
    assert tok.word_boundary_ids == (1,)
    assert tok.encode("ba bá") == [3, 2, 1, 3, 5]
    assert tok.decode([3, 2, 1, 3, 5]) == "ba bá"
    assert tok.decode([0, 3, 0, 4]) == "bà"  # blanks are skipped


def test_char_round_trip():
    tok = CharTokenizer.build(SENTENCES)
    for sentence in SENTENCES:
        assert tok.decode(tok.encode(sentence)) == sentence


def test_char_encode_takes_decomposed_text():
    tok = CharTokenizer.build(["việt"])
    assert tok.encode("vie\u0323\u0302t") == tok.encode("việt")


def test_char_unknown_character_names_it():
    tok = CharTokenizer.build(["ba"])
    with pytest.raises(ValueError, match=r"'c' \(U\+0063\).*'ễ' \(U\+1EC5\)"):
        tok.encode("cễ ba")


def test_char_build_rejects_symbol_characters():
    with pytest.raises(ValueError, match="normalise them first"):
        CharTokenizer.build(["a\tb"])
    with pytest.raises(ValueError, match="normalise them first"):
        CharTokenizer.build(["a▁b"])


def test_char_save_load(tmp_path):
    tok = CharTokenizer.build(["xin chào"])
    tok.save(tmp_path)
    assert (tmp_path / "tokens.txt").read_text(encoding="utf-8") == (
        "<blk> 0\n▁ 1\nc 2\nh 3\ni 4\nn 5\no 6\nx 7\nà 8\n")
    assert json.loads((tmp_path / "tokenizer.json").read_text()) == {
        "kind": "char", "vocab_size": 9, "normalizer_version": "1"}
    loaded = Tokenizer.load(tmp_path)
    assert isinstance(loaded, CharTokenizer)
    assert loaded.symbols == tok.symbols
    assert CharTokenizer.load(tmp_path).encode("xin chào") == tok.encode("xin chào")
    with pytest.raises(ValueError, match="not 'bpe'"):
        BpeTokenizer.load(tmp_path)


def test_decode_rejects_out_of_range():
    with pytest.raises(ValueError, match="outside 0..2"):
        CharTokenizer.build(["a"]).decode([3])


def test_bpe_ids_match_sentencepiece(bpe):
    assert bpe.symbols[:2] == ["<blk>", "<unk>"]
    assert bpe.vocab_size == 80
    sp = bpe._sp
    assert [sp.id_to_piece(i) for i in range(sp.get_piece_size())] == bpe.symbols
    for sentence in SENTENCES:
        ids = bpe.encode(sentence)
        assert ids == sp.encode(sentence, out_type=int)
        assert 0 not in ids
        assert bpe.decode(ids) == sentence == sp.decode(ids)


def test_bpe_word_boundaries(bpe):
    assert bpe.word_boundary_ids
    assert all(bpe.symbols[i].startswith("▁") for i in bpe.word_boundary_ids)
    for sentence in SENTENCES:
        ids = bpe.encode(sentence)
        assert sum(i in bpe.word_boundary_ids for i in ids) == len(sentence.split())


def test_bpe_unknown_character(bpe):
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\)"):
        bpe.encode("zô")


def test_bpe_saved_files(bpe, tmp_path):
    bpe.save(tmp_path)
    assert read_tokens(tmp_path / "tokens.txt") == bpe.symbols
    assert json.loads((tmp_path / "tokenizer.json").read_text()) == {
        "kind": "bpe", "vocab_size": 80, "normalizer_version": "1", "model_file": "bpe.model"}
    loaded = Tokenizer.load(tmp_path)
    assert isinstance(loaded, BpeTokenizer)
    assert loaded.encode(SENTENCES[0]) == bpe.encode(SENTENCES[0])


def test_bpe_load_checks_tokens_txt(bpe, tmp_path):
    bpe.save(tmp_path)
    symbols = read_tokens(tmp_path / "tokens.txt")
    symbols[5], symbols[6] = symbols[6], symbols[5]
    write_tokens(tmp_path / "tokens.txt", symbols)
    with pytest.raises(ValueError, match="disagrees with bpe.model at id 5"):
        Tokenizer.load(tmp_path)


def test_checkpoint_state_round_trip(bpe):
    char = CharTokenizer.build(["ba bà", "bá"])
    assert char.to_state() == {"kind": "char", "symbols": ["<blk>", "▁", "a", "b", "à", "á"]}
    again = Tokenizer.from_state(char.to_state())
    assert type(again) is CharTokenizer and again.symbols == char.symbols and again.encode("bà ba") == [3, 4, 1, 3, 2]
    state = bpe.to_state()
    assert sorted(state) == ["bpe_model", "kind", "symbols"] and state["kind"] == "bpe"
    assert state["bpe_model"] == bpe._model_proto and state["symbols"] == bpe.symbols
    again = Tokenizer.from_state(state)
    assert type(again) is BpeTokenizer and again.symbols == bpe.symbols
    assert again.encode(SENTENCES[3]) == bpe.encode(SENTENCES[3])
    with pytest.raises(ValueError, match="unknown tokenizer kind 'word'"):
        Tokenizer.from_state({"kind": "word", "symbols": ["<blk>"]})


def test_bpe_training_is_deterministic(tmp_path):
    first = BpeTokenizer.train(SENTENCES, 60, tmp_path / "a")
    second = BpeTokenizer.train(list(SENTENCES), 60, tmp_path / "b")
    assert first.symbols == second.symbols
    assert (tmp_path / "a" / "bpe.model").read_bytes() == (tmp_path / "b" / "bpe.model").read_bytes()


def test_bpe_vocabulary_too_large(tmp_path):
    with pytest.raises(ValueError, match="could not train a 5000-piece"):
        BpeTokenizer.train(SENTENCES, 5000, tmp_path)


def test_write_read_tokens(tmp_path):
    path = tmp_path / "tokens.txt"
    write_tokens(path, ["<blk>", "▁", "a", "ư"])
    assert path.read_bytes() == "<blk> 0\n▁ 1\na 2\nư 3\n".encode()
    assert read_tokens(path) == ["<blk>", "▁", "a", "ư"]


def test_read_tokens_any_line_order(tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_text("a 2\n<blk> 0\n▁ 1\n\n", encoding="utf-8")
    assert read_tokens(path) == ["<blk>", "▁", "a"]


@pytest.mark.parametrize(("content", "message"), [
    ("<blk> 0\na 1\nb 1\n", r"tokens.txt:3: duplicate id 1"),
    ("<blk> 0\na 1\na 2\n", r"tokens.txt:3: duplicate symbol 'a' \(first on line 2\)"),
    ("<blk> 0\na 2\n", r"tokens.txt: ids must be 0..1; missing \[1\]"),
    ("<blk> 0\na b 1\n", r"tokens.txt:2: expected 'symbol id'"),
    ("<blk> 0\na\n", r"tokens.txt:2: expected 'symbol id'"),
    ("<blk> 0\na x\n", r"tokens.txt:2: id 'x' is not a non-negative integer"),
    ("a 0\n<blk> 1\n", r"tokens.txt: id 0 must be '<blk>', got 'a'"),
])
def test_read_tokens_errors(tmp_path, content, message):
    path = tmp_path / "tokens.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_tokens(path)


def test_read_tokens_not_utf8(tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_bytes(b"<blk> 0\n\xff 1\n")
    with pytest.raises(ValueError, match="tokens.txt:2: not UTF-8"):
        read_tokens(path)


@pytest.mark.parametrize(("symbols", "message"), [
    (["a", "<blk>"], "symbol 0 must be '<blk>'"),
    (["<blk>", "a b"], "symbol 1 'a b' is empty or contains whitespace"),
    (["<blk>", ""], "symbol 1 '' is empty"),
    (["<blk>", "a", "a"], "symbol 'a' has two ids, 1 and 2"),
])
def test_write_tokens_errors(tmp_path, symbols, message):
    with pytest.raises(ValueError, match=message):
        write_tokens(tmp_path / "tokens.txt", symbols)


def test_bpe_rejects_line_breaks(tmp_path):
    with pytest.raises(ValueError, match=r"line break: 'c\\nd'"):
        BpeTokenizer.train(["a b", "c\nd"], 10, tmp_path)
