"""Tests of the fbank kernel, every test body against every available backend.

Oracles: kaldi-native-fbank with every option set explicitly (the definition vasr promises), and
the float64 numpy reference ``fbank_py`` for the compiled backends.
"""
from __future__ import annotations

import importlib.util
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vasr.kernels import dispatch
from vasr.kernels import fbank_py as reference

FLOOR = float(np.log(np.float32(reference.FLT_EPSILON)))  # log-mel of a silent frame
KNF_TOL = 1e-3  # vs kaldi-native-fbank, which computes in float32 (DESIGN.md section 2)
# Every backend computes in float64 and rounds to float32 once, at the end: the compiled kernels
# (same arithmetic in the same order) agree exactly; the reference (numpy's FFT and mean, BLAS's mel
# sums) may round differently by one float32 ulp, in rare entries (measured: none on speech, noise
# and a tone over quiet noise; float32 buffers and FFT were up to 2.7e-4 / 1e-3 off)
REF_MAX_ULP = 1  # compiled vs reference, anywhere down to the floor
REF_SAME = 0.999  # fraction of entries that are bit-identical to the reference
SR = 16000

# kaldi-native-fbank configured like vasr, shared with the benchmark (loaded by path)
_spec = importlib.util.spec_from_file_location("knf_peer", Path(__file__).parents[1] / "benchmarks" / "knf_peer.py")
_knf_peer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_knf_peer)


@pytest.fixture(scope="module", params=dispatch.available("fbank"))
def fb(request):
    return dispatch.load("fbank", request.param)


def noise(num_samples: int, seed: int = 0, scale: float = 0.1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(num_samples) * scale).astype(np.float32)


def knf_fbank(wave: np.ndarray, sample_rate: int = SR, window: str = "povey") -> np.ndarray:
    pytest.importorskip("kaldi_native_fbank")
    return _knf_peer.knf_fbank(wave, reference.FbankOptions(sample_rate=sample_rate, window=window))


