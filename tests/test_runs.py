"""`vasr runs list|show|compare|plot` over runs recorded by the trainer."""
from __future__ import annotations

import subprocess
import sys

import pytest
from test_train import make_corpus, tiny_config

from vasr import runs
from vasr.db import runs as run_queries
from vasr.db import store
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
