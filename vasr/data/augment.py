"""Training-time augmentation: waveform effects before the fbank, SpecAugment after it.

Each effect has its own options with a probability (0 = off) and is drawn from the caller's
``numpy.random.Generator``, so a batch is augmented identically whatever the worker that builds
it (the dataset seeds one generator per batch). Libraries: soxr for speed perturbation (Kaldi's
``sox speed``: tempo and pitch together) and the telephone's 8 kHz, scipy for filters and the
reverberation convolution, libsndfile (soundfile) for the lossy codecs (MP3, Opus, Vorbis, encoded
and decoded in memory); the noise is synthetic coloured noise and the room a synthetic exponentially
decaying impulse response, so nothing needs a noise or RIR corpus. ``vasr eval --conditions`` scores
a split under each channel with these same effects (``CONDITIONS``).
"""
from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

from vasr.runtime.audio import TARGET_RATE

NOISE_COLOURS = ("white", "pink", "brown")   # power spectrum slope 0, -1, -2 (per octave: 0, -3, -6 dB)
RT60_DECAY_DB = 60.0                          # reverberation time = time for the tail to fall by 60 dB
TELEPHONE_ORDER = 4                           # Butterworth band-pass order (per side)
COMPANDING = ("ulaw", "alaw", "none")         # G.711's two 8-bit laws, or 16-bit linear
MU = 255.0                                    # G.711 mu-law
A_LAW = 87.6                                  # G.711 A-law
# libsndfile (format, subtype) of each codec; its compression level 0..1 goes from best quality to smallest
CODECS = {"mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS"), "vorbis": ("OGG", "VORBIS")}
MAX_COMPRESSION = 0.9                         # libsndfile's MP3 encoder refuses 1.0
_EPS = 1e-10


@dataclass(frozen=True)
class SpeedConfig:
    prob: float = 0.0                                   # chance per utterance
    factors: tuple[float, ...] = (0.9, 1.0, 1.1)        # speed factors drawn uniformly; 1.1 = 10 % shorter


@dataclass(frozen=True)
class NoiseConfig:
    prob: float = 0.0
    snr_db: tuple[float, float] = (10.0, 30.0)          # signal-to-noise ratio range, dB
    colours: tuple[str, ...] = NOISE_COLOURS


@dataclass(frozen=True)
class ReverbConfig:
    prob: float = 0.0
    rt60_s: tuple[float, float] = (0.15, 0.6)           # reverberation time range, seconds
    direct_ratio_db: tuple[float, float] = (0.0, 10.0)  # direct path energy over the tail energy, dB


@dataclass(frozen=True)
class TelephoneConfig:
    prob: float = 0.0
    band_hz: tuple[float, float] = (300.0, 3400.0)      # pass band of a narrow-band telephone channel
    rate: int = 8000                                    # the channel's sample rate; 16000 = band-pass only
    companding: tuple[str, ...] = ("ulaw", "alaw")      # G.711 laws drawn per utterance ("none": linear)


@dataclass(frozen=True)
class CodecConfig:
    prob: float = 0.0
    codecs: tuple[str, ...] = ("mp3", "opus", "vorbis")  # drawn per utterance
    compression: tuple[float, float] = (0.5, 0.9)        # libsndfile compression level range (0 best quality)


@dataclass(frozen=True)
class VolumeConfig:
    prob: float = 0.0
    gain_db: tuple[float, float] = (-10.0, 6.0)         # gain range; the result is clipped to [-1, 1]


@dataclass(frozen=True)
class SpecAugmentConfig:
    prob: float = 0.0
    freq_masks: int = 2                                  # frequency masks per utterance
    freq_width: int = 15                                 # widest frequency mask, mel bins
    time_masks: int = 2                                  # time masks per utterance
    time_width: int = 40                                 # widest time mask, frames (10 ms)
    time_width_ratio: float = 0.1                        # ... and at most this share of the utterance


@dataclass(frozen=True)
class AugmentConfig:
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    reverb: ReverbConfig = field(default_factory=ReverbConfig)
    telephone: TelephoneConfig = field(default_factory=TelephoneConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)
    volume: VolumeConfig = field(default_factory=VolumeConfig)
    spec: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)


