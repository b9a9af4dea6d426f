"""Channel effects measured on signals: the telephone's band and 8-bit companding, the lossy codecs'
round trip, the conditions of `vasr eval --conditions` drawn from the seed alone."""
from __future__ import annotations

import numpy as np
import pytest

from vasr.data.augment import CONDITIONS, _compress, _expand, augment_wave, codec, telephone

RATE = 16000


def _share(x: np.ndarray, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


def _snr_db(clean: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum((other - clean).astype(np.float64) ** 2)))


def _voiced(seconds: float = 2.0) -> np.ndarray:
    """A vowel-like tone: 150 Hz and its harmonics to 4 kHz, falling 6 dB per octave."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 27))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("law", ["ulaw", "alaw", "none"])
def test_telephone_keeps_the_narrow_band_only(law):
    white = (0.1 * np.random.default_rng(0).standard_normal(2 * RATE)).astype(np.float32)
    out = telephone(white, (300.0, 3400.0), 8000, law)
    assert out.shape == white.shape and out.dtype == np.float32
    assert _share(out, 4000, 8000) < 1e-5          # nothing above the 8 kHz channel's Nyquist
    assert _share(out, 0, 150) < 1e-3 and _share(out, 500, 3000) > 0.8


def test_g711_companding_is_8_bits_on_a_log_scale():
    x = np.linspace(-1, 1, 4001)
    for law in ("ulaw", "alaw"):
        assert np.abs(_expand(_compress(x, law), law) - x).max() < 1e-12
        # through the channel at 16 kHz (no resampling): at most 255 levels, finer near zero
        out = telephone(_voiced(), (300.0, 3400.0), RATE, law)
        levels = np.unique(out)
        assert len(levels) <= 255
        steps = np.diff(levels)
        assert steps[len(steps) // 2] < steps[-1] / 10
    linear = telephone(_voiced(), (300.0, 3400.0), RATE, "none")
    assert 30 < _snr_db(linear, telephone(_voiced(), (300.0, 3400.0), RATE, "ulaw")) < 45


@pytest.mark.parametrize("name", ["mp3", "opus", "vorbis"])
def test_codecs_round_trip_with_loss(name):
    tone = _voiced()
    out = codec(tone, name, 0.7)
    assert out.shape == tone.shape and out.dtype == np.float32
    assert 5 < _snr_db(tone, out) < 60, _snr_db(tone, out)      # changed, but still the same sound


def test_unknown_codec_and_law_are_refused():
    with pytest.raises(ValueError, match="codec 'aac': expected one of mp3, opus, vorbis"):
        codec(_voiced(0.1), "aac", 0.5)
    with pytest.raises(ValueError, match="telephone companding 'gsm'"):
        telephone(_voiced(0.1), (300.0, 3400.0), 8000, "gsm")


@pytest.mark.parametrize("condition", sorted(CONDITIONS))
def test_conditions_depend_on_the_seed_only(condition):
    tone = _voiced(1.0)
    first = augment_wave(tone, CONDITIONS[condition], np.random.default_rng([0, 0, 0, 1]))
    again = augment_wave(tone, CONDITIONS[condition], np.random.default_rng([0, 0, 0, 1]))
    other = augment_wave(tone, CONDITIONS[condition], np.random.default_rng([1, 0, 0, 1]))
    assert np.array_equal(first, again)
    assert np.array_equal(first, tone) == (condition == "clean")
    if condition in ("noise", "reverb"):   # drawn: another seed, another noise or room
        assert not np.array_equal(first, other)
