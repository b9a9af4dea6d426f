"""vasr db export (kaldi, lhotse, nemo, csv) and vasr import lhotse: round trips through the real lhotse."""
from __future__ import annotations

import gzip
import json

import pytest
import sqlalchemy as sa

from vasr.cli import main
from vasr.data.export import export_split
from vasr.data.importers import ImportOptions, ImportRejected, import_corpus
from vasr.db.schema import audio_files, data_splits, transcripts


@pytest.fixture
def corpus(engine, tmp_path, tone):
    """A Kaldi data dir with segments (train: two segments of one file, one segment spanning a whole
    file) and a CSV of whole files (test), imported."""
    tone(tmp_path / "audio" / "rec1.wav", 3.0, freq=1200)
    tone(tmp_path / "audio" / "rec2.wav", 2.0, freq=700)
    data = tmp_path / "kaldi" / "train"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text(f"rec1 {tmp_path / 'audio' / 'rec1.wav'}\nrec2 ../../audio/rec2.wav\n")
    (data / "segments").write_text("a1 rec1 0.00 1.20\na2 rec1 1.20 2.90\nb1 rec2 0 2.0\n")
    (data / "text").write_text("a1 Một, hai!\na2 ba bốn năm\nb1 Sáu bảy.\n", encoding="utf-8")
    (data / "utt2spk").write_text("a1 spkA\na2 spkA\nb1 spkB\n")
    assert import_corpus("kaldi", data, engine).imported == 3
    rows = ["file_path,transcript,split,speaker_id"]
    for i, (speaker, text) in enumerate([("s1", "Xin chào"), ("s2", "cảm ơn bạn"), ("s1", "tạm biệt!")]):
        tone(tmp_path / "audio" / f"t{i}.wav", 0.6 + 0.1 * i, freq=300 + 50 * i)
        rows.append(f"audio/t{i}.wav,{text},test,{speaker}")
    (tmp_path / "test.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert import_corpus("csv", tmp_path / "test.csv", engine).imported == 3
    return engine


def _db_utterances(engine, split):
    with engine.connect() as conn:
        return conn.execute(
            sa.select(audio_files.c.utt_id, audio_files.c.path, audio_files.c.start_s, audio_files.c.end_s,
                      audio_files.c.duration_s, audio_files.c.speaker, transcripts.c.normalized_text)
            .join(transcripts, transcripts.c.audio_id == audio_files.c.id)
            .join(data_splits, data_splits.c.audio_id == audio_files.c.id)
            .where(data_splits.c.split == split).order_by(audio_files.c.utt_id)).all()


def _counts(engine):
    with engine.connect() as conn:
        return [conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (audio_files, transcripts, data_splits)]


def test_lhotse_export_reads_in_lhotse_and_reimports_as_nothing_new(corpus, tmp_path):
    lhotse = pytest.importorskip("lhotse")
    out = tmp_path / "lhotse"
    with corpus.connect() as conn:
        report = export_split(conn, "lhotse", "train", out)
    assert report.utterances == 3 and report.recordings == 2
    assert sorted(p.name for p in out.iterdir()) == ["recordings.jsonl.gz", "supervisions.jsonl.gz"]
    recordings = lhotse.load_manifest(out / "recordings.jsonl.gz")
    supervisions = lhotse.load_manifest(out / "supervisions.jsonl.gz")
    assert isinstance(recordings, lhotse.RecordingSet) and isinstance(supervisions, lhotse.SupervisionSet)
    lhotse.validate_recordings_and_supervisions(recordings, supervisions)
    assert sorted(r.duration for r in recordings) == [2.0, 3.0]
    assert recordings["rec1"].load_audio().shape == (1, 48000)
    db = _db_utterances(corpus, "train")
    got = sorted((s.id, s.start, s.duration, s.text, s.speaker, s.language) for s in supervisions)
    assert got == [(r.utt_id, r.start_s, pytest.approx(r.duration_s), r.normalized_text, r.speaker, "vi")
                   for r in db]
    assert [r.normalized_text for r in db] == ["một hai", "ba bốn năm", "sáu bảy"]
    cuts = lhotse.CutSet.from_manifests(recordings=recordings, supervisions=supervisions).trim_to_supervisions()
    assert sorted((c.supervisions[0].id, round(c.duration, 6)) for c in cuts) == \
        [(r.utt_id, round(r.duration_s, 6)) for r in db]
    before = _counts(corpus)
    again = import_corpus("lhotse", out / "recordings.jsonl.gz", corpus)
    assert (again.imported, again.updated, again.already_present, again.rejects) == (0, 0, 3, ())
    assert _counts(corpus) == before
    cuts.to_file(tmp_path / "cuts.jsonl.gz")           # a cuts manifest written by lhotse reads too
    from_cuts = import_corpus("lhotse", tmp_path / "cuts.jsonl.gz", corpus)
    assert from_cuts.imported == 0 and not from_cuts.rejects and _counts(corpus) == before


def test_import_of_lhotse_manifests_written_by_lhotse(engine, tmp_path, tone):
    lhotse = pytest.importorskip("lhotse")
    tone(tmp_path / "long.wav", 4.0, freq=900)
    tone(tmp_path / "short.wav", 1.0, freq=500)
    recordings = lhotse.RecordingSet.from_recordings(
        [lhotse.Recording.from_file(tmp_path / "long.wav"), lhotse.Recording.from_file(tmp_path / "short.wav")])
    supervisions = lhotse.SupervisionSet.from_segments([
        lhotse.SupervisionSegment("x1", "long", 0.5, 1.5, text="Một hai ba", speaker="spk1", language="vi"),
        lhotse.SupervisionSegment("x2", "long", 2.0, 1.8, text="bốn năm", speaker="spk1"),
        lhotse.SupervisionSegment("x3", "short", 0.0, 1.0, text="sáu", speaker="spk2"),
        lhotse.SupervisionSegment("x4", "missing", 0.0, 1.0, text="bảy")])
    recordings.to_file(tmp_path / "recordings.jsonl.gz")
    supervisions.to_file(tmp_path / "supervisions.jsonl")
    with pytest.raises(ImportRejected) as info:
        import_corpus("lhotse", tmp_path / "recordings.jsonl.gz", engine, supervisions=tmp_path / "supervisions.jsonl")
    assert [(r.row_ref, "missing" in r.reason) for r in info.value.report.rejects] == [("supervisions.jsonl:4", True)]
    assert _counts(engine) == [0, 0, 0]
    report = import_corpus("lhotse", tmp_path / "recordings.jsonl.gz", engine, ImportOptions(skip_bad=True),
                           split="dev", supervisions=tmp_path / "supervisions.jsonl")
    assert (report.imported, len(report.rejects)) == (3, 1)
    rows = _db_utterances(engine, "val")
    assert [(r.utt_id, r.start_s, r.end_s, r.speaker, r.normalized_text) for r in rows] == [
        ("x1", 0.5, 2.0, "spk1", "một hai ba"), ("x2", 2.0, 3.8, "spk1", "bốn năm"), ("x3", 0.0, 1.0, "spk2", "sáu")]


def test_csv_export_reimports_as_nothing_new_and_refuses_segments(corpus, tmp_path):
    out = tmp_path / "csv"
    with corpus.connect() as conn:
        export_split(conn, "csv", "test", out)
    lines = (out / "manifest.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "file_path,transcript,split,speaker_id,dialect" and len(lines) == 4
    assert lines[1].endswith(",Xin chào,test,s1,")
    before = _counts(corpus)
    report = import_corpus("csv", out / "manifest.csv", corpus)
    assert (report.imported, report.updated, report.already_present) == (0, 0, 3)
    assert _counts(corpus) == before
    with corpus.connect() as conn, pytest.raises(ValueError, match="csv cannot hold segments"):
        export_split(conn, "csv", "train", tmp_path / "csv-train")
    assert not (tmp_path / "csv-train").exists() and not list(tmp_path.glob(".csv-train*"))


def test_kaldi_export_is_a_valid_data_dir(corpus, tmp_path):
    out = tmp_path / "kaldi-out"
    with corpus.connect() as conn:
        export_split(conn, "kaldi", "train", out)
    files = {p.name: p.read_text(encoding="utf-8").splitlines() for p in out.iterdir()}
    assert sorted(files) == ["segments", "spk2utt", "text", "utt2spk", "wav.scp"]
    for name, lines in files.items():   # sorted as LC_ALL=C sort (code point order = UTF-8 byte order), unique keys
        keys = [line.split(" ", 1)[0] for line in lines]
        assert keys == sorted(keys) and len(set(keys)) == len(keys), name
    utt2spk = dict(line.split(" ") for line in files["utt2spk"])
    spk2utt = {}
    for utt, spk in utt2spk.items():    # utt2spk_to_spk2utt.pl, compared as validate_data_dir.sh does
        spk2utt.setdefault(spk, []).append(utt)
    assert files["spk2utt"] == [f"{s} {' '.join(u)}" for s, u in spk2utt.items()]
    assert utt2spk == {"spkA-a1": "spkA", "spkA-a2": "spkA", "spkB-b1": "spkB"}
    assert files["text"] == ["spkA-a1 một hai", "spkA-a2 ba bốn năm", "spkB-b1 sáu bảy"]
    import soundfile as sf
    wav = dict(line.split(" ", 1) for line in files["wav.scp"])
    for line in files["segments"]:
        utt, rec, start, end = line.split()
        assert utt in utt2spk and 0 <= float(start) < float(end) <= sf.info(wav[rec]).duration
    assert files["segments"] == ["spkA-a1 rec1 0 1.2", "spkA-a2 rec1 1.2 2.9", "spkB-b1 rec2 0 2"]
    # the export reads back into vasr as the same utterances (the text is the normalised one)
    before = _counts(corpus)
    report = import_corpus("kaldi", out, corpus, split="train")
    assert (report.imported, report.already_present + report.updated) == (0, 3) and _counts(corpus) == before


def test_nemo_export_and_the_command_line(corpus, tmp_path, capsys):
    if corpus.url.get_backend_name() != "sqlite":
        pytest.skip("the command line test runs on SQLite")
    db = str(corpus.url.database)
    out = tmp_path / "nemo"
    assert main(["db", "export", "--format", "nemo", "--split", "train", "--db", db, str(out)]) == 0
    assert "exported 3 utterances" in capsys.readouterr().out
    items = [json.loads(line) for line in (out / "manifest.json").read_text(encoding="utf-8").splitlines()]
    assert [(i["duration"], i["text"], i.get("offset")) for i in items] == [
        (1.2, "một hai", 0.0), (1.7, "ba bốn năm", 1.2), (2.0, "sáu bảy", None)]
    assert main(["db", "export", "--format", "nemo", "--split", "train", "--db", db, str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vasr db export: error: ") and "not empty" in err and "\n" not in err
    assert main(["db", "export", "--format", "lhotse", "--split", "train", "--db", db, "--force", "--no-gzip",
                 str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["recordings.jsonl", "supervisions.jsonl"]
    assert not list(tmp_path.glob(".nemo*"))
    assert main(["db", "export", "--format", "kaldi", "--split", "val", "--db", db, str(tmp_path / "k")]) == 2
    assert "has no utterances" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["import", "lhotse", str(out / "recordings.jsonl"), str(out / "supervisions.jsonl"), "--db", db]) == 0
    assert "0 new, 3 already present, 0 rejected" in capsys.readouterr().out
    assert main(["import", "lhotse", str(out), "--db", db]) == 0           # a folder of manifests
    assert "0 new" in capsys.readouterr().out
    with gzip.open(tmp_path / "bad.jsonl.gz", "wt") as fh:
        fh.write('{"id": "r", "sources": [{"type": "url", "channels": [0], "source": "http://x/a.wav"}]}\n')
    (tmp_path / "bad_sup.jsonl").write_text('{"id": "s", "recording_id": "r", "start": 0, "duration": 1}\nnot json\n')
    assert main(["import", "lhotse", str(tmp_path / "bad.jsonl.gz"), str(tmp_path / "bad_sup.jsonl"), "--db", db]) == 1
    err = capsys.readouterr().err
    assert "bad.jsonl.gz:1" in err and "type 'file'" in err and "bad_sup.jsonl:2" in err


def test_kaldi_export_refuses_speakers_that_cannot_sort_consistently(tmp_path):
    from vasr.data.export import ExportRow, _kaldi

    def row(utt, speaker):
        return ExportRow(utt, 1, "/a.wav", 0.0, 1.0, 1.0, speaker, "một", "một", None, "vi", "train", "a", False)

    with pytest.raises(ValueError, match="cannot both be sorted"):   # a-b-1 < a-c, but speaker a < a-b
        _kaldi([row("c", "a"), row("1", "a-b")], [], tmp_path, False)
