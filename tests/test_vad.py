"""Voice activity detection (``vasr.runtime.vad``) on real espeak-ng speech: streaming probabilities
that do not depend on block sizes, speech segments found between noise, a tone and silence, no speech
in noise, tones, music or silence, bad input, the recognizer's long-audio chunks, and a transcript
with no word inside the non-speech of a file."""
from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vasr.runtime.vad import ChunkOptions, SpeechDetector, VadOptions, chunks, speech_segments

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

SR = 16000
SENTENCES = (("hôm nay trời rất đẹp", "vi"), ("tôi muốn đặt một bàn cho bốn người", "vi-vn-x-south"),
             ("xin vui lòng giữ máy", "vi+f3"))
TOLERANCE_S = 0.2           # how far a found start may be from the true one (pad 0.1 s + VAD lag)
END_TOLERANCE_S = 0.25      # an end: pad 0.1 s + Silero's hangover (0.05 s in silence, ~0.15 s into a tone)


@functools.lru_cache(maxsize=1)
def sentences() -> tuple[np.ndarray, ...]:
    """The three sentences rendered by espeak-ng, 16 kHz float32, cut to their first and last sample
    above -60 dBFS (espeak pads its output with silence)."""
    from vasr.runtime.audio import load

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (text, voice) in enumerate(SENTENCES):
            path = Path(tmp) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
            wave = load(path)
            loud = np.flatnonzero(np.abs(wave) > 1e-3)
            out.append(wave[loud[0]: loud[-1] + 1])
    return tuple(out)


