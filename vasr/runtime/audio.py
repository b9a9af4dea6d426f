"""Reading audio for the models: any file libsndfile reads (WAV, FLAC, OGG/Vorbis/Opus, MP3), any
rate and channel count, mixed to mono and resampled (soxr) to 16 kHz float32, whole or as a stream.

Imports numpy, soundfile and soxr only.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

TARGET_RATE = 16000          # Hz, the rate every model and feature in vasr works at
READ_BLOCK_S = 30.0          # seconds of source audio decoded per read


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file."""


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
        raise unreadable(path, str(path), exc) from None
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return resample(mono, source_rate, rate)


def unreadable(source, name: str, exc: Exception) -> AudioError:
    """The AudioError for a file libsndfile could not open: what is wrong in words (libsndfile says
    "System error." for a missing file), without the repr of a file object."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            return AudioError(f"{name}: no such file")
        if path.is_dir():
            return AudioError(f"{name}: a directory, not an audio file")
        if not os.access(path, os.R_OK):
            return AudioError(f"{name}: permission denied")
    detail = str(exc)
    if detail.startswith("Error opening"):
        detail = detail.rsplit(": ", 1)[-1].strip()     # "Error opening <repr>: Format not recognised."
    return AudioError(f"{name}: unreadable audio ({detail})")


def resample(samples: np.ndarray, source_rate: int, rate: int = TARGET_RATE) -> np.ndarray:
    """float32 (S,) at ``source_rate`` -> float32 at ``rate`` (soxr, high quality)."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if source_rate == rate:
        return samples
    return soxr.resample(samples, source_rate, rate, quality="HQ").astype(np.float32, copy=False)


@dataclass
class StreamStats:
    """What a stream saw, filled in as it is read (the caller judges the file when it ends)."""
    source_rate: int = 0         # Hz of the file
    samples: int = 0             # 16 kHz samples delivered
    peak: float = 0.0            # largest |sample| after mixing to mono (or of the channel read), full scale = 1


def channel_count(source: str | BinaryIO, name: str) -> int:
    """Channels of ``source`` from its header (a file object is left at its start)."""
    try:
        with sf.SoundFile(source) as fh:
            count = int(fh.channels)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise unreadable(source, name, exc) from None
    finally:
        if hasattr(source, "seek"):
            source.seek(0)
    return count


def read_blocks(source: str | BinaryIO, name: str, stats: StreamStats,
                block_s: float = READ_BLOCK_S, channel: int | None = None) -> Iterator[np.ndarray]:
    """Float32 (S,) blocks of ``source`` (path or binary file object; any format libsndfile reads,
    any rate, any channel count) mixed to mono (``channel`` None) or the 0-based ``channel`` alone,
    resampled to 16 kHz in a stream.

    ``name`` is what errors call the file. Raises ``AudioError`` for unreadable or empty audio.
    """
    try:
        fh = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise unreadable(source, name, exc) from None
    with fh:
        stats.source_rate = rate = int(fh.samplerate)
        if rate <= 0:
            raise AudioError(f"{name}: invalid sample rate {rate}")
        if channel is not None and not 0 <= channel < fh.channels:
            raise AudioError(f"{name}: no channel {channel + 1} (the file has {fh.channels})")
        resampler = None if rate == TARGET_RATE else soxr.ResampleStream(rate, TARGET_RATE, 1, "float32", "HQ")
        size = max(1, int(block_s * rate))
        try:
            # read until the decoder gives nothing: SoundFile.blocks trusts the header's frame count,
            # which a truncated MP3/FLAC overstates
            while len(block := fh.read(size, dtype="float32", always_2d=True)):
                if channel is not None:
                    mono = np.ascontiguousarray(block[:, channel])
                else:
                    mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
                if mono.size:
                    peak = float(np.abs(mono).max())
                    if not np.isfinite(peak):
                        raise AudioError(f"{name}: NaN or infinite samples after "
                                         f"{stats.samples / TARGET_RATE:.2f} s (a broken float file)")
                    stats.peak = max(stats.peak, peak)
                out = mono if resampler is None else resampler.resample_chunk(mono, last=False)
                if out.size:
                    stats.samples += out.size
                    yield out
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{name}: unreadable audio after {stats.samples / TARGET_RATE:.2f} s ({exc})") from None
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if tail.size:
                stats.samples += tail.size
                yield tail
