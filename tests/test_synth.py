"""The synthetic corpus: real espeak-ng audio, deterministic plans, import with a speaker-disjoint split."""
from __future__ import annotations

import csv
import shutil

import pytest
import soundfile as sf
import sqlalchemy as sa

from vasr.data import synth
from vasr.data.synth import SynthConfig, plan, synthesize
from vasr.db import store
from vasr.db.schema import audio_files, data_splits, transcripts

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

SENTENCES = ["xin chào các bạn", "hôm nay trời rất đẹp", "chúng tôi đi học", "cảm ơn bạn rất nhiều",
             "tôi thích đọc sách", "thành phố hồ chí minh", "hà nội mùa thu", "một hai ba bốn năm"]


def test_plan_is_deterministic_and_varied(tmp_path):
    config = SynthConfig(n=40, seed=5, out_dir=str(tmp_path))
    first, again = plan(config, SENTENCES), plan(config, SENTENCES)
    assert first == again
    other = plan(SynthConfig(n=40, seed=6, out_dir=str(tmp_path)), SENTENCES)
    assert [j.speaker for j in other] != [j.speaker for j in first]
    assert len({j.speaker for j in first}) > 10
    assert {j.speaker.split("+")[0] for j in first} == {"vi", "vi-vn-x-central", "vi-vn-x-south"}
    assert all(config.rate_wpm[0] - 10 <= j.rate_wpm <= config.rate_wpm[1] + 10 for j in first)
    # every sentence is used before any repeats
    assert sorted(j.text for j in first[:8]) == sorted(SENTENCES)
    assert len({j.utt_id for j in first}) == 40


def test_plan_rejects_nonsense(tmp_path):
    with pytest.raises(ValueError, match="no sentences"):
        plan(SynthConfig(out_dir=str(tmp_path)), [])
    with pytest.raises(ValueError, match="must be positive"):
        plan(SynthConfig(n=0, out_dir=str(tmp_path)), SENTENCES)


def test_missing_espeak_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        synth.check_espeak()


@needs_espeak
def test_synthesize_renders_and_imports(tmp_path):
    text = tmp_path / "sentences.txt"
    text.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    config = SynthConfig(n=24, seed=1, out_dir=str(tmp_path / "corpus"), text=str(text))
    engine = store.connect(tmp_path / "db.sqlite")
    jobs, report = synthesize(config, engine, progress=False)
    assert report.imported == 24 and report.rejects == ()
    assert sum(report.split_counts.values()) == 24
    info = sf.info(str(jobs[0].path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert 0.5 < info.duration < 6.0
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audio_files.c.speaker, audio_files.c.dialect, data_splits.c.split,
                                      transcripts.c.normalized_text, transcripts.c.annotation_type)
                            .join(data_splits, data_splits.c.audio_id == audio_files.c.id)
                            .join(transcripts, transcripts.c.audio_id == audio_files.c.id)).all()
    splits_of = {}
    for speaker, dialect, split, text_, kind in rows:
        splits_of.setdefault(speaker, set()).add(split)
        assert dialect == synth.DIALECT_OF_VOICE[speaker.split("+")[0]]
        assert text_ in SENTENCES and kind == "synthetic"
    assert all(len(s) == 1 for s in splits_of.values())
    with open(tmp_path / "corpus" / "manifest.csv", encoding="utf-8") as fh:
        manifest = list(csv.DictReader(fh))
    assert len(manifest) == 24 and manifest[0]["speaker_id"] == jobs[0].speaker
    # a second run renders nothing new and imports nothing twice; the audio is byte-identical
    before = jobs[0].path.read_bytes()
    jobs[0].path.unlink()
    _, again = synthesize(config, engine, progress=False)
    assert (again.imported, again.already_present) == (0, 24)
    assert jobs[0].path.read_bytes() == before
    engine.dispose()
