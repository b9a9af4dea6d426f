"""Opening the database and the queries the rest of vasr runs on it.

Every statement is built with SQLAlchemy Core and bound parameters; the only names that reach SQL
from outside (sort keys, metric names) are checked against whitelists first.
"""
from __future__ import annotations

import os
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, func, insert, select, text
from sqlalchemy.engine import make_url

from vasr.data.manifests import Reject
from vasr.db.schema import SPLITS, audio_files, bias_phrases, data_splits, import_rejects, imports, transcripts

DEFAULT_DB = Path("data") / "vasr.db"
ENV_VAR = "VASR_DB"
_IN_CHUNK = 500  # keys per IN (...) query; stays far below SQLite's bound-parameter limit


def resolve_url(db: str | os.PathLike | None = None) -> str:
    """An SQLAlchemy URL from ``--db``, else ``$VASR_DB``, else ``data/vasr.db``.

    A plain path means an SQLite file; ``postgresql://`` URLs use the psycopg 3 driver.
    """
    raw = str(db) if db is not None else os.environ.get(ENV_VAR) or str(DEFAULT_DB)
    if "://" not in raw:
        path = Path(raw).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    url = make_url(raw)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def connect(db: str | os.PathLike | None = None, upgrade: bool = True) -> Engine:
    """An engine for ``db`` (see resolve_url), migrated to the newest schema unless ``upgrade=False``."""
    url = resolve_url(db)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if upgrade:
        migrate(engine)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL is still crash-safe for committed data
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "vasr.db:migrations")
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (no-op when already there)."""
    config = _alembic_config()
    with engine.begin() as conn:
        if revision == "head" and schema_revision(conn) == ScriptDirectory.from_config(config).get_current_head():
            return
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def schema_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


# ---------------------------------------------------------------------------------------------- imports

@dataclass(frozen=True)
class ImportRow:
    """One row ready to be written: the audio (or a segment of it) and its reference transcript."""
    path: str
    sha256: str
    start_s: float
    end_s: float
    sample_rate: int
    channels: int
    format: str
    raw_text: str
    normalized_text: str
    normalizer_version: str
    annotation_type: str = "human"
    split: str | None = None
    speaker: str | None = None
    dialect: str | None = None
    utt_id: str | None = None
    language: str = "vi"


def audio_ids(conn: Connection, keys: Iterable[tuple[str, float, float]]) -> dict[tuple[str, float, float], int]:
    """(sha256, start_s, end_s) -> audio id, for the keys among ``keys`` that the database holds."""
    keys = set(keys)
    hashes = sorted({k[0] for k in keys})
    found = {}
    for i in range(0, len(hashes), _IN_CHUNK):
        rows = conn.execute(select(audio_files.c.sha256, audio_files.c.start_s, audio_files.c.end_s, audio_files.c.id)
                            .where(audio_files.c.sha256.in_(hashes[i:i + _IN_CHUNK])))
        found.update(((r.sha256, r.start_s, r.end_s), r.id) for r in rows)
    return {k: v for k, v in found.items() if k in keys}


def write_import(conn: Connection, source: str, location: str, utterances: Sequence[ImportRow],
                 rejects: Sequence[Reject], already_present: int, split_version: str) -> int:
    """Insert one import batch inside the caller's transaction; returns the import id."""
    import_id = conn.execute(insert(imports).values(
        source=source, location=location, imported=len(utterances), already_present=already_present,
        rejected=len(rejects))).inserted_primary_key[0]
    if rejects:
        conn.execute(insert(import_rejects), [
            {"import_id": import_id, "row_ref": r.row_ref, "path": r.path, "reason": r.reason} for r in rejects])
    for u in utterances:
        audio_id = conn.execute(insert(audio_files).values(
            path=u.path, sha256=u.sha256, start_s=u.start_s, end_s=u.end_s, duration_s=u.end_s - u.start_s,
            sample_rate=u.sample_rate, channels=u.channels, format=u.format, language=u.language,
            dialect=u.dialect, speaker=u.speaker, utt_id=u.utt_id, source=source,
            import_id=import_id)).inserted_primary_key[0]
        conn.execute(insert(transcripts).values(
            audio_id=audio_id, raw_text=u.raw_text, normalized_text=u.normalized_text,
            normalizer_version=u.normalizer_version, word_count=len(u.normalized_text.split()),
            char_count=len(u.normalized_text.replace(" ", "")), annotation_type=u.annotation_type))
        if u.split is not None:
            conn.execute(insert(data_splits).values(audio_id=audio_id, split=u.split, version=split_version))
    return import_id


# ----------------------------------------------------------------------------------------------- splits

def auto_split(conn: Connection, version: str, ratios: tuple[float, float, float], seed: int) -> dict[str, int]:
    """Give every utterance without a split in ``version`` one, keeping speakers disjoint.

    Speakers that already have utterances in a split of ``version`` stay there; the others are
    placed by ``assign_speakers`` (an utterance without a speaker counts as its own speaker).
    Returns the number of utterances assigned per split.
    """
    check_ratios(ratios)
    rows = conn.execute(
        select(audio_files.c.id, audio_files.c.speaker, audio_files.c.duration_s, data_splits.c.split)
        .outerjoin(data_splits, (data_splits.c.audio_id == audio_files.c.id) & (data_splits.c.version == version))
        .order_by(audio_files.c.id)).all()
    split_of_speaker: dict[str, str] = {}
    duration = dict.fromkeys(SPLITS, 0.0)
    pending: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        speaker = row.speaker if row.speaker is not None else f"\0utt{row.id}"
        if row.split is not None:
            split_of_speaker.setdefault(speaker, row.split)
            duration[row.split] += row.duration_s
        else:
            pending[speaker].append((row.id, row.duration_s))
    placed = assign_speakers({s: [d for _, d in utts] for s, utts in pending.items()}, ratios, seed,
                             split_of_speaker, duration)
    assigned = dict.fromkeys(SPLITS, 0)
    values = []
    for speaker, split in placed.items():
        for audio_id, _ in pending[speaker]:
            values.append({"audio_id": audio_id, "split": split, "version": version})
            assigned[split] += 1
    if values:
        conn.execute(insert(data_splits), values)
    return assigned


