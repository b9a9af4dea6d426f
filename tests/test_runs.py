"""Runs recorded by the trainer's run tracker (rank 0 only), and `vasr runs list|show|compare|plot` over them."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select
from test_train import make_corpus, tiny_config

from vasr import runs
from vasr.db import runs as run_queries
from vasr.db import store
from vasr.db.schema import data_augmentations, epoch_metrics, models, predictions, training_runs
from vasr.text.tokens import CharTokenizer
from vasr.tracker import RunTracker, checkpoint_model_id
from vasr.train import train


@pytest.fixture
def two_runs(tmp_path):
    db = str(tmp_path / "vasr.db")
    make_corpus(tmp_path / "audio", db)
    first = train(tiny_config(db, tmp_path / "runs", epochs=2))
    second = train(tiny_config(db, tmp_path / "runs", epochs=1, name="other", precision="bf16"))
    return db, first.run_id, second.run_id


def test_list_show_compare(two_runs):
    db, a, b = two_runs
    engine = store.connect(db)
    listing = runs.list_runs(engine, sort="id", ascending=True).splitlines()
    assert listing[0].split()[:3] == ["id", "name", "status"]
    assert [line.split()[:4] for line in listing[1:]] == [[str(a), "t", "completed", "2"],
                                                          [str(b), "other", "completed", "1"]]
    assert runs.list_runs(engine, sort="id").splitlines()[1].split()[0] == str(b)
    shown = runs.show_run(engine, a)
    assert f"run {a} 't': completed" in shown and "augmentations: speed p=0.5, spec p=1" in shown
    assert len([line for line in shown.splitlines() if line.strip().startswith(("1 ", "2 "))]) == 2
    assert "ref: " in shown
    compared = runs.compare_runs(engine, [a, b])
    assert "config differences:" in compared
    differing = [line.split()[0] for line in compared.split("config differences:")[1].splitlines() if line.strip()]
    assert differing == ["epochs", "name", "precision"]


def test_sort_keys_are_a_whitelist(two_runs):
    db, _, _ = two_runs
    engine = store.connect(db)
    with pytest.raises(ValueError, match="unknown sort key"):
        runs.list_runs(engine, sort="id; DROP TABLE training_runs")
    with engine.connect() as conn:
        assert len(run_queries.list_runs(conn, "cer")) == 2


def test_plot_writes_a_png(two_runs, tmp_path):
    db, a, b = two_runs
    out = runs.plot_runs(store.connect(db), [a, b], tmp_path / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_cli_runs(two_runs, tmp_path):
    db, a, b = two_runs
    cmd = [sys.executable, "-m", "vasr", "runs"]
    out = subprocess.run(cmd + ["list", "--db", db, "--sort", "cer"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "completed" in out.stdout
    out = subprocess.run(cmd + ["plot", str(a), str(b), "--out", str(tmp_path / "p.png"), "--db", db],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and (tmp_path / "p.png").exists()
    out = subprocess.run(cmd + ["show", "999", "--db", db], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no training run with id 999" in out.stderr


def _track(tracker: RunTracker, out, audio_id: int) -> None:
    """One epoch, a model and a normal end, as the trainer reports them."""
    tracker.start("t", str(out), "default", {"epochs": 1}, {"lr": 0.5}, {"device": "cpu"},
                  [{"name": "speed", "params": {"factors": [1.1]}, "probability": 0.5, "enabled": True}],
                  CharTokenizer.build(["ba"]))
    tracker.info("run %d started", tracker.run_id)
    with tracker.recording(lambda: 12.5):
        tracker.epoch(run_queries.EpochMetrics(1, 2.0, 3.0, 0.5, 0.75, 1e-3, 9.0), 100.0,
                      {"best_cer": 0.5, "best_wer": 0.75, "best_val_loss": 3.0}, True,
                      [{"audio_id": audio_id, "text": "ba", "reference": "bà", "cer": 0.5, "wer": 1.0}], {"ẞ"})
        tracker.register_model("t", "transformer", {"epochs": 1}, Path(out) / "best.pt", 1234)
        tracker.finish("completed", 12.5)


def _counts(db: str) -> dict[str, int]:
    engine = store.connect(db)
    with engine.connect() as conn:
        counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                  for t in (training_runs, epoch_metrics, predictions, models, data_augmentations)}
    engine.dispose()
    return counts


def test_the_tracker_records_nothing_on_other_ranks(tmp_path):
    db = str(tmp_path / "vasr.db")
    make_corpus(tmp_path / "audio", db)
    handlers = list(logging.getLogger("vasr.train").handlers)
    tracker = RunTracker(store.connect(db), rank=1)
    _track(tracker, tmp_path / "runs", audio_id=7)
    assert (tracker.run_id, tracker.run_dir) == (0, Path())
    assert not (tmp_path / "runs").exists() and logging.getLogger("vasr.train").handlers == handlers
    assert _counts(db) == {"training_runs": 0, "epoch_metrics": 0, "predictions": 0, "models": 0,
                           "data_augmentations": 0}


def test_the_tracker_records_a_run_on_rank_zero(tmp_path, capsys):
    db = str(tmp_path / "vasr.db")
    make_corpus(tmp_path / "audio", db)
    handlers = list(logging.getLogger("vasr.train").handlers)
    tracker = RunTracker(store.connect(db), rank=0)
    _track(tracker, tmp_path / "runs", audio_id=7)
    assert (tracker.run_id, tracker.run_dir) == (1, (tmp_path / "runs").resolve() / "t-1")
    assert _counts(db) == {"training_runs": 1, "epoch_metrics": 1, "predictions": 1, "models": 1,
                           "data_augmentations": 1}
    engine = store.connect(db)
    with engine.connect() as conn:
        run = run_queries.get_run(conn, 1)
        assert (run.name, run.status, run.error, run.duration_s, run.split_version) == ("t", "completed", None, 12.5,
                                                                                         "default")
        assert (run.best_cer, run.best_wer, run.best_val_loss, run.final_train_loss, run.final_val_loss) == \
            (0.5, 0.75, 3.0, 2.0, 3.0)
        assert (run.config, run.hyperparameters, run.hardware) == ({"epochs": 1}, {"lr": 0.5}, {"device": "cpu"})
        assert run_queries.run_epochs(conn, 1) == [run_queries.EpochMetrics(1, 2.0, 3.0, 0.5, 0.75, 1e-3, 9.0)]
        [pred] = run_queries.run_predictions(conn, run_id=1)
        assert (pred.audio_id, pred.text, pred.reference, pred.decoder, pred.cer) == (7, "ba", "bà", "greedy", 0.5)
        model = conn.execute(select(models)).one()
        assert (run.model_id, model.name, model.version, model.checkpoint_path, model.num_parameters) == \
            (model.id, "t", "run1", str(tmp_path / "runs" / "best.pt"), 1234)
    engine.dispose()
    log = (tracker.run_dir / "train.log").read_text(encoding="utf-8")
    assert "INFO run 1 started" in log and "INFO run 1 completed" in log
    assert "epoch 1: train loss 2.0000, val loss 3.0000, CER 50.00%, WER 75.00%, lr 1.00e-03, 9 s, " \
           "100 audio s/s (best)" in log
    assert "WARNING characters outside the tokenizer, dropped from targets: ẞ" in log
    assert log.count("\n") == 4 and capsys.readouterr().out.count("\n") == 4     # stdout gets the same lines
    assert (tracker.run_dir / "tokenizer" / "tokens.txt").read_text(encoding="utf-8") == "<blk> 0\n▁ 1\na 2\nb 3\n"
    assert logging.getLogger("vasr.train").handlers == handlers      # the log files are closed


def test_an_exception_leaving_the_run_marks_it(tmp_path):
    db = str(tmp_path / "vasr.db")
    for exc, status, error in [(ValueError("boom"), "failed", "ValueError: boom"),
                               (KeyboardInterrupt(), "stopped", None)]:
        tracker = RunTracker(store.connect(db), rank=0)
        tracker.start("t", str(tmp_path / "runs"), "default", {}, {}, {}, [], CharTokenizer.build(["ba"]))
        with pytest.raises(type(exc)), tracker.recording(lambda: 2.0):
            raise exc
        engine = store.connect(db)
        with engine.connect() as conn:
            run = run_queries.get_run(conn, tracker.run_id)
        engine.dispose()
        assert (run.status, run.error, run.duration_s) == (status, error, 2.0) and run.finished_at is not None


def test_checkpoint_model_id_finds_or_registers_the_file(tmp_path):
    engine = store.connect(str(tmp_path / "vasr.db"))
    loaded = SimpleNamespace(config=SimpleNamespace(name="m", model=SimpleNamespace(architecture="conformer")),
                             raw={"run_id": 7, "config": {"name": "m"}, "num_parameters": 99})
    first = checkpoint_model_id(engine, loaded, tmp_path / "a" / ".." / "best.pt")
    assert checkpoint_model_id(engine, loaded, tmp_path / "best.pt") == first
    with engine.connect() as conn:
        row = conn.execute(select(models)).one()
    assert (row.id, row.name, row.version, row.architecture, row.checkpoint_path, row.num_parameters) == \
        (first, "m", "run7:best", "conformer", str((tmp_path / "best.pt").resolve()), 99)
    engine.dispose()
