"""Training the embeddings on the corpus: Word2Vec over words, Phon2Vec over phonetic tokens.

``build(config, engine)`` reads the normalised transcripts of a split from the database (plus an
optional text file, normalised line by line), trains

* ``word2vec``: gensim skip-gram with negative sampling over the words of each sentence;
* ``phon2vec``: the same over each sentence's phonetic tokens (``phonetic.sentence_tokens``:
  onset, sound class, rhyme, tone per syllable), then one vector per corpus word composed from its
  tokens (``vectors.compose``),

saves both with their FAISS indexes in ``config.out_dir`` (in the pickle-free format of
``vectors``; a new directory is written beside it under a temporary name and renamed when complete,
an existing one has each kind replaced as ``Embeddings.save`` does) and records them in the
``embeddings`` table. Training is single-threaded with a fixed seed, so a build is reproducible.
"""
from __future__ import annotations

import os
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, insert, select

from vasr.config import to_dict
from vasr.db.schema import data_splits, embeddings as embeddings_table, transcripts
from vasr.embeddings.phonetic import sentence_tokens
from vasr.embeddings.vectors import Embeddings, IndexOptions, WordVectors, compose
from vasr.staging import stage
from vasr.text.normalize import normalize

__all__ = ["Word2VecConfig", "EmbedConfig", "EmbedReport", "corpus_sentences", "train_word2vec",
           "train_phon2vec", "build", "save_all", "record"]


@dataclass(frozen=True)
class Word2VecConfig:
    """gensim Word2Vec options (skip-gram with negative sampling)."""

    dim: int = 100  # vector size
    window: int = 5  # context items on each side
    min_count: int = 1  # items seen fewer times are dropped (the corpus is small: keep rare names)
    negative: int = 5  # negative samples per positive pair
    sample: float = 1e-3  # down-sampling threshold of frequent items
    epochs: int = 20  # passes over the corpus
    alpha: float = 0.025  # initial learning rate
    seed: int = 0  # random seed (training is single-threaded, hence reproducible)


@dataclass(frozen=True)
class EmbedConfig:
    """What `vasr embed build` trains and where it writes."""

    out_dir: Path = Path("embeddings")  # the directory of word2vec.* and phon2vec.* (vasr.embeddings.vectors)
    text: Path | None = None  # extra UTF-8 text, one sentence per line (normalised on reading)
    split: str | None = "train"  # transcripts of this split only (None: every transcript)
    split_version: str = "default"  # the split version ``split`` refers to
    word2vec: Word2VecConfig = Word2VecConfig()
    # tokens are fewer and more regular than words: smaller vectors, a window of ~2 syllables
    phon2vec: Word2VecConfig = Word2VecConfig(dim=64, window=8, sample=0.0)
    index: IndexOptions = IndexOptions()


@dataclass(frozen=True)
class EmbedReport:
    """What a build produced."""

    sentences: int  # training sentences (database + extra text)
    built: dict  # kind -> (vocabulary size, dim, index kind, seconds to train and index)
    out_dir: Path

    def format(self) -> str:
        lines = [f"{self.sentences} sentences -> {self.out_dir}"]
        lines += [f"  {kind:<9} {n:>7} words  dim {dim:<4} {index:<5} {seconds:6.1f} s"
                  for kind, (n, dim, index, seconds) in self.built.items()]
        return "\n".join(lines)


def corpus_sentences(engine: Engine | None, split: str | None = "train", split_version: str = "default",
                     text: str | os.PathLike | None = None) -> list[str]:
    """Normalised sentences: the database's transcripts of ``split`` (all when None; none without an
    engine) in id order, then the non-empty lines of ``text``, normalised."""
    sentences: list[str] = []
    if engine is not None:
        query = select(transcripts.c.normalized_text).order_by(transcripts.c.id)
        if split is not None:
            query = query.join(data_splits, data_splits.c.audio_id == transcripts.c.audio_id).where(
                data_splits.c.split == split, data_splits.c.version == split_version)
        with engine.connect() as conn:
            sentences.extend(t for t in conn.execute(query).scalars() if t)
    if text is not None:
        with open(text, encoding="utf-8") as f:
            sentences.extend(s for s in (normalize(line) for line in f) if s)
    return sentences


