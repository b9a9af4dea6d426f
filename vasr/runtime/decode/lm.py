"""The n-gram word language model's query half: a KenLM model (``lm.bin`` or ``lm.arpa`` from
``vasr lm build``) as the word LM of the CTC prefix beam search and a term of N-best rescoring.

A word (token ids from a word boundary to the next) is detokenised to text and scored with
``kenlm.Model.BaseScore``; KenLM returns log10, the search wants natural logs, so scores are
multiplied by ln 10. Needs the ``kenlm`` module (the ``embed`` extra), imported when a model is opened.

Hot words: a name the LM never saw would be charged the ``<unk>`` probability, which says nothing
about the name and works against biasing. ``with_hotwords(phrases)`` gives a view of the same model
in which the hot words' out-of-vocabulary words are free (score 0; the words after them back off as
after any unknown word); words the LM knows keep their scores.
"""
from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from pathlib import Path

from vasr.kernels import WordLM, tokens_to_text

__all__ = ["LN10", "KenLMWordLM"]

LN10 = math.log(10.0)  # KenLM scores are log10; the decoder works in nats


class KenLMWordLM(WordLM):
    """A KenLM model as the beam search's word LM (scores in nats).

    States are ``kenlm.State`` objects, never mutated after they are returned. A word's text is its
    tokens detokenised (``▁`` stripped); a "word" of no letters (e.g. a lone ``▁``) scores 0 and
    keeps the state.
    """

    def __init__(self, path: str | os.PathLike, symbols: Sequence[str] = ()):
        """path: an ARPA or KenLM binary file; symbols: token id -> symbol (the model's tokens.txt;
        not needed for ``sentence_score`` alone)."""
        import kenlm

        self._kenlm = kenlm
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such LM file (an ARPA or KenLM binary from `vasr lm build`)")
        try:
            self.model = kenlm.Model(str(path))
        except (OSError, RuntimeError) as exc:   # KenLM's message: "Cannot read model 'X' (file.cc:76 in ... threw ...)"
            why = str(exc).split(" threw ", 1)[-1].split(". ")[0]
            raise ValueError(f"{path}: not an LM KenLM can read ({why[:160]})") from None
        self.symbols = list(symbols)
        self._text: dict[tuple[int, ...], str] = {}
        self.free: frozenset[str] = frozenset()  # words scored 0 (out-of-vocabulary hot-word words)

    def with_hotwords(self, phrases: Sequence[str]) -> KenLMWordLM:
        """A view sharing this model in which the words of ``phrases`` (normalised) that the LM does
        not know score 0 instead of the ``<unk>`` probability."""
        view = copy.copy(self)
        view.free = frozenset(w for p in phrases for w in p.split() if w not in self.model)
        return view

    def initial_state(self):
        state = self._kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def word_text(self, word: tuple[int, ...]) -> str:
        text = self._text.get(word)
        if text is None:
            text = self._text[word] = tokens_to_text(word, self.symbols).strip()
        return text

    def score(self, state, word: tuple[int, ...]):
        text = self.word_text(word)
        if not text:
            return 0.0, state
        out = self._kenlm.State()
        score = self.model.BaseScore(state, text, out)
        return (0.0 if text in self.free else LN10 * score), out

    def final(self, state) -> float:
        return LN10 * self.model.BaseScore(state, "</s>", self._kenlm.State())

    def sentence_score(self, text: str) -> float:
        """ln P(text) with sentence start and end (for N-best rescoring); free words add 0."""
        if not self.free:
            return LN10 * self.model.score(text, bos=True, eos=True)
        state, total = self.initial_state(), 0.0
        for word in text.split():
            out = self._kenlm.State()
            score = self.model.BaseScore(state, word, out)
            total += 0.0 if word in self.free else score
            state = out
        return LN10 * (total + self.model.BaseScore(state, "</s>", self._kenlm.State()))
