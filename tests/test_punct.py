"""Punctuation and capitalisation (vasr.punct, vasr.runtime.punct): labels, a tiny training run,
export parity, the torch-free runtime and its errors, the `vasr punct` commands."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from vasr.punct.labels import label_text
from vasr.runtime.punct import PUNCT_JSON, PUNCT_ONNX, Features, Punctuator, find_punctuator

VERBS = ("ăn", "uống", "đọc", "viết", "hát", "học", "chơi", "nấu", "vẽ", "mua")
OBJECTS = ("cơm", "nước", "sách", "thư", "bài", "toán", "cờ", "canh", "tranh", "rau")


def tiny_text() -> str:
    """Forty paragraphs, a yes/no question "Bạn có ... không?" and a statement "Tôi ... ." each; ten
    verb-object pairs (i + j divisible by 5) are left out for the test."""
    lines = [f"Bạn có {v} {o} không? Tôi {v} {o} mỗi ngày." for i, v in enumerate(VERBS)
             for j, o in enumerate(OBJECTS[:5]) if (i + j) % 5]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A model trained in seconds on tiny_text; (model directory, database path, train Result)."""
    from vasr import config as cfg
    from vasr.punct.train import PunctConfig, train

    root = tmp_path_factory.mktemp("punct")
    (root / "tiny.txt").write_text(tiny_text(), encoding="utf-8")
    config = cfg.load(PunctConfig, None, [
        f"db={root / 'runs.db'}", f"out_dir={root / 'model'}", "sources=[file]", f"text_file={root / 'tiny.txt'}",
        "heldout=''", "val_share=0.1", "min_count=1", "buckets=512", "epochs=25", "max_minutes=0",
        "batch_windows=8", "min_window=4", "max_window=20", "model.dim=32", "model.layers=1", "model.heads=2",
        "model.ff_dim=64", "model.dropout=0", "optim.warmup_steps=10", "optim.lr=0.01"])
    result = train(config, report=lambda line: None)
    return root / "model", root / "runs.db", result


def test_labels_of_raw_text():
    got = label_text("Hôm qua, anh Nguyễn Văn An đã đến Hà Nội.")
    assert got.words == ("hôm", "qua", "anh", "nguyễn", "văn", "an", "đã", "đến", "hà", "nội")
    assert got.marks == (0, 2, 0, 0, 0, 0, 0, 0, 0, 1)
    assert got.cases == (1, 0, 0, 1, 1, 1, 0, 0, 1, 1)

    got = label_text("Bạn có khỏe không? Tốt quá!")
    assert got.words == ("bạn", "có", "khỏe", "không", "tốt", "quá")
    assert (got.marks, got.cases) == ((0, 0, 0, 3, 0, 4), (1, 0, 0, 0, 1, 0))

    # ':' counts as a comma, an acronym is UPPER, a number is read out (lower case), "…" is a period
    got = label_text("Lỗi: tệp ABC có 12 dòng…")
    assert got.words == ("lỗi", "tệp", "abc", "có", "mười", "hai", "dòng")
    assert (got.marks, got.cases) == ((2, 0, 0, 0, 0, 0, 1), (1, 0, 2, 0, 0, 0, 0))


def test_labels_follow_the_normaliser_expansions():
    got = label_text("Chào UBND TP. Hồ Chí Minh, v.v. rồi về.")
    assert got.words == ("chào", "ủy", "ban", "nhân", "dân", "thành", "phố", "hồ", "chí", "minh", "vân", "vân",
                         "rồi", "về")
    assert got.cases == (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0)
    assert got.marks == (0,) * 9 + (2, 0, 0, 0, 1)      # the dots of "v.v." inside the text are no period
    assert label_text("!!!") is None


