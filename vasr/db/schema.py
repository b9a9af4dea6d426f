"""The vasr database schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

This module describes the current tables; Alembic migrations in ``migrations/versions`` create and
evolve them, and create the views (``dataset_stats``, ``run_summary``). A test checks that the
migrated database and this metadata agree.

Units: durations and offsets in seconds, rates in Hz, times as timezone-aware UTC timestamps.
"""
from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import (JSON, Boolean, CheckConstraint, Column, DateTime, Float, ForeignKey, Index, Integer,
                        MetaData, String, Table, Text, UniqueConstraint, func)

SPLITS = ("train", "val", "test")
RUN_STATUSES = ("pending", "running", "completed", "failed", "stopped")

# Deterministic constraint names, so that migrations can refer to them on both backends.
metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


def _created_at() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


imports = Table(
    "imports", metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(32), nullable=False),          # csv | vivos | commonvoice | kaldi | synth
    Column("location", Text, nullable=False),              # the manifest file or corpus directory
    Column("imported", Integer, nullable=False),           # new utterances written
    Column("already_present", Integer, nullable=False),    # rows whose audio was in the database already
    Column("updated", Integer, nullable=False, server_default="0"),  # present rows given a new transcript or audio
    Column("rejected", Integer, nullable=False),
    _created_at(),
)

