"""Training never reports success for a broken run: config bounds, non-finite losses, long utterances,
runs whose process died (kill -9), unreadable checkpoints; each a clear line through ``python -m vasr.train``."""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import yaml
from sqlalchemy import select
from test_train import make_corpus, tiny_config

from vasr import config as cfg
from vasr import runs as run_views
from vasr import train as train_module
from vasr.db import runs, store
from vasr.db.schema import models, training_runs
from vasr.train import NONFINITE_STEPS, main, train

# the tiny model of tests/test_demo.py, on the 6-utterance corpus of tests/test_train.py
TINY = ["epochs=2", "max_minutes=0", "progress=false", "precision=fp32", "model.d_model=32", "model.num_layers=1",
        "model.num_heads=2", "model.ff_dim=64", "model.subsampling_channels=8", "data.max_frames=150",
        "augment.speed.prob=0", "augment.noise.prob=0", "augment.volume.prob=0", "augment.spec.prob=0"]


@pytest.fixture
def corpus(tmp_path) -> str:
    db = str(tmp_path / "vasr.db")
    make_corpus(tmp_path / "audio", db)
    return db


def _cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vasr.train", *args], capture_output=True, text=True,
                          timeout=timeout)


def _rows(db: str) -> tuple[list, list]:
    engine = store.connect(db)
    with engine.connect() as conn:
        found = conn.execute(select(training_runs).order_by(training_runs.c.id)).all(), \
            conn.execute(select(models)).all()
    engine.dispose()
    return found


def _one_line_error(err: str, *words: str) -> None:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("python -m vasr.train: error: "), err
    for word in words:
        assert word in lines[0], (word, err)


CONFIG_ERRORS = [  # override(s) -> words of the one-line message
    (["epochs=0"], ["epochs must be >= 1, got 0"]),
    (["optim.lr=-1e-3"], ["optim.lr must be > 0 and finite, got -0.001"]),
    (["optim.lr=.nan"], ["optim.lr must be > 0", "nan"]),
    (["optim.lr=.inf"], ["optim.lr must be > 0", "inf"]),
    (["data.max_frames=0"], ["data.max_frames must be >= 1"]),
    (["data.max_frames=-5"], ["data.max_frames must be >= 1", "-5"]),
    (["optim.accum_steps=0"], ["optim.accum_steps must be >= 1"]),
    (["max_minutes=-1"], ["max_minutes must be >= 0", "-1.0"]),
    (["max_steps=-1"], ["max_steps must be >= 0"]),
    (["threads=-1"], ["threads must be between 0", "CPU cores", "-1"]),
    ([f"threads={4 * (os.cpu_count() or 1) + 1}"], ["threads must be between 0", f"{4 * (os.cpu_count() or 1)}"]),
    (["data.max_duration_s=0"], ["data.max_duration_s must be > 0"]),
    (["data.num_buckets=0"], ["data.num_buckets must be >= 1"]),
    (["optim.betas=[0.9,1.5]"], ["optim.betas must be two values in [0, 1)"]),
    (["augment.speed.prob=2"], ["augment.speed.prob must be in [0, 1], got 2.0"]),
    (["model.d_model=30", "model.num_heads=4"], ["model.d_model 30 must be a multiple of model.num_heads 4"]),
    (["model.num_heads=0"], ["model.num_heads must be >= 1, got 0"]),
    (["model.dropout=1.0"], ["model.dropout must be in [0, 1)"]),
    (["model.conv_kernel=4"], ["model.conv_kernel must be odd"]),
    (["model.num_mel_bins=40"], ["model.num_mel_bins must be 80"]),
    (["seed=-1"], ["seed must be in [0, 2^31)"]),
    (["precision=fp16", "device=cpu"], ["precision fp16 needs CUDA"]),
]


@pytest.mark.parametrize("overrides,words", CONFIG_ERRORS, ids=[" ".join(o) for o, _ in CONFIG_ERRORS])
def test_config_errors_are_one_line_before_anything_is_written(overrides, words, tmp_path, capsys):
    db, out = tmp_path / "new.db", tmp_path / "runs"
    with pytest.raises(SystemExit) as exit_:
        main(["--config", "tiny", "--db", str(db), *TINY, f"out_dir={out}", *overrides])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    _one_line_error(captured.err, *words)
    assert not db.exists() and not out.exists()       # no database, no row, no directory