def assert_close_to_knf(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape
    # both floor silent frames at log(FLT_EPSILON); elsewhere they must agree to KNF_TOL
    audible = theirs > FLOOR + 1.0
    assert audible.mean() > 0.5
    assert np.abs(ours - theirs)[audible].max() <= KNF_TOL
    assert np.all(ours[~audible] <= FLOOR + 1.0 + KNF_TOL)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    """Vietnamese speech from espeak-ng, resampled 22050 -> 16000 Hz (float32, ~4 s)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: no real speech to compare on")
    sf = pytest.importorskip("soundfile")
    soxr = pytest.importorskip("soxr")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "vi", "-w", str(path),
                    "xin chào các bạn, hôm nay trời đẹp quá, chúng ta đi chơi nhé"], check=True)
    wave, rate = sf.read(path, dtype="float32")
    return soxr.resample(wave, rate, SR).astype(np.float32)


@pytest.mark.parametrize("num_samples, expected", [(0, 0), (1, 0), (79, 0), (80, 1), (159, 1), (160, 1),
                                                   (239, 1), (240, 2), (400, 3), (401, 3), (48000, 300),
                                                   (160_000, 1000)])
def test_frame_counts(fb, num_samples, expected):
    assert fb.num_frames(num_samples) == expected
    feats = fb.compute_fbank(noise(num_samples))
    assert feats.shape == (expected, 80) and feats.dtype == np.float32
    if num_samples:
        assert knf_fbank(noise(num_samples)).shape[0] == expected


def test_snip_edges_frame_count(fb):
    opts = fb.FbankOptions(snip_edges=True)
    assert [fb.num_frames(n, opts) for n in (0, 399, 400, 559, 560)] == [0, 0, 1, 1, 2]
    assert fb.compute_fbank(noise(560), opts).shape == (2, 80)


@pytest.mark.parametrize("num_samples", [80, 159, 160, 400, 401, 12_345, 48_000])
def test_matches_knf_on_noise(fb, num_samples):
    wave = noise(num_samples, seed=num_samples)
    assert_close_to_knf(fb.compute_fbank(wave), knf_fbank(wave))


@pytest.mark.espeak
def test_matches_knf_on_speech(fb, speech):
    ours = fb.compute_fbank(speech)
    assert ours.shape[0] == (len(speech) + 80) // 160
    assert_close_to_knf(ours, knf_fbank(speech))


@pytest.mark.parametrize("sample_rate, window", [(8000, "hamming"), (16000, "hanning"), (16000, "rectangular"),
                                                 (22050, "sine")])
def test_other_rates_and_windows_match_knf(fb, sample_rate, window):
    wave = noise(sample_rate, seed=3)
    opts = fb.FbankOptions(sample_rate=sample_rate, window=window)
    assert_close_to_knf(fb.compute_fbank(wave, opts), knf_fbank(wave, sample_rate, window))


def agreement_waves(speech):
    """Speech, noise, and a loud tone over quiet noise (bins 20+ nats below their frame's peak,
    where a float32 FFT is off by up to 1e-3)."""
    t = np.arange(3 * SR)
    tone = 0.5 * np.sin(0.3 * t) + 1e-3 * np.random.default_rng(6).standard_normal(t.size)
    return [speech, noise(31_337, seed=5), tone.astype(np.float32), (noise(9_999, seed=8) * 32768).astype(np.int16)]


def test_compiled_matches_reference(fb, speech):
    if fb is reference:
        pytest.skip("the reference is the oracle here")
    for wave in agreement_waves(speech):
        ours, ref = fb.compute_fbank(wave), reference.compute_fbank(wave)
        np.testing.assert_array_max_ulp(ours, ref, maxulp=REF_MAX_ULP)
        assert (ours == ref).mean() >= REF_SAME


def test_compiled_backends_agree_exactly(speech):
    compiled = [b for b in dispatch.available("fbank") if b != "python"]
    if len(compiled) < 2:
        pytest.skip(f"one compiled fbank backend here ({compiled}): nothing to compare")
    opts = reference.FbankOptions(dither=1e-4, window="hamming", snip_edges=True)
    for wave in agreement_waves(speech):
        for o in (reference.FbankOptions(), opts):
            feats = [dispatch.load("fbank", b).compute_fbank(wave, o, np.random.default_rng(0)) for b in compiled]
            for other in feats[1:]:
                np.testing.assert_array_equal(other, feats[0])


def test_numba_compiles_nothing_at_import():
    pytest.importorskip("numba")
    # a fresh interpreter: this one may have called the kernels already
    code = ("import numba, vasr.kernels.fbank_nb as m; "
            "jitted = [v for v in vars(m).values() if isinstance(v, numba.core.dispatcher.Dispatcher)]; "
            "assert len(jitted) == 2, jitted; "
            "assert all(f.signatures == [] for f in jitted), [f.signatures for f in jitted]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_silence_is_the_floor(fb):
    feats = fb.compute_fbank(np.zeros(1600, dtype=np.float32))
    np.testing.assert_array_equal(feats, np.full((10, 80), FLOOR, dtype=np.float32))
    # a constant (pure DC) signal is silence too once the DC offset is removed
    assert np.abs(fb.compute_fbank(np.full(1600, 0.5, dtype=np.float32)) - FLOOR).max() < 1.0


def test_tone_peaks_in_its_mel_bin(fb):
    t = np.arange(SR) / SR
    feats = fb.compute_fbank((0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32))
    # HTK mel, 80 filters from 20 to 7600 Hz: filter 27 is centred at 976.3 Hz, 28 at 1027.7 Hz
    assert np.all(feats[2:-2].argmax(axis=1) == 27)
    assert np.all(feats[2:-2, 27] > feats[2:-2, 28])


def test_input_dtypes(fb):
    pcm = (noise(4000, seed=7) * 32768).astype(np.int16)
    as_float = pcm.astype(np.float32) / 32768
    np.testing.assert_array_equal(fb.compute_fbank(pcm), fb.compute_fbank(as_float))
    np.testing.assert_array_equal(fb.compute_fbank(as_float.astype(np.float64)), fb.compute_fbank(as_float))


def test_batch_equals_one_by_one(fb):
    waves = [noise(n, seed=n) for n in (16_000, 0, 1, 401, 2_345, 160_000, 7_777)]
    batch = fb.compute_fbank_batch(waves)
    assert len(batch) == len(waves)
    for wave, feats in zip(waves, batch):
        np.testing.assert_array_equal(feats, fb.compute_fbank(wave))
    assert fb.compute_fbank_batch([]) == []


def stream_features(fb, wave, cuts, opts=None, rng=None):
    stream = fb.FbankStream(fb.FbankOptions() if opts is None else opts, rng=rng)
    parts = [stream.accept(wave[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    parts.append(stream.finish())
    assert stream.num_frames_ready == fb.num_frames(len(wave), stream.opts)
    for part in parts:
        assert part.dtype == np.float32 and part.shape[1] == 80
    return np.concatenate(parts)


@pytest.mark.parametrize("num_samples", [0, 1, 100, 159, 399, 400, 1000, 9_999])
def test_stream_one_sample_at_a_time(fb, num_samples):
    wave = noise(num_samples, seed=11)
    cuts = list(range(num_samples + 1)) + [num_samples]  # 1-sample chunks, then an empty one
    np.testing.assert_array_equal(stream_features(fb, wave, cuts), fb.compute_fbank(wave))


@settings(max_examples=40, deadline=None)
@given(num_samples=st.integers(0, 6_000), seed=st.integers(0, 2**16),
       snip_edges=st.booleans(), data=st.data())
def test_stream_any_chunking_equals_whole(fb, num_samples, seed, snip_edges, data):
    wave = noise(num_samples, seed=seed)
    inner = data.draw(st.lists(st.integers(0, num_samples), max_size=12))
    cuts = [0, *sorted(inner), num_samples]
    opts = fb.FbankOptions(snip_edges=snip_edges)
    np.testing.assert_array_equal(stream_features(fb, wave, cuts, opts), fb.compute_fbank(wave, opts))


def test_stream_emits_frames_as_soon_as_complete(fb):
    stream = fb.FbankStream()
    assert stream.accept(noise(279)).shape == (0, 80)
    assert stream.accept(noise(1)).shape == (1, 80)  # frame 0 covers samples -120 .. 279
    assert stream.accept(noise(160)).shape == (1, 80)  # frame 1 ends at sample 439
    assert stream.finish().shape == (1, 80)  # 440 samples -> 3 frames, the last one reflected
    with pytest.raises(RuntimeError):
        stream.accept(noise(10))
    with pytest.raises(RuntimeError):
        stream.finish()


def test_dither(fb):
    wave = noise(8000, seed=2)
    opts = fb.FbankOptions(dither=1e-3)
    np.testing.assert_array_equal(fb.compute_fbank(wave, rng=np.random.default_rng(1)), fb.compute_fbank(wave))
    first = fb.compute_fbank(wave, opts, np.random.default_rng(42))
    np.testing.assert_array_equal(first, fb.compute_fbank(wave, opts, np.random.default_rng(42)))
    assert not np.array_equal(first, fb.compute_fbank(wave, opts, np.random.default_rng(43)))
    assert 0 < np.abs(first - fb.compute_fbank(wave)).max() < 1.0
    # silence becomes dither noise, far above the floor in the upper (wider) filters
    dithered_silence = fb.compute_fbank(np.zeros(8000, np.float32), opts, np.random.default_rng(0))
    assert dithered_silence[:, 40:].min() > FLOOR + 5
    # the noise is drawn frame by frame: stream chunks and batches reproduce the whole-clip result
    cuts = [0, 1, 500, 501, 4000, 8000]
    np.testing.assert_array_equal(stream_features(fb, wave, cuts, opts, np.random.default_rng(42)), first)
    batch = fb.compute_fbank_batch([wave, wave], opts, np.random.default_rng(42))
    np.testing.assert_array_equal(batch[0], first)
    assert not np.array_equal(batch[1], first)


def test_options_round_trip(fb):
    opts = fb.FbankOptions(num_bins=40, dither=0.5, snip_edges=True, window="hamming", high_freq=7000.0)
    as_dict = opts.to_dict()
    assert as_dict["num_bins"] == 40 and as_dict["window"] == "hamming"
    assert fb.FbankOptions.from_dict(as_dict) == opts
    assert fb.FbankOptions.from_dict({}) == fb.FbankOptions()
    defaults = fb.FbankOptions()
    assert (defaults.window_length, defaults.window_shift, defaults.fft_size, defaults.mel_high_freq) == \
        (400, 160, 512, 7600.0)
    with pytest.raises(ValueError, match="unknown"):
        fb.FbankOptions.from_dict({"num_mel_bins": 80})
    assert fb.compute_fbank(noise(1600), fb.FbankOptions(num_bins=40)).shape == (10, 40)


@pytest.mark.parametrize("kwargs", [dict(sample_rate=0), dict(sample_rate=16000.0), dict(num_bins=0),
                                    dict(window="kaiser"), dict(high_freq=9000.0), dict(low_freq=-1.0),
                                    dict(low_freq=7700.0), dict(preemph=1.5), dict(dither=-1.0),
                                    dict(frame_length_ms=0.05), dict(sample_rate=8000, high_freq=-4000.0)])
def test_bad_options(fb, kwargs):
    with pytest.raises(ValueError):
        fb.FbankOptions(**kwargs)


def test_too_many_bins_for_the_fft(fb):
    with pytest.raises(ValueError, match="cover no FFT bin"):
        fb.compute_fbank(noise(1600), fb.FbankOptions(num_bins=200))


def test_bad_waveforms(fb):
    with pytest.raises(ValueError, match="1-D"):
        fb.compute_fbank(np.zeros((2, 1600), dtype=np.float32))
    with pytest.raises(ValueError, match="1-D"):
        fb.compute_fbank(np.float32(0.5))
    with pytest.raises(TypeError, match="dtype"):
        fb.compute_fbank(np.zeros(1600, dtype=np.int32))
    with pytest.raises(ValueError, match="1-D"):
        fb.FbankStream().accept(np.zeros((1, 10), dtype=np.float32))
    with pytest.raises(ValueError):
        fb.num_frames(-1)


def test_public_names(fb):
    assert list(fb.__all__) == reference.__all__
    for name in reference.__all__:
        ours, theirs = getattr(fb, name), getattr(reference, name)
        assert ours.__doc__ == theirs.__doc__
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(theirs).parameters)
