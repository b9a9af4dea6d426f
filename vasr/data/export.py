"""Exporting a database split to the manifests other toolkits train from: a Kaldi data dir, lhotse
recordings + supervisions, NeMo JSON lines, or vasr's own CSV (``vasr import csv`` reads it back).

Every format carries each utterance's audio file, its segment (when it is a segment of a longer
file), duration, speaker and the normalised transcript vasr trains on. vasr's CSV carries the raw
transcript instead (vasr normalises on import, so a re-import leaves the database as it was), and the
lhotse supervisions keep it in ``custom.raw_text`` for the same reason. CSV cannot hold segments:
a split with segments is refused for it.

Utterance ids are the corpus's own (``audio_files.utt_id``) when they are unique in the split,
else the audio ids; Kaldi ids are prefixed with the speaker (``SPEAKER-ID``) unless they start with
it already, so that sorting by utterance also sorts by speaker, as Kaldi's ``validate_data_dir.sh``
expects. Whitespace inside an id or speaker becomes ``_``.

The output is written into a temporary sibling folder and renamed into place, so that ``out`` holds
a complete export or nothing new.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from vasr.data.audio import probe
from vasr.data.manifests import CSV_COLUMNS
from vasr.db.schema import audio_files, data_splits, transcripts
from vasr.staging import publish, stage

FORMATS = ("kaldi", "lhotse", "nemo", "csv")
_WHOLE_FILE_TOLERANCE_S = 1e-3   # an utterance ending this close to its file's end spans the file


@dataclass(frozen=True)
class ExportRow:
    id: str                  # the utterance id in every format
    audio_id: int
    path: str
    start_s: float
    end_s: float
    duration_s: float
    speaker: str | None
    text: str                # normalised
    raw_text: str
    dialect: str | None
    language: str
    split: str
    recording: str           # the recording (file) id
    segment: bool            # a part of its file, not the whole of it


@dataclass(frozen=True)
class Recording:
    id: str
    path: str
    sample_rate: int
    channels: int
    frames: int


@dataclass(frozen=True)
class ExportReport:
    format: str
    out: Path
    utterances: int
    recordings: int
    hours: float

    def format_line(self) -> str:
        return (f"exported {self.utterances} utterances ({self.hours:.2f} h, {self.recordings} recordings) "
                f"as {self.format} to {self.out}")


def _seconds(value: float) -> str:
    """Seconds as the database holds them (6 decimals at most), without trailing zeros."""
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _clean(value: str) -> str:
    return re.sub(r"\s+", "_", value.strip())


def split_rows(conn: Connection, split: str, version: str = "default") -> tuple[list[ExportRow], list[Recording]]:
    """The utterances of ``split`` (split version ``version``) with their recordings (each file probed
    for its length and rate); ValueError when the split has none."""
    rows = conn.execute(
        select(audio_files.c.id, audio_files.c.path, audio_files.c.start_s, audio_files.c.end_s,
               audio_files.c.duration_s, audio_files.c.speaker, audio_files.c.utt_id, audio_files.c.dialect,
               audio_files.c.language, audio_files.c.sample_rate, audio_files.c.channels,
               transcripts.c.normalized_text, transcripts.c.raw_text)
        .join(transcripts, transcripts.c.audio_id == audio_files.c.id)
        .join(data_splits, data_splits.c.audio_id == audio_files.c.id)
        .where(data_splits.c.split == split, data_splits.c.version == version)
        .order_by(audio_files.c.id)).all()
    if not rows:
        raise ValueError(f"split {split!r} of version {version!r} has no utterances")
    bases = [_clean(r.utt_id) if r.utt_id and r.utt_id.strip() else str(r.id) for r in rows]
    if len(set(bases)) < len(bases):
        bases = [str(r.id) for r in rows]
    recordings: dict[str, Recording] = {}
    rec_of_path: dict[str, str] = {}
    ends: dict[str, float] = defaultdict(float)
    for r in rows:
        ends[r.path] = max(ends[r.path], r.end_s)
    for r in rows:
        if r.path in rec_of_path:
            continue
        stem = _clean(Path(r.path).stem) or "rec"
        rec_id, n = stem, 1
        while rec_id in recordings:
            n += 1
            rec_id = f"{stem}-{n}"
        info = probe(r.path)   # AudioError (a ValueError) names a file gone since the import
        frames = max(info.frames, round(ends[r.path] * info.sample_rate))
        recordings[rec_id] = Recording(rec_id, r.path, info.sample_rate, info.channels, frames)
        rec_of_path[r.path] = rec_id
    out = []
    for r, base in zip(rows, bases):
        rec = recordings[rec_of_path[r.path]]
        whole = r.start_s == 0 and abs(r.end_s - rec.frames / rec.sample_rate) <= _WHOLE_FILE_TOLERANCE_S
        out.append(ExportRow(base, r.id, r.path, r.start_s, r.end_s, r.duration_s,
                             _clean(r.speaker) if r.speaker and r.speaker.strip() else None,
                             r.normalized_text, r.raw_text, r.dialect, r.language, split, rec.id, not whole))
    return out, list(recordings.values())


# ----------------------------------------------------------------------------------------------- writers

def _kaldi(rows: list[ExportRow], recordings: list[Recording], out: Path, gz: bool) -> None:
    def kaldi_id(r: ExportRow) -> tuple[str, str]:
        speaker = r.speaker or r.id                 # Kaldi's convention for an unknown speaker
        return (r.id if r.id == speaker or r.id.startswith(f"{speaker}-") else f"{speaker}-{r.id}"), speaker

    ids = [kaldi_id(r) + (r,) for r in rows]
    ids.sort(key=lambda t: t[0])
    first_seen = list(dict.fromkeys(spk for _, spk, _ in ids))
    if first_seen != sorted(first_seen):   # e.g. speakers "a" and "a-b": spk2utt could not be sorted too
        bad = next(a for a, b in zip(first_seen, sorted(first_seen)) if a != b)
        raise ValueError(f"speaker ids such as {bad!r} sort differently from their utterance ids, so Kaldi's "
                         f"utt2spk and spk2utt cannot both be sorted; rename the speakers (no one a prefix of "
                         f"another followed by '-')")
    segmented = any(r.segment for r in rows)
    if segmented:
        wav = sorted(f"{rec.id} {rec.path}" for rec in recordings)
        segments = [f"{utt} {r.recording} {_seconds(r.start_s)} {_seconds(r.end_s)}" for utt, _, r in ids]
        _write_lines(out / "segments", segments)
    else:
        wav = [f"{utt} {r.path}" for utt, _, r in ids]
    _write_lines(out / "wav.scp", wav)
    _write_lines(out / "text", [f"{utt} {r.text}" for utt, _, r in ids])
    _write_lines(out / "utt2spk", [f"{utt} {spk}" for utt, spk, _ in ids])
    by_speaker: dict[str, list[str]] = defaultdict(list)
    for utt, spk, _ in ids:
        by_speaker[spk].append(utt)
    _write_lines(out / "spk2utt", [f"{spk} {' '.join(utts)}" for spk, utts in sorted(by_speaker.items())])


def _lhotse(rows: list[ExportRow], recordings: list[Recording], out: Path, gz: bool) -> None:
    suffix = ".jsonl.gz" if gz else ".jsonl"
    recs = {rec.id: rec for rec in recordings}
    _write_jsonl(out / f"recordings{suffix}", [
        {"id": rec.id, "sources": [{"type": "file", "channels": list(range(rec.channels)), "source": rec.path}],
         "sampling_rate": rec.sample_rate, "num_samples": rec.frames,
         "duration": rec.frames / rec.sample_rate, "channel_ids": list(range(rec.channels))}
        for rec in recordings])
    _write_jsonl(out / f"supervisions{suffix}", [
        {"id": r.id, "recording_id": r.recording, "start": r.start_s, "duration": round(r.end_s - r.start_s, 6),
         "channel": 0 if recs[r.recording].channels == 1 else list(range(recs[r.recording].channels)),
         "text": r.text, "language": r.language, **({"speaker": r.speaker} if r.speaker else {}),
         "custom": {"raw_text": r.raw_text, "split": r.split}}
        for r in rows])


def _nemo(rows: list[ExportRow], recordings: list[Recording], out: Path, gz: bool) -> None:
    _write_jsonl(out / "manifest.json", [
        {"audio_filepath": r.path, "duration": round(r.end_s - r.start_s, 6), "text": r.text,
         **({"offset": r.start_s} if r.segment else {})} for r in rows])


def _csv(rows: list[ExportRow], recordings: list[Recording], out: Path, gz: bool) -> None:
    segments = [r for r in rows if r.segment]
    if segments:
        raise ValueError(f"csv cannot hold segments of audio files ({len(segments)} of the split's utterances are, "
                         f"e.g. {segments[0].id}); export it as kaldi, lhotse or nemo")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([r.path, r.raw_text, r.split, r.speaker or "", r.dialect or ""])
    (out / "manifest.csv").write_text(buffer.getvalue(), encoding="utf-8")


_WRITERS = {"kaldi": _kaldi, "lhotse": _lhotse, "nemo": _nemo, "csv": _csv}


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _write_jsonl(path: Path, items: list[dict[str, Any]]) -> None:
    data = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items).encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


# ----------------------------------------------------------------------------------------------- export

def export_split(conn: Connection, fmt: str, split: str, out: str | os.PathLike, version: str = "default",
                 force: bool = False, gz: bool = True) -> ExportReport:
    """Write ``split`` of split version ``version`` as ``fmt`` into the folder ``out``, atomically. An
    existing non-empty ``out`` is refused (ValueError) unless ``force``, which replaces it."""
    if fmt not in _WRITERS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(f"{out}: folder exists and is not empty (--force replaces it)")
    rows, recordings = split_rows(conn, split, version)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage(out.parent, out.name, "tmp")
    try:
        _WRITERS[fmt](rows, recordings, tmp, gz)
        publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    hours = sum(r.end_s - r.start_s for r in rows) / 3600
    return ExportReport(fmt, out, len(rows), len(recordings), hours)