def records(config: AugmentConfig) -> list[dict]:
    """One data_augmentations row per effect: name, params (without prob), probability, enabled."""
    out = []
    for f in dataclasses.fields(config):
        effect = getattr(config, f.name)
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(effect).items()
                  if k != "prob"}
        out.append({"name": f.name, "params": params, "probability": effect.prob, "enabled": effect.prob > 0})
    return out


def speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play ``wave`` ``factor`` times faster (pitch moves too), by resampling: length / factor."""
    if factor == 1.0:
        return wave
    return soxr.resample(wave, TARGET_RATE * factor, TARGET_RATE, quality="HQ").astype(np.float32, copy=False)


def coloured_noise(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    """Unit-power noise of ``n`` samples whose power falls as f^0, f^-1 or f^-2."""
    slope = NOISE_COLOURS.index(colour)
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.arange(n // 2 + 1, dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / freqs ** (slope / 2), n)
    return (noise / (np.sqrt(np.mean(noise ** 2)) + _EPS)).astype(np.float32)


def add_noise(wave: np.ndarray, snr_db: float, noise: np.ndarray) -> np.ndarray:
    """``wave`` + ``noise`` scaled to ``snr_db`` below the signal power."""
    power = float(np.mean(wave.astype(np.float64) ** 2))
    return wave + noise * np.float32(np.sqrt(power / 10 ** (snr_db / 10)))


def impulse_response(rng: np.random.Generator, rt60_s: float, direct_ratio_db: float) -> np.ndarray:
    """A synthetic room: a unit direct path, then Gaussian noise decaying by 60 dB over ``rt60_s``."""
    n = max(2, int(rt60_s * TARGET_RATE))
    t = np.arange(n) / TARGET_RATE
    tail = rng.standard_normal(n) * 10 ** (-RT60_DECAY_DB / 20 * t / rt60_s)
    tail[0] = 0.0
    tail *= np.sqrt(10 ** (-direct_ratio_db / 10) / (np.sum(tail ** 2) + _EPS))
    tail[0] = 1.0
    return tail


def reverberate(wave: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """``wave`` convolved with ``ir``, cut to the input length and rescaled to the input's peak."""
    wet = signal.fftconvolve(wave, ir)[: len(wave)]
    peak_in, peak_out = np.abs(wave).max(), np.abs(wet).max()
    return (wet * (peak_in / peak_out if peak_out > 0 else 1.0)).astype(np.float32)


def telephone(wave: np.ndarray, band_hz: tuple[float, float], rate: int = 8000, law: str = "none") -> np.ndarray:
    """A narrow-band telephone channel: Butterworth band-pass, down to ``rate`` and back (soxr), and
    G.711 8-bit companding (``law`` ulaw | alaw; none = linear). Same length as ``wave``."""
    if law not in COMPANDING:
        raise ValueError(f"telephone companding {law!r}: expected one of {', '.join(COMPANDING)}")
    sos = signal.butter(TELEPHONE_ORDER, band_hz, btype="bandpass", fs=TARGET_RATE, output="sos")
    x = signal.sosfilt(sos, wave)
    if rate != TARGET_RATE:
        x = soxr.resample(x, TARGET_RATE, rate, quality="HQ")
    x = np.clip(x, -1.0, 1.0)
    if law != "none":
        x = _expand(np.round(_compress(x, law) * 127.0) / 127.0, law)   # 8 bits: sign + 7
    if rate != TARGET_RATE:
        x = soxr.resample(x, rate, TARGET_RATE, quality="HQ")
    out = np.zeros(len(wave), np.float32)
    out[:min(len(x), len(wave))] = x[:len(wave)]
    return out


def _compress(x: np.ndarray, law: str) -> np.ndarray:
    """G.711's continuous companding curve, [-1, 1] -> [-1, 1]."""
    a = np.abs(x)
    if law == "ulaw":
        return np.sign(x) * np.log1p(MU * a) / np.log1p(MU)
    small = a < 1 / A_LAW
    y = np.where(small, A_LAW * a, 1 + np.log(np.maximum(A_LAW * a, 1.0)))
    return np.sign(x) * y / (1 + np.log(A_LAW))


def _expand(y: np.ndarray, law: str) -> np.ndarray:
    """The inverse of ``_compress``."""
    b = np.abs(y)
    if law == "ulaw":
        return np.sign(y) * np.expm1(b * np.log1p(MU)) / MU
    t = b * (1 + np.log(A_LAW))
    return np.sign(y) * np.where(t < 1, t / A_LAW, np.exp(t - 1) / A_LAW)