def test_epochs_0_through_the_entry_point(tmp_path):
    result = _cli("--config", "tiny", "--db", str(tmp_path / "new.db"), *TINY, "epochs=0")
    assert result.returncode == 2
    _one_line_error(result.stderr, "epochs must be >= 1, got 0")
    assert not (tmp_path / "new.db").exists()


def test_a_diverging_run_fails_and_registers_nothing(corpus, tmp_path):
    out = tmp_path / "runs"
    result = _cli("--config", "tiny", "--db", corpus, *TINY, f"out_dir={out}", "optim.lr=1e10",
                  "optim.warmup_steps=1")
    assert result.returncode == 1, result.stdout + result.stderr
    _one_line_error(result.stderr, "run failed: non-finite", "epoch 1, step", "steps in a row", "optim.lr")
    assert result.stdout.count("step skipped") == NONFINITE_STEPS - 1
    [run], found_models = _rows(corpus)
    assert run.status == "failed" and "Diverged: non-finite" in run.error and run.model_id is None
    assert found_models == []
    for saved in out.rglob("*.pt"):     # whatever was saved before is finite
        state = torch.load(saved, weights_only=False)["model"]
        assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()), saved


def test_a_single_nonfinite_step_is_skipped_and_a_run_of_them_fails(corpus, tmp_path, monkeypatch):
    real = train_module.ctc_loss_sum
    calls = []

    def loss_nan_at(bad: set[int]):
        def loss(*args):
            calls.append(1)
            value = real(*args)
            return value * float("nan") if len(calls) in bad else value
        return loss

    monkeypatch.setattr(train_module, "ctc_loss_sum", loss_nan_at({2}))      # the 2nd training batch
    result = train(tiny_config(corpus, tmp_path / "a", epochs=1))
    assert result.status == "completed"
    log = (result.run_dir / "train.log").read_text(encoding="utf-8")
    assert "WARNING non-finite loss (nan) at epoch 1, step 2 (batch 2): step skipped (1 of 3" in log
    [run], [model] = _rows(corpus)
    assert run.status == "completed" and run.model_id == model.id and run.final_train_loss < 1e3

    calls.clear()
    monkeypatch.setattr(train_module, "ctc_loss_sum", loss_nan_at(set(range(2, 100))))
    # 3 batches an epoch: batches 2 and 3 of epoch 1 and batch 1 of epoch 2 are 3 in a row
    with pytest.raises(train_module.Diverged, match=r"non-finite loss \(nan\) at epoch 2, step 2 \(batch 1\), "
                                                    r"3 steps in a row"):
        train(tiny_config(corpus, tmp_path / "b", epochs=3, name="b"))
    rows, found_models = _rows(corpus)
    assert rows[-1].status == "failed" and "Diverged" in rows[-1].error and rows[-1].model_id is None
    assert len(found_models) == 1   # the first run's only


def test_long_training_utterances_are_counted_or_refused(corpus, tmp_path, capsys):
    # training tones last 0.30, 0.37, ... 0.65 s (audio ids 1..6)
    config = tiny_config(corpus, tmp_path / "runs", epochs=1)
    result = train(dataclasses.replace(config, data=dataclasses.replace(config.data, max_duration_s=0.5)))
    line = "WARNING 3 training utterance(s) longer than data.max_duration_s=0.5 s skipped (the longest 0.7 s, " \
           "audio id 6)"
    assert line in (result.run_dir / "train.log").read_text(encoding="utf-8") and line in capsys.readouterr().out
    [run], _ = _rows(corpus)
    assert run.hyperparameters["train_utterances"] == 3 and run.hyperparameters["skipped_long_utterances"] == 3

    with pytest.raises(SystemExit) as exit_:
        main(["--config", "tiny", "--db", corpus, *TINY, f"out_dir={tmp_path / 'none'}", "data.max_duration_s=0.1"])
    assert exit_.value.code == 2
    _one_line_error(capsys.readouterr().err, "all 6 training utterances are longer than data.max_duration_s=0.1 s",
                    "the longest 0.7 s, audio id 6")
    assert len(_rows(corpus)[0]) == 1 and not (tmp_path / "none").exists()