def noise(seconds: float, dbfs: float = -30.0, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(int(seconds * SR))
    return (x * 10 ** (dbfs / 20)).astype(np.float32)


def tone(seconds: float, hz: float = 440.0, dbfs: float = -15.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (np.sqrt(2) * 10 ** (dbfs / 20) * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def music(seconds: float) -> np.ndarray:
    """Hold music: a chord of harmonic notes each half second, decaying, with a noise tick."""
    t = np.arange(SR // 2) / SR
    out = []
    for k in range(int(seconds * 2)):
        root = (220.0, 196.0, 174.6, 164.8)[k // 2 % 4]
        note = sum(np.sin(2 * np.pi * root * r * h * t) / h for r in (1, 1.26, 1.5) for h in range(1, 6))
        tick = np.zeros(t.size)
        tick[:400] = np.random.default_rng(k).standard_normal(400) * np.exp(-t[:400] * 200)
        out.append(0.05 * note * np.exp(-3 * t) + 0.1 * tick)
    return np.concatenate(out).astype(np.float32)


def layout(*parts: tuple[bool, np.ndarray]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The parts end to end; (samples, [start, end) seconds of the speech parts)."""
    truth, at = [], 0
    for is_speech, part in parts:
        if is_speech:
            truth.append((at / SR, (at + part.size) / SR))
        at += part.size
    return np.concatenate([p for _, p in parts]), truth


def test_probabilities_do_not_depend_on_block_sizes():
    samples = np.concatenate([sentences()[0], noise(0.5)])
    whole = SpeechDetector().accept(samples)
    assert whole.dtype == np.float32 and whole.size == samples.size // 512
    detector = SpeechDetector()
    assert detector.frame_s == pytest.approx(0.032)
    for size in (1, 160, 16000):
        detector.reset()
        got = [detector.accept(samples[i: i + size]) for i in range(0, samples.size, size)]
        assert np.array_equal(np.concatenate(got), whole), size
    assert detector.accept(np.zeros(0, np.float32)).size == 0
    speech_frames = int(sentences()[0].size / 512)
    assert np.median(whole[:speech_frames]) > 0.9 and whole[speech_frames + 8:].max() < 0.2


def test_three_sentences_between_noise_a_tone_and_silence_are_three_segments():
    s1, s2, s3 = sentences()
    samples, truth = layout((False, np.zeros(SR, np.float32)), (True, s1), (False, noise(1.0)), (True, s2),
                            (False, tone(1.0)), (True, s3), (False, np.zeros(SR, np.float32)))
    found = [(a / SR, b / SR) for a, b in speech_segments(samples)]
    assert len(found) == 3, found
    for (a, b), (ta, tb) in zip(found, truth):
        assert abs(a - ta) < TOLERANCE_S and abs(b - tb) < END_TOLERANCE_S, (found, truth)
    # blocks of a stream give the same segments
    blocks = (samples[i: i + 1000] for i in range(0, samples.size, 1000))
    assert [(o, o + c.size) for o, c in chunks(blocks, ChunkOptions(vad=VadOptions()))] == speech_segments(samples)


@pytest.mark.parametrize("name, samples", [
    ("white noise -20 dBFS", noise(10.0, -20.0)), ("white noise -45 dBFS", noise(10.0, -45.0, seed=1)),
    ("tone 1 kHz", tone(10.0, 1000.0, -6.0)), ("DTMF", tone(10.0, 770.0) + tone(10.0, 1336.0)),
    ("music", music(10.0)), ("silence", np.zeros(10 * SR, np.float32)),
])
def test_noise_tones_music_and_silence_hold_no_speech(name, samples):
    assert speech_segments(samples) == [], name


def test_bad_input_is_refused():
    detector = SpeechDetector()
    with pytest.raises(ValueError, match="NaN"):
        detector.accept(np.array([0.0, np.nan, 0.1], np.float32))
    with pytest.raises(ValueError, match="NaN"):
        speech_segments(np.full(16000, np.nan, np.float32))
    with pytest.raises(ValueError, match=r"shape \(S,\)"):
        detector.accept(np.zeros((1600, 2), np.float32))
    with pytest.raises(ValueError, match="float"):
        speech_segments(np.zeros(1600, np.int16))
    for bad in (dict(threshold=0.3, neg_threshold=0.5), dict(min_silence_s=-1.0), dict(pad_s=-0.1)):
        with pytest.raises(ValueError):
            VadOptions(**bad)
    with pytest.raises(ValueError, match="not a Silero VAD model"):
        SpeechDetector(VadOptions(model="/nonexistent/vad.onnx"))


def test_long_speech_is_cut_under_max_chunk_and_noise_is_left_out():
    """Sentences 0.1 s apart for 17 s (one speech region), a pause, 3 s of noise, one sentence: the
    region comes out in pieces of at most 10 s that tile it, the noise not at all; block sizes do not
    matter."""
    s1, s2, s3 = sentences()
    gap = np.zeros(int(0.1 * SR), np.float32)
    run = np.concatenate([np.concatenate([s, gap]) for s in (s1, s2, s3) * 4])
    samples, truth = layout((True, run), (False, np.zeros(SR // 2, np.float32)), (False, noise(3.0)), (True, s1))
    options = ChunkOptions(max_chunk_s=10.0, min_chunk_s=4.0, vad=VadOptions())
    pieces = list(chunks(iter([samples]), options))
    streamed = list(chunks((samples[i: i + 8000] for i in range(0, samples.size, 8000)), options))
    assert [(o, c.size) for o, c in pieces] == [(o, c.size) for o, c in streamed]
    for offset, chunk in pieces:
        assert chunk.size <= 10 * SR and np.array_equal(chunk, samples[offset: offset + chunk.size])
    first = [(o, o + c.size) for o, c in pieces if o / SR < truth[0][1]]
    assert len(first) >= 3 and all(a[1] == b[0] for a, b in zip(first, first[1:]))
    assert abs(first[0][0] / SR - truth[0][0]) < TOLERANCE_S and abs(first[-1][1] / SR - truth[0][1]) < END_TOLERANCE_S
    last = [(o, o + c.size) for o, c in pieces if o / SR >= truth[0][1]]
    assert len(last) == 1 and abs(last[0][0] / SR - truth[1][0]) < TOLERANCE_S


def test_without_the_vad_every_sample_is_decoded_in_pieces_cut_at_pauses():
    """speech_only=False: a 5 s clip is one piece whatever its noise; 23 s (sentences, noise, silence)
    become pieces of at most 10 s that tile the whole stream, cut where it is quiet; block sizes do
    not matter."""
    s1, s2, s3 = sentences()
    options = ChunkOptions(max_chunk_s=10.0, min_chunk_s=4.0, speech_only=False)
    short = np.concatenate([noise(2.0), s1, np.zeros(SR, np.float32)])[: 5 * SR]
    assert [(o, c.size) for o, c in chunks(iter([short[:SR], short[SR:]]), options)] == [(0, short.size)]
    gap = np.zeros(int(0.5 * SR), np.float32)
    samples = np.concatenate([s1, gap, s2, gap, noise(3.0), s3, gap, s1, gap, s2, gap, s3, gap, s1])
    pieces = list(chunks(iter([samples]), options))
    streamed = list(chunks((samples[i: i + 7000] for i in range(0, samples.size, 7000)), options))
    assert [(o, c.size) for o, c in pieces] == [(o, c.size) for o, c in streamed]
    assert pieces[0][0] == 0 and sum(c.size for _, c in pieces) == samples.size
    for (offset, chunk), (following, _) in zip(pieces, pieces[1:] + [(samples.size, None)]):
        assert offset + chunk.size == following and chunk.size <= 10 * SR
        assert np.array_equal(chunk, samples[offset: following])
    for offset, _ in pieces[1:]:                   # each cut falls in a quiet stretch
        assert np.abs(samples[offset - 800: offset + 800]).max() < 0.01, offset / SR
    assert len(pieces) >= samples.size // (10 * SR) + 1


def test_a_transcript_has_no_words_in_noise_tones_or_silence(tmp_path):
    """Speech, 10 s of noise, DTMF and a tone, speech, silence: every word lies in a speech part.
    (The fixture model garbles speech that does not start as its training clips do, so only the
    first utterance's text is compared.)"""
    pytest.importorskip("torch")
    from test_export import exported  # the session's trained, exported fixture

    from vasr.runtime.audio import load
    from vasr.runtime.recognizer import Recognizer, RecognizerOptions

    fixture = exported()
    first, second = load(fixture["root"] / "s140_0.wav"), load(fixture["root"] / "s140_3.wav")
    samples, truth = layout((True, first), (False, noise(10.0, -35.0)), (False, tone(1.0, 697.0) + tone(1.0, 1209.0)),
                            (False, tone(1.0, 2000.0)), (True, second), (False, np.zeros(SR, np.float32)))
    path = tmp_path / "call.flac"
    sf.write(str(path), samples, SR)
    transcript = Recognizer(fixture["model_dir"]).transcribe(path)
    assert transcript.duration_s == pytest.approx(samples.size / SR)
    assert [s.start for s in transcript.segments] == pytest.approx([a for a, _ in truth], abs=TOLERANCE_S)
    assert transcript.segments[0].text == "xin chào" and transcript.words
    for word in transcript.words:
        assert any(a - TOLERANCE_S <= word.start and word.end <= b + END_TOLERANCE_S for a, b in truth), (word, truth)
    # without the VAD the whole file (under max_chunk_s) is one segment, noise and tones included
    whole = Recognizer(fixture["model_dir"], RecognizerOptions(chunk=ChunkOptions(speech_only=False))).transcribe(path)
    assert [(s.start, s.end) for s in whole.segments] == [(0.0, pytest.approx(samples.size / SR, abs=0.01))]
