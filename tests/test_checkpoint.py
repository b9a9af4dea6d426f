"""Checkpoints (vasr.checkpoint): the round trip, weights-only reading, RNG capture, the atomic write."""
from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest
import torch

from vasr import config as cfg
from vasr.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, rng_state, save, set_rng_state
from vasr.model import CtcModel, ModelConfig, num_parameters
from vasr.text.tokens import CharTokenizer
from vasr.train import OptimConfig, TrainConfig

CONFIG = TrainConfig(name="ck", seed=7, optim=OptimConfig(lr=2e-3, betas=(0.8, 0.9)),
                     model=ModelConfig(d_model=32, num_layers=1, num_heads=2, ff_dim=64, subsampling_channels=8))


def _trained_parts():
    """A model after one AdamW step (optimizer state not empty), its tokenizer, optimizer and scaler."""
    tokenizer = CharTokenizer.build(["xin chào", "bạn ơi"])
    torch.manual_seed(0)
    model = CtcModel(CONFIG.model, tokenizer.vocab_size)
    model.set_cmvn(torch.linspace(-3.0, 3.0, 80), torch.linspace(0.5, 2.0, 80))
    optimizer = torch.optim.AdamW(model.parameters(), lr=CONFIG.optim.lr, betas=CONFIG.optim.betas)
    log_probs, _ = model(torch.randn(1, 40, 80), torch.tensor([40]))
    log_probs.sum().backward()
    optimizer.step()
    return model.eval(), tokenizer, optimizer, torch.amp.GradScaler("cuda", enabled=False)


def test_save_then_load_gives_back_every_part(tmp_path):
    model, tokenizer, optimizer, scaler = _trained_parts()
    random.seed(11)
    np.random.seed(12)
    torch.manual_seed(13)
    rng = rng_state()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    progress = {"step": 5, "epoch": 1, "batch": 2, "best_cer": math.inf, "elapsed_s": 1.5}
    path = tmp_path / "last.pt"
    save(path, config=CONFIG, model=model, optimizer=optimizer, scaler=scaler, tokenizer=tokenizer,
         progress=progress, rng=[rng], run_id=42, run_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]          # the temporary file is renamed away

    loaded = load_checkpoint(path)
    assert loaded.config == CONFIG and loaded.config.optim.betas == (0.8, 0.9)
    assert loaded.tokenizer.symbols == ["<blk>", "▁", "b", "c", "h", "i", "n", "o", "x", "à", "ơ", "ạ"]
    assert not loaded.model.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    raw = loaded.raw
    assert raw["format"] == CHECKPOINT_FORMAT == 1
    assert sorted(raw) == ["cmvn", "config", "format", "model", "num_parameters", "optimizer", "progress", "rng",
                           "run_dir", "run_id", "scaler", "tokenizer", "vasr_version"]
    assert raw["config"] == cfg.to_dict(CONFIG) and raw["progress"] == progress
    assert (raw["run_id"], raw["run_dir"], raw["num_parameters"]) == (42, str(tmp_path), num_parameters(model))
    assert raw["tokenizer"] == {"kind": "char", "symbols": tokenizer.symbols}
    assert torch.equal(raw["cmvn"]["mean"], torch.linspace(-3.0, 3.0, 80))
    assert raw["scaler"] == {}
    again = torch.optim.AdamW(CtcModel(CONFIG.model, tokenizer.vocab_size).parameters())
    again.load_state_dict(raw["optimizer"])
    assert again.param_groups[0]["betas"] == (0.8, 0.9) and float(raw["optimizer"]["state"][0]["step"]) == 1.0

    # the stored generators continue where the captured ones were
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    set_rng_state(raw["rng"][0])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_a_checkpoint_of_format_1_without_training_state_loads(tmp_path):
    """The layout test fixtures and older exports write: no optimizer, RNG or progress entries."""
    model, tokenizer, _, _ = _trained_parts()
    path = tmp_path / "fixture.pt"
    torch.save({"format": 1, "config": cfg.to_dict(CONFIG), "model": model.state_dict(),
                "tokenizer": tokenizer.to_state(), "run_id": 0, "num_parameters": num_parameters(model)}, path)
    loaded = load_checkpoint(path)
    assert loaded.tokenizer.encode("xin chào") == tokenizer.encode("xin chào")
    x = torch.randn(2, 30, 80)
    lens = torch.tensor([30, 20])
    torch.testing.assert_close(loaded.model(x, lens)[0], model(x, lens)[0], atol=0, rtol=0)


class Payload:
    """Stands for anything a pickle could smuggle in: weights-only reading must refuse it."""

    def __reduce__(self):
        return (print, ("unpickled!",))


def test_only_weights_are_unpickled(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "config": {}, "payload": Payload()}, path)
    with pytest.raises(ValueError, match=r"evil\.pt: refused: not a weights-only checkpoint \(it asks for "
                                         r"(builtins\.)?print\)") as caught:
        load_checkpoint(path)
    assert "\n" not in str(caught.value) and caught.value.__cause__ is None  # one line, torch's text dropped
    assert "unpickled!" not in capsys.readouterr().out
    with pytest.raises(pickle.UnpicklingError):  # the control: the payload is live
        torch.load(path, weights_only=True)
    torch.load(path, weights_only=False)
    assert "unpickled!" in capsys.readouterr().out


@pytest.mark.parametrize("content,words", [
    (b"garbage", "refused: not a weights-only checkpoint (Unsupported operand"),
    (pickle.dumps({"format": 1}, protocol=2), "not a readable checkpoint (Invalid magic number"),
    (b"", "not a readable checkpoint"),
    ("truncated", "not a readable checkpoint (PytorchStreamReader"),
    ("directory", "is a directory, not a checkpoint file"),
])
def test_unreadable_files_are_one_line_naming_the_file(tmp_path, content, words):
    path = tmp_path / "bad.pt"
    if content == "truncated":
        torch.save({"format": CHECKPOINT_FORMAT}, tmp_path / "whole.pt")
        path.write_bytes((tmp_path / "whole.pt").read_bytes()[:300])
    elif content == "directory":
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message
    with pytest.raises(FileNotFoundError, match=r"missing\.pt: no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_other_files_are_refused(tmp_path):
    torch.save({"format": CHECKPOINT_FORMAT + 1}, tmp_path / "newer.pt")
    with pytest.raises(ValueError, match="not a vasr checkpoint of format 1"):
        load_checkpoint(tmp_path / "newer.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(ValueError, match="not a vasr checkpoint of format 1"):
        load_checkpoint(tmp_path / "tensor.pt")