def codec(wave: np.ndarray, name: str, compression: float) -> np.ndarray:
    """``wave`` encoded with the lossy codec ``name`` (``CODECS``) at libsndfile's ``compression``
    level and decoded again, in memory; same length as ``wave``."""
    if name not in CODECS:
        raise ValueError(f"codec {name!r}: expected one of {', '.join(CODECS)}")
    container, subtype = CODECS[name]
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1.0, 1.0), TARGET_RATE, format=container, subtype=subtype,
             compression_level=min(max(compression, 0.0), MAX_COMPRESSION))
    buffer.seek(0)
    decoded, rate = sf.read(buffer, dtype="float32")
    if rate != TARGET_RATE:
        decoded = soxr.resample(decoded, rate, TARGET_RATE)
    out = np.zeros(len(wave), np.float32)
    out[:min(len(decoded), len(wave))] = decoded[:len(wave)]
    return out


def augment_wave(wave: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Apply the enabled waveform effects (speed, reverb, telephone, codec, noise, volume) each with its
    probability.

    wave: float32 (S,) at 16 kHz. Returns float32 (S',), S' = S unless speed changed it.
    """
    if config.speed.prob > 0 and rng.random() < config.speed.prob:
        wave = speed(wave, float(rng.choice(config.speed.factors)))
    if config.reverb.prob > 0 and rng.random() < config.reverb.prob:
        wave = reverberate(wave, impulse_response(rng, rng.uniform(*config.reverb.rt60_s),
                                                  rng.uniform(*config.reverb.direct_ratio_db)))
    if config.telephone.prob > 0 and rng.random() < config.telephone.prob:
        wave = telephone(wave, config.telephone.band_hz, config.telephone.rate,
                         str(rng.choice(config.telephone.companding)))
    if config.codec.prob > 0 and rng.random() < config.codec.prob:
        wave = codec(wave, str(rng.choice(config.codec.codecs)), rng.uniform(*config.codec.compression))
    if config.noise.prob > 0 and rng.random() < config.noise.prob:
        noise = coloured_noise(rng, len(wave), str(rng.choice(config.noise.colours)))
        wave = add_noise(wave, rng.uniform(*config.noise.snr_db), noise)
    if config.volume.prob > 0 and rng.random() < config.volume.prob:
        wave = wave * np.float32(10 ** (rng.uniform(*config.volume.gain_db) / 20))
    return np.clip(wave, -1.0, 1.0).astype(np.float32, copy=False)


# the channels `vasr eval --conditions` scores a split under: each effect always on, drawn from the seed
CONDITIONS = {
    "clean": AugmentConfig(),
    "noise": AugmentConfig(noise=NoiseConfig(prob=1.0, snr_db=(10.0, 20.0))),
    "reverb": AugmentConfig(reverb=ReverbConfig(prob=1.0, rt60_s=(0.3, 0.8))),
    "telephone": AugmentConfig(telephone=TelephoneConfig(prob=1.0)),
    "codec": AugmentConfig(codec=CodecConfig(prob=1.0)),
}


def spec_augment(feats: np.ndarray, config: SpecAugmentConfig, rng: np.random.Generator,
                 fill: np.ndarray | None = None) -> np.ndarray:
    """SpecAugment (Park et al. 2019) frequency and time masks on float32 (T, F) features.

    Masked cells get ``fill`` (F,) per bin (default: the utterance's per-bin mean; the trainer
    passes the CMVN mean, which the model maps to 0). Returns a copy.
    """
    out = feats.copy()
    if config.prob <= 0 or rng.random() >= config.prob or out.size == 0:
        return out
    value = out.mean(axis=0) if fill is None else np.asarray(fill, dtype=np.float32)
    frames, bins = out.shape
    for _ in range(config.freq_masks):
        width = int(rng.integers(0, config.freq_width + 1))
        start = int(rng.integers(0, max(1, bins - width + 1)))
        out[:, start:start + width] = value[start:start + width]
    max_time = min(config.time_width, int(config.time_width_ratio * frames))
    for _ in range(config.time_masks):
        width = int(rng.integers(0, max_time + 1))
        start = int(rng.integers(0, max(1, frames - width + 1)))
        out[start:start + width] = value
    return out
