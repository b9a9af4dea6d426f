"""What importing audio needs beside decoding: header probing and content hashing. Decoding to 16 kHz
mono float32 (``load``, ``resample``) is the runtime's (``vasr.runtime.audio``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from vasr.runtime.audio import AudioError

_HASH_BLOCK = 1 << 20          # bytes read per step when hashing


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int    # Hz
    channels: int
    frames: int         # samples per channel
    format: str         # WAV | FLAC | OGG | MP3 ...

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def probe(path: str | Path) -> AudioInfo:
    """Rate, channels, length and container of ``path`` from its header, without decoding it."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: unreadable audio ({exc})") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path}: zero-length audio")
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames), str(info.format))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes (the database's identity of an audio file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
