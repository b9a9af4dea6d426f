"""Queries for training runs: the run row, per-epoch metrics, predictions, models, augmentations.

A run is ``running`` only while its process lives: the run tracker (``vasr.tracker``) calls
``finish_run`` with ``completed``, ``stopped`` (Ctrl-C, a step limit) or ``failed`` (an exception,
whose text goes to ``error``). A process killed outright (kill -9, a lost machine) cannot: its row
records the process (pid, hostname) and a heartbeat, and ``run_state`` shows such a row as ``stale``.
Sort keys reach SQL only through the ``RUN_SORT_KEYS`` whitelist.
"""
from __future__ import annotations

import datetime as dt
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from vasr.data.utterance import DataSource, Utterance, manifest_utterances
from vasr.db.schema import (RUN_STATUSES, audio_files, check_lengths, data_augmentations, data_splits, epoch_metrics,
                            models, predictions, training_runs, transcripts)

STALE_AFTER_S = 600.0    # a running row without a heartbeat for this long is stale (vasr.tracker beats every 30 s)
STALE = "stale"          # what run_state calls a running row whose process is gone

# user-facing sort key -> column; nothing else is ever put into ORDER BY
RUN_SORT_KEYS = {
    "id": training_runs.c.id, "name": training_runs.c.name, "started": training_runs.c.started_at,
    "duration": training_runs.c.duration_s, "cer": training_runs.c.best_cer, "wer": training_runs.c.best_wer,
    "val_loss": training_runs.c.best_val_loss, "status": training_runs.c.status,
}


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float | None
    val_loss: float | None
    cer: float | None
    wer: float | None
    learning_rate: float | None
    duration_s: float | None


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def split_records(conn: Connection, split: str, version: str = "default") -> list[Utterance]:
    """Every utterance of ``split`` in split ``version`` with its transcript, ordered by audio id."""
    rows = conn.execute(
        select(audio_files.c.id, audio_files.c.path, audio_files.c.start_s, audio_files.c.end_s,
               audio_files.c.duration_s, audio_files.c.speaker, transcripts.c.normalized_text)
        .join(transcripts, transcripts.c.audio_id == audio_files.c.id)
        .join(data_splits, data_splits.c.audio_id == audio_files.c.id)
        .where(data_splits.c.split == split, data_splits.c.version == version)
        .order_by(audio_files.c.id)).all()
    return [Utterance(str(r[0]), r[1], r[2], r[3], r[4], r[6], r[5], audio_id=r[0]) for r in rows]


def load_utterances(source: DataSource, db: str | os.PathLike | None = None) -> list[Utterance]:
    """The utterances of ``source`` (``db``: the database URL or path, default $VASR_DB or
    data/vasr.db); ValueError naming the source when it has none."""
    if source.manifest:
        utterances = manifest_utterances(source.manifest)
    else:
        from vasr.db import store

        engine = store.connect(db)
        try:
            with engine.connect() as conn:
                utterances = split_records(conn, source.split, source.version)
        finally:
            engine.dispose()
    if not utterances:
        raise ValueError(f"{source.describe()} has no utterances")
    return utterances



def create_run(engine: Engine, name: str, config: dict, hyperparameters: dict, split_version: str,
               hardware: dict) -> int:
    check_lengths(training_runs, {"name": name, "split_version": split_version}, "training run")
    with engine.begin() as conn:
        return conn.execute(insert(training_runs).values(
            name=name, config=config, hyperparameters=hyperparameters, status="running", split_version=split_version,
            started_at=now(), hardware=hardware, pid=os.getpid(), hostname=socket.gethostname())
        ).inserted_primary_key[0]


def set_running(engine: Engine, run_id: int) -> None:
    """A resumed run is running again, in this process; its error from the interruption is cleared."""
    with engine.begin() as conn:
        conn.execute(update(training_runs).where(training_runs.c.id == run_id)
                     .values(status="running", finished_at=None, error=None, pid=os.getpid(),
                             hostname=socket.gethostname(), heartbeat_at=now()))


def heartbeat(engine: Engine, run_id: int) -> None:
    """The running run ``run_id`` is alive now."""
    with engine.begin() as conn:
        conn.execute(update(training_runs).where(training_runs.c.id == run_id).values(heartbeat_at=now()))


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this host (a zombie, killed but not reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):        # another user's process (or a platform without signal 0)
        return False
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
            return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except (OSError, IndexError):
            return False
    return False


def run_state(row: Any, at: dt.datetime | None = None) -> tuple[str, str | None]:
    """How a training_runs ``row`` stands (at time ``at``, default now): its status, except that a
    ``running`` row is ``stale`` when its process is gone (same host, the pid no longer runs) or its
    heartbeat is older than STALE_AFTER_S; with the reason, or None."""
    if row.status != "running":
        return row.status, None
    pid, host, beat = getattr(row, "pid", None), getattr(row, "hostname", None), getattr(row, "heartbeat_at", None)
    if pid is not None and host == socket.gethostname() and _process_gone(pid):
        return STALE, f"its process {pid} on {host} is gone"
    if beat is not None:
        beat = beat if beat.tzinfo else beat.replace(tzinfo=dt.timezone.utc)   # SQLite gives naive UTC
        silent = ((at or now()) - beat).total_seconds()
        if silent > STALE_AFTER_S:
            return STALE, (f"no heartbeat for {silent / 60:.0f} min (last {beat:%Y-%m-%d %H:%M:%S} UTC"
                           f"{f', process {pid} on {host}' if pid is not None else ''})")
    return "running", None