def check_ratios(ratios: Sequence[float]) -> None:
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise ValueError(f"split ratios must be three non-negative numbers (train, val, test), got {ratios}")


def assign_speakers(seconds: Mapping[str, Sequence[float]], ratios: tuple[float, float, float], seed: int,
                    split_of_speaker: Mapping[str, str] | None = None,
                    duration: Mapping[str, float] | None = None) -> dict[str, str]:
    """A split for each speaker of ``seconds`` (speaker -> durations of its utterances, s).

    Speakers in ``split_of_speaker`` keep their split. The others are shuffled with ``seed`` and each
    goes to the split furthest below its share (``ratios``, train/val/test) of all the audio:
    ``duration`` (split -> seconds already there) plus ``seconds``. Splits with a zero share get
    nobody. Returns speaker -> split in the order the speakers were placed.
    """
    check_ratios(ratios)
    split_of_speaker = split_of_speaker or {}
    duration = {name: (duration or {}).get(name, 0.0) for name in SPLITS}
    total = sum(duration.values()) + sum(d for utts in seconds.values() for d in utts)
    shares = [r / sum(ratios) for r in ratios]
    speakers = sorted(seconds)
    random.Random(seed).shuffle(speakers)
    placed = {}
    for speaker in speakers:
        split = split_of_speaker.get(speaker)
        if split is None:
            deficits = [share * total - duration[name] for name, share in zip(SPLITS, shares)]
            split = SPLITS[max(range(3), key=lambda i: (deficits[i] if shares[i] > 0 else float("-inf"), -i))]
        placed[speaker] = split
        for d in seconds[speaker]:
            duration[split] += d
    return placed


# ----------------------------------------------------------------------------------------- bias lists

def write_bias_lists(conn: Connection, rows: Mapping[int, Sequence[tuple[str, bool]]]) -> int:
    """Store each audio id's bias list (phrase, is_entity) in list order, inside the caller's
    transaction. Phrases already stored for that audio id are skipped; returns the rows written."""
    ids = sorted(rows)
    stored: set[tuple[int, str]] = set()
    for i in range(0, len(ids), _IN_CHUNK):
        stored.update(tuple(r) for r in conn.execute(select(bias_phrases.c.audio_id, bias_phrases.c.phrase)
                                                     .where(bias_phrases.c.audio_id.in_(ids[i:i + _IN_CHUNK]))))
    values = [{"audio_id": audio_id, "phrase": phrase, "is_entity": is_entity, "position": position}
              for audio_id in ids for position, (phrase, is_entity) in enumerate(rows[audio_id])
              if (audio_id, phrase) not in stored]
    if values:
        conn.execute(insert(bias_phrases), values)
    return len(values)


def bias_lists(conn: Connection, split: str, version: str = "bias") -> dict[int, list[tuple[str, bool]]]:
    """audio id -> [(phrase, is_entity)] in list order, for the utterances of ``split`` in ``version``."""
    rows = conn.execute(
        select(bias_phrases.c.audio_id, bias_phrases.c.phrase, bias_phrases.c.is_entity)
        .join(data_splits, data_splits.c.audio_id == bias_phrases.c.audio_id)
        .where(data_splits.c.split == split, data_splits.c.version == version)
        .order_by(bias_phrases.c.audio_id, bias_phrases.c.position))
    lists: dict[int, list[tuple[str, bool]]] = defaultdict(list)
    for audio_id, phrase, is_entity in rows:
        lists[audio_id].append((phrase, bool(is_entity)))
    return dict(lists)


# ------------------------------------------------------------------------------------------------ stats

@dataclass(frozen=True)
class SplitStats:
    split: str
    utterances: int
    hours: float
    speakers: int
    words: int


def dataset_stats(conn: Connection, version: str = "default") -> list[SplitStats]:
    """Per-split totals of ``version`` from the dataset_stats view, in train/val/test order."""
    rows = conn.execute(text("SELECT split, utterances, hours, speakers, words FROM dataset_stats "
                             "WHERE split_version = :version"), {"version": version}).all()
    by_split = {r.split: SplitStats(r.split, int(r.utterances), float(r.hours or 0.0), int(r.speakers),
                                    int(r.words or 0)) for r in rows}
    return [by_split[s] for s in SPLITS if s in by_split]


def corpus_totals(conn: Connection) -> SplitStats:
    """Totals over every utterance in the database, split or not (split field = "all")."""
    row = conn.execute(select(func.count(audio_files.c.id), func.coalesce(func.sum(audio_files.c.duration_s), 0.0),
                              func.count(func.distinct(audio_files.c.speaker)),
                              func.coalesce(func.sum(transcripts.c.word_count), 0))
                       .select_from(audio_files.outerjoin(transcripts))).one()
    return SplitStats("all", int(row[0]), float(row[1]) / 3600.0, int(row[2]), int(row[3]))


def split_versions(conn: Connection) -> list[str]:
    return list(conn.execute(select(data_splits.c.version).distinct().order_by(data_splits.c.version)).scalars())
