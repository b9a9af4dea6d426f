"""Importing corpora into the database: CSV manifests, VIVOS, Common Voice, Kaldi data dirs and lhotse manifests.

The readers in ``vasr.data.manifests`` turn a corpus into ``Entry`` rows (plus ``Reject`` rows for
lines they cannot parse); ``ingest`` then hashes and decodes each distinct audio file once (in worker
processes when there are several big ones), and checks, plans and writes the rows a page at a time
(``store.PAGE_ROWS``; bulk inserts: multi-row INSERTs on SQLite, COPY on PostgreSQL), all in one
transaction. An import is atomic (all rows or none; with ``skip_bad`` the
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

import dataclasses
import os
import time
import unicodedata
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
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
    timings: dict[str, float] = field(default_factory=dict)   # seconds: read_s (the reader), probe_s
    #   (hashing, decoding), rows_s = check_s (the rows' checks) + write_s (planning, writing, committing)

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
    start = time.perf_counter()
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
    read_s = time.perf_counter() - start
    report = ingest(engine, kind, str(location.resolve()), entries, rejects, options)
    return dataclasses.replace(report, timings={"read_s": read_s, **report.timings})


def ingest(engine: Engine, source: str, location: str, entries: Iterable[Entry], rejects: Iterable[Reject],
           options: ImportOptions = ImportOptions(), progress: bool = True,
           then: Callable[[Connection, dict[str, int]], object] | None = None,
           page_rows: int | None = None) -> ImportReport:
    """Validate ``entries`` and write them in one transaction (see the module docstring). ``then``
    runs inside that transaction after the rows are written, with each accepted entry's audio id
    (row_ref -> id, new or already present), to add rows that belong with the audio (such as bias
    lists); if it raises, nothing of the import is kept.

    Each distinct audio file is hashed and decoded once, first (in worker processes when there are
    several and enough bytes: ``probe_files``); then the entries are checked, planned and written
    ``page_rows`` (default ``store.PAGE_ROWS``) at a time, so that memory holds one page of rows to
    write. A bad row stops the writing (the transaction is rolled back at the end) but the checking
    goes on, so that the report names every bad row."""
    entries, rejects = list(entries), list(rejects)
    page_rows = page_rows or store.PAGE_ROWS
    if page_rows < 1:
        raise ValueError(f"page_rows must be >= 1, got {page_rows}")
    start = time.perf_counter()
    files = probe_files(entries, progress)
    probe_s = time.perf_counter() - start
    bad: list[Reject] = []                 # entries that fail their checks, or repeat an earlier one
    conflicts: list[Reject] = []           # entries the database contradicts
    first_of_key: dict[str, dict[int, str]] = {}
    ids: dict[str, int] | None = {} if then is not None else None
    new = present = updated = 0
    check_s = 0.0
    writer = None

    def write(fresh: list[ImportRow], fresh_refs: list[str], updates: list) -> None:
        new_ids = writer.write_new(fresh)
        writer.write_updates(updates)
        if ids is not None:
            ids.update(zip(fresh_refs, new_ids))

    # one page is written (by a thread: the database driver lets go of the GIL while the database
    # works) while the next is checked; the connection is only ever used by one of them at a time
    with engine.begin() as conn, tqdm(total=len(entries), desc=f"importing {source}", unit="row", leave=False,
                                      disable=None if progress else True) as bar, \
            ThreadPoolExecutor(1, thread_name_prefix="vasr-import") as pool:  # None: only on a terminal
        writing = None
        try:
            for offset in range(0, len(entries), page_rows):
                page = entries[offset:offset + page_rows]
                tick = time.perf_counter()
                candidates = _check_page(page, files, options.annotation_type, bad, first_of_key)
                check_s += time.perf_counter() - tick
                bar.update(len(page))
                if writing is not None:
                    writing, _ = None, writing.result()   # the previous page is written: the connection is free
                if (rejects or bad) and not options.skip_bad:
                    continue   # nothing will be written: only the checks go on, for the report
                if writer is None:
                    writer = store.ImportWriter(conn, source, location, options.split_version)
                    writer.prepare({f.path: f.sha256 for f in files.values() if isinstance(f, ProbedFile)})
                plan = writer.plan([u for _, u in candidates])
                fresh, fresh_refs, updates = [], [], []
                for (row_ref, u), (action, detail) in zip(candidates, plan):
                    if action == "new":
                        fresh.append(u)
                        fresh_refs.append(row_ref)
                    elif action == "conflict":
                        conflicts.append(Reject(row_ref, u.path, detail))
                        continue
                    elif action == "present":
                        present += 1
                    else:
                        updates.append((action, detail, u))
                    if ids is not None and action != "new":
                        ids[row_ref] = detail
                if conflicts and not options.skip_bad:
                    continue
                new, updated = new + len(fresh), updated + len(updates)
                writing = pool.submit(write, fresh, fresh_refs, updates)
            if writing is not None:
                writing, _ = None, writing.result()
        finally:
            if writing is not None:   # leaving early: let the write in flight end before the rollback
                writing.exception()
        if (rejects or bad) and not options.skip_bad:   # leaving the block rolls back: nothing is written
            raise ImportRejected(ImportReport(source, location, None, 0, 0, (*rejects, *bad)))
        if conflicts and not options.skip_bad:
            raise ImportRejected(ImportReport(source, location, None, 0, 0, tuple(conflicts)))
        rejects += bad + conflicts
        if writer is None:
            writer = store.ImportWriter(conn, source, location, options.split_version)
        import_id = writer.finish(new, present, updated, rejects)
        split_counts = (store.auto_split(conn, options.split_version, options.split_ratios, options.seed)
                        if options.auto_split else {})
        if then is not None:
            if present:   # the ids of present rows: looked up by key, as plan() found them
                keys = {(sha256, *_segment_of(key)): ref for sha256, segments in first_of_key.items()
                        for key, ref in segments.items() if ref in ids and ids[ref] is None}
                held = store.audio_ids(conn, keys)
                ids.update((ref, held[key]) for key, ref in keys.items())
            then(conn, ids)
    rows_s = time.perf_counter() - start - probe_s
    return ImportReport(source, location, import_id, new, present, tuple(rejects), split_counts, updated,
                        {"probe_s": probe_s, "rows_s": rows_s, "check_s": check_s, "write_s": rows_s - check_s})


# ------------------------------------------------------------------------------------------ the audio

@dataclass(frozen=True)
class ProbedFile:
    """An audio file as the checks see it: its hash, what decoding it found, its resolved path."""
    sha256: str
    scan: AudioScan
    path: str           # absolute, symlinks resolved: the path the database stores
    path_bytes: int     # len of ``path``'s UTF-8 (MAX_FIELD_BYTES)


PARALLEL_MIN_FILES = 2               # probe in worker processes from this many distinct files ...
PARALLEL_MIN_BYTES = 32 * 1024 ** 2  # ... holding this many bytes together (below, starting workers costs more)


def probe_files(entries: Sequence[Entry], progress: bool = False) -> dict[Path, ProbedFile | str]:
    """Each distinct audio file of ``entries`` hashed and decoded once: path -> ProbedFile, or why it
    cannot be used. Several files with enough bytes between them are probed in worker processes
    (one per CPU core); a file only ever imported whole keeps a one-window envelope."""
    segmented: dict[Path, bool] = {}
    for entry in entries:
        if not segmented.get(entry.path):
            segmented[entry.path] = entry.end_s is not None or bool(entry.start_s)
    paths = list(segmented)
    workers = min(os.cpu_count() or 1, len(paths))
    if workers > 1 and len(paths) >= PARALLEL_MIN_FILES and _total_bytes(paths) >= PARALLEL_MIN_BYTES:
        with ProcessPoolExecutor(workers) as pool:
            found = list(tqdm(pool.map(_probe, paths, segmented.values(), chunksize=max(1, len(paths) // (8 * workers))),
                              total=len(paths), desc="probing audio", unit="file", leave=False,
                              disable=None if progress else True))
    else:
        found = [_probe(path, envelope) for path, envelope in zip(paths, segmented.values())]
    return dict(zip(paths, found))


def _total_bytes(paths: Iterable[Path]) -> int:
    total = 0
    for path in paths:
        try:
            total += path.stat().st_size
        except OSError:
            continue            # a missing or unreadable file: its probe reports it
    return total


def _probe(path: Path, envelope: bool) -> ProbedFile | str:
    try:
        if not path.is_file():
            return "no such audio file"
        sha256, audio = sha256_file(path), scan(path)
    except AudioError as exc:
        return str(exc).removeprefix(f"{path}: ")
    except OSError as exc:
        return f"cannot read the audio file ({exc.strerror or exc})"
    resolved = str(path.resolve())
    return ProbedFile(sha256, audio if envelope else audio.whole(), resolved, len(str(path).encode("utf-8")))


# --------------------------------------------------------------------------------------------- checks

_LIMITS = tuple((name, column, audio_files.c[column].type.length) for name, column in (
    ("speaker_id", "speaker"), ("dialect", "dialect"), ("utt_id", "utt_id")))   # the manifest's name, the column's
_SPEAKER_LIMIT, _DIALECT_LIMIT, _UTT_ID_LIMIT = (limit for _, _, limit in _LIMITS)
_NORMALIZED: dict[str, str] = {}   # raw transcript -> normalize(raw): corpora repeat their prompts
_NORMALIZED_MAX = 100_000


def _normalized(raw: str) -> str:
    text = _NORMALIZED.get(raw)
    if text is None:
        if len(_NORMALIZED) >= _NORMALIZED_MAX:
            _NORMALIZED.clear()
        text = _NORMALIZED[raw] = normalize(raw)
    return text


def _is_text(raw: str) -> bool:
    """No control, surrogate, private-use or unassigned character (tabs allowed), no U+FFFD."""
    if raw.isprintable():   # excludes all of those (and separators other than space, which are text)
        return "\ufffd" not in raw
    return not any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") or ch == "\ufffd"
                   for ch in raw if ch not in "\t")


def _check_page(page: Sequence[Entry], files: Mapping[Path, ProbedFile | str], annotation_type: str,
                rejects: list[Reject], first_of_key: dict[str, dict[int, str]]) -> list[tuple[str, ImportRow]]:
    """The entries of ``page`` that can be imported, as (row_ref, row) in order; appends why each
    other one cannot be to ``rejects``, in order. The checks of one entry run in the module
    docstring's order and the first that fails names it; the segments' levels are computed per file
    in one call. ``first_of_key`` (sha256 -> ``_segment_key`` -> row_ref of the entry that has it,
    over the whole import) rejects repeats: the import's key is (sha256, start_s, end_s)."""
    found: list[Reject | tuple] = []
    pending: dict[Path, list[int]] = defaultdict(list)   # file -> indexes into found awaiting levels
    for entry in page:
        raw = entry.transcript.strip()
        if len(raw) * 4 > MAX_FIELD_BYTES and len(raw.encode("utf-8")) > MAX_FIELD_BYTES:
            found.append(_reject(entry, f"field transcript is {len(raw.encode('utf-8')):,} bytes; at most "
                                        f"{MAX_FIELD_BYTES:,} (128 KiB)"))
            continue
        probed = files[entry.path]
        path_size = probed.path_bytes if isinstance(probed, ProbedFile) else len(str(entry.path).encode("utf-8"))
        if path_size > MAX_FIELD_BYTES:
            found.append(_reject(entry, f"field file_path is {path_size:,} bytes; at most {MAX_FIELD_BYTES:,} (128 KiB)"))
            continue
        speaker, dialect, utt_id = entry.speaker, entry.dialect, entry.utt_id
        if ((speaker is not None and len(speaker) > _SPEAKER_LIMIT) or (dialect is not None and len(dialect) >
                                                                          _DIALECT_LIMIT)
                or (utt_id is not None and len(utt_id) > _UTT_ID_LIMIT)):
            name, value, limit = next((name, value, limit) for name, column, limit in _LIMITS
                                      if (value := getattr(entry, column)) is not None and len(value) > limit)
            found.append(_reject(entry, f"field {name} is {len(value):,} characters; the database holds at most "
                                        f"{limit}"))
            continue
        if not raw:
            found.append(_reject(entry, "empty transcript"))
            continue
        if not _is_text(raw):
            found.append(_reject(entry, "transcript is not text (control, private-use or undecodable characters)"))
            continue
        normalized = _normalized(raw)
        if not normalized:
            found.append(_reject(entry, f"transcript {excerpt(raw)} has no words after normalisation"))
            continue
        if not isinstance(probed, ProbedFile):
            found.append(_reject(entry, probed))
            continue
        duration_s = probed.scan.info.duration_s
        end = duration_s if entry.end_s is None else entry.end_s
        if not 0 <= entry.start_s < end or end > duration_s + _SEGMENT_TOLERANCE_S:
            found.append(_reject(entry, f"segment {entry.start_s:.3f}-{end:.3f} s is empty or outside the "
                                        f"{duration_s:.3f} s file"))
            continue
        end = min(end, duration_s)
        duration = end - entry.start_s
        what = "segment" if entry.end_s is not None or entry.start_s else "audio"
        if duration < MIN_DURATION_S:
            found.append(_reject(entry, f"{what} is {duration:.4f} s long; at least {MIN_DURATION_S} s is needed"))
            continue
        pending[entry.path].append(len(found))
        found.append((entry, raw, normalized, probed, end, duration, what))
    levels: dict[int, tuple[float, float]] = {}
    for path, slots in pending.items():
        starts = np.array([found[s][0].start_s for s in slots])
        ends = np.array([found[s][4] for s in slots])
        peaks, clipped = files[path].scan.levels(starts, ends)
        levels.update(zip(slots, zip(peaks.tolist(), clipped.tolist())))
    accepted = []
    for slot, item in enumerate(found):
        if isinstance(item, Reject):
            rejects.append(item)
            continue
        entry, raw, normalized, probed, end, duration, what = item
        peak, clipped = levels[slot]
        if peak == 0.0:
            rejects.append(_reject(entry, f"{what} is digital silence (every sample is zero)"))
            continue
        chars = len(normalized) - normalized.count(" ")
        if chars > MAX_CHARS_PER_S * duration + CHARS_SLACK:
            rejects.append(_reject(entry, f"transcript has {chars:,} characters for {duration:.2f} s of audio "
                                          f"({chars / duration:,.1f} characters/s; at most {MAX_CHARS_PER_S:g}/s, "
                                          f"plus {CHARS_SLACK})"))
            continue
        info = probed.scan.info
        row = _new_row(ImportRow, (probed.path, probed.sha256, round(entry.start_s, 6), round(end, 6),
                                   info.sample_rate, info.channels, info.format, raw, normalized, NORMALIZER_VERSION,
                                   annotation_type, entry.split, entry.speaker, entry.dialect, entry.utt_id, "vi",
                                   round(peak, 6), round(clipped, 6)))
        segments = first_of_key.get(probed.sha256)
        if segments is None:
            segments = first_of_key[probed.sha256] = {}
        key = _segment_key(row.start_s, row.end_s)
        first = segments.get(key)
        if first is not None:
            rejects.append(Reject(entry.row_ref, str(entry.path), f"duplicate of {first}"))
            continue
        segments[key] = entry.row_ref
        accepted.append((entry.row_ref, row))
    return accepted


def _segment_key(start_s: float, end_s: float) -> int:
    """(start, end), rounded to the microsecond as stored, as one int: a million of these take a
    third of the memory of (start, end) tuples. ``_segment_of`` inverts it exactly."""
    return round(start_s * 1e6) << _KEY_BITS | round(end_s * 1e6)


def _segment_of(key: int) -> tuple[float, float]:
    return (key >> _KEY_BITS) / 1e6, (key & ((1 << _KEY_BITS) - 1)) / 1e6


_KEY_BITS = 48   # microseconds: segments end within 8.9 years


_new_row = tuple.__new__   # ImportRow from all its fields in order, without NamedTuple's keyword handling


def _reject(entry: Entry, reason: str) -> Reject:
    path = str(entry.path)
    return Reject(entry.row_ref, path if len(path) <= 4096 else None, reason)
