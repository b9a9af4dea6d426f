"""Nothing vasr reads from a user's file runs code: crafted checkpoints and embeddings through the real CLI.

Each case hands the CLI a file whose pickle would create a marker file when unpickled (a ``__reduce__``
payload calling ``open(marker, "w")``) and asserts the exit code, the key words of the one-line
message, no traceback, and that the marker does not exist.
"""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vasr.checkpoint import CHECKPOINT_FORMAT

REPO = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickling this creates ``marker``: any code a pickle smuggles in would run the same way."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def run_cli(*args: str, module: str = "vasr") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO)


def assert_refused(out: subprocess.CompletedProcess, words: list[str], marker: Path | None = None) -> None:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr  # one line
    for word in words:
        assert word in lines[0], (word, lines[0])
    if marker is not None:
        assert not marker.exists(), "the payload ran"


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> dict[str, Path]:
    """Paths of the crafted files and directories, and the marker they would create."""
    root = tmp_path_factory.mktemp("crafted")
    marker = root / "MARKER"
    # a checkpoint: the vasr layout, plus a payload
    torch.save({"format": CHECKPOINT_FORMAT, "config": {}, "payload": Payload(marker)}, root / "evil.pt")
    # embeddings in the old format: KIND.kv was a gensim pickle, here a payload
    legacy = root / "legacy"
    legacy.mkdir()
    for kind in ("word2vec", "phon2vec"):
        (legacy / f"{kind}.kv").write_bytes(pickle.dumps(Payload(marker)))
    # embeddings in the new format whose files are replaced by pickles
    from vasr.embeddings.build import Word2VecConfig, train_phon2vec

    good = train_phon2vec(["xin chào các bạn", "dành giành tường tưởng"] * 20, Word2VecConfig(dim=8, epochs=1))
    for name, forge in (("npy", "phon2vec.npy"), ("faiss", "phon2vec.faiss"), ("vocab", "phon2vec.vocab.json"),
                        ("meta", "phon2vec.json"), ("tokens", "phon2vec.tokens.npy")):
        good.save(root / name)
        target = root / name / forge
        if forge.endswith(".npy"):  # an object array: its elements are pickles inside the .npy
            np.save(target, np.array([Payload(marker)], dtype=object), allow_pickle=True)
        elif forge.endswith(".faiss"):
            target.write_bytes(pickle.dumps(Payload(marker)))
        else:
            target.write_bytes(b"\x80\x04" + pickle.dumps(Payload(marker)))
    (root / "nbest.jsonl").write_text(json.dumps({"segments": []}) + "\n", encoding="utf-8")
    return {"root": root, "marker": marker, "evil": root / "evil.pt", "legacy": legacy}


CHECKPOINT_WORDS = ["evil.pt", "refused", "weights-only"]
LEGACY_WORDS = ["old format", "gensim pickle", "vasr embed convert"]

# (command with {root}, {evil}, {legacy} placeholders, module, key words of the message)
CASES = [
    (["eval", "--checkpoint", "{evil}", "--db", "{root}/eval.db"], "vasr", CHECKPOINT_WORDS),
    (["export", "--checkpoint", "{evil}", "--out", "{root}/model", "--no-register"], "vasr", CHECKPOINT_WORDS),
    (["train", "--resume", "{evil}"], "vasr", CHECKPOINT_WORDS),
    (["--resume", "{evil}"], "vasr.train", CHECKPOINT_WORDS),
    (["embed", "neighbours", "dành", "--dir", "{legacy}"], "vasr", ["phon2vec.kv", *LEGACY_WORDS]),
    (["embed", "neighbours", "xin", "--kind", "word2vec", "--dir", "{legacy}"], "vasr", ["word2vec.kv", *LEGACY_WORDS]),
    (["rescore", "{root}/nbest.jsonl", "--embeddings", "{legacy}", "--hotword", "dành"], "vasr",
     ["phon2vec.kv", *LEGACY_WORDS]),
    (["rescore", "{root}/nbest.jsonl", "--embeddings", "{legacy}", "--context", "xin chào"], "vasr",
     ["word2vec.kv", *LEGACY_WORDS]),
    (["embed", "neighbours", "dành", "--dir", "{root}/npy"], "vasr", ["phon2vec.npy", "not a .npy array"]),
    (["embed", "neighbours", "dành", "--dir", "{root}/tokens"], "vasr", ["phon2vec.tokens.npy", "not a .npy array"]),
    (["embed", "neighbours", "dành", "--dir", "{root}/faiss"], "vasr", ["phon2vec.faiss", "not a flat or HNSW"]),
    (["embed", "neighbours", "dành", "--dir", "{root}/vocab"], "vasr", ["phon2vec.vocab.json", "not valid JSON"]),
    (["embed", "neighbours", "dành", "--dir", "{root}/meta"], "vasr", ["phon2vec.json", "not valid JSON"]),
]


@pytest.mark.parametrize("args,module,words", CASES, ids=[" ".join(c[0][:2]) + f" ({i})" for i, c in enumerate(CASES)])
def test_crafted_files_are_refused_by_the_cli(crafted, args, module, words):
    places = {k: str(v) for k, v in crafted.items()}
    out = run_cli(*(a.format(**places) for a in args), module=module)
    assert_refused(out, words, crafted["marker"])
    assert not (crafted["root"] / "model").exists()  # export wrote nothing


def test_the_payloads_are_live(crafted, tmp_path):
    """The control: the crafted files do run their payload when unpickled without restriction."""
    marker = tmp_path / "MARKER"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden", "-x", "x" * 65, "tên", "a b", "a\\b"])
def test_a_run_name_that_is_not_one_plain_path_component_is_a_config_error(tmp_path, name):
    before = set(tmp_path.iterdir())
    out = run_cli("train", f"name={name}", f"out_dir={tmp_path / 'runs'}", f"db={tmp_path / 'vasr.db'}")
    assert_refused(out, ["name", repr(name), "letters, digits, '.', '_' or '-'"])
    assert set(tmp_path.iterdir()) == before  # no database, no run directory
