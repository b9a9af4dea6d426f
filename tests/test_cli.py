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
@pytest.mark.parametrize("module, args, extra", [("sqlalchemy", ["db", "stats"], "db"),
                                                 ("torch", ["train", "--config", "tiny"], "train"),
                                                 ("uvicorn", ["serve", "MODEL"], "serve")])
def test_a_missing_extra_is_named_in_one_line(tmp_path, module, args, extra):
    """As on an install without that extra: the package is made unimportable for the run."""
    code = (f"import sys; sys.modules[{module!r}] = None; from vasr.cli import main; "
            f"sys.exit(main({[*args, '--db', str(tmp_path / 'x.db')] if args[0] != 'serve' else args!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        f"vasr {args[0] if args[0] != 'db' else 'db stats'}: error: needs the {module!r} package, which is not "
        f"installed: pip install 'vasr[{extra}]'"]


def test_synth_command(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("xin chào\ncảm ơn bạn\nhẹn gặp lại\n", encoding="utf-8")
    out = vasr("synth", "--n", "9", "--text", str(text), "--out", str(tmp_path / "c"), "--db",
               str(tmp_path / "x.db"), "--set", "seed=4")
    assert out.returncode == 0, out.stderr
    assert "rendered 9 utterances" in out.stdout and "9 new" in out.stdout
    assert out.stdout.splitlines()[-1].split()[:2] == ["all", "9"]


# -- the parser: help everywhere, --set examples that exist, --print-config

def _parsers(parser=None, path=()):
    """(command path, parser) of `vasr` and every subcommand below it."""
    import argparse

    from vasr.cli import build_parser

    parser = parser or build_parser()
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                assert helps.get(name), f"vasr {' '.join(path + (name,))} has no help line"
                yield from _parsers(child, path + (name,))


def test_every_argument_has_help():
    import argparse

    missing = [f"vasr {' '.join(path)} {'/'.join(a.option_strings) or a.dest}"
               for path, parser in _parsers() for a in parser._actions
               if not isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction))
               and not (a.help or "").strip()]
    assert missing == []


def test_set_help_names_a_real_key_of_its_stage():
    import re

    from vasr import config as cfg
    from vasr.clean import CleanConfig
    from vasr.data.synth import SynthConfig
    from vasr.embeddings.build import EmbedConfig
    from vasr.lm import LMConfig
    from vasr.punct.train import PunctConfig
    from vasr.runtime.decode.rescore import RescoreWeights
    from vasr.segment import SegmentConfig
    from vasr.train import TrainConfig

    stages = {("synth",): SynthConfig, ("embed", "build"): EmbedConfig, ("lm", "build"): LMConfig,
              ("rescore",): RescoreWeights, ("demo",): TrainConfig, ("punct", "train"): PunctConfig,
              ("segment",): SegmentConfig, ("clean",): CleanConfig}
    seen = set()
    for path, parser in _parsers():
        for action in parser._actions:
            if "--set" in action.option_strings:
                key = re.search(r"--set ([\w.]+)=", action.help).group(1)
                assert key in cfg.field_names(stages[path]), (path, key)
                seen.add(path)
    assert seen == set(stages)


def test_limit_out_and_stream_belong_to_bias_eval_only():
    parsers = dict(_parsers())
    options = {path: {o for a in parsers[path]._actions for o in a.option_strings} for path in (("tune",),
                                                                                               ("bias-eval",))}
    own = {"--limit", "--out", "--stream"}
    assert own <= options[("bias-eval",)]
    assert not own & options[("tune",)]
    assert options[("bias-eval",)] - own == options[("tune",)]


def test_help_has_the_where_to_start_epilog():
    out = vasr("--help")
    assert out.returncode == 0
    assert "where to start:" in out.stdout and "train" in out.stdout
    for line in ("vasr demo ", "vasr synth ", "vasr train --config tiny ", "vasr export --checkpoint",
                 "vasr transcribe MODEL_DIR a.wav"):
        assert line in out.stdout


def test_config_typo_is_one_line_with_a_suggestion():
    out = vasr("synth", "--set", "nn=3", "--no-import")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == ["vasr synth: error: override nn: SynthConfig has no field 'nn' "
                                       "(did you mean n?)"]


