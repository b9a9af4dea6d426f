"""The `vasr` command line, run as a user would (a subprocess of the installed entry point)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


def vasr(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VASR_DB"}
    return subprocess.run([sys.executable, "-m", "vasr", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_help_lists_the_subcommands():
    out = vasr("--help")
    assert out.returncode == 0
    for name in ("synth", "import", "db", "bench", "demo"):
        assert name in out.stdout


def test_import_then_stats(tmp_path, tone):
    for i, speaker in enumerate(["a", "a", "b"]):
        tone(tmp_path / f"{i}.wav", 1.8, freq=200 + 50 * i)
    (tmp_path / "m.csv").write_text("0.wav,một,train,a\n1.wav,hai,train,a\n2.wav,ba bốn,test,b\n", encoding="utf-8")
    db = str(tmp_path / "x.db")
    out = vasr("import", "csv", str(tmp_path / "m.csv"), "--db", db)
    assert out.returncode == 0, out.stderr
    assert "3 new, 0 already present, 0 rejected" in out.stdout
    out = vasr("db", "stats", "--db", db)
    assert out.returncode == 0, out.stderr
    lines = [line.split() for line in out.stdout.splitlines()[1:]]
    assert lines == [["train", "2", "0.001", "1", "2"], ["test", "1", "0.001", "1", "2"],
                     ["all", "3", "0.002", "2", "4"]]


def test_rejected_import_exits_1_and_names_the_row(tmp_path, tone):
    tone(tmp_path / "ok.wav")
    (tmp_path / "m.csv").write_text("ok.wav,tốt\nmissing.wav,mất\n", encoding="utf-8")
    db = str(tmp_path / "x.db")
    out = vasr("import", "csv", str(tmp_path / "m.csv"), "--db", db)
    assert out.returncode == 1
    assert "rejected m.csv:2" in out.stderr and "no such audio file" in out.stderr
    assert "nothing was imported" in out.stderr
    out = vasr("import", "csv", str(tmp_path / "m.csv"), "--db", db, "--skip-bad")
    assert out.returncode == 0 and "1 new" in out.stdout and "1 rejected" in out.stdout


def test_errors_are_messages_not_tracebacks(tmp_path):
    out = vasr("import", "vivos", str(tmp_path), "--db", str(tmp_path / "x.db"))
    assert out.returncode == 2
    assert "not a VIVOS directory" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_synth_command(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("xin chào\ncảm ơn bạn\nhẹn gặp lại\n", encoding="utf-8")
    out = vasr("synth", "--n", "9", "--text", str(text), "--out", str(tmp_path / "c"), "--db",
               str(tmp_path / "x.db"), "--set", "seed=4")
    assert out.returncode == 0, out.stderr
    assert "rendered 9 utterances" in out.stdout and "9 new" in out.stdout
    assert out.stdout.splitlines()[-1].split()[:2] == ["all", "9"]
