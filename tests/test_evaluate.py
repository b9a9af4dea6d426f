"""Evaluation: scores through the kernels, stored predictions, the error report, manifests, the CLI."""
from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import func, select
from test_train import make_corpus, tiny_config

from vasr.data.utterance import DataSource
from vasr.db import store
from vasr.db.schema import models, predictions
from vasr.evaluate import EvalConfig, error_report, evaluate, strip_tone, tone_of
from vasr.kernels import corpus_cer, corpus_wer
from vasr.train import BEST, train


def test_tone_of_and_strip_tone():
    assert [tone_of(w) for w in ["ba", "bà", "bá", "bả", "bã", "bạ", "người", "khỏe"]] == \
        ["ngang", "huyền", "sắc", "hỏi", "ngã", "nặng", "huyền", "hỏi"]
    assert strip_tone("người") == "ngươi" and strip_tone("khỏe") == "khoe"


def test_error_report_counts_substitutions_speakers_and_tones():
    refs = ["bà ba đi chợ", "người ta", "xin chào"]
    hyps = ["ba ba đi chợ", "người", "xin chào"]
    report = error_report(refs, hyps, ["s1", "s2", "s3"], top=5)
    assert report["word_substitutions"] == [("bà", "ba", 1)]
    assert report["char_substitutions"] == [("à", "a", 1)]
    tones = {t: (w, e, o) for t, w, e, o in report["per_tone"]}
    # bà: substituted, tone only; ta: deleted; every other word right
    assert tones == {"ngang": (4, 1, 0), "huyền": (3, 1, 1), "nặng": (1, 0, 0)}
    speakers = {s: (n, c) for s, n, c in report["per_speaker"]}
    assert speakers["s2"] == (1, pytest.approx(3 / 8)) and speakers["s3"] == (1, 0.0)
    assert report["per_speaker"][0][0] == "s2"  # worst first


@pytest.fixture
def trained(tmp_path):
    db = str(tmp_path / "vasr.db")
    manifest = make_corpus(tmp_path / "audio", db)
    result = train(tiny_config(db, tmp_path / "runs", epochs=1))
    return db, manifest, result


@pytest.mark.parametrize("beam", [1, 4])
def test_evaluate_scores_and_stores_predictions(trained, beam):
    db, _, result = trained
    report = evaluate(EvalConfig(checkpoint=str(result.run_dir / BEST), source=DataSource("test"), db=db, beam=beam))
    assert report.utterances == 2 and report.decoder == ("greedy" if beam == 1 else "beam4")
    engine = store.connect(db)
    with engine.connect() as conn:
        rows = conn.execute(select(predictions).where(predictions.c.decoder == report.decoder,
                                                      predictions.c.model_id.is_not(None))).all()
        assert report.stored == len(rows) == 2
        assert {r.reference for r in rows} == {"thủy điện", "chào bạn"}
        refs, hyps = [r.reference for r in rows], [r.text for r in rows]
        assert report.cer.errors == corpus_cer(refs, hyps).errors
        assert report.cer.ref_len == len("thủy điện") + len("chào bạn")
        assert report.wer.errors == corpus_wer(refs, hyps).errors and report.wer.ref_len == 4
        # the run's model row is reused, not duplicated
        assert conn.execute(select(func.count()).select_from(models)).scalar() == 1
        assert {r.model_id for r in rows} == {conn.execute(select(models.c.id)).scalar()}
    assert "CER" in report.format() and "per tone" in report.format()


def test_evaluate_a_manifest_without_storing(trained):
    db, manifest, result = trained
    report = evaluate(EvalConfig(checkpoint=str(result.run_dir / BEST), source=DataSource(manifest=str(manifest)),
                                 db=db))
    assert report.utterances == 10 and report.stored == 0
    assert report.cer.ref_len == sum(len(t) for t in ["xin chào", "cảm ơn bạn", "một hai ba", "tiếng việt",
                                                       "hòa bình", "người dân", "khỏe không", "bạn ơi",
                                                       "thủy điện", "chào bạn"])


def test_cli_eval(trained):
    db, _, result = trained
    out = subprocess.run([sys.executable, "-m", "vasr", "eval", "--checkpoint", str(result.run_dir / BEST),
                          "--split", "val", "--db", db, "--beam", "2"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "2 utterances" in out.stdout and "decoder beam2" in out.stdout and "2 predictions stored" in out.stdout


def test_cli_eval_per_condition(trained):
    db, _, result = trained
    args = [sys.executable, "-m", "vasr", "eval", "--checkpoint", str(result.run_dir / BEST), "--split", "val",
            "--db", db, "--no-store", "--conditions", "clean,noise,telephone"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.split("per condition (the same utterances through each channel):\n")[1].splitlines()
    assert [r.split()[0] for r in rows[1:]] == ["clean", "noise", "telephone"]
    cer = out.stdout.splitlines()[1].split()[1]                      # "CER 12.34% (...)"
    assert rows[1].split()[1] == cer                                  # clean is the main score
    again = subprocess.run(args, capture_output=True, text=True, timeout=120).stdout
    assert again.splitlines()[1:] == out.stdout.splitlines()[1:]      # seeded: all but the speed line
    bad = subprocess.run(args[:-1] + ["clean,rain"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "condition 'rain': expected some of clean, noise, reverb" in bad.stderr
