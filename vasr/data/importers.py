"""Importing corpora into the database: CSV manifests, VIVOS, Common Voice and Kaldi data dirs.

The readers in ``vasr.data.manifests`` turn a corpus into ``Entry`` rows (plus ``Reject`` rows for
lines they cannot parse); ``ingest`` then probes and hashes the audio, normalises the transcripts and writes everything in
one transaction. An import is atomic (all rows or none; with ``skip_bad`` the good rows plus a
record of each reject) and idempotent (audio already present, keyed by content hash and segment,
is counted, not written again).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from sqlalchemy import Connection, Engine
from tqdm import tqdm

from vasr.data.audio import probe, sha256_file
from vasr.runtime.audio import AudioError
from vasr.db import store
from vasr.data.manifests import READERS, Entry, Reject, read_csv, read_kaldi
from vasr.db.store import ImportRow
from vasr.text.normalize import NORMALIZER_VERSION, normalize

_SEGMENT_TOLERANCE_S = 0.01  # Kaldi segment ends may overshoot the file by rounding


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
    already_present: int
    rejects: tuple[Reject, ...]
    split_counts: dict[str, int] = field(default_factory=dict)   # utterances auto_split assigned

    def format(self) -> str:
        lines = [f"{self.source} import of {self.location}: {self.imported} new, "
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
                  audio_root: str | Path | None = None, split: str | None = None) -> ImportReport:
    """Read the corpus at ``location`` with the reader for ``kind`` and ingest it."""
    location = Path(location)
    if not location.exists():
        raise FileNotFoundError(f"{location}: no such file or directory")
    root = Path(audio_root) if audio_root else None
    if kind == "csv":
        entries, rejects = read_csv(location, root)
    elif kind == "kaldi":
        entries, rejects = read_kaldi(location, split, root)
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
    candidates: list[ImportRow] = []
    first_of_key: dict[tuple[str, float, float], str] = {}
    hashes: dict[Path, str] = {}
    for entry in tqdm(entries, desc=f"checking {source}", unit="utt", leave=False,
                      disable=None if progress else True):  # None: only on a terminal
        utterance = _check(entry, hashes, options.annotation_type, rejects)
        if utterance is None:
            continue
        key = (utterance.sha256, utterance.start_s, utterance.end_s)
        if key in first_of_key:
            rejects.append(Reject(entry.row_ref, str(entry.path), f"duplicate of {first_of_key[key]}"))
            continue
        first_of_key[key] = entry.row_ref
        candidates.append(utterance)
    if rejects and not options.skip_bad:
        raise ImportRejected(ImportReport(source, location, None, 0, 0, tuple(rejects)))
    with engine.begin() as conn:
        present = store.audio_ids(conn, first_of_key)
        new = [u for u in candidates if (u.sha256, u.start_s, u.end_s) not in present]
        import_id = store.write_import(conn, source, location, new, rejects, len(candidates) - len(new),
                                       options.split_version)
        split_counts = (store.auto_split(conn, options.split_version, options.split_ratios, options.seed)
                        if options.auto_split else {})
        if then is not None:
            ids = store.audio_ids(conn, first_of_key)
            then(conn, {row_ref: ids[key] for key, row_ref in first_of_key.items()})
    return ImportReport(source, location, import_id, len(new), len(candidates) - len(new), tuple(rejects),
                        split_counts)


def _check(entry: Entry, hashes: dict[Path, str], annotation_type: str, rejects: list[Reject]) -> ImportRow | None:
    """The entry as a row to write, or None after appending why it cannot be imported."""
    def reject(reason: str) -> None:
        rejects.append(Reject(entry.row_ref, str(entry.path), reason))

    raw = entry.transcript.strip()
    if not raw:
        return reject("empty transcript")
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") or ch == "\ufffd" for ch in raw if ch not in "\t"):
        return reject("transcript is not text (control, private-use or undecodable characters)")
    normalized = normalize(raw)
    if not normalized:
        return reject(f"transcript {raw!r} has no words after normalisation")
    try:
        info = probe(entry.path)
    except AudioError as exc:
        return reject(str(exc).removeprefix(f"{entry.path}: "))
    end = info.duration_s if entry.end_s is None else entry.end_s
    if not 0 <= entry.start_s < end or end > info.duration_s + _SEGMENT_TOLERANCE_S:
        return reject(f"segment {entry.start_s:.3f}-{end:.3f} s is empty or outside the "
                      f"{info.duration_s:.3f} s file")
    end = min(end, info.duration_s)
    if entry.path not in hashes:
        hashes[entry.path] = sha256_file(entry.path)
    return ImportRow(path=str(entry.path.resolve()), sha256=hashes[entry.path], start_s=round(entry.start_s, 6),
                     end_s=round(end, 6), sample_rate=info.sample_rate, channels=info.channels, format=info.format,
                     raw_text=raw, normalized_text=normalized, normalizer_version=NORMALIZER_VERSION,
                     annotation_type=annotation_type, split=entry.split, speaker=entry.speaker,
                     dialect=entry.dialect, utt_id=entry.utt_id)
