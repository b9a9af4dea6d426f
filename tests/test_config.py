"""Config dataclasses <-> YAML with typed overrides."""
from __future__ import annotations

import pytest
import yaml

from vasr import config as cfg
from vasr.data.synth import SynthConfig


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "synth.yaml"
    path.write_text("n: 50\nvoices: [vi, vi-vn-x-south]\nrate_wpm: [140, 160]\n", encoding="utf-8")
    config = cfg.load(SynthConfig, path, ["seed=9", "pitch=[10, 20]", "text=/tmp/x.txt"])
    assert (config.n, config.seed, config.voices, config.rate_wpm, config.pitch, config.text) == (
        50, 9, ("vi", "vi-vn-x-south"), (140, 160), (10, 20), "/tmp/x.txt")
    assert cfg.from_dict(SynthConfig, cfg.to_dict(config)) == config
    assert cfg.to_dict(config)["voices"] == ["vi", "vi-vn-x-south"]


@pytest.mark.parametrize("yaml_text, message", [
    ("n: many\n", "n: expected int, got 'many'"),
    ("speed: 3\n", "unknown key(s) speed"),
    ("rate_wpm: [1, 2, 3]\n", "rate_wpm: expected 2 values, got 3"),
    ("- a\n- b\n", "expected a mapping"),
])
def test_bad_yaml_names_the_key(tmp_path, yaml_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        cfg.load(SynthConfig, path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_bad_overrides():
    with pytest.raises(ValueError, match="expected key=value"):
        cfg.override(SynthConfig(), ["n"])
    with pytest.raises(ValueError, match="has no field 'nn'"):
        cfg.override(SynthConfig(), ["nn=3"])
    with pytest.raises(ValueError, match=r"split_ratios\[1\]: expected float"):
        cfg.override(SynthConfig(), ["split_ratios=[0.8, x, 0.1]"])


def test_overrides_are_checked_together_once_all_are_applied():
    from vasr.segment import SegmentConfig

    # overlap_s <= window_s / 4: with the default overlap (2 s) a 4 s window alone is refused
    with pytest.raises(ValueError, match="overlap_s must be between 0 and window_s / 4, got 2.0"):
        cfg.override(SegmentConfig(), ["window_s=4"])
    config = cfg.override(SegmentConfig(), ["window_s=4", "overlap_s=1"])
    assert (config.window_s, config.overlap_s, config.batch) == (4.0, 1.0, 4)
    assert cfg.override(SegmentConfig(), ["overlap_s=1", "window_s=4"]) == config


# -- floats, presets, suggestions, YAML output

@pytest.mark.parametrize("raw, value", [("5e-4", 0.0005), ("1E-3", 0.001), (".5", 0.5), ("-2.5e+1", -25.0),
                                        ("3", 3.0), ("1.0e-3", 0.001)])
def test_float_fields_take_every_decimal_literal(raw, value):
    from vasr.train import TrainConfig

    lr = cfg.override(TrainConfig(), [f"optim.lr={raw}"]).optim.lr
    assert lr == value and type(lr) is float
    ratios = cfg.override(SynthConfig(), [f"split_ratios=[{raw}, 1e-1, .1]"]).split_ratios
    assert ratios == (value, 0.1, 0.1) and all(type(r) is float for r in ratios)


def test_float_literals_in_a_yaml_file(tmp_path):
    from vasr.train import TrainConfig

    path = tmp_path / "t.yaml"
    path.write_text("optim: {lr: 5e-4}\naugment:\n  noise: {snr_db: [1E1, 3e1]}\n", encoding="utf-8")
    config = cfg.load(TrainConfig, path)
    assert config.optim.lr == 0.0005 and config.augment.noise.snr_db == (10.0, 30.0)


@pytest.mark.parametrize("assignment, message", [
    ("epochs=1e3", "epochs: expected int, got '1e3'"),     # ints stay exact
    ("epochs=3.0", "epochs: expected int, got 3.0"),
    ("epochs=yes", "epochs: expected int, got True"),      # bools stay strict
    ("compile=1", "compile: expected bool, got 1"),
    ("optim.lr=true", "optim.lr: expected float, got True"),
    ("optim.lr=fast", "optim.lr: expected float, got 'fast'"),
    ("optim.lr=1e", "optim.lr: expected float, got '1e'"),
])
def test_ints_exact_bools_strict(assignment, message):
    from vasr.train import TrainConfig

    with pytest.raises(ValueError) as info:
        cfg.override(TrainConfig(), [assignment])
    assert message in str(info.value)


def test_presets_are_the_packaged_yaml_files(monkeypatch):
    from vasr.train import TrainConfig

    assert cfg.presets() == ["base", "tiny", "weak-hw"]
    for name in cfg.presets():
        assert cfg.load(TrainConfig, name) == cfg.load(TrainConfig, cfg.CONFIG_DIR / f"{name}.yaml")
    tiny = cfg.load(TrainConfig, "tiny", ["epochs=1"])
    assert (tiny.name, tiny.epochs, tiny.model.architecture, tiny.optim.lr) == ("tiny", 1, "conformer", 0.002)
    monkeypatch.chdir(cfg.CONFIG_DIR.parent)
    assert cfg.load(TrainConfig, "configs/tiny.yaml", ["epochs=1"]) == tiny     # a relative path still works


def test_unknown_preset_is_one_line_listing_the_presets(tmp_path):
    with pytest.raises(ValueError) as info:
        cfg.load(SynthConfig, "tinny")
    message = str(info.value)
    assert "\n" not in message
    assert message == ("unknown config preset 'tinny' (did you mean tiny?); presets: base, tiny, weak-hw "
                       "(or the path of a YAML file)")
    with pytest.raises(ValueError, match="No such file"):
        cfg.load(SynthConfig, tmp_path / "missing.yaml")


def test_a_bare_name_that_is_no_preset_may_be_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").write_text("n: 5\n", encoding="utf-8")
    assert cfg.load(SynthConfig, "mine").n == 5


@pytest.mark.parametrize("assignment, suggestion", [
    ("optim.lrr=1", "optim.lr"),
    ("model.d_modle=3", "model.d_model"),
    ("lr=1e-3", "optim.lr"),           # the right key at the wrong level
    ("optm.lr=1", "optim.lr"),
    ("epoch=3", "epochs"),
])
def test_misspelt_override_suggests_the_key(assignment, suggestion):
    from vasr.train import TrainConfig

    with pytest.raises(ValueError) as info:
        cfg.override(TrainConfig(), [assignment])
    assert f"(did you mean {suggestion}?)" in str(info.value) and "\n" not in str(info.value)


def test_misspelt_key_in_a_file_suggests_the_dotted_key(tmp_path):
    from vasr.train import TrainConfig

    path = tmp_path / "t.yaml"
    path.write_text("epochs: 3\nmodel:\n  d_modle: 64\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        cfg.load(TrainConfig, path)
    assert str(info.value) == f"{path}: unknown key(s) model.d_modle (did you mean model.d_model?)"


def test_broken_yaml_is_one_line(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("rate_wpm: [140,\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        cfg.load(SynthConfig, path)
    assert str(info.value).startswith(f"config file {path}: ") and "\n" not in str(info.value)


def test_to_yaml_round_trips():
    from vasr.embeddings.build import EmbedConfig
    from vasr.train import TrainConfig

    for config in (cfg.load(TrainConfig, "tiny", ["optim.lr=5e-4"]), EmbedConfig(), SynthConfig(n=3)):
        data = yaml.safe_load(cfg.to_yaml(config))
        assert data == cfg.to_dict(config)
        assert cfg.from_dict(type(config), data) == config
    assert cfg.to_dict(EmbedConfig())["out_dir"] == "embeddings"        # paths become strings


def test_field_names_are_dotted():
    from vasr.train import TrainConfig

    names = cfg.field_names(TrainConfig)
    assert {"epochs", "optim", "optim.lr", "model.d_model", "augment.noise.snr_db"} <= set(names)
