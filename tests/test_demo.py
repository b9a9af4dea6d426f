"""The README's main job end to end on a miniature corpus: every stage runs and hands over to the next."""
from __future__ import annotations

import shutil

import pytest

from vasr.demo import DemoConfig, run_demo

TINY_TRAINING = ("epochs=1", "max_minutes=0", "progress=false", "model.d_model=32", "model.num_layers=1",
                 "model.num_heads=2", "model.ff_dim=64", "model.subsampling_channels=8", "data.max_frames=4000")

TINY_PUNCT = ("epochs=1", "sources=[catalogues,generated]", "generated=200", "heldout=''", "max_vocab=500",
              "buckets=256", "model.dim=32", "model.layers=1", "model.heads=2", "model.ff_dim=64")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_demo_runs_every_stage(tmp_path, capsys):
    config = DemoConfig(out_dir=str(tmp_path / "out"), db=str(tmp_path / "vasr.db"), n=30, beam=4, bias_n=8,
                        train_overrides=TINY_TRAINING, punct_overrides=TINY_PUNCT)
    assert run_demo(config) == 0
    out = capsys.readouterr()
    for stage in ("1/6", "2/6", "3/6", "4/6", "5/6", "6/6"):
        assert f"=== {stage}" in out.out
    assert "30 new" in out.out and "decoder greedy" in out.out and "decoder beam4" in out.out
    model = tmp_path / "out" / "model"
    assert {"model.onnx", "model.int8.onnx", "model-streaming.onnx", "model-streaming.int8.onnx", "tokens.txt",
            "config.json", "punct.onnx", "punct.json"} <= {p.name for p in model.iterdir()}
    assert "streaming model" in out.out and list((tmp_path / "out" / "transcripts-stream").glob("*.txt"))
    transcripts = list((tmp_path / "out" / "transcripts").glob("*.txt"))
    assert transcripts and "CER" in out.err and "WER" in out.err
    table = (tmp_path / "out" / "bias-eval.md").read_text(encoding="utf-8")
    assert table.count("\n| beam 4") == 4 and "| greedy |" in table and (model / "decode.json").is_file()


def test_a_missing_help_package_stops_the_demo_before_its_first_stage(tmp_path, capsys):
    """The punctuation stage reads the help texts after half an hour of training: the demo asks first."""
    config = DemoConfig(out_dir=str(tmp_path / "out"), db=str(tmp_path / "vasr.db"), n=30,
                        punct_overrides=(f"gnome_dir={tmp_path / 'no-help'}",))
    with pytest.raises(FileNotFoundError, match=r"^held-out source gnome: no GNOME help at .*no-help \(Debian "
                                                r"package gnome-user-docs\); --set heldout='' trains without one$"):
        run_demo(config)
    assert "=== 1/6" not in capsys.readouterr().out and not (tmp_path / "out" / "synth").exists()