def _stable_hash(text: str) -> int:
    """gensim seeds each initial vector from ``hash(seed + word)``; Python's str hash changes per
    process, this one does not, so a build is reproducible."""
    return zlib.crc32(text.encode("utf-8"))


def _word2vec(sequences: list[list[str]], config: Word2VecConfig):
    from gensim.models import Word2Vec

    if not any(sequences):
        raise ValueError("no text to train embeddings on (empty corpus)")
    return Word2Vec(sentences=sequences, vector_size=config.dim, window=config.window,
                    min_count=config.min_count, negative=config.negative, sample=config.sample,
                    epochs=config.epochs, alpha=config.alpha, seed=config.seed, sg=1, hs=0, workers=1,
                    hashfxn=_stable_hash)


def train_word2vec(sentences: list[str], config: Word2VecConfig = Word2VecConfig(),
                   index: IndexOptions = IndexOptions()) -> Embeddings:
    """Semantic embeddings of the words of ``sentences`` (normalised text)."""
    model = _word2vec([s.split() for s in sentences], config)
    return Embeddings("word2vec", model.wv, options=index)


def train_phon2vec(sentences: list[str], config: Word2VecConfig = EmbedConfig().phon2vec,
                   index: IndexOptions = IndexOptions()) -> Embeddings:
    """Phonetic embeddings: token vectors trained on ``sentences``' phonetic tokens, and a vector
    per distinct word composed from them (words in order of first appearance)."""
    model = _word2vec([sentence_tokens(s) for s in sentences], config)
    words = list(dict.fromkeys(w for s in sentences for w in s.split()))
    return Embeddings("phon2vec", WordVectors(words, compose(model.wv, words)), tokens=model.wv, options=index)


def save_all(embeddings: list[Embeddings], out_dir: str | os.PathLike) -> list[Path]:
    """Save ``embeddings`` into ``out_dir``: a directory that does not exist yet is written under a
    temporary name beside it and renamed when complete (it appears whole or not at all); in an
    existing one each kind is replaced by ``Embeddings.save``. Returns each kind's ``KIND.json``."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ValueError(f"{out_dir}: exists and is not a directory")
        return [e.save(out_dir) for e in embeddings]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage(out_dir.parent, out_dir.name, "tmp")
    try:
        names = [e.save(tmp).name for e in embeddings]
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out_dir / name for name in names]


def record(engine: Engine, embedding: Embeddings, path: Path, source: str, params: dict) -> int:
    """Insert a row for saved embeddings into the ``embeddings`` table; returns its id."""
    with engine.begin() as conn:
        return conn.execute(insert(embeddings_table).values(
            kind=embedding.kind, path=str(Path(path).resolve()), source=source, vocab_size=len(embedding),
            dim=embedding.dim, index_kind=embedding.index_kind, params=params)).inserted_primary_key[0]


def build(config: EmbedConfig, engine: Engine | None = None) -> EmbedReport:
    """Train word2vec and phon2vec on the corpus, save them to ``config.out_dir`` and record them in
    the database (when ``engine`` is given)."""
    sentences = corpus_sentences(engine, config.split, config.split_version, config.text)
    if not sentences:
        raise ValueError(f"no sentences: split {config.split!r} of version {config.split_version!r} "
                         f"has no transcripts{' and no --text was given' if config.text is None else ''}")
    built, trained = {}, []
    for kind, train, options in (("word2vec", train_word2vec, config.word2vec),
                                 ("phon2vec", train_phon2vec, config.phon2vec)):
        start = time.perf_counter()
        embedding = train(sentences, options, config.index)
        seconds = time.perf_counter() - start
        built[kind] = (len(embedding), embedding.dim, embedding.index_kind, seconds)
        trained.append((embedding, options, seconds))
    paths = save_all([e for e, _, _ in trained], config.out_dir)
    if engine is not None:
        for (embedding, options, seconds), path in zip(trained, paths):
            params = {**to_dict(options), "sentences": len(sentences), "split": config.split,
                      "split_version": config.split_version, "text": str(config.text) if config.text else None,
                      "seconds": round(seconds, 3)}
            record(engine, embedding, path, "corpus", params)
    return EmbedReport(len(sentences), built, Path(config.out_dir))