def update_run(engine: Engine, run_id: int, **values: Any) -> None:
    """Set summary columns (best_cer, best_wer, best_val_loss, final_*_loss, model_id, duration_s)."""
    allowed = {"best_cer", "best_wer", "best_val_loss", "final_train_loss", "final_val_loss", "model_id",
               "duration_s"}
    bad = set(values) - allowed
    if bad:
        raise ValueError(f"cannot update training_runs column(s) {sorted(bad)}")
    with engine.begin() as conn:
        conn.execute(update(training_runs).where(training_runs.c.id == run_id).values(**values))


def finish_run(engine: Engine, run_id: int, status: str, duration_s: float, error: str | None = None) -> None:
    if status not in RUN_STATUSES or status in ("pending", "running"):
        raise ValueError(f"a finished run is completed, stopped or failed, not {status!r}")
    with engine.begin() as conn:
        conn.execute(update(training_runs).where(training_runs.c.id == run_id).values(
            status=status, finished_at=now(), duration_s=duration_s, error=error))


def add_epoch(engine: Engine, run_id: int, m: EpochMetrics) -> None:
    """Record (or, after a resume repeats an epoch, replace) one epoch's metrics."""
    with engine.begin() as conn:
        conn.execute(epoch_metrics.delete().where(epoch_metrics.c.run_id == run_id,
                                                  epoch_metrics.c.epoch == m.epoch))
        conn.execute(insert(epoch_metrics).values(run_id=run_id, **m.__dict__))


def add_augmentations(engine: Engine, run_id: int, rows: Sequence[dict]) -> None:
    """rows: {name, params, probability, enabled}; replaces what the run had recorded."""
    with engine.begin() as conn:
        conn.execute(data_augmentations.delete().where(data_augmentations.c.run_id == run_id))
        if rows:
            conn.execute(insert(data_augmentations), [{"run_id": run_id, **r} for r in rows])


def register_model(engine: Engine, name: str, version: str, architecture: str, config: dict,
                   checkpoint_path: str, num_parameters: int) -> int:
    """The id of the models row (name, version), created or updated to point at ``checkpoint_path``."""
    check_lengths(models, {"name": name, "version": version, "architecture": architecture}, f"model {name!r}")
    with engine.begin() as conn:
        found = conn.execute(select(models.c.id).where(models.c.name == name, models.c.version == version)).scalar()
        values = dict(model_type="ctc", architecture=architecture, config=config, checkpoint_path=checkpoint_path,
                      num_parameters=num_parameters)
        if found is not None:
            conn.execute(update(models).where(models.c.id == found).values(**values))
            return found
        return conn.execute(insert(models).values(name=name, version=version, **values)).inserted_primary_key[0]


def model_by_checkpoint(conn: Connection, checkpoint_path: str) -> int | None:
    return conn.execute(select(models.c.id).where(models.c.checkpoint_path == checkpoint_path)
                        .order_by(models.c.id)).scalars().first()


def set_onnx_path(engine: Engine, model_id: int, onnx_path: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(models).where(models.c.id == model_id).values(onnx_path=onnx_path))


def add_predictions(engine: Engine, rows: Sequence[dict]) -> None:
    """rows: predictions columns (audio_id, text, reference, decoder, run_id/model_id, wer, cer, ...)."""
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(predictions), list(rows))


def replace_predictions(engine: Engine, run_id: int, decoder: str, rows: Sequence[dict]) -> None:
    """The run's sample predictions of ``decoder`` become ``rows`` (those of its newest best model)."""
    with engine.begin() as conn:
        conn.execute(predictions.delete().where(predictions.c.run_id == run_id, predictions.c.decoder == decoder))
        if rows:
            conn.execute(insert(predictions), [{"run_id": run_id, "decoder": decoder, **r} for r in rows])


def list_runs(conn: Connection, sort: str = "id", descending: bool = True, limit: int = 50) -> list[Any]:
    if sort not in RUN_SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}; choose from {', '.join(RUN_SORT_KEYS)}")
    column = RUN_SORT_KEYS[sort]
    order = column.desc().nulls_last() if descending else column.asc().nulls_last()
    return conn.execute(select(training_runs).order_by(order, training_runs.c.id).limit(limit)).all()


def get_run(conn: Connection, run_id: int) -> Any:
    row = conn.execute(select(training_runs).where(training_runs.c.id == run_id)).first()
    if row is None:
        raise ValueError(f"no training run with id {run_id}")
    return row


def run_epochs(conn: Connection, run_id: int) -> list[EpochMetrics]:
    rows = conn.execute(select(epoch_metrics).where(epoch_metrics.c.run_id == run_id)
                        .order_by(epoch_metrics.c.epoch)).all()
    return [EpochMetrics(r.epoch, r.train_loss, r.val_loss, r.cer, r.wer, r.learning_rate, r.duration_s)
            for r in rows]


def run_augmentations(conn: Connection, run_id: int) -> list[Any]:
    return conn.execute(select(data_augmentations).where(data_augmentations.c.run_id == run_id)
                        .order_by(data_augmentations.c.id)).all()


def run_predictions(conn: Connection, run_id: int | None = None, model_id: int | None = None) -> list[Any]:
    query = select(predictions).order_by(predictions.c.id)
    if run_id is not None:
        query = query.where(predictions.c.run_id == run_id)
    if model_id is not None:
        query = query.where(predictions.c.model_id == model_id)
    return conn.execute(query).all()
