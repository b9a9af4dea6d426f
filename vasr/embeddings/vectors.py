"""Word vectors with a FAISS index: nearest neighbours by cosine similarity, saved as two files.

A directory of embeddings holds, per kind (``word2vec``: semantic, ``phon2vec``: sound):

* ``KIND.kv``: the word vectors, gensim ``KeyedVectors`` (float32, (vocab, dim));
* ``KIND.faiss``: an inner-product index over the same vectors L2-normalised, row i = word i, so
  inner product = cosine similarity. Flat (exact) below ``hnsw_threshold`` words, HNSW above;
* ``phon2vec.tokens.kv`` (phon2vec only): the vectors of the phonetic tokens, from which the vector
  of any word, seen in the corpus or not (a hot word, a name), is composed (``word_vector``).

External vectors (word2vec text or binary, fastText ``.vec``) load into the same form with
``load_external``; their keys are respelt with the normaliser's tone placement (hoà -> hòa) so that
they meet normalised transcripts.
"""
from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vasr.embeddings.phonetic import phonetic_tokens, token_role
from vasr.text.normalize import place_tone_marks

__all__ = ["KINDS", "IndexOptions", "Embeddings", "compose", "load_external"]

KINDS = ("word2vec", "phon2vec")
TOKENS_SUFFIX = ".tokens.kv"
DEFAULT_HNSW_THRESHOLD = 50_000  # words; exact search over fewer costs < 5 ms per query at dim 100
DEFAULT_HNSW_M = 32  # graph neighbours per node (faiss's usual 16..64)
COMPOSED_CACHE = 100_000  # phon2vec words composed on the fly that are remembered (~77 MB at dim 192)
HNSW_EF_SEARCH = 128  # candidates explored per HNSW query: recall ~0.99 at these sizes
# Phon2Vec slots (onset, rhyme, tone) and their weights: a wrong tone on the right segments is the
# commonest confusion of a Vietnamese recogniser, so tone counts least and the rhyme most
SLOT_OF_ROLE = {"onset": 0, "class": 0, "rhyme": 1, "tone": 2}
SLOT_WEIGHTS = (1.0, 1.2, 0.6)


@dataclass(frozen=True)
class IndexOptions:
    """When to switch from the exact flat index to HNSW, and the HNSW graph degree."""

    hnsw_threshold: int = DEFAULT_HNSW_THRESHOLD  # vocabulary size (words) from which HNSW is used
    hnsw_m: int = DEFAULT_HNSW_M  # HNSW neighbours per node


