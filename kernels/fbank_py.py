"""Kaldi-compatible log-mel filterbank features: the pure numpy reference.

This is the feature definition of DESIGN.md section 2, the front end of sherpa-onnx's
``zipformer_ctc`` models and kaldi-native-fbank with every option set explicitly: 16 kHz mono
audio, 25 ms povey windows every 10 ms, frames centred on the shift (``snip_edges=False``, the
edges reflected as Kaldi does), DC offset removed, pre-emphasis 0.97, a 512-point power spectrum,
80 HTK mel filters from 20 Hz to 7600 Hz without normalisation, and the natural log floored at
FLT_EPSILON. No energy term, no CMVN.

The compiled backends (``fbank_cy``, ``fbank_nb``) re-export the options and the frame count from
here, and pass their own segment kernels, built on the shared block driver ``blocked_fbank`` and the
sparse filters ``mel_spans``, to the shared drivers and streaming class below. This module computes
every step in float64 with numpy and is the oracle that they are tested against; they compute in
float64 too, so that all backends give the same features to within a float32 rounding.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["FbankOptions", "num_frames", "compute_fbank", "compute_fbank_batch", "FbankStream"]

FLT_EPSILON = float(np.finfo(np.float32).eps)  # floor of the mel energies before the log (Kaldi)
INT16_SCALE = 1.0 / 32768.0  # int16 PCM -> float in [-1, 1)
MEL_BREAK_HZ = 700.0  # HTK mel scale: mel = 1127 ln(1 + f / 700)
MEL_FACTOR = 1127.0
POVEY_EXPONENT = 0.85  # povey window = hann ** 0.85
WINDOWS = ("povey", "hanning", "hamming", "rectangular", "sine")  # Kaldi's names and definitions


@dataclass(frozen=True)
class FbankOptions:
    """Every knob of the fbank features; the defaults are vasr's (and sherpa-onnx's) definition."""

    sample_rate: int = 16000  # Hz of the input waveform
    num_bins: int = 80  # mel filters = feature dimension
    frame_length_ms: float = 25.0  # analysis window; 400 samples at 16 kHz
    frame_shift_ms: float = 10.0  # hop between frames; 160 samples at 16 kHz
    preemph: float = 0.97  # x[i] -= preemph * x[i-1] inside each frame, x[0] -= preemph * x[0]
    remove_dc: bool = True  # subtract each frame's mean before pre-emphasis
    window: str = "povey"  # one of WINDOWS
    low_freq: float = 20.0  # Hz, lower edge of the first mel filter
    high_freq: float = -400.0  # Hz, upper edge of the last filter; <= 0 means Nyquist + high_freq
    dither: float = 0.0  # std of Gaussian noise added to every frame, waveform units; 0 = off
    snip_edges: bool = False  # True: only frames that fit inside the signal; False: centred, reflected

    def __post_init__(self) -> None:
        if not isinstance(self.sample_rate, int) or self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive int (Hz), got {self.sample_rate!r}")
        if self.window_length < 2 or self.window_shift < 1:
            raise ValueError(f"frame_length_ms={self.frame_length_ms} / frame_shift_ms={self.frame_shift_ms}"
                             f" give fewer than 2 / 1 samples at sample_rate={self.sample_rate}")
        if not isinstance(self.num_bins, int) or self.num_bins < 1:
            raise ValueError(f"num_bins must be a positive int, got {self.num_bins!r}")
        if self.window not in WINDOWS:
            raise ValueError(f"window must be one of {WINDOWS}, got {self.window!r}")
        if not 0.0 <= self.preemph <= 1.0:
            raise ValueError(f"preemph must lie in [0, 1], got {self.preemph}")
        if not self.dither >= 0.0:
            raise ValueError(f"dither must be >= 0, got {self.dither}")
        nyquist = self.sample_rate / 2
        if not 0.0 <= self.low_freq < nyquist or not self.low_freq < self.mel_high_freq <= nyquist:
            raise ValueError(f"need 0 <= low_freq < high_freq <= Nyquist ({nyquist} Hz): low_freq="
                             f"{self.low_freq}, high_freq={self.high_freq} (= {self.mel_high_freq} Hz)")

    @property
    def window_length(self) -> int:
        """Samples per frame (Kaldi truncates, as here)."""
        return int(self.sample_rate * 0.001 * self.frame_length_ms)

    @property
    def window_shift(self) -> int:
        """Samples between the starts of consecutive frames."""
        return int(self.sample_rate * 0.001 * self.frame_shift_ms)

    @property
    def fft_size(self) -> int:
        """The frame is zero-padded to this power of two before the FFT."""
        return 1 << (self.window_length - 1).bit_length()

    @property
    def mel_high_freq(self) -> float:
        """``high_freq`` resolved to Hz."""
        return self.high_freq if self.high_freq > 0 else self.sample_rate / 2 + self.high_freq

    def to_dict(self) -> dict:
        """Plain dict of the fields (for YAML, checkpoints and ONNX metadata)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FbankOptions:
        """Inverse of ``to_dict``; unknown keys are an error, missing keys take the defaults."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown FbankOptions keys: {sorted(unknown)}")
        return cls(**d)


def num_frames(num_samples: int, opts: FbankOptions = FbankOptions()) -> int:
    """Frames that ``compute_fbank`` gives for ``num_samples`` samples (Kaldi's NumFrames).

    With ``snip_edges=False`` this is ``(num_samples + shift // 2) // shift``: 48000 -> 300.
    """
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    shift, length = opts.window_shift, opts.window_length
    if opts.snip_edges:
        return 0 if num_samples < length else 1 + (num_samples - length) // shift
    return (num_samples + shift // 2) // shift


def frame_start(index, opts: FbankOptions):
    """Sample index of the first sample of frame ``index`` (an int or an int array; negative at the
    left edge when centred)."""
    shift = opts.window_shift
    if opts.snip_edges:
        return index * shift
    return index * shift + shift // 2 - opts.window_length // 2


def frames_complete(num_samples: int, opts: FbankOptions) -> int:
    """Frames whose window ends inside the first ``num_samples`` samples: they need no right edge."""
    room = num_samples - opts.window_length - frame_start(0, opts)
    return 0 if room < 0 else room // opts.window_shift + 1


@functools.lru_cache(maxsize=16)
def window_function(opts: FbankOptions) -> np.ndarray:
    """(window_length,) float64 analysis window (Kaldi's definitions; read-only, cached)."""
    n = opts.window_length
    phase = 2.0 * np.pi * np.arange(n) / (n - 1)
    hann = 0.5 - 0.5 * np.cos(phase)
    window = {
        "povey": hann ** POVEY_EXPONENT,
        "hanning": hann,
        "hamming": 0.54 - 0.46 * np.cos(phase),
        "rectangular": np.ones(n),
        "sine": np.sin(0.5 * phase),
    }[opts.window]
    window.setflags(write=False)
    return window


def _mel(freq_hz: np.ndarray | float) -> np.ndarray | float:
    return MEL_FACTOR * np.log1p(np.asarray(freq_hz, dtype=np.float64) / MEL_BREAK_HZ)


@functools.lru_cache(maxsize=16)
def mel_banks(opts: FbankOptions) -> np.ndarray:
    """(fft_size // 2 + 1, num_bins) float64 triangular HTK-mel weights (read-only, cached).

    Kaldi's MelBanks: filters equally spaced in mel between low_freq and high_freq, triangles in
    mel, not normalised; the Nyquist bin (last row) is never used.
    """
    num_fft_bins = opts.fft_size // 2
    mel_low, mel_high = _mel(opts.low_freq), _mel(opts.mel_high_freq)
    delta = (mel_high - mel_low) / (opts.num_bins + 1)
    left = mel_low + delta * np.arange(opts.num_bins)
    centre, right = left + delta, left + 2 * delta
    mel = _mel(np.arange(num_fft_bins) * opts.sample_rate / opts.fft_size)[:, None]
    rising = (mel - left) / (centre - left)
    falling = (right - mel) / (right - centre)
    inside = (mel > left) & (mel < right)
    weights = np.zeros((num_fft_bins + 1, opts.num_bins))
    weights[:num_fft_bins] = np.where(inside, np.where(mel <= centre, rising, falling), 0.0)
    empty = np.flatnonzero(~weights.any(axis=0))
    if empty.size:
        raise ValueError(f"mel filters {empty.tolist()} cover no FFT bin: num_bins={opts.num_bins} is too "
                         f"many for fft_size={opts.fft_size} between {opts.low_freq} and {opts.mel_high_freq} Hz")
    weights.setflags(write=False)
    return weights


@functools.lru_cache(maxsize=16)
def mel_spans(opts: FbankOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``mel_banks`` as the compiled kernels read it (read-only, cached): per filter its first FFT bin,
    its bin count and the offset of its weights, three (num_bins,) intp arrays, and the float64
    weights of all filters concatenated (each triangle's nonzero bins are contiguous)."""
    banks = mel_banks(opts)
    nonzero = banks != 0.0
    first = nonzero.argmax(axis=0).astype(np.intp)
    count = nonzero.sum(axis=0).astype(np.intp)
    offset = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.intp)
    weights = np.concatenate([banks[lo:lo + n, m] for m, (lo, n) in enumerate(zip(first, count))])
    for table in (first, count, offset, weights):
        table.setflags(write=False)
    return first, count, offset, weights


def as_waveform(wave: np.ndarray) -> np.ndarray:
    """Validate one waveform and return it as contiguous float32 (int16 scaled by 1/32768)."""
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"expected a 1-D mono waveform, got shape {wave.shape}")
    if wave.dtype == np.int16:
        return wave.astype(np.float32) * np.float32(INT16_SCALE)
    if wave.dtype not in (np.float32, np.float64):
        raise TypeError(f"waveform dtype must be float32, float64 or int16, got {wave.dtype}")
    return np.ascontiguousarray(wave, dtype=np.float32)


def frame_noise(rng: np.random.Generator | None, count: int, opts: FbankOptions) -> np.ndarray | None:
    """(count, window_length) float32 dither for the next ``count`` frames, or None without dither.

    Drawn frame after frame from ``rng``, so the same generator state gives the same noise however
    the frames are grouped into calls (whole clip, batch, stream chunks).
    """
    if opts.dither == 0.0:
        return None
    rng = np.random.default_rng() if rng is None else rng
    noise = rng.standard_normal((count, opts.window_length), dtype=np.float32)
    noise *= np.float32(opts.dither)
    return noise


@dataclass(frozen=True)
class Segment:
    """Frames ``first .. first + count - 1`` of a signal of ``total`` samples, of which ``samples``
    holds ``samples[i] = signal[offset + i]`` (enough of it for those frames, reflections included)."""

    samples: np.ndarray  # float32 (n,)
    offset: int  # signal index of samples[0]
    total: int  # signal length, the axis of the right-edge reflection
    first: int  # index of the first frame wanted
    count: int  # frames wanted


# A backend's kernel: segments (+ their dither, or None) -> one float32 (count, num_bins) per segment.
SegmentKernel = Callable[[Sequence[Segment], Sequence["np.ndarray | None"], FbankOptions], list]


def frame_indices(seg: Segment, opts: FbankOptions) -> np.ndarray:
    """(count, window_length) int64 indices into ``seg.samples`` with Kaldi's edge reflection.

    Kaldi reflects an out-of-range index i as -i - 1 (left) or 2 * total - 1 - i (right), repeating
    until it lands inside, i.e. the signal extended symmetrically with period 2 * total.
    """
    starts = frame_start(np.arange(seg.first, seg.first + seg.count, dtype=np.int64), opts)
    index = starts[:, None] + np.arange(opts.window_length)
    index %= 2 * seg.total
    index = np.where(index >= seg.total, 2 * seg.total - 1 - index, index)
    return index - seg.offset


def _fbank_segments(segments: Sequence[Segment], noises: Sequence[np.ndarray | None],
                    opts: FbankOptions) -> list[np.ndarray]:
    """The reference kernel: every step of Kaldi's ComputeFeatures in float64, one segment at a time."""
    window, banks = window_function(opts), mel_banks(opts)
    out = []
    for seg, noise in zip(segments, noises):
        frames = seg.samples[frame_indices(seg, opts)].astype(np.float64)
        if noise is not None:
            frames += noise
        if opts.remove_dc:
            frames -= frames.mean(axis=1, keepdims=True)
        frames[:, 1:] -= opts.preemph * frames[:, :-1]  # the right side is read before the write
        frames[:, 0] -= opts.preemph * frames[:, 0]
        frames *= window
        power = np.abs(np.fft.rfft(frames, n=opts.fft_size, axis=1)) ** 2
        out.append(np.log(np.maximum(power @ banks, FLT_EPSILON)).astype(np.float32))
    return out


def blocked_fbank(segments: Sequence[Segment], noises: Sequence[np.ndarray | None], opts: FbankOptions,
                  fill_rows: Callable, rows_to_mel: Callable, block_frames: int) -> list[np.ndarray]:
    """The block driver of the compiled kernels: the frames of all segments, in order, go through a
    zero-padded float64 (block_frames, fft_size) buffer, so that the frames of short segments share
    the FFT calls and a block's rows and spectra stay in cache.

    fill_rows(seg, k, noise, rows): frames ``seg.first + k ..`` of ``seg`` into the first
        window_length columns of ``rows`` (one frame per row; the padding after them stays zero),
        ``noise`` their (len(rows), window_length) dither or None.
    rows_to_mel(rows, out): power spectra of ``rows`` summed over the mel filters into float64
        ``out`` (len(rows), num_bins), floored at FLT_EPSILON.
    """
    total = sum(seg.count for seg in segments)
    block = min(block_frames, total)
    out = np.empty((total, opts.num_bins))
    rows = np.zeros((block, opts.fft_size))
    filled = done = 0
    for seg, noise in zip(segments, noises):
        k = 0
        while k < seg.count:
            n = min(seg.count - k, block - filled)
            fill_rows(seg, k, None if noise is None else noise[k:k + n], rows[filled:filled + n])
            filled += n
            k += n
            if filled == block or done + filled == total:
                rows_to_mel(rows[:filled], out[done:done + filled])
                done += filled
                filled = 0
    feats = np.log(out, out=out).astype(np.float32)
    return np.split(feats, np.cumsum([seg.count for seg in segments[:len(segments) - 1]]))


def fbank_batch_with(kernel: SegmentKernel, waves: Sequence[np.ndarray], opts: FbankOptions,
                     rng: np.random.Generator | None) -> list[np.ndarray]:
    """The driver of ``compute_fbank_batch`` for any backend's kernel."""
    if len(waves) == 0:
        return []
    segments = []
    for wave in waves:
        samples = as_waveform(wave)
        segments.append(Segment(samples, 0, len(samples), 0, num_frames(len(samples), opts)))
    noises = [frame_noise(rng, seg.count, opts) for seg in segments]
    return kernel(segments, noises, opts)


def compute_fbank(wave: np.ndarray, opts: FbankOptions = FbankOptions(),
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """Log-mel filterbank features of one waveform.

    wave: (num_samples,) float32/float64 in [-1, 1] or int16 PCM (scaled by 1/32768), mono, at
        ``opts.sample_rate``; float64 is rounded to float32 first.
    rng: source of the dither noise when ``opts.dither > 0`` (a fresh unseeded generator when None);
        ignored without dither.
    Returns float32 (num_frames(num_samples, opts), num_bins), natural log of mel power. A signal
    too short for one frame (including an empty one) gives shape (0, num_bins).
    Raises ValueError for a waveform that is not 1-D, TypeError for another dtype.
    """
    return fbank_batch_with(_fbank_segments, [wave], opts, rng)[0]


def compute_fbank_batch(waves: Sequence[np.ndarray], opts: FbankOptions = FbankOptions(),
                        rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """``compute_fbank`` of each waveform, in order (the dither drawn in that order from ``rng``).

    Returns a list of float32 (num_frames_i, num_bins) arrays, equal to the one-by-one results;
    compiled backends share the FFT and mel work across the batch.
    """
    return fbank_batch_with(_fbank_segments, waves, opts, rng)


class FbankStream:
    """Incremental ``compute_fbank``: feed chunks, get each frame as soon as its window is complete.

    ``accept(chunk)`` returns the frames completed by that chunk; ``finish()`` returns the rest (the
    last frames need the right-edge reflection, so they wait for the end of the signal). The
    concatenation of all returned arrays equals ``compute_fbank`` on the whole signal, for any
    chunking (including empty and 1-sample chunks) and, given an equally seeded ``rng``, with dither.
    After ``finish()`` the stream accepts nothing more (RuntimeError).
    """

    _kernel: SegmentKernel = staticmethod(_fbank_segments)

    def __init__(self, opts: FbankOptions = FbankOptions(), rng: np.random.Generator | None = None):
        self.opts = opts
        self._rng = rng
        self._chunks: list[np.ndarray] = []  # samples from signal index self._offset onwards
        self._offset = 0
        self._received = 0
        self._emitted = 0
        self._finished = False

    @property
    def num_samples(self) -> int:
        """Samples accepted so far."""
        return self._received

    @property
    def num_frames_ready(self) -> int:
        """Frames returned so far (after ``finish()``: all of them)."""
        return self._emitted

    @property
    def finished(self) -> bool:
        """Whether ``finish()`` has been called."""
        return self._finished

    def accept(self, chunk: np.ndarray) -> np.ndarray:
        """Append (n,) samples (same dtypes as ``compute_fbank``); float32 (t, num_bins) new frames."""
        if self._finished:
            raise RuntimeError("FbankStream.accept() after finish(): start a new stream")
        samples = as_waveform(chunk)
        if samples.size:
            self._chunks.append(samples)
            self._received += samples.size
        return self._emit(frames_complete(self._received, self.opts), self._received)

    def finish(self) -> np.ndarray:
        """End of signal: float32 (t, num_bins), the frames not yet returned."""
        if self._finished:
            raise RuntimeError("FbankStream.finish() called twice")
        self._finished = True
        return self._emit(num_frames(self._received, self.opts), self._received)

    def _emit(self, until: int, total: int) -> np.ndarray:
        count = until - self._emitted
        if count <= 0:
            return np.zeros((0, self.opts.num_bins), dtype=np.float32)
        samples = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        segment = Segment(samples, self._offset, total, self._emitted, count)
        frames = self._kernel([segment], [frame_noise(self._rng, count, self.opts)], self.opts)[0]
        self._emitted = until
        # keep what later frames can touch: their windows, and one window more for the reflection
        # of the last frames at the right edge (which lands at most a window before their start)
        keep_from = max(self._offset, frame_start(until, self.opts) - self.opts.window_length)
        self._chunks = [samples[keep_from - self._offset:]]
        self._offset = keep_from
        return frames


def backend_api(kernel: SegmentKernel, module: str) -> tuple[Callable, Callable, type]:
    """``compute_fbank``, ``compute_fbank_batch`` and ``FbankStream`` for the backend module named
    ``module`` whose segment kernel is ``kernel``: this module's, with the same signatures and docs."""

    def one(wave, opts=FbankOptions(), rng=None):
        return fbank_batch_with(kernel, [wave], opts, rng)[0]

    def batch(waves, opts=FbankOptions(), rng=None):
        return fbank_batch_with(kernel, waves, opts, rng)

    for ours, public in ((one, compute_fbank), (batch, compute_fbank_batch)):
        ours.__name__ = ours.__qualname__ = public.__name__
        ours.__doc__, ours.__module__ = public.__doc__, module
    stream = type("FbankStream", (FbankStream,), {"__doc__": FbankStream.__doc__, "__module__": module,
                                                   "_kernel": staticmethod(kernel)})
    return one, batch, stream
