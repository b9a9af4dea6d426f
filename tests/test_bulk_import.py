"""Bulk import: a Kaldi dir of 20,000 segments on both backends (exact counts, idempotent re-import,
all-or-nothing across pages, --skip-bad), page boundaries that do not change what is written, and the
batched pieces (segment levels, parallel probing) against their one-at-a-time versions."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from vasr.data import importers
from vasr.data.audio import scan
from vasr.data.importers import ImportOptions, ImportRejected, import_corpus
from vasr.db import store

SEGMENTS = 20_000
FILES = 3
FILE_S = 2.5
WORDS = "tôi bạn nhà đi về học trường hôm nay trời đẹp chúng ta cùng ăn cơm uống nước làm việc".split()
TABLES = ("imports", "import_rejects", "audio_files", "transcripts", "data_splits")


def _kaldi_dir(root: Path, tone, segments: int, files: int = FILES, seed: int = 0) -> Path:
    """``segments`` overlapping segments (start j x 0.1 ms, 0.5-0.9 s long) over ``files`` tones."""
    rng = random.Random(seed)
    phrases = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))).capitalize() + "." for _ in range(300)]
    scp = [f"rec{f} {tone(root / 'audio' / f'rec{f}.wav', FILE_S, freq=300 + 40 * f)}\n" for f in range(files)]
    data = root / "train"
    data.mkdir(parents=True)
    seg, txt, spk = [], [], []
    for k in range(segments):
        f, j = k % files, k // files
        utt = f"s{k % 50:02d}-rec{f}-{j:06d}"
        seg.append(f"{utt} rec{f} {j * 1e-4:.4f} {j * 1e-4 + 0.5 + (j % 5) * 0.1:.4f}\n")
        txt.append(f"{utt} {rng.choice(phrases)}\n")
        spk.append(f"{utt} s{k % 50:02d}\n")
    for name, lines in (("wav.scp", scp), ("segments", seg), ("text", txt), ("utt2spk", spk)):
        (data / name).write_text("".join(lines), encoding="utf-8")
    return data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from conftest import write_tone

    return _kaldi_dir(tmp_path_factory.mktemp("bulk"), write_tone, SEGMENTS)


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in TABLES}


def _dump(engine) -> dict[str, list[tuple]]:
    """Every row of the import tables but their created_at, in id order."""
    out = {}
    with engine.connect() as conn:
        for name in TABLES:
            table = store.imports.metadata.tables[name]
            columns = [c for c in table.c if c.name != "created_at"]
            out[name] = [tuple(r) for r in conn.execute(sa.select(*columns).order_by(table.c.id))]
    return out


def test_a_large_kaldi_dir_imports_exactly_once(engine, corpus):
    report = import_corpus("kaldi", corpus, engine)
    assert (report.imported, report.already_present, report.updated, report.rejects) == (SEGMENTS, 0, 0, ())
    assert _counts(engine) == {"imports": 1, "import_rejects": 0, "audio_files": SEGMENTS, "transcripts": SEGMENTS,
                               "data_splits": SEGMENTS}
    assert set(report.timings) >= {"read_s", "probe_s", "rows_s"}
    with engine.connect() as conn:
        row = conn.execute(sa.select(store.imports.c.imported, store.imports.c.already_present)).one()
        assert tuple(row) == (SEGMENTS, 0)
        # ids, rows and their transcripts line up: the one utterance looked up by its id
        audio = conn.execute(sa.select(store.audio_files).where(store.audio_files.c.utt_id == "s06-rec1-003335")).one()
        text = conn.execute(sa.select(store.transcripts.c.raw_text)
                            .where(store.transcripts.c.audio_id == audio.id)).scalar_one()
    line = next(l for l in (corpus / "text").read_text(encoding="utf-8").splitlines() if l.startswith("s06-rec1-003335 "))
    assert text == line.partition(" ")[2]
    assert (audio.start_s, audio.end_s, audio.speaker) == (0.3335, 0.8335, "s06")
    again = import_corpus("kaldi", corpus, engine)
    assert (again.imported, again.already_present, again.updated, again.rejects) == (0, SEGMENTS, 0, ())
    assert _counts(engine) == {"imports": 2, "import_rejects": 0, "audio_files": SEGMENTS, "transcripts": SEGMENTS,
                               "data_splits": SEGMENTS}


def test_one_bad_row_on_a_late_page_rejects_all_or_is_skipped(engine, corpus, tmp_path):
    data = tmp_path / "train"
    shutil.copytree(corpus, data)
    lines = (data / "segments").read_text(encoding="utf-8").splitlines(keepends=True)
    utt = lines[17_000].split()[0]
    lines[17_000] = f"{utt} rec1 2.0000 9.0000\n"   # past the end of the 2.5 s file, after page 1 was written
    (data / "segments").write_text("".join(lines), encoding="utf-8")
    ref = next(f"text:{n}" for n, l in enumerate((data / "text").read_text(encoding="utf-8").splitlines(), 1)
               if l.startswith(utt + " "))
    with pytest.raises(ImportRejected) as caught:
        import_corpus("kaldi", data, engine)
    assert [(r.row_ref, "outside the 2.500 s file" in r.reason) for r in caught.value.report.rejects] == [(ref, True)]
    assert _counts(engine) == dict.fromkeys(TABLES, 0)   # the pages written before it were rolled back
    report = import_corpus("kaldi", data, engine, ImportOptions(skip_bad=True))
    assert (report.imported, [r.row_ref for r in report.rejects]) == (SEGMENTS - 1, [ref])
    assert _counts(engine) == {"imports": 1, "import_rejects": 1, "audio_files": SEGMENTS - 1,
                               "transcripts": SEGMENTS - 1, "data_splits": SEGMENTS - 1}
    with engine.connect() as conn:
        assert conn.execute(sa.select(store.import_rejects.c.row_ref)).scalar_one() == ref


def _messy_dir(root: Path, tone) -> Path:
    """60 segments over 2 files with a duplicate, an empty transcript and a segment past the end."""
    data = _kaldi_dir(root, tone, 60, files=2, seed=1)
    seg = (data / "segments").read_text(encoding="utf-8").splitlines(keepends=True)
    txt = (data / "text").read_text(encoding="utf-8").splitlines(keepends=True)
    first, dup = seg[4].split()[0], seg[30].split()[0]
    seg[30] = seg[4].replace(first, dup, 1)                   # the same segment as row 5: a duplicate
    txt[11] = txt[11].split()[0] + "\n"                      # no transcript
    seg[45] = seg[45].split()[0] + " rec1 2.4 3.0\n"          # outside the file
    (data / "segments").write_text("".join(seg), encoding="utf-8")
    (data / "text").write_text("".join(txt), encoding="utf-8")
    return data


def test_page_boundaries_do_not_change_the_database(engine, tmp_path, tone, monkeypatch):
    """Pages of 7 rows (duplicates, rejects and present rows falling across pages) write exactly what
    one page writes, on a first import and on a re-import with changed transcripts and replaced audio."""
    data = _messy_dir(tmp_path / "corpus", tone)
    one_page = store.connect(tmp_path / "one-page.db")
    reports = {}
    try:
        for name, target, page in (("paged", engine, 7), ("one", one_page, 10_000)):
            monkeypatch.setattr(store, "PAGE_ROWS", page)
            first = import_corpus("kaldi", data, target, ImportOptions(skip_bad=True))
            text = (data / "text").read_text(encoding="utf-8")
            (data / "text").write_text(text.replace("Tôi", "Bạn tôi", 3), encoding="utf-8")
            tone(data.parent / "audio" / "rec1.wav", 2.5, freq=999)   # replaced in place: its rows get new audio
            second = import_corpus("kaldi", data, target, ImportOptions(skip_bad=True))
            (data / "text").write_text(text, encoding="utf-8")
            tone(data.parent / "audio" / "rec1.wav", 2.5, freq=340)
            reports[name] = [(r.imported, r.already_present, r.updated, [(j.row_ref, j.reason) for j in r.rejects])
                             for r in (first, second)]
        assert reports["paged"] == reports["one"]
        (imported, _, _, rejects), (_, present, updated, _) = reports["one"]
        assert imported == 57 and len(rejects) == 3 and updated >= 28 and present > 0
        paged, single = _dump(engine), _dump(one_page)
        if engine.dialect.name != "sqlite":   # the rows are the same; only floats of another backend may print apart
            single = {t: [tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in rows]
                      for t, rows in single.items()}
            paged = {t: [tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in rows]
                     for t, rows in paged.items()}
        assert paged == single
    finally:
        one_page.dispose()


def test_segment_levels_in_one_call_equal_one_at_a_time(tmp_path, tone):
    audio = scan(tone(tmp_path / "a.wav", 1.0, 16000, channels=2, freq=440))
    rng = np.random.default_rng(0)
    starts = rng.uniform(0, 1.0, 300)
    ends = np.where(rng.random(300) < 0.2, np.nan, starts + rng.uniform(-0.1, 0.8, 300))
    peaks, clipped = audio.levels(starts, ends)
    for s, e, p, c in zip(starts, ends, peaks, clipped):
        assert (p, c) == audio.level(s, None if np.isnan(e) else e)


def test_parallel_probing_equals_probing_in_process(tmp_path, tone, monkeypatch):
    from vasr.data.manifests import Entry

    paths = [tone(tmp_path / f"{i}.wav", 0.5 + i / 10, freq=300 + 10 * i) for i in range(4)]
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEfmt junk")
    entries = [Entry(f"m:{i}", p, "a", start_s=0.1 * (i % 2)) for i, p in enumerate([*paths, tmp_path / "bad.wav",
                                                                                       tmp_path / "missing.wav"])]
    alone = importers.probe_files(entries)
    monkeypatch.setattr(importers, "PARALLEL_MIN_BYTES", 0)
    together = importers.probe_files(entries)
    assert list(alone) == list(together)
    for path in alone:
        a, b = alone[path], together[path]
        if isinstance(a, str):
            assert a == b
        else:
            assert (a.sha256, a.path, a.scan.info, a.scan.window) == (b.sha256, b.path, b.scan.info, b.scan.window)
            assert np.array_equal(a.scan.peaks, b.scan.peaks) and np.array_equal(a.scan.clipped, b.scan.clipped)
    assert alone[tmp_path / "missing.wav"] == "no such audio file"
    assert alone[paths[0]].scan.peaks.size == 1 and alone[paths[1]].scan.peaks.size > 1   # whole files: one window