def test_a_killed_run_is_shown_stale(corpus, tmp_path):
    path = tmp_path / "endless.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict(tiny_config(corpus, tmp_path / "runs", epochs=100_000))))
    proc = subprocess.Popen([sys.executable, "-m", "vasr.train", "--config", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:
            if "epoch 1:" in line:
                break
        engine = store.connect(corpus)
        with engine.connect() as conn:
            [run] = conn.execute(select(training_runs)).all()
        assert (run.status, run.pid, run.hostname) == ("running", proc.pid, socket.gethostname())
        assert run.heartbeat_at is not None and runs.run_state(run) == ("running", None)
        assert run_views.list_runs(engine).splitlines()[1].split()[2] == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    listing = subprocess.run([sys.executable, "-m", "vasr", "runs", "list", "--db", corpus], capture_output=True,
                             text=True, timeout=60)
    assert listing.returncode == 0 and listing.stdout.splitlines()[1].split()[:3] == [str(run.id), "t", "stale"]
    assert f"run {run.id} 't': stale (its process {proc.pid} on {socket.gethostname()} is gone)" in \
        run_views.show_run(engine, run.id)
    assert run_views.compare_runs(engine, [run.id]).splitlines()[1].split() == ["status", "stale"]
    with engine.connect() as conn:
        assert runs.get_run(conn, run.id).status == "running"      # stored as it was; shown as stale
    engine.dispose()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
HERE = socket.gethostname()
STATES = [  # row -> status shown
    (dict(status="completed", pid=None, hostname=None, heartbeat_at=None), "completed"),
    (dict(status="failed", pid=1, hostname=HERE, heartbeat_at=NOW - dt.timedelta(days=9)), "failed"),
    (dict(status="running", pid=os.getpid(), hostname=HERE, heartbeat_at=NOW - dt.timedelta(seconds=40)), "running"),
    (dict(status="running", pid="dead", hostname=HERE, heartbeat_at=NOW), "stale"),
    (dict(status="running", pid="dead", hostname="elsewhere", heartbeat_at=NOW), "running"),    # not ours to check
    (dict(status="running", pid=5, hostname="elsewhere", heartbeat_at=NOW - dt.timedelta(minutes=11)), "stale"),
    (dict(status="running", pid=os.getpid(), hostname=HERE, heartbeat_at=NOW - dt.timedelta(minutes=11)), "stale"),
    (dict(status="running", pid=5, hostname="elsewhere", heartbeat_at=(NOW - dt.timedelta(minutes=11)).replace(
        tzinfo=None)), "stale"),                                                                  # SQLite: naive UTC
    (dict(status="running", pid=None, hostname=None, heartbeat_at=None), "running"),             # before 0004
    (dict(status="running", pid=os.getpid(), hostname=HERE, heartbeat_at=None), "running"),      # punct: no beats
]


@pytest.mark.parametrize("row,shown", STATES)
def test_run_state(row, shown):
    row = SimpleNamespace(**{**row, "pid": _dead_pid() if row["pid"] == "dead" else row["pid"]})
    state, why = runs.run_state(row, at=NOW)
    assert state == shown and (why is None) == (shown != "stale")


def test_unreadable_checkpoints_are_one_line_through_the_entry_point(tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 100)
    result = _cli("--resume", str(garbage))
    assert result.returncode == 2
    _one_line_error(result.stderr, "garbage.pt: refused: not a weights-only checkpoint")
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 200)        # a cut-off zip
    for resume, words in [(tmp_path / "cut.pt", "cut.pt: not a readable checkpoint"),
                          (tmp_path / "missing.pt", "missing.pt: no such checkpoint"),
                          (tmp_path, "is a directory, not a checkpoint file")]:
        with pytest.raises(SystemExit) as exit_:
            main(["--resume", str(resume)])
        assert exit_.value.code == 2
        _one_line_error(capsys.readouterr().err, words)


def test_a_resumed_checkpoint_out_of_bounds_is_refused_naming_the_file(corpus, tmp_path, capsys):
    stopped = train(tiny_config(corpus, tmp_path / "runs", epochs=2), stop_at_step=1)
    raw = torch.load(stopped.run_dir / "last.pt", weights_only=False)
    raw["config"]["optim"]["lr"] = -1.0
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(SystemExit) as exit_:
        main(["--resume", str(tmp_path / "bad.pt")])
    assert exit_.value.code == 2
    _one_line_error(capsys.readouterr().err, "bad.pt: optim.lr must be > 0")
    [run], _ = _rows(corpus)
    assert run.status == "stopped"        # untouched
