"""Config dataclasses <-> YAML with typed overrides."""
from __future__ import annotations

import pytest

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