def _normalised(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32 C-contiguous."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _build_index(vectors: np.ndarray, options: IndexOptions):
    import faiss

    dim = vectors.shape[1]
    if vectors.shape[0] >= options.hnsw_threshold:
        index = faiss.IndexHNSWFlat(dim, options.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(_normalised(vectors))
    return index


def _centred_tokens(tokens) -> np.ndarray:
    """Token unit vectors with the mean of their role (onset, class, rhyme, tone) removed, then
    rescaled to unit length. Skip-gram puts all tokens of one role close together (they occur in
    the same places), so the raw vectors mostly say "an onset"; centring keeps what tells two
    onsets (or rhymes, or tones) apart."""
    unit = _normalised(tokens.vectors)
    roles = np.array([token_role(t) for t in tokens.index_to_key])
    for role in set(roles.tolist()):
        rows = roles == role
        if rows.sum() > 1:
            unit[rows] -= unit[rows].mean(axis=0)
    return _normalised(unit)


def compose(tokens, words: Sequence[str], centred: np.ndarray | None = None) -> np.ndarray:
    """Phon2Vec vectors of ``words``, float32 (len(words), 3 * dim): three slots, onset | rhyme |
    tone, each the normalised sum of the word's centred token vectors of that role (an onset's
    sound class goes into the onset slot, so d and gi share half of it), scaled by
    ``SLOT_WEIGHTS``. The cosine of two words is then a weighted mean of onset, rhyme and tone
    similarity. Tokens the model has not seen are skipped; a slot with none stays zero.

    tokens: gensim KeyedVectors of the phonetic tokens (dim = ``tokens.vector_size``); centred:
    their ``_centred_tokens`` when the caller keeps them (computed here otherwise)."""
    unit = _centred_tokens(tokens) if centred is None else centred
    dim = tokens.vector_size
    out = np.zeros((len(words), len(SLOT_WEIGHTS) * dim), dtype=np.float32)
    for i, word in enumerate(words):
        for token in phonetic_tokens(word):
            j = tokens.key_to_index.get(token)
            if j is not None:
                slot = SLOT_OF_ROLE[token_role(token)]
                out[i, slot * dim:(slot + 1) * dim] += unit[j]
    for slot, weight in enumerate(SLOT_WEIGHTS):
        out[:, slot * dim:(slot + 1) * dim] = weight * _normalised(out[:, slot * dim:(slot + 1) * dim])
    return out


class Embeddings:
    """Word vectors of one kind with their FAISS index."""

    def __init__(self, kind: str, vectors, tokens=None, index=None, options: IndexOptions | None = None):
        """vectors: gensim KeyedVectors (one row per word); tokens: phon2vec's token KeyedVectors;
        index: a FAISS index over ``vectors`` (built when None)."""
        if kind not in KINDS:
            raise ValueError(f"embedding kind must be one of {KINDS}, got {kind!r}")
        if kind == "phon2vec" and tokens is None:
            raise ValueError("phon2vec embeddings need their token vectors")
        if len(vectors) == 0:
            raise ValueError(f"{kind}: no words to index")
        self.kind, self.vectors, self.tokens = kind, vectors, tokens
        self._centred = _centred_tokens(tokens) if tokens is not None else None
        self._composed: dict[str, np.ndarray] = {}  # phon2vec: vectors of words outside the vocabulary
        self.index = index if index is not None else _build_index(vectors.vectors, options or IndexOptions())
        if self.index.ntotal != len(vectors):
            raise ValueError(f"{kind}: index holds {self.index.ntotal} vectors for {len(vectors)} words")

    @property
    def dim(self) -> int:
        return self.vectors.vector_size

    @property
    def index_kind(self) -> str:
        return "hnsw" if "HNSW" in type(self.index).__name__ else "flat"

    def __len__(self) -> int:
        return len(self.vectors)

    def __contains__(self, word: str) -> bool:
        return word in self.vectors.key_to_index

    def unit_rows(self, words: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``words``, float32 (len(words), dim). word2vec: every word must be in the
        vocabulary (KeyError naming the others); phon2vec: any word, composed from its phonetic
        tokens when it was not in the corpus."""
        if self.kind == "phon2vec":
            # corpus words were composed at build time; others are composed once and remembered (a
            # recogniser's misspellings recur across the alternatives of one utterance)
            unseen = list(dict.fromkeys(w for w in words if w not in self and w not in self._composed))
            if unseen:
                if len(self._composed) + len(unseen) > COMPOSED_CACHE:
                    self._composed.clear()
                self._composed.update(zip(unseen, compose(self.tokens, unseen, self._centred)))
            rows = np.stack([self.vectors[w] if w in self else self._composed[w] for w in words])
        else:
            missing = [w for w in words if w not in self]
            if missing:
                raise KeyError(f"not in the word2vec vocabulary: {', '.join(missing)}")
            rows = self.vectors[list(words)]
        return _normalised(rows)

    def word_vector(self, text: str) -> np.ndarray:
        """Unit vector (float32 (dim,)) of a word or a phrase: the mean of its words' unit vectors
        (``unit_rows``), normalised."""
        words = text.split()
        if not words:
            raise ValueError("empty text has no vector")
        return _normalised(self.unit_rows(words).mean(axis=0, keepdims=True))[0]

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words or phrases."""
        return float(self.word_vector(a) @ self.word_vector(b))

    def neighbours(self, text: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` vocabulary words nearest to ``text`` by cosine, best first, ``text`` itself
        excluded: (word, cosine similarity)."""
        query = self.word_vector(text)[None, :]
        scores, ids = self.index.search(query, min(k + 1, len(self)))
        found = [(self.vectors.index_to_key[i], float(s)) for i, s in zip(ids[0], scores[0])
                 if i >= 0 and self.vectors.index_to_key[i] != text]
        return found[:k]

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``KIND.kv`` and ``KIND.faiss`` (and phon2vec's token vectors); returns the .kv path."""
        import faiss

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.kind}.kv"
        self.vectors.save(str(path))
        faiss.write_index(self.index, str(directory / f"{self.kind}.faiss"))
        if self.tokens is not None:
            self.tokens.save(str(directory / f"{self.kind}{TOKENS_SUFFIX}"))
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike, kind: str) -> Embeddings:
        """The embeddings of ``kind`` saved in ``directory``."""
        import faiss
        from gensim.models import KeyedVectors

        directory = Path(directory)
        path = directory / f"{kind}.kv"
        if not path.is_file():
            raise FileNotFoundError(f"no {kind} embeddings in {directory} (run `vasr embed build`)")
        vectors = KeyedVectors.load(str(path))
        tokens_path = directory / f"{kind}{TOKENS_SUFFIX}"
        tokens = KeyedVectors.load(str(tokens_path)) if tokens_path.is_file() else None
        return cls(kind, vectors, tokens, faiss.read_index(str(directory / f"{kind}.faiss")))


def _has_header(path: Path) -> bool:
    """Whether a text vectors file starts with the ``count dim`` line (fastText, word2vec) or not (GloVe)."""
    with open(path, "rb") as f:
        fields = f.readline().split()
    return len(fields) == 2 and all(x.isdigit() for x in fields)


def load_external(path: str | os.PathLike, binary: bool | None = None,
                  options: IndexOptions | None = None) -> Embeddings:
    """``word2vec`` embeddings from pre-trained vectors: word2vec text or binary (``binary`` None:
    binary when the file ends in ``.bin``), fastText ``.vec`` (word2vec text with a header) or
    header-less text (GloVe). Keys are NFC, lower-cased and tone-placed; where two keys meet, the
    first (the more frequent one, in these files' order) is kept."""
    from gensim.models import KeyedVectors

    path = Path(path)
    if binary is None:
        binary = path.suffix == ".bin"
    try:
        raw = KeyedVectors.load_word2vec_format(str(path), binary=binary,
                                                no_header=not binary and not _has_header(path))
    except (ValueError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a word2vec/fastText vectors file ({exc})") from None
    keys, rows, seen = [], [], set()
    for i, key in enumerate(raw.index_to_key):
        spelt = place_tone_marks(unicodedata.normalize("NFC", key).lower())
        if spelt not in seen:
            seen.add(spelt)
            keys.append(spelt)
            rows.append(i)
    vectors = KeyedVectors(raw.vector_size, dtype=np.float32)
    vectors.add_vectors(keys, raw.vectors[rows])
    return Embeddings("word2vec", vectors, options=options)
