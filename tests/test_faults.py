"""Fault injection through the real CLI: each bad input or option is one line on stderr naming the
file, option or bound, with the right exit status, no traceback, and nothing written or lost; kill -9
during an export leaves the model directory as it was.

Other tables of the same kind: tests/test_safety.py (crafted files), the import, database and
training guards in their own test files.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from test_export import exported

VASR = [sys.executable, "-m", "vasr"]


def _run(*args, stdin: bytes | None = None, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([*VASR, *map(str, args)], input=stdin, capture_output=True, timeout=300, cwd=cwd,
                          env={**os.environ, **(env or {})})


def _one_line(out: subprocess.CompletedProcess) -> str:
    err = out.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    wav = exported()["root"] / "s140_1.wav"
    (root / "a").mkdir()
    (root / "b").mkdir()
    for sub in ("a", "b"):
        (root / sub / "x.wav").write_bytes(wav.read_bytes())
    (root / "garbage.wav").write_bytes(b"not audio at all")
    (root / "hot-nul.txt").write_bytes(b"Ha\x00 Noi\n")
    (root / "hot-latin1.txt").write_bytes("Hà Nội:2\n".encode("latin-1", "replace") + b"\xe0\n")
    (root / "hot-big.txt").write_text("Hà Nội:1e9\n", encoding="utf-8")
    (root / "a-file").write_text("x", encoding="utf-8")
    sf.write(root / "nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    return root, wav


CASES = [
    # (case, arguments after `transcribe MODEL`, exit status, words of the message)
    ("beam 0", ["{wav}", "--beam", "0"], 2, ["beam 0", "1 to 64"]),
    ("beam 100000", ["{wav}", "--beam", "100000"], 2, ["beam 100000", "1 to 64"]),
    ("nbest 0", ["{wav}", "--nbest", "0"], 2, ["nbest 0"]),
    ("threads 1000", ["{wav}", "--threads", "1000"], 2, ["threads 1000", "cores"]),
    ("max-chunk 1000", ["{wav}", "--max-chunk", "1000"], 2, ["max_chunk_s 1000", "60 seconds"]),
    ("chunk-ms 40000", ["{wav}", "--stream", "--chunk-ms", "40000"], 2, ["--chunk-ms 40000", "2560"]),
    ("boost 1e9", ["{wav}", "--beam", "4", "--hotword", "Hà Nội:1e9"], 2, ["--hotword", "boost 1e9", "0..10"]),
    ("negative boost", ["{wav}", "--beam", "4", "--hotword", "Hà Nội:-3"], 2, ["boost -3"]),
    ("NaN boost", ["{wav}", "--beam", "4", "--hotword", "Hà Nội:nan"], 2, ["boost nan"]),
    ("boost 1e9 in a file", ["{wav}", "--beam", "4", "--hotwords", "{root}/hot-big.txt"], 2,
     ["hot-big.txt:1", "boost 1e9"]),
    ("binary hot-word file", ["{wav}", "--hotwords", "{root}/hot-nul.txt"], 2, ["hot-nul.txt", "binary"]),
    ("hot words not UTF-8", ["{wav}", "--hotwords", "{root}/hot-latin1.txt"], 2, ["hot-latin1.txt", "not UTF-8"]),
    ("missing audio", ["{root}/nope.wav"], 1, ["nope.wav: no such file"]),
    ("a directory as audio", ["{root}/a"], 1, ["a: a directory"]),
    ("garbage audio", ["{root}/garbage.wav"], 1, ["garbage.wav: unreadable audio (Format not recognised"]),
    ("NaN samples", ["{root}/nan.wav"], 1, ["nan.wav", "NaN or infinite"]),
    ("--out-dir is a file", ["{wav}", "--out-dir", "{root}/a-file"], 2, ["--out-dir", "a-file", "not a directory"]),
    ("--lm missing", ["{wav}", "--beam", "4", "--lm", "{root}/nope.bin"], 2, ["nope.bin: no such LM file"]),
    ("--lm garbage", ["{wav}", "--beam", "4", "--lm", "{root}/garbage.wav"], 2, ["garbage.wav", "not an LM"]),
    ("model dir missing", None, 2, ["no such model directory"]),
]


@pytest.mark.parametrize("case, args, status, words", CASES, ids=[c[0] for c in CASES])
def test_transcribe_faults_are_one_line(files, case, args, status, words):
    root, wav = files
    model = exported()["model_dir"] if args is not None else root / "no-model"
    args = [a.format(wav=wav, root=root) for a in (args or ["{wav}"])]
    out = _run("transcribe", model, *args)
    line = _one_line(out)
    assert out.returncode == status, (out.returncode, line)
    for word in words:
        assert word in line, (word, line)
    assert not (root / "a-file").is_dir() and (root / "a-file").read_text(encoding="utf-8") == "x"


def test_stdin_that_is_not_audio_is_named_dash(files):
    out = _run("transcribe", exported()["model_dir"], "-", stdin=b"garbage")
    assert out.returncode == 1
    assert _one_line(out) == "vasr transcribe: error: -: unreadable audio (Format not recognised.)"


def test_outputs_of_inputs_with_one_name_do_not_overwrite_each_other(files, tmp_path):
    root, _ = files
    out = _run("transcribe", exported()["model_dir"], root / "a" / "x.wav", root / "b" / "x.wav", "--out-dir", tmp_path)
    assert out.returncode == 0, out.stderr
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["a/x.txt", "b/x.txt"]
    a, b = ((tmp_path / d / "x.txt").read_text(encoding="utf-8").split("\t") for d in ("a", "b"))
    assert (Path(a[0]), Path(b[0])) == (root / "a" / "x.wav", root / "b" / "x.wav") and a[1] == b[1] != "\n"


def test_a_closed_pipe_ends_quietly():
    wav = exported()["root"] / "s140_1.wav"
    proc = subprocess.Popen([*VASR, "transcribe", str(exported()["model_dir"]), *[str(wav)] * 30],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                       # a reader that is gone before the first line, as `| head -c 0`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "Broken pipe" not in err, err


def test_debug_shows_the_traceback(files):
    root, wav = files
    for flag in (["--debug"], []):
        out = _run("transcribe", exported()["model_dir"], wav, "--beam", "0", *flag,
                   env={"VASR_DEBUG": "" if flag else "1"})
        assert out.returncode == 1 and b"Traceback" in out.stderr and b"beam 0" in out.stderr


def test_serve_refuses_a_port_out_of_range():
    out = _run("serve", exported()["model_dir"], "--port", "99999")
    assert out.returncode == 2 and _one_line(out) == "vasr serve: error: port 99999: expected 0 to 65535"


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory):
    """A model directory written by `vasr export`, with a file of someone else's in it."""
    fixture = exported()
    out = tmp_path_factory.mktemp("export") / "model"
    done = _run("export", "--checkpoint", fixture["checkpoint"], "--out", out, "--db", out.parent / "own.db",
                "--manifest", fixture["manifest"])
    assert done.returncode == 0, done.stderr
    (out / "decode.json").write_text("{}\n", encoding="utf-8")
    return out


