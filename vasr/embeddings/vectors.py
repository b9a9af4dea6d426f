"""Word vectors with a FAISS index: nearest neighbours by cosine similarity.

A directory of embeddings holds, per kind (``word2vec``: semantic, ``phon2vec``: sound), files that
load without running code (nothing is unpickled):

* ``KIND.json``: the metadata (format, kind, vocabulary size, dim, index kind), written last: the
  kind is there only once this file is;
* ``KIND.npy``: the word vectors, float32 (vocab, dim), read with ``allow_pickle=False``;
* ``KIND.vocab.json``: the words, a JSON list of strings, row i = word i;
* ``KIND.faiss``: an inner-product index over the same vectors L2-normalised, row i = word i, so
  inner product = cosine similarity, in FAISS's own binary format (parsed by FAISS, not unpickled;
  only flat and HNSW flat indexes are accepted). Flat (exact) below ``hnsw_threshold`` words, HNSW above;
* ``phon2vec.tokens.npy`` and ``phon2vec.tokens.vocab.json`` (phon2vec only): the vectors of the
  phonetic tokens, from which the vector of any word, seen in the corpus or not (a hot word, a
  name), is composed (``word_vector``).

``save`` writes every file of a kind into a temporary directory beside them, removes the old
``KIND.json``, moves the files into place and the new ``KIND.json`` last, so that an interrupted
write never leaves a kind that loads half old, half new. Directories of vasr before this format
(``KIND.kv``: gensim pickles, which run code when loaded) are refused; ``convert_legacy``
(`vasr embed convert DIR`) rewrites them, for files the user trusts.

External vectors (word2vec text or binary, fastText ``.vec``) load into the same form with
``load_external``; their keys are respelt with the normaliser's tone placement (hoà -> hòa) so that
they meet normalised transcripts.
"""
from __future__ import annotations

import json
import os
import shutil
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vasr.embeddings.phonetic import phonetic_tokens, token_role
from vasr.staging import stage
from vasr.text.normalize import place_tone_marks

__all__ = ["KINDS", "FORMAT", "IndexOptions", "WordVectors", "Embeddings", "LegacyFormatError", "compose",
           "load_external", "convert_legacy"]

KINDS = ("word2vec", "phon2vec")
FORMAT = 2  # the layout above; 1 was gensim's pickled KeyedVectors (``KIND.kv``), refused
META_SUFFIX, VECTORS_SUFFIX, VOCAB_SUFFIX, INDEX_SUFFIX = ".json", ".npy", ".vocab.json", ".faiss"
TOKENS = ".tokens"  # phon2vec.tokens.npy, phon2vec.tokens.vocab.json
LEGACY_SUFFIX = ".kv"  # format 1: KIND.kv and KIND.tokens.kv (+ gensim's KIND.kv.*.npy side files)
INDEX_FOURCC = {b"IxFI": "flat", b"IHNf": "hnsw"}  # the FAISS indexes vasr writes (IndexFlatIP, IndexHNSWFlat)
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

    tokens: ``WordVectors`` (or gensim KeyedVectors) of the phonetic tokens (dim =
    ``tokens.vector_size``); centred:
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


class LegacyFormatError(ValueError):
    """A directory of embeddings in the old pickle format (``KIND.kv``), which vasr no longer loads."""


class WordVectors:
    """Words and their vectors, row i = word i: the part of gensim's ``KeyedVectors`` vasr uses
    (``index_to_key``, ``key_to_index``, ``vectors``, ``vector_size``, ``wv[word]``, ``wv[words]``),
    without gensim and without pickle."""

    def __init__(self, words: Sequence[str], vectors: np.ndarray):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index_to_key = list(words)
        if vectors.ndim != 2 or vectors.shape[0] != len(self.index_to_key):
            raise ValueError(f"{len(self.index_to_key)} words for vectors of shape {vectors.shape}")
        self.key_to_index = {w: i for i, w in enumerate(self.index_to_key)}
        if len(self.key_to_index) != len(self.index_to_key):
            raise ValueError("the words are not distinct")
        self.vectors = vectors

    @classmethod
    def of(cls, vectors) -> WordVectors:
        """``vectors`` itself, or a copy of a gensim ``KeyedVectors``."""
        return vectors if isinstance(vectors, cls) else cls(vectors.index_to_key, vectors.vectors)

    @property
    def vector_size(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, word: str) -> bool:
        return word in self.key_to_index

    def __getitem__(self, words: str | Sequence[str]) -> np.ndarray:
        if isinstance(words, str):
            return self.vectors[self.key_to_index[words]]
        return self.vectors[[self.key_to_index[w] for w in words]]


