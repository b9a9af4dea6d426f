"""The one utterance record, and the one spec of where utterances come from.

``Utterance`` is shaped like a lhotse supervision segment: an id, the audio file (``path``), the
segment inside it (``start_s``, ``end_s``, ``duration_s``), the normalised reference ``text``, the speaker and
language, plus vasr's database row (``audio_id``) and free ``custom`` fields (a bias list, say). It
serialises with ``to_dict``/``from_dict``. Training batches, evaluation, tuning, bias evaluation,
the runtime's database and manifest inputs, and the int8 gate all read it.

``DataSource`` says where a stage's utterances come from: a database split (``split`` of split
version ``version``) or a CSV manifest; ``vasr.db.runs.load_utterances`` reads it. This module is
pure Python: the torch-free runtime reads manifests through it.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Utterance", "DataSource", "manifest_utterances"]


@dataclass(frozen=True)
class Utterance:
    id: str                          # unique within its source: the database audio id, or the manifest row
    path: str                        # the audio file
    start_s: float = 0.0             # segment start inside the file, seconds
    end_s: float | None = None       # segment end inside the file, seconds (None: the end of the file)
    duration_s: float | None = None  # seconds (None: not probed yet)
    text: str | None = None          # normalised reference transcript (None: unknown)
    speaker: str | None = None
    language: str = "vi"
    audio_id: int | None = None      # the audio_files row (None outside the database)
    custom: dict[str, Any] = field(default_factory=dict, compare=False)  # e.g. entities, bias_list

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Utterance:
        return cls(**data)


@dataclass(frozen=True)
class DataSource:
    """Where utterances come from: a CSV manifest when given, else a database split."""

    split: str = "test"              # train | val | test
    version: str = "default"         # the split version (data_splits.version)
    manifest: str | None = None      # CSV: file_path,transcript[,split][,speaker_id] instead of the database

    def describe(self) -> str:
        return self.manifest or f"split {self.split!r} of version {self.version!r}"


def manifest_utterances(path: str | os.PathLike, require_transcript: bool = True) -> list[Utterance]:
    """The rows of a CSV manifest (``vasr.data.manifests.read_csv`` rules: header optional, paths
    relative to the manifest), transcripts normalised as the importer does; a malformed row is a
    ValueError naming it."""
    from vasr.data.manifests import read_csv
    from vasr.text.normalize import normalize

    entries, rejects = read_csv(Path(path), require_transcript=require_transcript)
    if rejects:
        raise ValueError("; ".join(f"{r.row_ref}: {r.reason}" for r in rejects))
    return [Utterance(e.row_ref, str(e.path), e.start_s, e.end_s, None,
                      normalize(e.transcript) if e.transcript else None, e.speaker) for e in entries]
