"""80-bin log-mel fbank of one clip: vasr backends against kaldi-native-fbank, librosa and torch.

Every implementation runs on one thread (conftest pins BLAS/OpenMP pools; torch is set to one
thread here). kaldi-native-fbank is timed end to end as a caller uses it (options, accept_waveform,
input_finished, reading the frames out), and its features are checked against vasr's. librosa
(melspectrogram, power 2, n_fft 512, hop 160, win 400, 80 mels, then log) and torch (torch.stft,
power, a precomputed mel matmul, log) are the "generic STFT" peers: same sizes, not Kaldi's
framing, so only their frame counts are checked. The numba backend is timed after one warm-up call
(its first call in a process compiles the loops, or loads them from the on-disk cache).
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import QUICK, label
from knf_peer import knf_fbank

from vasr.kernels import dispatch
from vasr.kernels import fbank_py as reference

SR = 16_000
CLIP_SECONDS = (10,) if QUICK else (10, 60)
N_FFT, HOP, WIN, BINS = 512, 160, 400, 80


def _clip(seconds: int) -> np.ndarray:
    """Noise shaped like speech level (timing does not depend on the content)."""
    rng = np.random.default_rng(seconds)
    return (0.1 * rng.standard_normal(seconds * SR)).astype(np.float32)


def _labelled(benchmark, seconds: int, impl: str):
    label(benchmark, group=f"fbank {seconds} s clip", impl=impl, unit="ms/s", per=seconds)
    return benchmark


@pytest.mark.parametrize("seconds", CLIP_SECONDS)
@pytest.mark.parametrize("backend", dispatch.available("fbank"))
def test_vasr(benchmark, backend, seconds):
    wave = _clip(seconds)
    fbank = dispatch.load("fbank", backend)
    fbank.compute_fbank(wave[:SR])  # numba compiles (or loads its cache) on the first call: not timed here
    feats = _labelled(benchmark, seconds, f"vasr:{backend}")(fbank.compute_fbank, wave)
    assert feats.shape == (seconds * 100, BINS)


@pytest.mark.parametrize("seconds", CLIP_SECONDS)
def test_kaldi_native_fbank(benchmark, seconds):
    pytest.importorskip("kaldi_native_fbank")
    wave = _clip(seconds)

    def run() -> np.ndarray:
        return knf_fbank(wave)

    feats = _labelled(benchmark, seconds, "peer:kaldi-native-fbank")(run)
    assert np.abs(feats - dispatch.load("fbank").compute_fbank(wave)).max() <= 1e-3


@pytest.mark.parametrize("seconds", CLIP_SECONDS)
def test_librosa(benchmark, seconds):
    librosa = pytest.importorskip("librosa")
    wave = _clip(seconds)

    def run() -> np.ndarray:
        mel = librosa.feature.melspectrogram(y=wave, sr=SR, n_fft=N_FFT, hop_length=HOP, win_length=WIN,
                                             n_mels=BINS, power=2.0)
        return np.log(np.maximum(mel, reference.FLT_EPSILON))

    feats = _labelled(benchmark, seconds, "peer:librosa")(run)
    assert feats.shape == (BINS, seconds * 100 + 1)


@pytest.mark.parametrize("seconds", CLIP_SECONDS)
def test_torch(benchmark, seconds):
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        wave = torch.from_numpy(_clip(seconds))
        window = torch.from_numpy(reference.window_function(reference.FbankOptions()).astype(np.float32))
        banks = torch.from_numpy(reference.mel_banks(reference.FbankOptions()).astype(np.float32))

        def run():
            spec = torch.stft(wave, N_FFT, hop_length=HOP, win_length=WIN, window=window, return_complex=True)
            power = spec.real.square() + spec.imag.square()
            return torch.log(torch.clamp(power.T @ banks, min=reference.FLT_EPSILON))

        feats = _labelled(benchmark, seconds, "peer:torch")(run)
    finally:
        torch.set_num_threads(threads)
    assert tuple(feats.shape) == (seconds * 100 + 1, BINS)
