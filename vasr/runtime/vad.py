"""Long audio: cut a stream of 16 kHz mono blocks (``vasr.runtime.audio.read_blocks``) at pauses
into chunks.

The model sees a whole chunk at once (attention is global), so a long file is cut into chunks of at
most ``max_chunk_s``. A cut goes in the middle of the quietest ``pause_ms`` window (lowest mean
energy, a plain energy VAD) between ``min_chunk_s`` and ``max_chunk_s`` of the chunk, so words are
not split unless the speech has no pause at all. Memory stays bounded by one read block plus one
chunk whatever the file's length: samples are read, resampled and cut as they stream.

Imports numpy only.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vasr.runtime.audio import TARGET_RATE

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
