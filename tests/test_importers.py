"""Importers: every corpus layout, every kind of bad input, atomicity and idempotency, on both databases."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from vasr.data.importers import ImportOptions, ImportRejected, import_corpus
from vasr.db import store
from vasr.db.schema import audio_files, data_splits, import_rejects, imports, transcripts


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _rows(engine):
    with engine.connect() as conn:
        return conn.execute(
            sa.select(audio_files.c.utt_id, audio_files.c.speaker, audio_files.c.sample_rate, audio_files.c.channels,
                      audio_files.c.format, audio_files.c.start_s, audio_files.c.end_s, transcripts.c.raw_text,
                      transcripts.c.normalized_text, transcripts.c.word_count, data_splits.c.split)
            .join(transcripts, transcripts.c.audio_id == audio_files.c.id)
            .outerjoin(data_splits, data_splits.c.audio_id == audio_files.c.id)
            .order_by(audio_files.c.utt_id)).all()


def test_csv_import_all_formats(engine, tmp_path, tone):
    audio = tmp_path / "audio"
    tone(audio / "a.wav", 0.5, 16000, freq=300)
    tone(audio / "b.flac", 1.0, 44100, channels=2, freq=310)
    tone(audio / "c.ogg", 0.75, 22050, freq=320, fmt="OGG", subtype="VORBIS")
    tone(audio / "d.mp3", 1.0, 16000, freq=330, fmt="MP3", subtype="MPEG_LAYER_III")
    manifest = tmp_path / "m.csv"
    manifest.write_text("file_path,transcript,split,speaker_id\n"
                        "audio/a.wav,Xin chào,train,s1\n"
                        "audio/b.flac,\"Hôm nay, trời đẹp!\",dev,s2\n"
                        "audio/c.ogg,Cảm ơn bạn,test,s3\n"
                        "audio/d.mp3,Tạm biệt,,s4\n", encoding="utf-8")
    report = import_corpus("csv", manifest, engine)
    assert (report.imported, report.already_present, report.rejects) == (4, 0, ())
    rows = _rows(engine)
    assert [(r.utt_id, r.speaker, r.sample_rate, r.channels, r.format, r.split) for r in rows] == [
        ("a", "s1", 16000, 1, "WAV", "train"), ("b", "s2", 44100, 2, "FLAC", "val"),
        ("c", "s3", 22050, 1, "OGG", "test"), ("d", "s4", 16000, 1, "MP3", None)]
    assert [r.normalized_text for r in rows] == ["xin chào", "hôm nay trời đẹp", "cảm ơn bạn", "tạm biệt"]
    assert rows[1].raw_text == "Hôm nay, trời đẹp!" and rows[1].word_count == 4
    assert rows[0].end_s == pytest.approx(0.5) and rows[1].end_s == pytest.approx(1.0)
    assert rows[2].end_s == pytest.approx(0.75, abs=1e-3)  # Vorbis may pad or trim a few samples


def test_csv_without_header_and_audio_root(engine, tmp_path, tone):
    tone(tmp_path / "root" / "x.wav", freq=400)
    manifest = tmp_path / "lists" / "m.csv"
    manifest.parent.mkdir()
    manifest.write_text("x.wav,một hai ba\n", encoding="utf-8")
    report = import_corpus("csv", manifest, engine, audio_root=tmp_path / "root")
    assert report.imported == 1
    assert _rows(engine)[0].normalized_text == "một hai ba"


def test_import_is_idempotent(engine, tmp_path, tone):
    tone(tmp_path / "a.wav", freq=500)
    tone(tmp_path / "b.wav", freq=510)
    manifest = tmp_path / "m.csv"
    manifest.write_text("a.wav,một\nb.wav,hai\n", encoding="utf-8")
    assert import_corpus("csv", manifest, engine).imported == 2
    again = import_corpus("csv", manifest, engine)
    assert (again.imported, again.already_present) == (0, 2)
    # a copy of the same audio under another name is the same content: not imported twice
    (tmp_path / "copy.wav").write_bytes((tmp_path / "a.wav").read_bytes())
    manifest.write_text("copy.wav,một\n", encoding="utf-8")
    assert import_corpus("csv", manifest, engine).already_present == 1
    assert _count(engine, audio_files) == 2
    assert _count(engine, imports) == 3


def _bad_corpus(tmp_path, tone):
    tone(tmp_path / "good1.wav", freq=600)
    tone(tmp_path / "good2.wav", freq=610)
    (tmp_path / "garbage.wav").write_bytes(b"RIFF\x00\x00not really a wave file at all")
    tone(tmp_path / "empty.wav", seconds=0.0)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "good1.wav,một câu tốt\n"           # line 1
        "missing.wav,không có tệp\n"        # 2
        "garbage.wav,tệp hỏng\n"            # 3
        "good2.wav,   \n"                   # 4 empty transcript
        "good2.wav,lỗi\x07chuông\n"         # 5 control character
        "good2.wav,!!! ...\n"               # 6 nothing left after normalisation
        "only-one-column\n"                 # 7 malformed
        "empty.wav,tệp rỗng\n"              # 8 zero-length
        "good1.wav,lặp lại\n"               # 9 duplicate of line 1
        "good2.wav,câu tốt thứ hai,holdout\n"  # 10 unknown split
        "good2.wav,câu tốt thứ hai\n",      # 11 good
        encoding="utf-8")
    return manifest


EXPECTED_REJECTS = {
    "m.csv:2": "no such audio file",
    "m.csv:3": "unreadable audio",
    "m.csv:4": "empty transcript",
    "m.csv:5": "not text",
    "m.csv:6": "no words after normalisation",
    "m.csv:7": "malformed row",
    "m.csv:8": "zero-length audio",
    "m.csv:9": "duplicate of m.csv:1",
    "m.csv:10": "unknown split 'holdout'",
}


def test_bad_rows_reject_the_whole_import(engine, tmp_path, tone):
    manifest = _bad_corpus(tmp_path, tone)
    with pytest.raises(ImportRejected) as info:
        import_corpus("csv", manifest, engine)
    reasons = {r.row_ref: r.reason for r in info.value.report.rejects}
    assert set(reasons) == set(EXPECTED_REJECTS)
    for ref, fragment in EXPECTED_REJECTS.items():
        assert fragment in reasons[ref], (ref, reasons[ref])
    assert "m.csv:3" in str(info.value) and "--skip-bad" in str(info.value)
    assert _count(engine, audio_files) == 0 and _count(engine, imports) == 0


def test_skip_bad_imports_good_rows_and_records_rejects(engine, tmp_path, tone):
    manifest = _bad_corpus(tmp_path, tone)
    report = import_corpus("csv", manifest, engine, ImportOptions(skip_bad=True))
    assert report.imported == 2 and len(report.rejects) == len(EXPECTED_REJECTS)
    assert [r.normalized_text for r in _rows(engine)] == ["một câu tốt", "câu tốt thứ hai"]
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(import_rejects.c.row_ref, import_rejects.c.reason)).all())
        counts = conn.execute(sa.select(imports.c.imported, imports.c.rejected)).one()
    assert set(stored) == set(EXPECTED_REJECTS) and tuple(counts) == (2, len(EXPECTED_REJECTS))


def test_a_failure_inside_the_transaction_writes_nothing(engine, tmp_path, tone, monkeypatch):
    tone(tmp_path / "a.wav", freq=700)
    tone(tmp_path / "b.wav", freq=710)
    manifest = tmp_path / "m.csv"
    manifest.write_text("a.wav,một\nb.wav,hai\n", encoding="utf-8")

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "auto_split", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        import_corpus("csv", manifest, engine, ImportOptions(auto_split=True))
    assert _count(engine, audio_files) == 0 and _count(engine, imports) == 0


def test_non_utf8_manifest_names_file_and_line(engine, tmp_path):
    manifest = tmp_path / "latin.csv"
    manifest.write_bytes("a.wav,một\n".encode() + "b.wav,caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.csv:2: not UTF-8"):
        import_corpus("csv", manifest, engine)


def test_vivos_layout(engine, tmp_path, tone):
    root = tmp_path / "vivos"
    for split, speaker, n, base in (("train", "VIVOSSPK01", 3, 800), ("test", "VIVOSDEV01", 2, 900)):
        lines = []
        for i in range(n):
            utt = f"{speaker}_R{i:03d}"
            tone(root / split / "waves" / speaker / f"{utt}.wav", 0.4, freq=base + 10 * i)
            lines.append(f"{utt} KHÁCH SẠN SỐ {i + 1}")
        (root / split / "prompts.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_corpus("vivos", root, engine)
    assert report.imported == 5
    rows = _rows(engine)
    assert [(r.utt_id, r.speaker, r.split) for r in rows][:2] == [
        ("VIVOSDEV01_R000", "VIVOSDEV01", "test"), ("VIVOSDEV01_R001", "VIVOSDEV01", "test")]
    assert rows[2].normalized_text == "khách sạn số một" and rows[2].split == "train"


def test_commonvoice_layout(engine, tmp_path, tone):
    root = tmp_path / "cv"
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\tsegment\n"
    tables = {"train": ["c1\tcommon_voice_vi_1.mp3\tXin chào."],
              "dev": ["c2\tcommon_voice_vi_2.mp3\tCảm ơn."],
              "test": ["c3\tcommon_voice_vi_3.mp3\tTạm biệt."],
              "validated": ["c1\tcommon_voice_vi_1.mp3\tXin chào.", "c4\tcommon_voice_vi_4.mp3\tRất vui."]}
    for i in range(1, 5):
        tone(root / "clips" / f"common_voice_vi_{i}.mp3", 0.5, 48000, freq=1000 + 20 * i, fmt="MP3",
             subtype="MPEG_LAYER_III")
    for name, rows in tables.items():
        (root / f"{name}.tsv").write_text(header + "".join(f"{r}\t1\t0\t\t\t\tvi\t\n" for r in rows), encoding="utf-8")
    report = import_corpus("commonvoice", root, engine)
    assert report.imported == 4
    assert [(r.utt_id, r.speaker, r.split, r.normalized_text, r.format) for r in _rows(engine)] == [
        ("common_voice_vi_1", "c1", "train", "xin chào", "MP3"), ("common_voice_vi_2", "c2", "val", "cảm ơn", "MP3"),
        ("common_voice_vi_3", "c3", "test", "tạm biệt", "MP3"), ("common_voice_vi_4", "c4", None, "rất vui", "MP3")]


def test_kaldi_layout_with_segments(engine, tmp_path, tone):
    data = tmp_path / "data" / "dev"
    tone(tmp_path / "rec1.wav", 3.0, freq=1200)
    data.mkdir(parents=True)
    (data / "wav.scp").write_text(f"rec1 {tmp_path / 'rec1.wav'}\nrec2 sox x.wav -t wav - |\n", encoding="utf-8")
    (data / "segments").write_text("u1 rec1 0.00 1.20\nu2 rec1 1.20 2.90\nu3 rec2 0 1\nu4 rec1 2.5 9.0\n")
    (data / "text").write_text("u1 một hai\nu2 ba bốn năm\nu3 sáu\nu4 bảy\n", encoding="utf-8")
    (data / "utt2spk").write_text("u1 spkA\nu2 spkA\nu3 spkB\nu4 spkA\n")
    with pytest.raises(ImportRejected) as info:
        import_corpus("kaldi", data, engine)
    reasons = {r.row_ref: r.reason for r in info.value.report.rejects}
    assert set(reasons) == {"wav.scp:2", "text:4"}
    assert "pipe commands" in reasons["wav.scp:2"] and "outside the 3.000 s file" in reasons["text:4"]
    report = import_corpus("kaldi", data, engine, ImportOptions(skip_bad=True))
    assert report.imported == 2
    rows = _rows(engine)
    assert [(r.utt_id, r.speaker, r.start_s, r.end_s, r.split) for r in rows] == [
        ("u1", "spkA", 0.0, 1.2, "val"), ("u2", "spkA", 1.2, 2.9, "val")]


def test_kaldi_without_segments_and_auto_split(engine, tmp_path, tone):
    data = tmp_path / "corpus"
    data.mkdir()
    scp, text, spk = [], [], []
    for s in range(10):
        for i in range(2):
            utt = f"s{s}_{i}"
            tone(tmp_path / "wav" / f"{utt}.wav", 0.3, freq=100 + 7 * (2 * s + i))
            scp.append(f"{utt} ../wav/{utt}.wav")
            text.append(f"{utt} câu số {2 * s + i}")
            spk.append(f"{utt} s{s}")
    (data / "wav.scp").write_text("\n".join(scp) + "\n")
    (data / "text").write_text("\n".join(text) + "\n", encoding="utf-8")
    (data / "utt2spk").write_text("\n".join(spk) + "\n")
    report = import_corpus("kaldi", data, engine, ImportOptions(auto_split=True, seed=3))
    assert report.imported == 20 and report.split_counts == {"train": 16, "val": 2, "test": 2}
    by_speaker = {}
    for r in _rows(engine):
        by_speaker.setdefault(r.speaker, set()).add(r.split)
    assert all(len(v) == 1 for v in by_speaker.values()) and len(by_speaker) == 10
    with engine.connect() as conn:
        assert [s.utterances for s in store.dataset_stats(conn)] == [16, 2, 2]


def test_unknown_directory_layouts_are_clear_errors(engine, tmp_path):
    with pytest.raises(ValueError, match="not a VIVOS directory"):
        import_corpus("vivos", tmp_path, engine)
    with pytest.raises(ValueError, match="not a Common Voice directory"):
        import_corpus("commonvoice", tmp_path, engine)
    with pytest.raises(ValueError, match="missing wav.scp"):
        import_corpus("kaldi", tmp_path, engine)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        import_corpus("csv", tmp_path / "nope.csv", engine)