def test_tiny_training_learns_questions_and_periods_and_records_the_run(tiny_model):
    from sqlalchemy import create_engine, text

    model_dir, db, result = tiny_model
    punctuator = find_punctuator(model_dir)
    words = "bạn có ăn cơm không tôi ăn cơm mỗi ngày".split()          # a pair it has not seen
    assert punctuator.apply(words) == ["Bạn", "có", "ăn", "cơm", "không?", "Tôi", "ăn", "cơm", "mỗi", "ngày."]
    assert punctuator.version == f"punct-{result.run_id}"
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        status = conn.execute(text("select status from training_runs where id = :i"), {"i": result.run_id}).scalar()
        epochs = conn.execute(text("select count(*) from epoch_metrics where run_id = :i"), {"i": result.run_id})
        assert (status, epochs.scalar()) == ("completed", 25)
    engine.dispose()


def test_a_word_outside_the_vocabulary_still_gets_labels(tiny_model):
    punctuator = Punctuator(tiny_model[0])
    assert "quỳnh" not in punctuator.features.vocabulary
    shown = punctuator.apply(["bạn", "có", "gặp", "quỳnh", "xyzzy", "không"])
    assert len(shown) == 6 and shown[0] == "Bạn" and shown[-1][-1] in ".?!"
    assert punctuator.apply([]) == []


def test_export_parity_on_a_padded_batch(tmp_path):
    import numpy as np
    import onnxruntime as ort

    from vasr.punct.export import export_onnx, parity
    from vasr.punct.model import PunctModel, PunctModelConfig

    torch.manual_seed(0)
    features = Features(("tôi", "bạn", "có", "không"), 64)
    model = PunctModel(PunctModelConfig(dim=32, layers=2, heads=4, ff_dim=64), len(features.vocabulary) + 2, 64)
    batch = [["tôi", "có", "sách"], ["bạn", "có", "đọc", "sách", "không", "nguyễn", "ngọc", "ánh"], ["có"]]
    assert export_onnx(model, tmp_path, features, batch) < 1e-4
    longer = [["không"] * 30, ["bạn", "có"]]                 # other shapes than the traced ones
    assert parity(model, tmp_path / PUNCT_ONNX, features, longer) < 1e-4
    session = ort.InferenceSession(str(tmp_path / PUNCT_ONNX), providers=["CPUExecutionProvider"])
    alone = session.run(None, dict(zip(("word_ids", "gram_ids", "lengths"), features.encode(batch[:1]))))
    together = session.run(None, dict(zip(("word_ids", "gram_ids", "lengths"), features.encode(batch))))
    for a, b in zip(alone, together):                       # padding does not change valid positions
        np.testing.assert_allclose(a[0, :3], b[0, :3], atol=1e-5)


def test_missing_or_broken_directories(tmp_path, tiny_model):
    assert find_punctuator(tmp_path) is None
    with pytest.raises(ValueError, match=PUNCT_JSON):
        Punctuator(tmp_path)
    (tmp_path / PUNCT_JSON).write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{PUNCT_JSON}: not readable JSON"):
        find_punctuator(tmp_path)
    (tmp_path / PUNCT_JSON).write_text((tiny_model[0] / PUNCT_JSON).read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ValueError, match=f"{PUNCT_ONNX}: missing"):
        Punctuator(tmp_path)
    (tmp_path / PUNCT_ONNX).write_bytes(b"not a model")
    with pytest.raises(ValueError, match=f"{PUNCT_ONNX}: not a readable ONNX model"):
        Punctuator(tmp_path)
    meta = json.loads((tmp_path / PUNCT_JSON).read_text(encoding="utf-8"))
    (tmp_path / PUNCT_JSON).write_text(json.dumps({**meta, "marks": ["", "."]}), encoding="utf-8")
    with pytest.raises(ValueError, match="label sets"):
        Punctuator(tmp_path)