def _save_words(path: Path, vectors: WordVectors) -> dict[str, Callable[[Path], None]]:
    """Writers of ``path``.npy and ``path``.vocab.json (``path``: a directory / stem)."""
    def write_vectors(target: Path) -> None:
        with open(target, "wb") as f:
            np.save(f, vectors.vectors, allow_pickle=False)

    def write_vocab(target: Path) -> None:
        target.write_text(json.dumps(vectors.index_to_key, ensure_ascii=False), encoding="utf-8")

    return {path.name + VECTORS_SUFFIX: write_vectors, path.name + VOCAB_SUFFIX: write_vocab}


def _load_words(stem: Path) -> WordVectors:
    """The vectors and words of ``stem``.npy / ``stem``.vocab.json; ValueError naming the bad file."""
    path = stem.with_name(stem.name + VECTORS_SUFFIX)
    try:
        vectors = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a .npy array of vectors ({_first_line(exc)})") from None
    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating):
        raise ValueError(f"{path}: expected a 2-D float array, got {getattr(vectors, 'shape', '?')} "
                         f"{getattr(vectors, 'dtype', type(vectors).__name__)}")
    vocab = stem.with_name(stem.name + VOCAB_SUFFIX)
    words = _read_json(vocab)
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"{vocab}: expected a JSON list of words")
    try:
        return WordVectors(words, vectors)
    except ValueError as exc:
        raise ValueError(f"{vocab}: {exc} in {path.name}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: missing (the embeddings directory is incomplete: rebuild it)") from None
    except (ValueError, OSError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"{path}: not valid JSON ({_first_line(exc)})") from None


def _read_index(path: Path, words: int, dim: int):
    """The FAISS index ``path`` after checking that it is a flat or HNSW inner-product index (by its
    four-byte tag, before FAISS parses it) over ``words`` vectors of ``dim``."""
    import faiss

    try:
        with open(path, "rb") as f:
            tag = f.read(4)
    except FileNotFoundError:
        raise ValueError(f"{path}: missing (the embeddings directory is incomplete: rebuild it)") from None
    if tag not in INDEX_FOURCC:
        raise ValueError(f"{path}: not a flat or HNSW FAISS index")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise ValueError(f"{path}: unreadable FAISS index ({_first_line(exc)[-120:]})") from None
    if index.metric_type != faiss.METRIC_INNER_PRODUCT or index.d != dim or index.ntotal != words:
        raise ValueError(f"{path}: the index ({index.ntotal} x {index.d}) does not match the vectors "
                         f"({words} x {dim}) or is not an inner-product index")
    return index


