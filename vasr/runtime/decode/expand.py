"""Phonetic hot-word expansion: which hot words sound like which word spans of a hypothesis.

A recogniser that has not heard a name spells it by ear (``hai phóng`` for hải phòng, ``nuyễn`` for
nguyễn). The context graph can only promote spellings the beam search still holds; the expander
looks at the words the search produced instead. Every span of the hypothesis's words is turned into
a Phon2Vec vector (the normalised mean of its words' vectors) and looked up in a FAISS inner-product index over the hot words'
vectors; a hot word whose cosine with a span reaches ``threshold`` is proposed as a substitution for
that span. Spans may have a word more or fewer than the hot word, because a misheard name is often
split or glued (``ánhnuyền`` for anh nguyễn).

The expander only proposes; the second pass (``vasr.runtime.decode.rescore.SecondPass``) scores each
substituted hypothesis against the audio and keeps it only when the combined score says so.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vasr.embeddings.vectors import Embeddings

__all__ = ["ExpandOptions", "Proposal", "HotwordExpander"]


@dataclass(frozen=True)
class ExpandOptions:
    """How freely hot words are proposed."""

    threshold: float = 0.6  # least Phon2Vec cosine between a span and a hot word
    per_span: int = 2  # hot words looked up per span (the nearest ones)
    length_slack: int = 1  # a hot word of L words is matched against spans of L-slack .. L+slack words
    max_substitutions: int = 6  # single substitutions kept per hypothesis, best cosine first


@dataclass(frozen=True)
class Proposal:
    """Hot word ``hotword`` may stand where words ``start:end`` of the hypothesis are."""

    start: int  # first word of the span
    end: int  # one past its last word
    hotword: str
    cosine: float  # Phon2Vec cosine between the span and the hot word


class HotwordExpander:
    """FAISS nearest-hot-word search over the word spans of hypotheses."""

    def __init__(self, phon2vec: Embeddings, hotwords: Sequence[str], options: ExpandOptions = ExpandOptions()):
        """phon2vec: ``Embeddings`` of kind phon2vec; hotwords: normalised phrases (duplicates and
        empty ones are dropped)."""
        import faiss

        if phon2vec.kind != "phon2vec":
            raise ValueError(f"the expander needs phon2vec embeddings, got {phon2vec.kind}")
        self.phon2vec, self.options = phon2vec, options
        self.hotwords = list(dict.fromkeys(h for h in (" ".join(p.split()) for p in hotwords) if h))
        self._words = [h.split() for h in self.hotwords]
        lengths = {len(w) for w in self._words}
        slack = options.length_slack
        self._span_lengths = sorted({n + d for n in lengths for d in range(-slack, slack + 1) if n + d >= 1})
        self.index = None
        # a few dozen queries against a few dozen hot words: OpenMP's thread start-up costs more than
        # the search (measured 0.17 ms with 2 threads vs 0.011 ms with 1 for 30 queries x 11 words)
        faiss.omp_set_num_threads(1)
        if self.hotwords:
            vectors = np.stack([phon2vec.word_vector(h) for h in self.hotwords])
            self.index = faiss.IndexFlatIP(vectors.shape[1])
            self.index.add(vectors)

    def proposals(self, hypotheses: Sequence[Sequence[str]]) -> list[list[Proposal]]:
        """Per hypothesis (a list of words): substitutions for its spans, best cosine first; a span
        that already reads as the hot word is not proposed. The spans of all hypotheses go to FAISS
        in one search (the alternatives of an utterance share most words: each is composed once)."""
        found: list[dict[tuple[int, int, int], float]] = [{} for _ in hypotheses]
        vocabulary = list(dict.fromkeys(w for words in hypotheses for w in words))
        if self.index is None or not vocabulary:
            return [[] for _ in hypotheses]
        position = {w: i for i, w in enumerate(vocabulary)}
        rows = self.phon2vec.unit_rows(vocabulary)[[position[w] for words in hypotheses for w in words]]
        prefix = np.concatenate([np.zeros((1, rows.shape[1]), np.float32), np.cumsum(rows, axis=0)])
        offsets = np.cumsum([0] + [len(words) for words in hypotheses])
        owner, start, length = [], [], []
        for k, words in enumerate(hypotheses):
            for n in self._span_lengths:
                count = len(words) - n + 1
                if count > 0:
                    owner += [k] * count
                    start += range(count)
                    length += [n] * count
        if not owner:
            return [[] for _ in hypotheses]
        first = offsets[owner] + np.array(start)
        spans = prefix[first + np.array(length)] - prefix[first]
        norms = np.linalg.norm(spans, axis=1, keepdims=True)
        queries = (spans / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        scores, ids = self.index.search(queries, min(self.options.per_span, len(self.hotwords)))
        slack = self.options.length_slack
        for row, (k, s, n) in enumerate(zip(owner, start, length)):
            for score, hot in zip(scores[row].tolist(), ids[row].tolist()):
                if hot < 0 or score < self.options.threshold:
                    continue
                target = self._words[hot]
                if abs(len(target) - n) > slack or list(hypotheses[k][s:s + n]) == target:
                    continue
                key = (s, s + n, hot)
                found[k][key] = max(found[k].get(key, -1.0), score)
        ranked = [sorted(f.items(), key=lambda item: (-item[1], item[0])) for f in found]
        return [[Proposal(s, e, self.hotwords[h], c) for (s, e, h), c in r] for r in ranked]

    def substitutions(self, hypotheses: Sequence[Sequence[str]]) -> list[list[list[Proposal]]]:
        """Per hypothesis, sets of non-overlapping proposals to apply together: each of the best
        ``max_substitutions`` proposals alone, then (when there are several) the greedy best-first
        set of every proposal that overlaps no better one and repeats no chosen hot word."""
        out = []
        for proposals in self.proposals(hypotheses):
            sets = [[p] for p in proposals[:self.options.max_substitutions]]
            chosen: list[Proposal] = []
            for p in proposals:
                if (all(p.end <= q.start or q.end <= p.start for q in chosen)
                        and p.hotword not in {q.hotword for q in chosen}):
                    chosen.append(p)
            if len(chosen) > 1:
                sets.append(sorted(chosen, key=lambda p: p.start))
            out.append(sets)
        return out
