"""Export: a small model trained here on espeak-ng speech -> model.onnx + model.int8.onnx; parity with
PyTorch, the int8 gate, metadata, the models table.

``exported()`` builds the fixture once per test session (test_runtime.py and test_sherpa.py use it
too): 8 Vietnamese sentences rendered by espeak-ng at two speeds train a 2-layer Transformer-CTC
for 150 steps in float64 (~9 s) until it transcribes them; a third speed is the held-out gate set.
"""
from __future__ import annotations

import csv
import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

SENTENCES = ["xin chào", "cảm ơn bạn", "một hai ba", "tiếng việt", "hòa bình", "người dân", "chào bạn",
             "bạn ơi"]
TRAIN_SPEEDS = (140, 170)      # espeak-ng words per minute of the training renderings
TEST_SPEED = 155               # the gate set: the same sentences at a speed not trained on
TRAIN_STEPS = 150
ESPEAK = shutil.which("espeak-ng")


def exported() -> dict:
    """Paths of the session's fixture: wav dir, checkpoint, test manifest, database, model dir, report."""
    return _trained_and_exported(False)


def exported_streaming() -> dict:
    """The same for a streaming Conformer (causal convolution, dynamic chunks): its directory also
    has model-streaming.onnx and model-streaming.int8.onnx."""
    return _trained_and_exported(True)


@functools.lru_cache(maxsize=2)
def _trained_and_exported(streaming: bool) -> dict:
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed")
    from vasr import config as cfg
    from vasr.checkpoint import CHECKPOINT_FORMAT
    from vasr.runtime.audio import load
    from vasr.data.utterance import DataSource
    from vasr.export.onnx_export import ExportConfig, export
    from vasr.kernels import compute_fbank
    from vasr.model import CtcModel, ModelConfig, num_parameters
    from vasr.text.tokens import CharTokenizer
    from vasr.train import TrainConfig

    root = Path(tempfile.mkdtemp(prefix="vasr-export-fixture-"))
    waves, texts = [], []
    with open(root / "test.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file_path", "transcript"])
        for speed in (*TRAIN_SPEEDS, TEST_SPEED):
            for i, text in enumerate(SENTENCES):
                path = root / f"s{speed}_{i}.wav"
                subprocess.run([ESPEAK, "-v", "vi", "-s", str(speed), "-w", str(path), text], check=True)
                if speed == TEST_SPEED:
                    writer.writerow([path.name, text])
                else:
                    waves.append(load(path))
                    texts.append(text)
    tokenizer = CharTokenizer.build(SENTENCES)
    shape = dict(architecture="conformer", streaming=True, conv_kernel=7) if streaming else {}
    config = TrainConfig(name="fixture", model=ModelConfig(d_model=64, num_layers=2, num_heads=4, ff_dim=128,
                                                           subsampling_channels=16, dropout=0.0, **shape))
    torch.manual_seed(0)
    model = CtcModel(config.model, tokenizer.vocab_size)
    feats = [torch.from_numpy(compute_fbank(w)) for w in waves]
    every = torch.cat(feats).double()
    model.set_cmvn(every.mean(0), every.std(0))
    # statistics and training in float64: fp32 training is chaotic (a 1e-6 nudge to one initial
    # weight moved final weights by up to 0.12), so CPUs that sum in another order (AVX2, AVX-512)
    # got different models; in float64 a 1e-13 nudge changes 36 of the 91k weights by one fp32
    # rounding step. The features (float64 inside, one rounding) are the same on every CPU.
    train_in_float64(model, feats, [tokenizer.encode(t) for t in texts], TRAIN_STEPS, lr=3e-3)
    checkpoint = root / "fixture.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "config": cfg.to_dict(config), "model": model.eval().state_dict(),
                "tokenizer": tokenizer.to_state(), "run_id": 0, "num_parameters": num_parameters(model)},
               checkpoint)
    db = root / "vasr.db"
    report = export(ExportConfig(checkpoint=str(checkpoint), out_dir=str(root / "model"),
                                 gate=DataSource(manifest=str(root / "test.csv")), db=str(db)))
    return {"root": root, "checkpoint": checkpoint, "manifest": root / "test.csv", "db": db,
            "model_dir": root / "model", "report": report, "train_waves": waves, "train_texts": texts}


def train_in_float64(model, feats: list, targets: list[list[int]], steps: int, lr: float) -> None:
    """``steps`` full-batch AdamW steps of CTC on ``feats`` (fbank tensors) in float64, on one thread
    (a second thread on a busy 2-core machine made training 20x slower); ``model`` ends in float32."""
    import torch

    model.double().train()
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).double()
    x_lens = torch.tensor([len(f) for f in feats])
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for _ in range(steps):
        log_probs, lens = model(x, x_lens)
        loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), torch.tensor(sum(targets, [])), lens,
                                            torch.tensor([len(t) for t in targets]), zero_infinity=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(threads)
    model.float()


