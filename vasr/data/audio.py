"""Reading audio: header probing, content hashing, and decoding to 16 kHz mono float32.

soundfile (libsndfile >= 1.1) reads WAV, FLAC, OGG/Vorbis/Opus and MP3; soxr resamples.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

TARGET_RATE = 16000            # Hz, the rate every model and feature in vasr works at
_HASH_BLOCK = 1 << 20          # bytes read per step when hashing


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file."""


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


def load(path: str | Path, start_s: float = 0.0, end_s: float | None = None,
         rate: int = TARGET_RATE) -> np.ndarray:
    """Samples of ``path`` between ``start_s`` and ``end_s`` (seconds), mixed to mono and resampled.

    Returns float32 (S,) in [-1, 1] at ``rate`` Hz.
    """
    path = Path(path)
    try:
        with sf.SoundFile(str(path)) as fh:
            source_rate = fh.samplerate
            first = int(round(start_s * source_rate))
            last = fh.frames if end_s is None else min(fh.frames, int(round(end_s * source_rate)))
            if first < 0 or first >= last:
                raise AudioError(f"{path}: empty segment {start_s:.3f}-{end_s} s")
            fh.seek(first)
            samples = fh.read(last - first, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: unreadable audio ({exc})") from exc
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return resample(mono, source_rate, rate)


def resample(samples: np.ndarray, source_rate: int, rate: int = TARGET_RATE) -> np.ndarray:
    """float32 (S,) at ``source_rate`` -> float32 at ``rate`` (soxr, high quality)."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if source_rate == rate:
        return samples
    return soxr.resample(samples, source_rate, rate, quality="HQ").astype(np.float32, copy=False)