def _replace_files(directory: Path, stem: str, writers: dict[str, Callable[[Path], None]], commit: str) -> None:
    """Write every file of ``writers`` (name -> writer of a path) and then ``commit`` into a
    temporary directory inside ``directory``, then move them into place: the old ``commit`` file
    first out, the new one last in (the kind exists again only once it is there)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = stage(directory, stem, "tmp")
    try:
        for name, write in writers.items():
            write(tmp / name)
        (directory / commit).unlink(missing_ok=True)
        for name in writers:
            if name != commit:
                os.replace(tmp / name, directory / name)
        os.replace(tmp / commit, directory / commit)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Embeddings:
    """Word vectors of one kind with their FAISS index."""

    def __init__(self, kind: str, vectors, tokens=None, index=None, options: IndexOptions | None = None):
        """vectors: ``WordVectors`` or gensim KeyedVectors (one row per word); tokens: phon2vec's token
        vectors (the same types); index: a FAISS index over ``vectors`` (built when None)."""
        if kind not in KINDS:
            raise ValueError(f"embedding kind must be one of {KINDS}, got {kind!r}")
        if kind == "phon2vec" and tokens is None:
            raise ValueError("phon2vec embeddings need their token vectors")
        if len(vectors) == 0:
            raise ValueError(f"{kind}: no words to index")
        vectors = WordVectors.of(vectors)
        tokens = WordVectors.of(tokens) if tokens is not None else None
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
        """Write this kind's files into ``directory`` (see the module docstring; an interrupted save
        leaves the kind absent or as it was, never mixed); returns the path of ``KIND.json``."""
        import faiss

        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"{directory}: exists and is not a directory")
        meta = {"format": FORMAT, "kind": self.kind, "vocab_size": len(self), "dim": self.dim,
                "index_kind": self.index_kind,
                "tokens": None if self.tokens is None else {"vocab_size": len(self.tokens),
                                                            "dim": self.tokens.vector_size}}
        commit = self.kind + META_SUFFIX
        writers = _save_words(directory / self.kind, self.vectors)
        writers[self.kind + INDEX_SUFFIX] = lambda target: faiss.write_index(self.index, str(target))
        if self.tokens is not None:
            writers.update(_save_words(directory / (self.kind + TOKENS), self.tokens))
        writers[commit] = lambda target: target.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        _replace_files(directory, self.kind, writers, commit)
        return directory / commit

    @classmethod
    def load(cls, directory: str | os.PathLike, kind: str) -> Embeddings:
        """The embeddings of ``kind`` saved in ``directory``. Nothing is unpickled: a directory in the
        old pickle format is refused (``LegacyFormatError``, naming `vasr embed convert`), a file
        that does not match the others is a ValueError naming it."""
        if kind not in KINDS:
            raise ValueError(f"embedding kind must be one of {KINDS}, got {kind!r}")
        directory = Path(directory)
        path = directory / f"{kind}{META_SUFFIX}"
        if not path.is_file():
            legacy = directory / f"{kind}{LEGACY_SUFFIX}"
            if legacy.is_file():
                raise LegacyFormatError(
                    f"{legacy}: embeddings in the old format (a gensim pickle, which can run code when loaded) "
                    f"are not loaded; if you trust this file, convert it: vasr embed convert {directory}")
            if (directory / f"{kind}{VECTORS_SUFFIX}").is_file():
                raise ValueError(f"{path}: missing (an interrupted write?); rebuild with `vasr embed build`")
            raise FileNotFoundError(f"no {kind} embeddings in {directory} (run `vasr embed build`)")
        meta = _read_json(path)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("kind") != kind:
            raise ValueError(f"{path}: not vasr {kind} embeddings of format {FORMAT}")
        vectors = _load_words(directory / kind)
        tokens = _load_words(directory / f"{kind}{TOKENS}") if meta.get("tokens") else None
        if (len(vectors), vectors.vector_size) != (meta.get("vocab_size"), meta.get("dim")):
            raise ValueError(f"{path}: says {meta.get('vocab_size')} words of dim {meta.get('dim')}, the vectors "
                             f"are {len(vectors)} x {vectors.vector_size} (files from different writes?)")
        index = _read_index(directory / f"{kind}{INDEX_SUFFIX}", len(vectors), vectors.vector_size)
        return cls(kind, vectors, tokens, index)


def convert_legacy(directory: str | os.PathLike, keep_old: bool = False) -> list[tuple[Path, Path]]:
    """Rewrite the old-format (gensim pickle) embeddings of ``directory`` in the safe format: each
    ``KIND.kv`` that has no ``KIND.json`` yet is loaded with gensim's pickle loader, which runs any
    code the file holds, so call this only on files you trust. The new files are loaded back and
    compared before the old ones are removed (kept with ``keep_old``). Returns (old, new) paths;
    ValueError when there is nothing to convert."""
    from gensim.models import KeyedVectors

    directory = Path(directory)
    done = []
    for kind in KINDS:
        legacy = directory / f"{kind}{LEGACY_SUFFIX}"
        if not legacy.is_file() or (directory / f"{kind}{META_SUFFIX}").is_file():
            continue
        tokens_path = directory / f"{kind}{TOKENS}{LEGACY_SUFFIX}"
        vectors = _load_legacy(KeyedVectors, legacy)
        tokens = _load_legacy(KeyedVectors, tokens_path) if tokens_path.is_file() else None
        index_path = directory / f"{kind}{INDEX_SUFFIX}"
        vectors = WordVectors.of(vectors)
        index = _read_index(index_path, len(vectors), vectors.vector_size) if index_path.is_file() else None
        embedding = Embeddings(kind, vectors, tokens, index)
        new = embedding.save(directory)
        again = Embeddings.load(directory, kind)
        if again.vectors.index_to_key != vectors.index_to_key or not np.array_equal(again.vectors.vectors,
                                                                                    vectors.vectors):
            raise RuntimeError(f"{new}: the converted vectors differ from {legacy}; old files kept")
        if not keep_old:
            for old in (legacy, tokens_path):
                for path in [old, *old.parent.glob(old.name + ".*.npy")]:
                    path.unlink(missing_ok=True)
        done.append((legacy, new))
    if not done:
        raise ValueError(f"{directory}: no old-format embeddings to convert (no KIND.kv without a KIND.json)")
    return done


def _load_legacy(keyed_vectors, path: Path):
    """gensim's pickle loader, for ``convert_legacy`` alone."""
    try:
        return keyed_vectors.load(str(path))
    except Exception as exc:  # a pickle can raise anything
        raise ValueError(f"{path}: not gensim KeyedVectors ({type(exc).__name__}: {_first_line(exc)})") from None


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
    return Embeddings("word2vec", WordVectors(keys, raw.vectors[rows]), options=options)
