"""Long audio: read a file as a stream of 16 kHz mono blocks and cut it at pauses into chunks.

The model sees a whole chunk at once (attention is global), so a long file is cut into chunks of at
most ``max_chunk_s``. A cut goes in the middle of the quietest ``pause_ms`` window (lowest mean
energy, a plain energy VAD) between ``min_chunk_s`` and ``max_chunk_s`` of the chunk, so words are
not split unless the speech has no pause at all. Memory stays bounded by one read block plus one
chunk whatever the file's length: samples are read, resampled and cut as they stream.

Imports numpy, soundfile and soxr only (the torch-free runtime uses it).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from vasr.data.audio import TARGET_RATE, AudioError

READ_BLOCK_S = 30.0          # seconds of source audio decoded per read
ENERGY_FRAME_S = 0.01        # energy is measured per 10 ms frame
ENERGY_FLOOR = 1e-10         # power floor before the log (-100 dB)
QUIET_MARGIN = 1.4           # natural-log power units (6 dB) above the quietest window that still count as pause


@dataclass(frozen=True)
class ChunkOptions:
    max_chunk_s: float = 20.0    # longest chunk the model is given, seconds
    min_chunk_s: float = 8.0     # a cut falls at least this far into a chunk, seconds
    pause_ms: float = 200.0      # width of the window whose mean energy picks the cut, ms

    def __post_init__(self) -> None:
        if not 0.0 < self.min_chunk_s < self.max_chunk_s:
            raise ValueError(f"need 0 < min_chunk_s < max_chunk_s, got {self.min_chunk_s}, {self.max_chunk_s}")
        if not 0.0 < self.pause_ms / 1000.0 < self.max_chunk_s - self.min_chunk_s:
            raise ValueError(f"pause_ms {self.pause_ms} must fit between min_chunk_s and max_chunk_s")


@dataclass
class StreamStats:
    """What a stream saw, filled in as it is read (the caller judges the file when it ends)."""
    source_rate: int = 0         # Hz of the file
    samples: int = 0             # 16 kHz samples delivered
    peak: float = 0.0            # largest |sample| after mixing to mono, full scale = 1


def read_blocks(source: str | BinaryIO, name: str, stats: StreamStats,
                block_s: float = READ_BLOCK_S) -> Iterator[np.ndarray]:
    """Float32 (S,) blocks of ``source`` (path or binary file object; any format libsndfile reads,
    any rate, any channel count) mixed to mono and resampled to 16 kHz in a stream.

    ``name`` is what errors call the file. Raises ``AudioError`` for unreadable or empty audio.
    """
    try:
        fh = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{name}: unreadable audio ({exc})") from None
    with fh:
        stats.source_rate = rate = int(fh.samplerate)
        if rate <= 0:
            raise AudioError(f"{name}: invalid sample rate {rate}")
        resampler = None if rate == TARGET_RATE else soxr.ResampleStream(rate, TARGET_RATE, 1, "float32", "HQ")
        try:
            for block in fh.blocks(blocksize=max(1, int(block_s * rate)), dtype="float32", always_2d=True):
                mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
                if mono.size:
                    stats.peak = max(stats.peak, float(np.abs(mono).max()))
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


def cut_point(samples: np.ndarray, opts: ChunkOptions, rate: int = TARGET_RATE) -> int:
    """Sample index of the cut in ``samples`` (longer than ``max_chunk_s``): the centre of the
    longest quiet stretch between ``min_chunk_s`` and ``max_chunk_s``, where quiet means a
    ``pause_ms`` mean energy within ``QUIET_MARGIN`` of the quietest such window."""
    hop = int(ENERGY_FRAME_S * rate)
    lo, hi = int(opts.min_chunk_s * rate) // hop, int(opts.max_chunk_s * rate) // hop
    frames = samples[lo * hop: hi * hop].reshape(hi - lo, hop).astype(np.float64)
    log_energy = np.log(np.maximum((frames * frames).mean(axis=1), ENERGY_FLOOR))
    width = max(1, int(round(opts.pause_ms / 1000.0 / ENERGY_FRAME_S)))
    window = np.convolve(log_energy, np.ones(width) / width, mode="valid")
    quiet = np.concatenate([[False], window <= window.min() + QUIET_MARGIN, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))       # starts and ends of quiet runs
    starts, ends = edges[0::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    return (lo + (starts[longest] + ends[longest]) // 2 + width // 2) * hop


def chunks(blocks: Iterator[np.ndarray], opts: ChunkOptions,
           rate: int = TARGET_RATE) -> Iterator[tuple[int, np.ndarray]]:
    """(offset in samples, float32 chunk) pieces of the concatenated ``blocks``, each at most
    ``max_chunk_s`` long, cut at pauses; together they are exactly the input."""
    limit = int(opts.max_chunk_s * rate)
    pending: list[np.ndarray] = []
    held = offset = 0
    for block in blocks:
        pending.append(block)
        held += block.size
        if held <= limit:
            continue
        buffer = np.concatenate(pending)
        while buffer.size > limit:
            cut = cut_point(buffer, opts, rate)
            yield offset, buffer[:cut]
            offset += cut
            buffer = buffer[cut:]
        pending, held = [buffer], buffer.size
    if held:
        yield offset, np.concatenate(pending)
