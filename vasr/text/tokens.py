"""Tokenizers between normalised text and token ids, and the ``tokens.txt`` they share with sherpa-onnx.

``tokens.txt`` (DESIGN.md section 2): UTF-8, one ``symbol id`` per line, every id 0..V-1, ``<blk>``
at 0, no whitespace inside a symbol, a space written ``▁`` (U+2581). Text = the symbols concatenated,
``▁`` -> space, outer spaces stripped (``vasr.kernels.tokens_to_text``, the same rule as
sherpa's), so ``decode(encode(t)) == t`` for every normalised ``t``.

A directory saved by ``Tokenizer.save`` holds ``tokens.txt``, ``tokenizer.json`` (kind, vocabulary
size, normaliser version) and, for BPE, the sentencepiece model ``bpe.model``.

Characters outside the vocabulary raise ``ValueError`` naming them (no ``<unk>`` fallback in
``encode``): in training data such a character is a normalisation bug to fix, and a hot word the model
cannot spell should be reported, not silently mangled.

BPE ids: sentencepiece is trained with its pad piece named ``<blk>`` at id 0 and ``<unk>`` at id 1
(no bos/eos), so sentencepiece id i is ``tokens.txt`` id i; ``load`` checks that they agree.
"""
from __future__ import annotations

import abc
import io
import json
import os
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from vasr.kernels import WORD_SPACE, tokens_to_text
from vasr.text.normalize import NORMALIZER_VERSION

__all__ = ["BLANK", "UNK", "Tokenizer", "CharTokenizer", "BpeTokenizer", "read_tokens", "write_tokens"]

BLANK = "<blk>"
UNK = "<unk>"  # BPE only: sentencepiece requires an unknown piece
TOKENS_FILE = "tokens.txt"
CONFIG_FILE = "tokenizer.json"
BPE_MODEL_FILE = "bpe.model"
BPE_SEED = 20240601  # sentencepiece's random generator seed: training is reproducible byte for byte
BPE_UNK_ID = 1


def write_tokens(path: str | os.PathLike, symbols: Sequence[str]) -> None:
    """Write ``symbols`` (index = id) to ``path`` as ``tokens.txt``; ValueError if one is invalid."""
    if not symbols or symbols[0] != BLANK:
        raise ValueError(f"{path}: symbol 0 must be {BLANK!r}, got {symbols[0] if symbols else None!r}")
    seen: dict[str, int] = {}
    for i, symbol in enumerate(symbols):
        if not symbol or any(c.isspace() for c in symbol):
            raise ValueError(f"{path}: symbol {i} {symbol!r} is empty or contains whitespace")
        if symbol in seen:
            raise ValueError(f"{path}: symbol {symbol!r} has two ids, {seen[symbol]} and {i}")
        seen[symbol] = i
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(f"{symbol} {i}\n" for i, symbol in enumerate(symbols))


def read_tokens(path: str | os.PathLike) -> list[str]:
    """Symbols of a ``tokens.txt`` (index = id); ValueError naming the file and line if malformed."""
    by_id: dict[int, str] = {}
    line_of: dict[str, int] = {}
    with open(path, "rb") as f:
        raw_lines = f.read().split(b"\n")
    for number, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}:{number}: not UTF-8 ({exc.reason})") from None
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or line != line.strip() or "  " in line:
            raise ValueError(f"{path}:{number}: expected 'symbol id' (one space, no whitespace in the "
                             f"symbol), got {line!r}")
        symbol, id_text = fields
        if not id_text.isdigit():
            raise ValueError(f"{path}:{number}: id {id_text!r} is not a non-negative integer")
        token_id = int(id_text)
        if token_id in by_id:
            raise ValueError(f"{path}:{number}: duplicate id {token_id}")
        if symbol in line_of:
            raise ValueError(f"{path}:{number}: duplicate symbol {symbol!r} (first on line {line_of[symbol]})")
        by_id[token_id] = symbol
        line_of[symbol] = number
    missing = [i for i in range(len(by_id)) if i not in by_id]
    if missing:
        raise ValueError(f"{path}: ids must be 0..{len(by_id) - 1}; missing {missing[:10]}")
    if by_id.get(0) != BLANK:
        raise ValueError(f"{path}: id 0 must be {BLANK!r}, got {by_id.get(0)!r}")
    return [by_id[i] for i in range(len(by_id))]