def test_the_runtime_half_runs_where_torch_cannot_be_imported(tiny_model):
    from test_runtime import BLOCKER

    code = BLOCKER + textwrap.dedent(f"""
        from vasr.runtime.punct import find_punctuator
        print(" ".join(find_punctuator({str(tiny_model[0])!r}).apply(["tôi", "ăn", "cơm", "mỗi", "ngày"])))
        assert "torch" not in sys.modules and "sqlalchemy" not in sys.modules, "a heavy module was imported"
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Tôi ăn cơm mỗi ngày."


def test_punct_eval_and_print_config_commands(tiny_model, tmp_path, monkeypatch, capsys):
    import yaml

    from vasr.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "eval.txt").write_text(tiny_text() + "!!!\n", encoding="utf-8")
    assert main(["punct", "eval", str(tiny_model[0]), "--text", str(tmp_path / "eval.txt")]) == 0
    out = capsys.readouterr().out
    assert "40 paragraphs scored, 1 skipped" in out and "case accuracy" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line[:1] in ".,?!"}
    assert float(rows["?"][2]) > 0.9 and float(rows["."][2]) > 0.9           # F1
    assert main(["punct", "train", "--out", "m", "--set", "epochs=3", "--print-config"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert (config["epochs"], config["out_dir"]) == (3, "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.txt"]      # nothing ran: no database, no model


def test_the_recognizer_punctuates_with_the_model_in_its_directory(tiny_model, tmp_path):
    """The punctuation files copied into an exported model directory: transcripts are cased and
    marked, raw text and scores stay the acoustic ones, words keep their times."""
    import shutil

    from test_export import exported
    from test_runtime import good

    from vasr.runtime.recognizer import Recognizer, RecognizerOptions

    model_dir = tmp_path / "model"
    shutil.copytree(exported()["model_dir"], model_dir)
    for name in ("punct.onnx", "punct.json"):
        shutil.copy(tiny_model[0] / name, model_dir / name)
    t = Recognizer(model_dir).transcribe(good(0))
    assert t.raw_text == "xin chào"
    assert t.text[0] == "X" and t.text[-1] in ".?!" and t.text[1:-1] == "in chào"
    assert [(w.start, w.end) for w in t.words] == [(w.start, w.end) for w in t.raw_words]
    assert Recognizer(model_dir, RecognizerOptions(raw=True)).transcribe(good(0)).text == "xin chào"


def test_gnome_help_pages_give_their_paragraphs(tmp_path):
    """The gnome source reads the <p> elements of Mallard pages, inline markup kept as its text; a
    paragraph that is not prose (no final mark) is dropped, and a missing directory names its package."""
    from vasr.punct.corpus import source_paragraphs

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "keys.page").write_text(textwrap.dedent("""\
        <page xmlns="http://projectmallard.org/1.0/" id="keys">
          <title>Phím tắt</title>
          <p>Nhấn <key>Ctrl</key> và <gui>Lưu</gui>, rồi đóng cửa sổ.</p>
          <item><p>Mở tệp &amp; thư mục</p></item>
        </page>
        """), encoding="utf-8")
    paragraphs = source_paragraphs("gnome", locale_dir="", gnome_dir=str(tmp_path))
    assert [p.words for p in paragraphs] == [("nhấn", "ctrl", "và", "lưu", "rồi", "đóng", "cửa", "sổ")]
    assert paragraphs[0].marks == (0, 0, 0, 2, 0, 0, 0, 1)
    assert paragraphs[0].cases == (1, 1, 0, 1, 0, 0, 0, 0)
    with pytest.raises(FileNotFoundError, match="gnome-user-docs"):
        source_paragraphs("gnome", locale_dir="", gnome_dir=str(tmp_path / "none"))


def test_a_missing_training_source_is_named_before_any_work(tmp_path):
    from vasr.punct.train import PunctConfig, train

    config = PunctConfig(db=str(tmp_path / "runs.db"), out_dir=str(tmp_path / "m"), heldout="",
                         help_dir=str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match=r"^training source libreoffice: no LibreOffice help at .*none "
                                                r"\(Debian package libreoffice-help-vi\); --set sources=\[\.\.\.\] "
                                                r"without libreoffice$"):
        train(config)
    assert not (tmp_path / "runs.db").exists() and not (tmp_path / "m").exists()