import_rejects = Table(
    "import_rejects", metadata,
    Column("id", Integer, primary_key=True),
    Column("import_id", Integer, ForeignKey("imports.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("row_ref", Text, nullable=False),               # "manifest.csv:12" or the utterance id
    Column("path", Text),
    Column("reason", Text, nullable=False),
)

audio_files = Table(
    "audio_files", metadata,
    Column("id", Integer, primary_key=True),
    Column("path", Text, nullable=False),                  # absolute path at import time
    Column("sha256", String(64), nullable=False),          # of the whole file's bytes
    Column("start_s", Float, nullable=False, server_default="0"),  # segment inside the file (Kaldi segments)
    Column("end_s", Float, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("sample_rate", Integer, nullable=False),
    Column("channels", Integer, nullable=False),
    Column("format", String(16), nullable=False),          # WAV | FLAC | OGG | MP3 ...
    Column("language", String(16), nullable=False, server_default="vi"),
    Column("dialect", String(16)),                         # north | central | south, when known
    Column("speaker", String(128)),
    Column("quality", Float),                              # optional 0..1 score
    Column("peak", Float),                                 # max |sample| of the segment, full scale = 1 (at import)
    Column("clipped_fraction", Float),                     # share of its samples at full scale (at import)
    Column("utt_id", String(255)),                         # the corpus's own utterance id
    Column("source", String(32), nullable=False),
    Column("import_id", Integer, ForeignKey("imports.id", ondelete="SET NULL"), index=True),
    _created_at(),
    UniqueConstraint("sha256", "start_s", "end_s"),
    CheckConstraint("duration_s > 0", name="positive_duration"),
    Index("ix_audio_files_speaker", "speaker"),
)

transcripts = Table(
    "transcripts", metadata,
    Column("id", Integer, primary_key=True),
    # one reference transcript per utterance; model outputs go to predictions
    Column("audio_id", Integer, ForeignKey("audio_files.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("raw_text", Text, nullable=False),
    Column("normalized_text", Text, nullable=False),
    Column("normalizer_version", String(16), nullable=False),
    Column("word_count", Integer, nullable=False),
    Column("char_count", Integer, nullable=False),         # characters of the normalised text, spaces excluded
    Column("annotation_type", String(16), nullable=False, server_default="human"),  # human | synthetic | asr
    Column("confidence", Float),
    _created_at(),
)

data_splits = Table(
    "data_splits", metadata,
    Column("id", Integer, primary_key=True),
    Column("audio_id", Integer, ForeignKey("audio_files.id", ondelete="CASCADE"), nullable=False),
    Column("split", String(8), nullable=False),
    Column("version", String(64), nullable=False, server_default="default"),
    _created_at(),
    UniqueConstraint("audio_id", "version"),
    CheckConstraint("split IN ('train', 'val', 'test')", name="split_name"),
    Index("ix_data_splits_version_split", "version", "split"),
)

models = Table(
    "models", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("model_type", String(32), nullable=False),      # ctc
    Column("architecture", String(32), nullable=False),    # transformer | conformer
    Column("version", String(32), nullable=False),
    Column("checkpoint_path", Text),
    Column("onnx_path", Text),
    Column("config", JSON, nullable=False),
    Column("num_parameters", Integer),
    _created_at(),
    UniqueConstraint("name", "version"),
)

training_runs = Table(
    "training_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="SET NULL"), index=True),
    Column("config", JSON, nullable=False),
    Column("hyperparameters", JSON, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("split_version", String(64), nullable=False, server_default="default"),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_s", Float),
    Column("best_val_loss", Float),
    Column("final_train_loss", Float),
    Column("final_val_loss", Float),
    Column("best_wer", Float),
    Column("best_cer", Float),
    Column("hardware", JSON),
    Column("error", Text),
    Column("pid", Integer),                                # the process that runs it (rank 0) ...
    Column("hostname", String(255)),                       # ... on this host (vasr.db.runs.run_state)
    Column("heartbeat_at", DateTime(timezone=True)),       # its last sign of life while running
    _created_at(),
    CheckConstraint("status IN ('pending', 'running', 'completed', 'failed', 'stopped')", name="status_name"),
)

epoch_metrics = Table(
    "epoch_metrics", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("training_runs.id", ondelete="CASCADE"), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("train_loss", Float),
    Column("val_loss", Float),
    Column("cer", Float),
    Column("wer", Float),
    Column("learning_rate", Float),
    Column("duration_s", Float),
    _created_at(),
    UniqueConstraint("run_id", "epoch"),
)

predictions = Table(
    "predictions", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("training_runs.id", ondelete="CASCADE"), index=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), index=True),
    Column("audio_id", Integer, ForeignKey("audio_files.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("text", Text, nullable=False),
    Column("reference", Text),
    Column("decoder", String(32)),                         # greedy | beam8 | beam8+lm ...
    Column("confidence", Float),
    Column("inference_time_s", Float),
    Column("wer", Float),
    Column("cer", Float),
    _created_at(),
)

data_augmentations = Table(
    "data_augmentations", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("training_runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("probability", Float, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="1"),
)

embeddings = Table(
    "embeddings", metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),            # word2vec | phon2vec
    Column("path", Text, nullable=False),                  # KIND.json; KIND.npy, .vocab.json, .faiss beside it
    Column("source", String(32), nullable=False),          # corpus | word2vec-text | word2vec-binary | fasttext
    Column("vocab_size", Integer, nullable=False),
    Column("dim", Integer, nullable=False),
    Column("index_kind", String(8), nullable=False),       # flat | hnsw
    Column("params", JSON, nullable=False),                # training config, corpus size, build time
    _created_at(),
    Index("ix_embeddings_kind", "kind"),
)

bias_phrases = Table(
    "bias_phrases", metadata,
    Column("id", Integer, primary_key=True),
    # the contextual-biasing list of an utterance (vasr synth --bias): its spoken names plus distractors
    Column("audio_id", Integer, ForeignKey("audio_files.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("phrase", Text, nullable=False),                # normalised words, e.g. "nguyễn văn an"
    Column("is_entity", Boolean, nullable=False),          # true: spoken in the utterance; false: distractor
    Column("position", Integer, nullable=False),           # order in the list, from 0
    UniqueConstraint("audio_id", "phrase"),
)


# `vasr align`: one row per invocation (a model scoring a split), per utterance its scores, per word its span
alignment_runs = Table(
    "alignment_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("model", Text, nullable=False),                 # the model directory or checkpoint that scored
    Column("model_id", Integer, ForeignKey("models.id", ondelete="SET NULL"), index=True),  # when registered
    Column("split", String(8), nullable=False),
    Column("split_version", String(64), nullable=False),
    Column("utterances", Integer, nullable=False, server_default="0"),  # scored, failed ones included
    Column("failed", Integer, nullable=False, server_default="0"),      # rows with an error (no alignment)
    Column("config", JSON, nullable=False),
    Column("finished_at", DateTime(timezone=True)),        # NULL while running or when interrupted
    _created_at(),
)

alignment_scores = Table(
    "alignment_scores", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("alignment_runs.id", ondelete="CASCADE"), nullable=False),
    Column("audio_id", Integer, ForeignKey("audio_files.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("frames", Integer),                             # model output frames
    Column("log_likelihood", Float),                       # CTC log P(reference | audio) per frame, nats
    Column("best_path", Float),                            # log-prob of the best path (greedy) per frame, nats
    Column("mean_confidence", Float),                      # over the reference's words, 0..1
    Column("min_confidence", Float),
    Column("word_gap", Float),                             # nats the best path beats the reference on its worst word
    Column("next_word_gap", Float),                        # ... and on its next worst word (0: a one-word transcript)
    Column("worst_word", Text),                            # that word ...
    Column("worst_heard", Text),                           # ... what the greedy hypothesis says over its frames
    Column("word_mismatch", Float),                        # their letter edit distance / the longer's letters, 0..1
    Column("outside_letters", Integer),                    # letters the greedy hypothesis has outside the aligned words
    Column("greedy_cer", Float),                           # greedy hypothesis against the reference
    Column("chars_per_s", Float),                          # reference characters (no spaces) per second of audio
    Column("hypothesis", Text),                            # the greedy hypothesis
    Column("error", Text),                                 # why it could not be aligned (scores NULL)
    UniqueConstraint("run_id", "audio_id"),
)

alignment_words = Table(
    "alignment_words", metadata,
    Column("id", Integer, primary_key=True),
    Column("score_id", Integer, ForeignKey("alignment_scores.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("position", Integer, nullable=False),           # word index in the reference, from 0
    Column("word", Text, nullable=False),
    Column("start_s", Float, nullable=False),              # seconds from the start of the utterance
    Column("end_s", Float, nullable=False),
    Column("confidence", Float, nullable=False),           # 0..1 (vasr.align.WordSpan)
)


def check_lengths(table: Table, values: Mapping[str, object], where: str) -> None:
    """ValueError naming the column and ``where`` for a value of ``values`` longer than its
    VARCHAR(n) column of ``table`` allows. PostgreSQL refuses such a value, SQLite stores it: this
    runs before writing user input so that both backends refuse it, with the same message."""
    for key, value in values.items():
        column = table.c[key]
        limit = getattr(column.type, "length", None)
        if value is None or not limit or not isinstance(value, str) or len(value) <= limit:
            continue
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise ValueError(f"{where}: {table.name}.{key} {shown!r} is {len(value)} characters; "
                         f"the database allows at most {limit}")