def _torch_and_onnx(fixture, waves, batched: bool):
    import onnxruntime as ort

    from vasr.kernels import compute_fbank
    from vasr.checkpoint import load_checkpoint

    model = load_checkpoint(fixture["checkpoint"]).model
    session = ort.InferenceSession(str(fixture["model_dir"] / "model.onnx"), providers=["CPUExecutionProvider"])
    feats = [compute_fbank(w) for w in waves]
    groups = [feats] if batched else [[f] for f in feats]
    worst = 0.0
    for group in groups:
        lens = np.array([len(f) for f in group], dtype=np.int64)
        x = np.full((len(group), lens.max(), 80), -23.0259, dtype=np.float32)
        for i, f in enumerate(group):
            x[i, : len(f)] = f
        with torch.no_grad():
            expected, expected_lens = model(torch.from_numpy(x), torch.from_numpy(lens))
        got, got_lens = session.run(None, {"x": x, "x_lens": lens})
        assert got_lens.tolist() == expected_lens.tolist()
        for i, n in enumerate(got_lens):
            worst = max(worst, float(np.abs(got[i, :n] - expected[i, :n].numpy()).max()))
    return worst


def test_fp32_onnx_matches_pytorch_batched_and_single():
    fixture = exported()
    waves = fixture["train_waves"][:6]
    assert _torch_and_onnx(fixture, waves, batched=True) <= 1e-4
    assert _torch_and_onnx(fixture, waves, batched=False) <= 1e-4
    assert fixture["report"].parity_max_abs <= 1e-4


def test_int8_cer_is_within_half_a_point_of_fp32_on_the_held_out_speed():
    report = exported()["report"]
    assert report.gate_utterances == len(SENTENCES)
    assert report.fp32.cer < 0.25, "the fixture model must actually recognise the held-out renderings"
    chosen = next(v for v in report.variants if v.name == report.variant)
    assert chosen.cer - report.fp32.cer <= 0.005
    assert report.gate_passed
    from vasr.export.onnx_export import VARIANTS

    assert [v.name for v in report.variants] == [v.name for v in VARIANTS]


def test_model_dir_holds_the_contract_files_and_metadata():
    fixture = exported()
    directory = fixture["model_dir"]
    for name in ("model.onnx", "model.int8.onnx", "tokens.txt", "config.json", "tokenizer.json"):
        assert (directory / name).is_file(), name
    assert not list(directory.glob("*.data")), "the model must be a single file"
    proto = onnx.load(str(directory / "model.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    symbols = (directory / "tokens.txt").read_text(encoding="utf-8").splitlines()
    assert meta["model_type"] == "zipformer2_ctc"
    assert meta["vocab_size"] == str(len(symbols))
    assert meta["subsampling_factor"] == "4"
    assert json.loads(meta["vasr_features"])["num_bins"] == 80
    assert json.loads(meta["vasr_tokenizer"])["kind"] == "char"
    assert proto.opset_import[0].version == 17
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", "T", 80]
    int8_meta = {p.key: p.value for p in onnx.load(str(directory / "model.int8.onnx")).metadata_props}
    assert int8_meta["vocab_size"] == meta["vocab_size"]
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    assert config["vocab_size"] == len(symbols)
    assert config["int8"]["variant"] == fixture["report"].variant
    assert (directory / "model.int8.onnx").stat().st_size < 0.6 * (directory / "model.onnx").stat().st_size


def test_export_is_registered_in_the_models_table():
    from sqlalchemy import select

    from vasr.db import store
    from vasr.db.schema import models

    fixture = exported()
    engine = store.connect(str(fixture["db"]))
    with engine.connect() as conn:
        rows = conn.execute(select(models.c.id, models.c.onnx_path, models.c.checkpoint_path)).all()
    engine.dispose()
    assert [(r.id, r.onnx_path) for r in rows] == [(fixture["report"].model_id,
                                                    str((fixture["model_dir"] / "model.onnx").resolve()))]
    assert rows[0].checkpoint_path == str(Path(fixture["checkpoint"]).resolve())


def test_a_named_variant_without_a_gate_set_warns_and_is_written(tmp_path):
    from vasr.export.onnx_export import ExportConfig, export

    fixture = exported()
    with pytest.warns(UserWarning, match="without a CER check"):
        report = export(ExportConfig(checkpoint=str(fixture["checkpoint"]), out_dir=str(tmp_path / "m"),
                                     variant="quint8-matmul", gate=None, register=False))
    assert report.variant == "quint8-matmul" and report.gate_passed is None
    assert (tmp_path / "m" / "model.int8.onnx").is_file()
    with pytest.raises(ValueError, match="unknown int8 variant"):
        export(ExportConfig(checkpoint=str(fixture["checkpoint"]), out_dir=str(tmp_path / "n"), variant="int4"))
