"""What importing audio needs beside decoding: header probing, a full decoding scan and content
hashing. Decoding to 16 kHz mono float32 (``load``, ``resample``) is the runtime's
(``vasr.runtime.audio``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from vasr.runtime.audio import AudioError

_HASH_BLOCK = 1 << 20          # bytes read per step when hashing
SCAN_BLOCK_S = 5.0             # seconds decoded per step when scanning
TRUNCATION_TOLERANCE = 0.01    # decoding may come up short of the header by 1% + 50 ms (MP3 estimates)
TRUNCATION_TOLERANCE_S = 0.05
WINDOW_S = 0.01                # resolution of a scan's level envelope (segments are judged on it)
MAX_PEAK = 8.0                 # a sample beyond 8x full scale (+18 dBFS) is a broken float file, not a loud one
CLIP_LEVEL = 0.999             # |sample| at or above this counts as clipped (full scale = 1)


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


@dataclass(frozen=True)
class AudioScan:
    """What decoding the whole file found: the decoded length (not the header's) and a level
    envelope per ``WINDOW_S`` window, to judge the file or a segment of it."""
    info: AudioInfo                # frames: the samples actually decoded
    window: int                    # frames per envelope window
    peaks: np.ndarray              # float32 (W,): max |sample| over the channels in each window
    clipped: np.ndarray            # int (W,): samples at or beyond CLIP_LEVEL in each window

    def whole(self) -> AudioScan:
        """The same scan with one window (a whole-file import needs no more; it keeps memory flat)."""
        return AudioScan(self.info, max(1, self.peaks.size) * self.window, self.peaks.max(keepdims=True),
                         self.clipped.sum(keepdims=True, dtype=np.int64))

    def level(self, start_s: float = 0.0, end_s: float | None = None) -> tuple[float, float]:
        """(peak, clipped share of the samples) between ``start_s`` and ``end_s`` (seconds)."""
        peaks, clipped = self.levels(np.array([start_s]), np.array([np.nan if end_s is None else end_s]))
        return float(peaks[0]), float(clipped[0])

    def levels(self, starts_s: np.ndarray, ends_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``level`` of many segments at once: float64 (N,) peaks and clipped shares of the segments
        ``starts_s[i]``-``ends_s[i]`` (seconds; an end of NaN: to the end of the file). One pass over
        the envelope per call instead of a few numpy calls per segment (an import of a million
        segments of one file)."""
        rate, size = self.info.sample_rate, self.peaks.size
        starts_s, ends_s = np.asarray(starts_s, dtype=np.float64), np.asarray(ends_s, dtype=np.float64)
        # the same integer arithmetic as one segment at a time: int() truncates, round() to even
        first = np.minimum(size, np.maximum(0, (starts_s * rate).astype(np.int64) // self.window))
        last = np.full(first.shape, size, dtype=np.int64)
        bounded = ~np.isnan(ends_s)
        last[bounded] = np.minimum(size, -(-np.round(ends_s[bounded] * rate).astype(np.int64) // self.window))
        valid = last > first
        peaks = np.zeros(first.shape, dtype=np.float64)
        clipped = np.zeros(first.shape, dtype=np.float64)
        if valid.any():
            f, l = first[valid], last[valid]
            order = np.argsort(f, kind="stable")   # by start: the gaps reduceat also walks sum to <= size
            bounds = np.empty(2 * f.size, dtype=np.int64)
            bounds[0::2], bounds[1::2] = f[order], l[order]
            maxima = np.empty(f.size, dtype=np.float64)
            maxima[order] = np.maximum.reduceat(np.append(self.peaks, np.float32(0)), bounds)[0::2]
            peaks[valid] = maxima
            total = np.concatenate(([0], np.cumsum(self.clipped, dtype=np.int64)))
            clipped[valid] = (total[l] - total[f]) / ((l - f) * self.window * self.info.channels)
        return peaks, clipped


def scan(path: str | Path) -> AudioScan:
    """Decode all of ``path``: its true length, and an ``AudioError`` naming the file for audio that
    cannot be decoded to the end, that decodes to nothing, or that holds NaN, infinite or absurdly
    large samples (``MAX_PEAK``)."""
    header = probe(path)
    rate = header.sample_rate
    window = max(1, int(round(WINDOW_S * rate)))
    block = window * max(1, int(SCAN_BLOCK_S / WINDOW_S))
    peaks, clipped, frames = [], [], 0
    try:
        with sf.SoundFile(str(path)) as fh:
            # read() until it returns nothing: SoundFile.blocks() trusts the header's length and
            # pads a truncated file with whatever its buffer held
            while len(samples := fh.read(block, dtype="float32", always_2d=True)):
                magnitude = np.abs(samples)
                finite = np.isfinite(magnitude).all(axis=1)
                if not finite.all():
                    at = (frames + int(np.argmin(finite))) / rate
                    raise AudioError(f"{path}: NaN or infinite sample at {at:.3f} s (a broken float file)")
                per_frame = magnitude.max(axis=1)
                if per_frame.max() > MAX_PEAK:
                    at = (frames + int(np.argmax(per_frame > MAX_PEAK))) / rate
                    raise AudioError(f"{path}: sample of {per_frame.max():.3g} x full scale at {at:.3f} s "
                                     f"(over {MAX_PEAK:g}: a broken float file)")
                pad = -len(samples) % window
                peaks.append(np.pad(per_frame, (0, pad)).reshape(-1, window).max(axis=1))
                hits = (magnitude >= CLIP_LEVEL).sum(axis=1)
                clipped.append(np.pad(hits, (0, pad)).reshape(-1, window).sum(axis=1).astype(np.int32))
                frames += len(samples)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: audio does not decode to the end (truncated or corrupt: {exc}); "
                         f"{frames / rate:.3f} s of the {header.duration_s:.3f} s in its header decoded") from None
    if frames == 0:
        raise AudioError(f"{path}: zero-length audio (nothing decodes; the header says {header.duration_s:.3f} s)")
    if frames < header.frames * (1 - TRUNCATION_TOLERANCE) - TRUNCATION_TOLERANCE_S * rate:
        raise AudioError(f"{path}: truncated audio: only {frames / rate:.3f} s of the "
                         f"{header.duration_s:.3f} s in its header decode")
    info = AudioInfo(header.sample_rate, header.channels, frames, header.format)
    return AudioScan(info, window, np.concatenate(peaks), np.concatenate(clipped))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes (the database's identity of an audio file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
