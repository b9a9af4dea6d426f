"""The record of a training run: its training_runs row, the rows under it, its directory and train.log.

One ``RunTracker`` exists on every rank of a run; rank 0 alone writes the database, the log and the
run directory, and on every other rank each method returns at once, so the training loop calls it
without rank checks. A run is ``running`` from ``start`` (or ``resume``) until ``finish``:
``completed`` or ``stopped`` (at a step boundary) from the loop, ``stopped`` (a second Ctrl-C) or
``failed`` (an exception, whose text goes to ``error``) when an exception leaves ``recording``.
While it runs, ``beat`` (the loop calls it at every step) updates the row's heartbeat every
HEARTBEAT_S seconds; the row also names the process (pid, hostname), so that a run whose process was
killed outright reads as ``stale`` (``vasr.db.runs.run_state``).

The run directory is ``out_dir/<name>-<run id>``, created by this process alone (never an existing
directory: run ids restart in each database, so when that name is taken a random suffix is added,
``<name>-<run id>-<6 hex digits>``); the models row's checkpoint path and each checkpoint record it,
and a resume takes it from the checkpoint. ``check_name`` keeps the name one plain path component.

``checkpoint_model_id`` finds (or registers) the models row of any checkpoint file, for evaluation
and export of a checkpoint whose run was tracked in another database.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from vasr import __version__
from vasr.db import runs

if TYPE_CHECKING:
    from vasr.checkpoint import Loaded
    from vasr.text.tokens import Tokenizer

LOG_FILE = "train.log"
TOKENIZER_DIR = "tokenizer"    # the run's tokenizer, as Tokenizer.save writes it
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")   # a run name: one plain path component
HEARTBEAT_S = 30.0             # seconds between heartbeats (runs.STALE_AFTER_S: when a silent run is stale)
SUFFIX_HEX = 3                 # bytes of the random suffix of a run directory whose name is taken
log = logging.getLogger("vasr.train")


def check_name(name: object, field: str = "name") -> str:
    """``name`` if it can name a run directory; ValueError naming ``field`` and the allowed characters."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"{field} {name!r}: a run name is 1 to 64 ASCII letters, digits, '.', '_' or '-', "
                         f"not starting with '.' or '-'")
    return name


def new_run_dir(out_dir: str | os.PathLike, name: str, run_id: int) -> Path:
    """Create and return ``out_dir/<name>-<run id>``, or, when that exists (another database's run,
    a leftover), ``<name>-<run id>-<random hex>``: a directory no other run writes to."""
    parent = Path(out_dir).resolve()
    parent.mkdir(parents=True, exist_ok=True)
    stem = f"{check_name(name)}-{run_id}"
    path = parent / stem
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            path = parent / f"{stem}-{secrets.token_hex(SUFFIX_HEX)}"


def check_run_dir(run_dir: str | os.PathLike, name: str, run_id: int) -> Path:
    """``run_dir`` (from a checkpoint) if its last component is what ``new_run_dir`` makes for
    ``name`` and ``run_id``; ValueError otherwise."""
    path = Path(run_dir)
    if not re.fullmatch(rf"{re.escape(check_name(name))}-{int(run_id)}(-[0-9a-f]{{{2 * SUFFIX_HEX}}})?", path.name):
        raise ValueError(f"run directory {str(path)!r} is not the directory of run {run_id} ({name!r})")
    return path