def _unknown_error(text: str, chars: Iterable[str], vocab_size: int) -> ValueError:
    listed = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in sorted(set(chars)))
    return ValueError(f"characters not in the tokenizer's {vocab_size} symbols: {listed}, in {text!r}")


class Tokenizer(abc.ABC):
    """Maps normalised text to token ids and back; id 0 is the CTC blank."""

    kind: ClassVar[str]
    blank_id: ClassVar[int] = 0

    def __init__(self, symbols: Sequence[str]):
        self.symbols: list[str] = list(symbols)
        if not self.symbols or self.symbols[0] != BLANK:
            raise ValueError(f"symbol 0 must be {BLANK!r}")

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    @property
    @abc.abstractmethod
    def word_boundary_ids(self) -> tuple[int, ...]:
        """Ids of the tokens that begin a new word (the decoder's word-LM hook)."""

    @abc.abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (normalised); ValueError naming any character out of vocabulary."""

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``: symbols concatenated, ``▁`` -> space, leading space stripped; blanks skipped."""
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside 0..{self.vocab_size - 1}")
        return tokens_to_text([i for i in ids if i != self.blank_id], self.symbols)

    def to_dict(self) -> dict:
        """What ``tokenizer.json`` and model metadata record about this tokenizer."""
        return {"kind": self.kind, "vocab_size": self.vocab_size, "normalizer_version": NORMALIZER_VERSION}

    def to_state(self) -> dict:
        """What a checkpoint stores to rebuild this tokenizer: its kind and symbols (BPE: the model too)."""
        return {"kind": self.kind, "symbols": self.symbols}

    @classmethod
    def from_state(cls, state: dict) -> Tokenizer:
        """The tokenizer of a checkpoint's ``to_state()`` entry; ValueError for an unknown kind."""
        if state.get("kind") == BpeTokenizer.kind:
            return BpeTokenizer(state["bpe_model"])
        if state.get("kind") == CharTokenizer.kind:
            return CharTokenizer(state["symbols"])
        raise ValueError(f"unknown tokenizer kind {state.get('kind')!r} in a checkpoint")

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``tokens.txt`` and ``tokenizer.json`` (and the kind's own files) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_tokens(directory / TOKENS_FILE, self.symbols)
        self._save_model(directory)
        (directory / CONFIG_FILE).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return directory

    def _save_model(self, directory: Path) -> None:
        """Files beyond tokens.txt that the kind needs; none by default."""

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Tokenizer:
        """The tokenizer saved in ``directory``, of the kind its ``tokenizer.json`` names."""
        directory = Path(directory)
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        kinds = {sub.kind: sub for sub in (CharTokenizer, BpeTokenizer)}
        kind = config.get("kind")
        if kind not in kinds:
            raise ValueError(f"{directory / CONFIG_FILE}: unknown tokenizer kind {kind!r}")
        if cls is not Tokenizer and kinds[kind] is not cls:
            raise ValueError(f"{directory}: holds a {kind!r} tokenizer, not {cls.kind!r}")
        tokenizer = kinds[kind]._from_directory(directory)
        if tokenizer.vocab_size != config.get("vocab_size"):
            raise ValueError(f"{directory}: {TOKENS_FILE} has {tokenizer.vocab_size} symbols, "
                             f"{CONFIG_FILE} says {config.get('vocab_size')}")
        return tokenizer

    @classmethod
    @abc.abstractmethod
    def _from_directory(cls, directory: Path) -> Tokenizer:
        """Build from the files of a saved directory."""


class CharTokenizer(Tokenizer):
    """One token per character: ``<blk>``, ``▁``, then the characters in code-point order."""

    kind = "char"

    def __init__(self, symbols: Sequence[str]):
        super().__init__(symbols)
        if len(self.symbols) < 2 or self.symbols[1] != WORD_SPACE:
            raise ValueError(f"symbol 1 of a character tokenizer must be {WORD_SPACE!r}")
        long = [s for s in self.symbols[2:] if len(s) != 1]
        if long:
            raise ValueError(f"character tokenizer symbols must be single characters: {long[:5]}")
        self._ids = {(" " if s == WORD_SPACE else s): i for i, s in enumerate(self.symbols) if i}

    @classmethod
    def build(cls, texts: Iterable[str]) -> CharTokenizer:
        """The tokenizer of every character in ``texts`` (normalised text: letters and single spaces)."""
        chars: set[str] = set()
        for text in texts:
            chars.update(unicodedata.normalize("NFC", text))
        chars.discard(" ")
        bad = sorted(c for c in chars if c.isspace() or c == WORD_SPACE or not c.isprintable())
        if bad:
            raise ValueError(f"texts contain characters a token cannot be: {bad} (normalise them first)")
        return cls([BLANK, WORD_SPACE, *sorted(chars)])

    @property
    def word_boundary_ids(self) -> tuple[int, ...]:
        return (1,)

    def encode(self, text: str) -> list[int]:
        text = unicodedata.normalize("NFC", text)
        try:
            return [self._ids[c] for c in text]
        except KeyError:
            raise _unknown_error(text, (c for c in text if c not in self._ids), self.vocab_size) from None

    @classmethod
    def _from_directory(cls, directory: Path) -> CharTokenizer:
        return cls(read_tokens(directory / TOKENS_FILE))


class BpeTokenizer(Tokenizer):
    """Sentencepiece BPE pieces; a piece that begins a word starts with ``▁``."""

    kind = "bpe"

    def __init__(self, model_proto: bytes):
        """model_proto: the serialised sentencepiece model (the bytes of ``bpe.model``)."""
        import sentencepiece as spm

        self._model_proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        super().__init__([self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size())])
        if self._sp.unk_id() != BPE_UNK_ID:
            raise ValueError(f"sentencepiece model: <unk> must be id {BPE_UNK_ID}, is {self._sp.unk_id()}")
        self._chars = frozenset("".join(self.symbols[BPE_UNK_ID + 1:]).replace(WORD_SPACE, " "))

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, model_dir: str | os.PathLike) -> BpeTokenizer:
        """Train a BPE model of ``vocab_size`` pieces on ``texts`` (normalised, one sentence each),
        save it to ``model_dir`` and return it. Deterministic (fixed seed, one thread, no shuffling,
        trained in memory): the same texts give the same ``bpe.model`` bytes."""
        import sentencepiece as spm

        corpus = [t for t in (unicodedata.normalize("NFC", text) for text in texts) if t.strip()]
        for text in corpus:
            if "\n" in text or "\r" in text:
                raise ValueError(f"a training text contains a line break: {text!r}")
        # trained in memory: a model written from files would embed their (temporary) paths
        model = io.BytesIO()
        spm.set_random_generator_seed(BPE_SEED)
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(corpus), model_writer=model, model_type="bpe",
                vocab_size=vocab_size, character_coverage=1.0,
                normalization_rule_name="identity", add_dummy_prefix=True,
                pad_id=0, pad_piece=BLANK, unk_id=BPE_UNK_ID, unk_piece=UNK, bos_id=-1, eos_id=-1,
                input_sentence_size=0, shuffle_input_sentence=False, num_threads=1, minloglevel=2)
        except RuntimeError as exc:
            raise ValueError(f"sentencepiece could not train a {vocab_size}-piece BPE model: {exc}") from None
        tokenizer = cls(model.getvalue())
        tokenizer.save(model_dir)
        return tokenizer

    @property
    def word_boundary_ids(self) -> tuple[int, ...]:
        return tuple(i for i, s in enumerate(self.symbols) if s.startswith(WORD_SPACE))

    def encode(self, text: str) -> list[int]:
        text = unicodedata.normalize("NFC", text)
        ids = self._sp.encode(text, out_type=int)
        if BPE_UNK_ID in ids:
            raise _unknown_error(text, (c for c in text if c not in self._chars), self.vocab_size)
        return ids

    def to_dict(self) -> dict:
        return {**super().to_dict(), "model_file": BPE_MODEL_FILE}

    def to_state(self) -> dict:
        return {**super().to_state(), "bpe_model": self._model_proto}

    def _save_model(self, directory: Path) -> None:
        (directory / BPE_MODEL_FILE).write_bytes(self._model_proto)

    @classmethod
    def _from_directory(cls, directory: Path) -> BpeTokenizer:
        tokenizer = cls((directory / BPE_MODEL_FILE).read_bytes())
        listed = read_tokens(directory / TOKENS_FILE)
        if listed != tokenizer.symbols:
            first = next(i for i in range(max(len(listed), len(tokenizer.symbols)))
                         if listed[i:i + 1] != tokenizer.symbols[i:i + 1])
            raise ValueError(f"{directory / TOKENS_FILE} disagrees with {BPE_MODEL_FILE} at id {first}")
        return tokenizer