def test_unknown_preset_is_one_line():
    out = vasr("synth", "--config", "nosuch", "--no-import")
    assert out.returncode == 2
    assert out.stderr.splitlines() == ["vasr synth: error: unknown config preset 'nosuch'; presets: base, tiny, "
                                       "weak-hw (or the path of a YAML file)"]


def test_train_is_python_m_vasr_train():
    out = vasr("train", "--help")
    assert out.returncode == 0
    # the same parser under its own name: the usage line differs, the rest is identical
    assert out.stdout.startswith("usage: vasr train [-h] [--config CONFIG]")
    assert out.stdout.split("\n\n", 1)[1] == vasr_train_help().split("\n\n", 1)[1]
    assert "--print-config" in out.stdout
    out = vasr("train", "--config", "tiny", "optim.lrr=1")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.splitlines() == ["vasr train: error: override optim.lrr: OptimConfig has no field 'lrr' "
                                       "(did you mean optim.lr?)"]


def vasr_train_help() -> str:
    return subprocess.run([sys.executable, "-m", "vasr.train", "--help"], capture_output=True, text=True,
                          check=True, timeout=300).stdout


def test_train_print_config_is_the_preset_with_overrides(tmp_path):
    import yaml

    from vasr import config as cfg
    from vasr.train import TrainConfig

    out = vasr("train", "--config", "tiny", "--print-config", "optim.lr=5e-4", "epochs=1", "--db",
               str(tmp_path / "x.db"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    expected = cfg.load(TrainConfig, "tiny", ["optim.lr=5e-4", "epochs=1", f"db={tmp_path / 'x.db'}"])
    assert yaml.safe_load(out.stdout) == cfg.to_dict(expected)
    assert expected.optim.lr == 0.0005 and not (tmp_path / "x.db").exists() and not (tmp_path / "runs").exists()


def test_synth_print_config_resolves_file_overrides_and_flags(tmp_path, capsys):
    import yaml

    from vasr import config as cfg
    from vasr.cli import main
    from vasr.data.synth import SynthConfig

    path = tmp_path / "s.yaml"
    path.write_text("n: 50\nsplit_ratios: [8e-1, 1e-1, 1e-1]\n", encoding="utf-8")
    assert main(["synth", "--config", str(path), "--set", "seed=4", "--n", "7", "--print-config",
                 "--db", str(tmp_path / "x.db")]) == 0
    expected = SynthConfig(n=7, seed=4, split_ratios=(0.8, 0.1, 0.1))
    assert yaml.safe_load(capsys.readouterr().out) == cfg.to_dict(expected)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("argv, key, value", [
    (["import", "csv", "m.csv", "--ratios", "0.6", "0.2", "0.2"], "split_ratios", [0.6, 0.2, 0.2]),
    (["demo", "--n", "40", "--set", "max_minutes=1"], "train_overrides", ["max_minutes=1"]),
    (["eval", "--checkpoint", "c.pt", "--beam", "4"], "beam", 4),
    (["export", "--checkpoint", "c.pt", "--out", "m"], "gate", {"split": "test", "version": "default",
                                                                "manifest": None}),
    (["transcribe", "m", "a.wav", "--split", "test", "--max-chunk", "10"], "chunk.min_chunk_s", 4.0),
    (["transcribe", "m", "a.wav", "--stream", "--chunk-ms", "160"], "stream_chunk", 4),
    (["embed", "build", "--out", "e", "--set", "word2vec.dim=8"], "word2vec.dim", 8),
    (["lm", "build", "--order", "4", "--split", "all"], "split", None),
    (["rescore", "n.jsonl", "--set", "lm=8e-1"], "weights.lm", 0.8),
    (["tune", "m"], "source", {"split": "val", "version": "bias", "manifest": None}),
    (["bias-eval", "m", "--limit", "5"], "limit", 5),
])
def test_print_config_for_every_stage(tmp_path, monkeypatch, capsys, argv, key, value):
    import yaml

    from vasr.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VASR_DB", str(tmp_path / "x.db"))
    assert main([*argv, "--print-config"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    for part in key.split("."):
        data = data[part]
    assert data == value
    assert list(tmp_path.iterdir()) == []           # nothing ran: no database, no output folder