class RunTracker:
    """The bookkeeping of one run on this rank; a no-op unless ``rank == 0``."""

    def __init__(self, engine: Engine, rank: int):
        """engine: the run's database, closed when ``recording`` ends."""
        self.engine = engine
        self.active = rank == 0
        self.run_id = 0                # 0 and Path() on other ranks of a new run: only rank 0 creates it
        self.run_dir = Path()
        self._handlers: list[logging.Handler] = []
        self._beat_at = -math.inf      # time.monotonic() of the last heartbeat

    def start(self, name: str, out_dir: str, split_version: str, config: dict, hyperparameters: dict,
              hardware: dict, augmentations: Sequence[dict], tokenizer: Tokenizer) -> None:
        """A new ``running`` row, its augmentation rows, and a new directory ``out_dir/<name>-<run id>/``
        (``new_run_dir``) holding the tokenizer and train.log (where the log goes from now on, and to stdout)."""
        if not self.active:
            return
        check_name(name)
        self.run_id = runs.create_run(self.engine, name, config, hyperparameters, split_version, hardware)
        self.run_dir = new_run_dir(out_dir, name, self.run_id)
        tokenizer.save(self.run_dir / TOKENIZER_DIR)
        runs.add_augmentations(self.engine, self.run_id, augmentations)
        self.beat(force=True)
        self._open_log()

    def resume(self, run_id: int, run_dir: str | os.PathLike) -> None:
        """Continue the run ``run_id`` (known on every rank from its checkpoint): running again."""
        self.run_id, self.run_dir = run_id, Path(run_dir)
        if not self.active:
            return
        runs.set_running(self.engine, run_id)
        self._beat_at = time.monotonic()
        self._open_log()

    def info(self, message: str, *args: object) -> None:
        if self.active:
            log.info(message, *args)

    def warning(self, message: str, *args: object) -> None:
        if self.active:
            log.warning(message, *args)

    def beat(self, force: bool = False) -> None:
        """The run is alive: its heartbeat, at most every HEARTBEAT_S seconds unless ``force``. A database
        too busy to take it is a warning, not the end of the run."""
        if not self.active or not (force or time.monotonic() - self._beat_at >= HEARTBEAT_S):
            return
        self._beat_at = time.monotonic()
        try:
            runs.heartbeat(self.engine, self.run_id)
        except OperationalError as exc:
            log.warning("run %d: heartbeat not recorded (%s)", self.run_id, str(exc).splitlines()[0][:200])

    def epoch(self, metrics: runs.EpochMetrics, audio_s_per_s: float, best: dict[str, float], improved: bool,
              samples: Sequence[dict], unknown: set[str]) -> None:
        """Log and store one finished epoch: its metrics row, the run's ``best`` values (best_cer, best_wer,
        best_val_loss) and final losses, on a new best CER (``improved``) its sample predictions; warn
        about the ``unknown`` characters the targets have dropped so far."""
        if not self.active:
            return
        m = metrics
        log.info("epoch %d: train loss %.4f, val loss %.4f, CER %.2f%%, WER %.2f%%, lr %.2e, %.0f s, "
                 "%.0f audio s/s%s", m.epoch, m.train_loss, m.val_loss, 100 * m.cer, 100 * m.wer, m.learning_rate,
                 m.duration_s, audio_s_per_s, " (best)" if improved else "")
        runs.add_epoch(self.engine, self.run_id, m)
        self.beat(force=True)
        runs.update_run(self.engine, self.run_id, **best, final_train_loss=m.train_loss, final_val_loss=m.val_loss)
        if improved:
            runs.replace_predictions(self.engine, self.run_id, "greedy", samples)
        if unknown:
            log.warning("characters outside the tokenizer, dropped from targets: %s", " ".join(sorted(unknown)))

    def register_model(self, name: str, architecture: str, config: dict, checkpoint: Path,
                       num_parameters: int) -> None:
        """The models row ``(name, run<id>)`` points at ``checkpoint``; the run links to it."""
        if not self.active:
            return
        model_id = runs.register_model(self.engine, name, f"run{self.run_id}", architecture, config,
                                       str(checkpoint), num_parameters)
        runs.update_run(self.engine, self.run_id, model_id=model_id)

    def finish(self, status: str, duration_s: float, error: str | None = None) -> None:
        """Close the run: ``status`` (completed, stopped or failed), training seconds, the exception text."""
        if self.active:
            runs.finish_run(self.engine, self.run_id, status, duration_s, error)
            log.info("run %d %s", self.run_id, status)

    @contextlib.contextmanager
    def recording(self, elapsed: Callable[[], float]) -> Iterator[None]:
        """The body of the run, which calls ``finish`` itself when it ends normally. An exception that
        leaves it finishes the run: ``stopped`` for a KeyboardInterrupt (a second Ctrl-C), else ``failed``
        with the exception's text; ``elapsed()`` gives the training seconds. The log files and the
        engine close in any case."""
        try:
            yield
        except KeyboardInterrupt:
            self.finish("stopped", elapsed())
            raise
        except BaseException as exc:
            self.finish("failed", elapsed(), f"{type(exc).__name__}: {exc}")
            raise
        finally:
            for handler in self._handlers:
                log.removeHandler(handler)
                handler.close()
            self._handlers = []
            self.engine.dispose()

    def _open_log(self) -> None:
        log.setLevel(logging.INFO)
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
        for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(self.run_dir / LOG_FILE)):
            handler.setFormatter(fmt)
            log.addHandler(handler)
            self._handlers.append(handler)
        log.propagate = False


def hardware(device: torch.device, world: int) -> dict:
    """What the training_runs row records about the machine."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "device": str(device),
            "world_size": world, "vasr": __version__, "allocator": allocator()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def allocator() -> str:
    """The malloc this process runs on: jemalloc when it is mapped in (``vasr.train.use_jemalloc``),
    else the C library's."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            return "jemalloc" if "libjemalloc" in maps.read() else "libc"
    except OSError:
        return "libc"


def checkpoint_model_id(engine: Engine, loaded: Loaded, checkpoint: str | os.PathLike) -> int:
    """The models row of the checkpoint file ``checkpoint`` in this database, registered now (version
    ``run<id>:<file stem>``) when the run that wrote it was tracked in another database."""
    path = str(Path(checkpoint).resolve())
    with engine.connect() as conn:
        found = runs.model_by_checkpoint(conn, path)
    if found is not None:
        return found
    return runs.register_model(engine, loaded.config.name, f"run{loaded.raw['run_id']}:{Path(path).stem}",
                               loaded.config.model.architecture, loaded.raw["config"], path,
                               loaded.raw["num_parameters"])