def test_a_failed_export_leaves_the_model_directory_as_it_was(model_copy, tmp_path):
    """The gate manifest is read after the fp32 model is written: the directory must not mix them."""
    fixture = exported()
    before = _digest(model_copy)
    bad = tmp_path / "gate.csv"
    bad.write_text("file_path,transcript\nnope.wav,xin chào\n", encoding="utf-8")
    out = _run("export", "--checkpoint", fixture["checkpoint"], "--out", model_copy,
               "--db", model_copy.parent / "own.db",
               "--manifest", bad)
    assert out.returncode == 2 and "Traceback" not in out.stderr.decode()
    assert _digest(model_copy) == before
    assert not [p for p in model_copy.parent.iterdir() if p.name.startswith(".model.export-")]


def test_kill_9_during_an_export_leaves_the_model_directory_as_it_was(model_copy):
    fixture = exported()
    before = _digest(model_copy)
    proc = subprocess.Popen([*VASR, "export", "--checkpoint", str(fixture["checkpoint"]), "--out", str(model_copy),
                             "--db", str(model_copy.parent / "own.db"), "--manifest", str(fixture["manifest"])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(model_copy.parent.glob(".model.export-*/model.onnx")):   # mid-export: fp32 written
        assert proc.poll() is None and time.monotonic() < deadline, "the export ended before it could be killed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert _digest(model_copy) == before
    # the directory still works
    out = _run("transcribe", model_copy, fixture["root"] / "s140_1.wav")
    assert out.returncode == 0 and out.stdout.strip()
    # the killed export's staging folder is left; the next export into the same place removes it
    left = list(model_copy.parent.glob(".model.export-*"))
    assert len(left) == 1
    done = _run("export", "--checkpoint", fixture["checkpoint"], "--out", model_copy,
               "--db", model_copy.parent / "own.db",
                "--manifest", fixture["manifest"])
    assert done.returncode == 0 and not left[0].exists() and not list(model_copy.parent.glob(".model.export-*"))
    assert (model_copy / "decode.json").is_file() and oct(model_copy.stat().st_mode & 0o777) != "0o700"


@pytest.mark.parametrize("ratios", [["nan", "0.1", "0.1"], ["inf", "1", "1"], ["-1", "1", "1"], ["0", "0", "0"]])
def test_split_ratios_must_be_finite_and_not_all_zero(tmp_path, ratios):
    out = _run("db", "split", "--ratios", *ratios, "--db", tmp_path / "r.db")
    assert out.returncode == 2 and "split ratios must be three finite non-negative numbers" in _one_line(out)


def test_a_failed_lm_build_leaves_the_previous_lm(tmp_path):
    """build_binary fails after lmplz wrote lm.arpa: the folder keeps the previous build whole."""
    import shutil

    if shutil.which("lmplz") is None and not Path(sys.executable).with_name("lmplz").exists():
        pytest.skip("KenLM's lmplz is not built (make lmplz)")
    text = tmp_path / "text.txt"
    text.write_text("xin chào các bạn\ncảm ơn bạn rất nhiều\nhẹn gặp lại\n", encoding="utf-8")
    out = tmp_path / "lm"
    done = _run("lm", "build", "--text", text, "--split", "none", "--out", out, "--db", tmp_path / "x.db")
    assert done.returncode == 0, done.stderr
    before = _digest(out)
    tools = tmp_path / "tools"
    tools.mkdir()
    lmplz = shutil.which("lmplz") or str(Path(sys.executable).with_name("lmplz"))
    (tools / "lmplz").symlink_to(lmplz)
    (tools / "build_binary").write_text("#!/bin/sh\necho 'out of disk space' >&2\nexit 1\n", encoding="utf-8")
    (tools / "build_binary").chmod(0o755)
    text.write_text("một hai ba\nbốn năm sáu\n", encoding="utf-8")
    failed = _run("lm", "build", "--text", text, "--split", "none", "--out", out, "--db", tmp_path / "x.db",
                  env={"VASR_LMPLZ": str(tools / "lmplz")})
    assert failed.returncode == 2 and "build_binary failed" in _one_line(failed)
    assert _digest(out) == before and [p.name for p in tmp_path.iterdir() if p.name.startswith(".lm.")] == []
