"""The database layer against SQLite and a real PostgreSQL server."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from vasr.db import store
from vasr.db.schema import audio_files, data_splits, epoch_metrics, metadata, models, training_runs, transcripts


def test_migrated_schema_matches_metadata(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        head = ScriptDirectory.from_config(store._alembic_config()).get_current_head()
        assert store.schema_revision(conn) == head
        views = set(sa.inspect(conn).get_view_names())
    assert {"dataset_stats", "run_summary"} <= views


def test_connect_twice_keeps_data(db_url):
    first = store.connect(db_url)
    with first.begin() as conn:
        conn.execute(sa.insert(models).values(name="m", model_type="ctc", architecture="transformer",
                                              version="1", config={"d_model": 256}))
    first.dispose()
    second = store.connect(db_url)
    with second.connect() as conn:
        assert conn.execute(sa.select(models.c.config)).scalar_one() == {"d_model": 256}
    second.dispose()


def test_resolve_url(tmp_path, monkeypatch):
    monkeypatch.delenv(store.ENV_VAR, raising=False)
    assert store.resolve_url(tmp_path / "a" / "x.db") == f"sqlite:///{tmp_path}/a/x.db"
    assert (tmp_path / "a").is_dir()
    assert store.resolve_url("postgresql://u:p@127.0.0.1:5432/d") == "postgresql+psycopg://u:p@127.0.0.1:5432/d"
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "env.db"))
    assert store.resolve_url(None) == f"sqlite:///{tmp_path}/env.db"


def test_sqlite_pragmas(tmp_path):
    engine = store.connect(tmp_path / "p.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def _add_audio(conn, n: int, speaker: str | None, seconds: float, start: int = 0) -> list[int]:
    ids = []
    for i in range(start, start + n):
        ids.append(conn.execute(sa.insert(audio_files).values(
            path=f"/x/{speaker}/{i}.wav", sha256=f"{speaker}-{i}", end_s=seconds, duration_s=seconds,
            sample_rate=16000, channels=1, format="WAV", speaker=speaker, source="test")).inserted_primary_key[0])
        conn.execute(sa.insert(transcripts).values(audio_id=ids[-1], raw_text="a b", normalized_text="a b",
                                                   normalizer_version="1", word_count=2, char_count=2))
    return ids


def test_foreign_keys_cascade(engine):
    with engine.begin() as conn:
        (audio_id,) = _add_audio(conn, 1, "s", 1.0)
        conn.execute(sa.insert(data_splits).values(audio_id=audio_id, split="train"))
        conn.execute(sa.delete(audio_files).where(audio_files.c.id == audio_id))
        assert conn.execute(sa.select(sa.func.count()).select_from(transcripts)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(data_splits)).scalar() == 0
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            conn.execute(sa.insert(data_splits).values(audio_id=12345, split="train"))
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            (audio_id,) = _add_audio(conn, 1, "s", 1.0)
            conn.execute(sa.insert(data_splits).values(audio_id=audio_id, split="holdout"))


def test_auto_split_is_speaker_disjoint_seeded_and_stable(engine):
    with engine.begin() as conn:
        for s in range(20):
            _add_audio(conn, 5, f"spk{s:02d}", 2.0, start=s * 5)
        _add_audio(conn, 3, None, 1.0, start=1000)
        counts = store.auto_split(conn, "v1", (0.8, 0.1, 0.1), seed=7)
        assert sum(counts.values()) == 103
        rows = conn.execute(sa.select(audio_files.c.speaker, data_splits.c.split)
                            .join(data_splits, data_splits.c.audio_id == audio_files.c.id)
                            .where(audio_files.c.speaker.is_not(None))).all()
        splits_of = {}
        for speaker, split in rows:
            splits_of.setdefault(speaker, set()).add(split)
        assert all(len(s) == 1 for s in splits_of.values())
        per_split = {name: sum(1 for s in splits_of.values() if s == {name}) for name in ("train", "val", "test")}
        assert per_split == {"train": 16, "val": 2, "test": 2}
        first = dict(conn.execute(sa.select(data_splits.c.audio_id, data_splits.c.split)
                                  .where(data_splits.c.version == "v1")).all())
        # the same seed on another version gives the same assignment
        store.auto_split(conn, "v2", (0.8, 0.1, 0.1), seed=7)
        v2 = dict(conn.execute(sa.select(data_splits.c.audio_id, data_splits.c.split)
                               .where(data_splits.c.version == "v2")).all())
        assert v2 == first
        # new utterances of a known speaker join that speaker's split; nothing else moves
        new_ids = _add_audio(conn, 2, "spk03", 2.0, start=500)
        store.auto_split(conn, "v1", (0.8, 0.1, 0.1), seed=99)
        after = dict(conn.execute(sa.select(data_splits.c.audio_id, data_splits.c.split)
                                  .where(data_splits.c.version == "v1")).all())
        assert {k: after[k] for k in first} == first
        assert {after[i] for i in new_ids} == splits_of["spk03"]


def test_auto_split_rejects_bad_ratios(engine):
    with engine.begin() as conn, pytest.raises(ValueError, match="three finite non-negative"):
        store.auto_split(conn, "v", (0.8, -0.1, 0.3), seed=0)


def test_dataset_stats_view(engine):
    with engine.begin() as conn:
        train = _add_audio(conn, 4, "a", 900.0) + _add_audio(conn, 2, "b", 900.0, start=10)
        test = _add_audio(conn, 1, "c", 1800.0, start=20)
        _add_audio(conn, 1, "d", 5.0, start=30)  # no split
        conn.execute(sa.insert(data_splits), [{"audio_id": i, "split": "train"} for i in train]
                     + [{"audio_id": i, "split": "test"} for i in test])
        stats = store.dataset_stats(conn)
        totals = store.corpus_totals(conn)
    assert [(s.split, s.utterances, round(s.hours, 6), s.speakers, s.words) for s in stats] == [
        ("train", 6, 1.5, 2, 12), ("test", 1, 0.5, 1, 2)]
    assert (totals.utterances, round(totals.hours * 3600, 6), totals.speakers, totals.words) == (8, 7205.0, 4, 16)


def test_run_summary_view(engine):
    with engine.begin() as conn:
        model_id = conn.execute(sa.insert(models).values(
            name="tiny", model_type="ctc", architecture="transformer", version="1", config={},
            num_parameters=123)).inserted_primary_key[0]
        run_id = conn.execute(sa.insert(training_runs).values(
            name="r1", model_id=model_id, config={}, hyperparameters={"lr": 1e-3}, status="completed",
            best_cer=0.25)).inserted_primary_key[0]
        conn.execute(sa.insert(epoch_metrics), [{"run_id": run_id, "epoch": e, "train_loss": 1.0 / (e + 1)}
                                                for e in range(3)])
        row = conn.execute(sa.text("SELECT name, status, model_name, num_parameters, epochs, best_cer "
                                   "FROM run_summary")).one()
    assert tuple(row) == ("r1", "completed", "tiny", 123, 3, 0.25)
