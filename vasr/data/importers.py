"""Importing corpora into the database: CSV manifests, VIVOS, Common Voice, Kaldi data dirs and lhotse manifests.

The readers in ``vasr.data.manifests`` turn a corpus into ``Entry`` rows (plus ``Reject`` rows for
lines they cannot parse); ``ingest`` then decodes and hashes the audio, normalises the transcripts and
writes everything in one transaction. An import is atomic (all rows or none; with ``skip_bad`` the
good rows plus a record of each reject) and idempotent (audio already present, keyed by content hash
and segment, is counted, not written again).

What is checked before anything is written: the audio decodes to the end (its duration is the
decoded length, not the header's), its samples are finite and sane, it is at least
``MIN_DURATION_S`` long and not digital silence; the transcript is text, has words, and is not
longer than ``MAX_CHARS_PER_S`` characters per second of audio; every field fits its database
column (the same limits on SQLite and PostgreSQL) and ``MAX_FIELD_BYTES``.

Re-importing: a row whose audio is present under the same path and segment but with another
transcript gets the new transcript (counted as updated); audio replaced at the same path (its hash
changed) updates that row's audio in place (same id, so its splits stay). The same audio under
another path with a different transcript is rejected, naming the row that holds it.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from sqlalchemy import Connection, Engine
from tqdm import tqdm

from vasr.data.audio import AudioScan, scan, sha256_file
from vasr.runtime.audio import AudioError
from vasr.db import store
from vasr.data.manifests import MAX_FIELD_BYTES, READERS, Entry, Reject, excerpt, read_csv, read_kaldi, read_lhotse
from vasr.db.schema import audio_files
from vasr.db.store import ImportRow
from vasr.text.normalize import NORMALIZER_VERSION, normalize

_SEGMENT_TOLERANCE_S = 0.01  # Kaldi segment ends may overshoot the file by rounding
MIN_DURATION_S = 0.1         # shorter clips (a single sample, a click) are not utterances
MAX_CHARS_PER_S = 40.0       # normalised characters (spaces excluded) per second of audio; speech is ~10-20
CHARS_SLACK = 10             # ... plus these, so that a short clip's few words are not judged on its rate alone


@dataclass(frozen=True)
class ImportOptions:
    skip_bad: bool = False                                 # import the good rows, record the rejects
    auto_split: bool = False                               # speaker-disjoint split for rows without one
    split_version: str = "default"
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)   # train, val, test shares of duration
    seed: int = 0                                          # for auto_split
    annotation_type: str = "human"                         # human | synthetic


@dataclass(frozen=True)
class ImportReport:
    source: str
    location: str
    import_id: int | None          # None when nothing was written
    imported: int
    already_present: int           # rows present and unchanged
    rejects: tuple[Reject, ...]
    split_counts: dict[str, int] = field(default_factory=dict)   # utterances auto_split assigned
    updated: int = 0               # present rows given a new transcript, or new audio at the same path

    def format(self) -> str:
        updated = f"{self.updated} updated, " if self.updated else ""
        lines = [f"{self.source} import of {self.location}: {self.imported} new, {updated}"
                 f"{self.already_present} already present, {len(self.rejects)} rejected"]
        if self.split_counts:
            lines.append("auto split: " + ", ".join(f"{k} {v}" for k, v in self.split_counts.items()))
        lines += [f"  rejected {r.row_ref}" + (f" ({r.path})" if r.path else "") + f": {r.reason}"
                  for r in self.rejects]
        return "\n".join(lines)


class ImportRejected(ValueError):
    """The import found bad rows and wrote nothing; ``report`` names each of them."""

    def __init__(self, report: ImportReport):
        self.report = report
        super().__init__(report.format() + "\nnothing was imported; fix the rows or pass --skip-bad")


# ----------------------------------------------------------------------------------------------- ingest

def import_corpus(kind: str, location: str | Path, engine: Engine, options: ImportOptions = ImportOptions(),
                  audio_root: str | Path | None = None, split: str | None = None,
                  supervisions: str | Path | None = None) -> ImportReport:
    """Read the corpus at ``location`` with the reader for ``kind`` and ingest it (``supervisions``:
    lhotse's supervisions manifest beside the recordings manifest ``location``)."""
    location = Path(location)
    if not location.exists():
        raise FileNotFoundError(f"{location}: no such file or directory")
    root = Path(audio_root) if audio_root else None
    if kind == "csv":
        entries, rejects = read_csv(location, root)
    elif kind == "kaldi":
        entries, rejects = read_kaldi(location, split, root)
    elif kind == "lhotse":
        if supervisions is not None and not Path(supervisions).exists():
            raise FileNotFoundError(f"{supervisions}: no such file or directory")
        entries, rejects = read_lhotse(location, Path(supervisions) if supervisions else None, split, root)
    elif kind in READERS:
        entries, rejects = READERS[kind](location)
    else:
        raise ValueError(f"unknown corpus kind {kind!r}; expected one of {', '.join(READERS)}")
    return ingest(engine, kind, str(location.resolve()), entries, rejects, options)


def ingest(engine: Engine, source: str, location: str, entries: Iterable[Entry], rejects: Iterable[Reject],
           options: ImportOptions = ImportOptions(), progress: bool = True,
           then: Callable[[Connection, dict[str, int]], object] | None = None) -> ImportReport:
    """Validate ``entries`` and write them in one transaction (see the module docstring). ``then``
    runs inside that transaction after the rows are written, with each accepted entry's audio id
    (row_ref -> id, new or already present), to add rows that belong with the audio (such as bias
    lists); if it raises, nothing of the import is kept."""
    entries, rejects = list(entries), list(rejects)
    candidates: list[tuple[str, ImportRow]] = []
    first_of_key: dict[tuple[str, float, float], str] = {}
    files: dict[Path, tuple[str, AudioScan] | str] = {}
    for entry in tqdm(entries, desc=f"checking {source}", unit="utt", leave=False,
                      disable=None if progress else True):  # None: only on a terminal
        utterance = _check(entry, files, options.annotation_type, rejects)
        if utterance is None:
            continue
        key = (utterance.sha256, utterance.start_s, utterance.end_s)
        if key in first_of_key:
            rejects.append(Reject(entry.row_ref, str(entry.path), f"duplicate of {first_of_key[key]}"))
            continue
        first_of_key[key] = entry.row_ref
        candidates.append((entry.row_ref, utterance))
    if rejects and not options.skip_bad:
        raise ImportRejected(ImportReport(source, location, None, 0, 0, tuple(rejects)))
    with engine.begin() as conn:
        plan = store.plan_import(conn, [u for _, u in candidates])
        for (row_ref, u), (action, detail) in zip(candidates, plan):
            if action == "conflict":
                rejects.append(Reject(row_ref, u.path, detail))
                del first_of_key[(u.sha256, u.start_s, u.end_s)]
        if rejects and not options.skip_bad:  # leaving the block rolls back: nothing is written
            raise ImportRejected(ImportReport(source, location, None, 0, 0, tuple(rejects)))
        new = [u for (_, u), (action, _) in zip(candidates, plan) if action == "new"]
        updates = [(action, audio_id, u) for (_, u), (action, audio_id) in zip(candidates, plan)
                   if action in ("text", "audio")]
        present = sum(action == "present" for action, _ in plan)
        import_id = store.write_import(conn, source, location, new, rejects, present, options.split_version,
                                       updates)
        split_counts = (store.auto_split(conn, options.split_version, options.split_ratios, options.seed)
                        if options.auto_split else {})
        if then is not None:
            ids = store.audio_ids(conn, first_of_key)
            then(conn, {row_ref: ids[key] for key, row_ref in first_of_key.items()})
    return ImportReport(source, location, import_id, len(new), present, tuple(rejects), split_counts, len(updates))


def _check(entry: Entry, files: dict[Path, tuple[str, AudioScan] | str], annotation_type: str,
           rejects: list[Reject]) -> ImportRow | None:
    """The entry as a row to write, or None after appending why it cannot be imported. ``files``
    caches each audio file's (hash, scan), or why it cannot be used."""
    def reject(reason: str) -> None:
        path = str(entry.path)
        rejects.append(Reject(entry.row_ref, path if len(path) <= 4096 else None, reason))

    raw = entry.transcript.strip()
    size = len(raw.encode("utf-8"))
    if size > MAX_FIELD_BYTES:
        return reject(f"field transcript is {size:,} bytes; at most {MAX_FIELD_BYTES:,} (128 KiB)")
    path_size = len(str(entry.path).encode("utf-8"))
    if path_size > MAX_FIELD_BYTES:
        return reject(f"field file_path is {path_size:,} bytes; at most {MAX_FIELD_BYTES:,} (128 KiB)")
    for name, column, value in (("speaker_id", "speaker", entry.speaker), ("dialect", "dialect", entry.dialect),
                                ("utt_id", "utt_id", entry.utt_id)):  # the manifest's name, the column's
        limit = audio_files.c[column].type.length
        if value is not None and len(value) > limit:
            return reject(f"field {name} is {len(value):,} characters; the database holds at most {limit}")
    if not raw:
        return reject("empty transcript")
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") or ch == "\ufffd" for ch in raw if ch not in "\t"):
        return reject("transcript is not text (control, private-use or undecodable characters)")
    normalized = normalize(raw)
    if not normalized:
        return reject(f"transcript {excerpt(raw)} has no words after normalisation")
    if entry.path not in files:
        try:
            files[entry.path] = (sha256_file(entry.path), scan(entry.path)) if entry.path.is_file() else \
                "no such audio file"
        except AudioError as exc:
            files[entry.path] = str(exc).removeprefix(f"{entry.path}: ")
        except OSError as exc:
            files[entry.path] = f"cannot read the audio file ({exc.strerror or exc})"
    if isinstance(files[entry.path], str):
        return reject(files[entry.path])
    sha256, audio = files[entry.path]
    info = audio.info
    end = info.duration_s if entry.end_s is None else entry.end_s
    if not 0 <= entry.start_s < end or end > info.duration_s + _SEGMENT_TOLERANCE_S:
        return reject(f"segment {entry.start_s:.3f}-{end:.3f} s is empty or outside the "
                      f"{info.duration_s:.3f} s file")
    end = min(end, info.duration_s)
    duration = end - entry.start_s
    what = "segment" if entry.end_s is not None or entry.start_s else "audio"
    if duration < MIN_DURATION_S:
        return reject(f"{what} is {duration:.4f} s long; at least {MIN_DURATION_S} s is needed")
    peak, clipped = audio.level(entry.start_s, end)
    if entry.end_s is None and not entry.start_s:
        files[entry.path] = (sha256, audio.whole())   # no segment of it will need the envelope
    if peak == 0.0:
        return reject(f"{what} is digital silence (every sample is zero)")
    chars = len(normalized.replace(" ", ""))
    if chars > MAX_CHARS_PER_S * duration + CHARS_SLACK:
        return reject(f"transcript has {chars:,} characters for {duration:.2f} s of audio "
                      f"({chars / duration:,.1f} characters/s; at most {MAX_CHARS_PER_S:g}/s, plus {CHARS_SLACK})")
    return ImportRow(path=str(entry.path.resolve()), sha256=sha256, start_s=round(entry.start_s, 6),
                     end_s=round(end, 6), sample_rate=info.sample_rate, channels=info.channels, format=info.format,
                     raw_text=raw, normalized_text=normalized, normalizer_version=NORMALIZER_VERSION,
                     annotation_type=annotation_type, split=entry.split, speaker=entry.speaker,
                     dialect=entry.dialect, utt_id=entry.utt_id, peak=round(peak, 6),
                     clipped_fraction=round(clipped, 6))
