"""Validation at the edge of `vasr import`, through the real CLI on both databases: every bad row is
one line naming the file and row, nothing of a rejected import is written, --skip-bad keeps exactly
the good rows, and a re-import updates a corrected transcript or replaced audio, never twice."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa

from vasr.data.manifests import read_csv
from vasr.data.utterance import manifest_utterances
from vasr.db import store
from vasr.db.schema import audio_files, import_rejects, imports, transcripts


def vasr(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VASR_DB"}
    return subprocess.run([sys.executable, "-m", "vasr", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def _write(path: Path, samples: np.ndarray, rate: int = 16000, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate, **kwargs)
    return path


def _sine(seconds: float, freq: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _truncated(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path


def _rows(url: str) -> dict[str, tuple]:
    """(utt_id -> (id, sha256, end_s, raw_text, peak, clipped_fraction), table -> row count)."""
    engine = sa.create_engine(store.resolve_url(url))   # read only: no second store.connect beside the test's
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audio_files.c.utt_id, audio_files.c.id, audio_files.c.sha256,
                                      audio_files.c.end_s, transcripts.c.raw_text, audio_files.c.peak,
                                      audio_files.c.clipped_fraction)
                            .join(transcripts, transcripts.c.audio_id == audio_files.c.id)).all()
        counts = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                  for t in (audio_files, transcripts, imports, import_rejects)}
    engine.dispose()
    return {r.utt_id: tuple(r[1:]) for r in rows}, counts


def _assert_one_line_errors(out: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in out.stderr, out.stderr


# (manifest lines, audio it needs, the fragment of the reject naming that line); None: a good row.
# Rows start at line 2 (line 1 is the header file_path,transcript,speaker_id,dialect).
CASES = [
    ("good.wav,Một câu tốt,s1,", None),
    ("nan.wav,câu số hai,,", "NaN or infinite sample"),
    ("huge.wav,câu số ba,,", "a broken float file"),
    ("cut.flac,câu số bốn,,", "does not decode to the end"),
    ("cut.mp3,câu số năm,,", "truncated audio"),
    ("one.wav,một mẫu,,", "at least 0.1 s"),
    ("zero.wav,im lặng,,", "digital silence"),
    ("long.wav," + "xin chào " * 11_112 + ",,", "characters/s"),
    ("long.wav," + "ơ" * 70_000 + ",,", "field transcript is 140,000 bytes"),
    ("long.wav,tên dài," + "s" * 200 + ",", "field speaker_id is 200 characters; the database holds at most 128"),
    ("long.wav,vùng," + ",x" * 1 + "y" * 20, "field dialect is 21 characters"),
    ("long.wav,   ,,", "empty transcript"),
    ('good2.wav,"ngoặc chưa đóng,,', "malformed quoting"),       # must not swallow the next line
    ("good2.wav,dòng sau ngoặc,s2,", None),
    ('good3.wav,"hai', "malformed quoting"),                     # a line break inside quotes ...
    ('dòng",s3,', "malformed row"),                              # ... its second line is a row of its own
    ("clip.wav,bị cắt đỉnh,s4,", None),
]


@pytest.fixture
def corpus(tmp_path):
    _write(tmp_path / "good.wav", _sine(0.6, 300))
    _write(tmp_path / "good2.wav", _sine(0.6, 310))
    _write(tmp_path / "good3.wav", _sine(0.6, 320))
    _write(tmp_path / "long.wav", _sine(2.0, 330))
    nan = _sine(0.5, 340)
    nan[1000] = np.nan
    _write(tmp_path / "nan.wav", nan, subtype="FLOAT")
    huge = _sine(0.5, 350)
    huge[2000] = 1e30
    _write(tmp_path / "huge.wav", huge, subtype="FLOAT")
    _truncated(_write(tmp_path / "cut.flac", _sine(2.0, 360)))
    _truncated(_write(tmp_path / "cut.mp3", _sine(2.0, 370), format="MP3", subtype="MPEG_LAYER_III"))
    _write(tmp_path / "one.wav", np.array([0.5], np.float32))
    _write(tmp_path / "zero.wav", np.zeros(16000, np.float32))
    _write(tmp_path / "clip.wav", np.clip(_sine(0.6, 380, amplitude=2.0), -1, 1), subtype="FLOAT")
    manifest = tmp_path / "m.csv"
    manifest.write_text("file_path,transcript,speaker_id,dialect\n" + "\n".join(line for line, _ in CASES) + "\n",
                        encoding="utf-8")
    return manifest


def test_bad_rows_are_one_line_each_and_skip_bad_keeps_exactly_the_good_ones(corpus, db_url):
    out = vasr("import", "csv", str(corpus), "--db", db_url)
    _assert_one_line_errors(out)
    assert out.returncode == 1 and "nothing was imported" in out.stderr
    lines = {re.match(r"\s*rejected (m\.csv:\d+)", line).group(1): line
             for line in out.stderr.splitlines() if line.strip().startswith("rejected m.csv:")}
    expected = {f"m.csv:{n}": fragment for n, (_, fragment) in enumerate(CASES, start=2) if fragment}
    assert set(lines) == set(expected), out.stderr
    for ref, fragment in expected.items():
        assert fragment in lines[ref], (ref, lines[ref])
        assert len(lines[ref]) < 400, lines[ref]          # one short line, never the 100 KiB transcript
    assert "characters for 2.00 s of audio" in lines["m.csv:9"]
    assert _rows(db_url)[1] == {"audio_files": 0, "transcripts": 0, "imports": 0, "import_rejects": 0}

    out = vasr("import", "csv", str(corpus), "--db", db_url, "--skip-bad")
    _assert_one_line_errors(out)
    assert out.returncode == 0 and f"3 new, 0 already present, {len(expected)} rejected" in out.stdout
    rows, counts = _rows(db_url)
    assert {k: v[3] for k, v in rows.items()} == {"good": "Một câu tốt", "good2": "dòng sau ngoặc",
                                                 "clip": "bị cắt đỉnh"}
    assert counts == {"audio_files": 3, "transcripts": 3, "imports": 1, "import_rejects": len(expected)}
    assert rows["good"][4] == pytest.approx(0.3, abs=1e-3) and rows["good"][5] == 0.0   # (peak, clipped share)
    assert rows["clip"][4] == pytest.approx(1.0) and rows["clip"][5] > 0.3   # clipping recorded
    from vasr.data.importers import ImportOptions, import_corpus

    engine = store.connect(db_url)
    again = import_corpus("csv", corpus, engine, ImportOptions(skip_bad=True))
    engine.dispose()
    assert (again.imported, again.updated, again.already_present) == (0, 0, 3)
    assert _rows(db_url)[1]["audio_files"] == 3


def test_reimport_updates_a_corrected_transcript_and_replaced_audio(tmp_path, db_url):
    from vasr.data.importers import ImportRejected, import_corpus

    _write(tmp_path / "a.wav", _sine(0.6, 400))
    _write(tmp_path / "b.wav", _sine(0.6, 410))
    manifest = tmp_path / "m.csv"
    manifest.write_text("a.wav,câu sai\nb.wav,câu hai\n", encoding="utf-8")
    engine = store.connect(db_url)
    assert import_corpus("csv", manifest, engine).imported == 2
    first, _ = _rows(db_url)

    manifest.write_text("a.wav,câu đúng\nb.wav,câu hai\n", encoding="utf-8")   # corrected transcript
    _write(tmp_path / "b.wav", _sine(0.9, 420))                                 # audio replaced in place
    out = vasr("import", "csv", str(manifest), "--db", db_url)
    _assert_one_line_errors(out)
    assert out.returncode == 0 and "0 new, 2 updated, 0 already present" in out.stdout, out.stdout
    rows, counts = _rows(db_url)
    assert rows["a"][0] == first["a"][0] and rows["a"][3] == "câu đúng"        # same row, new text
    assert rows["b"][0] == first["b"][0] and rows["b"][1] != first["b"][1]      # same row, re-hashed
    assert rows["b"][2] == pytest.approx(0.9)
    assert counts["audio_files"] == 2 and counts["transcripts"] == 2

    again = import_corpus("csv", manifest, engine)                              # idempotent
    assert (again.imported, again.updated, again.already_present) == (0, 0, 2)
    assert _rows(db_url)[1]["audio_files"] == 2

    # the same audio under another path with a different transcript: rejected, naming the row holding it
    (tmp_path / "copy.wav").write_bytes((tmp_path / "a.wav").read_bytes())
    manifest.write_text("copy.wav,một câu khác\n", encoding="utf-8")
    with pytest.raises(ImportRejected, match=r"m\.csv:1.*a\.wav \(audio id \d+\) with another transcript"):
        import_corpus("csv", manifest, engine)
    assert _rows(db_url)[1]["imports"] == 3
    engine.dispose()


@pytest.mark.parametrize("setup, fragment", [
    ("dir", "is a directory"),
    ("repeated", "header names column transcript more than once"),
    ("alias", "header names column file_path more than once"),
])
def test_manifest_file_errors_are_one_line(tmp_path, setup, fragment):
    target = tmp_path / "m.csv"
    if setup == "dir":
        target.mkdir()
    elif setup == "repeated":
        target.write_text("file_path,transcript,transcript\na.wav,một,hai\n", encoding="utf-8")
    else:
        target.write_text("file_path,path,transcript\na.wav,b.wav,một\n", encoding="utf-8")
    out = vasr("import", "csv", str(target), "--db", str(tmp_path / "x.db"))
    _assert_one_line_errors(out)
    assert out.returncode in (1, 2) and fragment in out.stderr and "m.csv" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_commonvoice_field_over_128_kib_is_a_reject_not_a_traceback(tmp_path, db_url):
    root = tmp_path / "cv"
    _write(root / "clips" / "a.mp3", _sine(0.6, 500), format="MP3", subtype="MPEG_LAYER_III")
    _write(root / "clips" / "b.mp3", _sine(0.6, 510), format="MP3", subtype="MPEG_LAYER_III")
    (root / "train.tsv").write_text("client_id\tpath\tsentence\n" f"c1\ta.mp3\t{'ơ' * 70_000}\n"
                                    "c2\tb.mp3\tcâu tốt\n", encoding="utf-8")
    out = vasr("import", "commonvoice", str(root), "--db", db_url, "--skip-bad")
    _assert_one_line_errors(out)
    assert out.returncode == 0 and "1 new" in out.stdout
    assert "rejected train.tsv:2" in out.stdout and "field transcript is 140,000 bytes" in out.stdout


def test_kaldi_segments_are_judged_on_their_own_audio(tmp_path, engine):
    from vasr.data.importers import ImportOptions, import_corpus

    samples = np.concatenate([_sine(1.0, 600), np.zeros(16000, np.float32), _sine(1.0, 610)])
    _write(tmp_path / "rec.wav", samples)
    data = tmp_path / "train"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec {tmp_path / 'rec.wav'}\n")
    (data / "segments").write_text("u1 rec 0.0 1.0\nu2 rec 1.1 1.9\nu3 rec 2.0 2.05\nu4 rec 2.0 3.0\n"
                                   "u5 rec 0.2 0.9\n")
    (data / "text").write_text("u1 một\nu2 im lặng\nu3 ngắn\nu4 ba\n" + "u5 " + "a" * 300 + "\n",
                               encoding="utf-8")
    (data / "utt2spk").write_text("u1 s\nu2 s\nu3 s\nu4 s\n" + "u5 " + "s" * 129 + "\n")
    report = import_corpus("kaldi", data, engine, ImportOptions(skip_bad=True))
    reasons = {r.row_ref: r.reason for r in report.rejects}
    assert report.imported == 2 and set(reasons) == {"text:2", "text:3", "text:5"}
    assert "segment is digital silence" in reasons["text:2"]
    assert "segment is 0.0500 s long; at least 0.1 s" in reasons["text:3"]
    assert "field speaker_id is 129 characters" in reasons["text:5"]


def test_strict_csv_reader_and_manifest_utterances(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text('a.wav,"mở\nb.wav,tốt\nc.wav,"đóng" rồi\nd.wav,"có ""ngoặc"" kép"\r\ne.wav,một\u2028hai\n',
                        encoding="utf-8")
    entries, rejects = read_csv(manifest)
    assert [(e.row_ref, e.transcript) for e in entries] == [
        ("m.csv:2", "tốt"), ("m.csv:4", 'có "ngoặc" kép'), ("m.csv:5", "một\u2028hai")]  # lines split at \n only
    assert [r.row_ref for r in rejects] == ["m.csv:1", "m.csv:3"]
    assert all("malformed quoting" in r.reason for r in rejects)
    with pytest.raises(ValueError, match=r"m\.csv:1: malformed quoting"):
        manifest_utterances(manifest)
