"""Long-audio segmentation: a 10-minute recording rendered from 100 held-out sentences is cut back into
utterances (``vasr segment``), timed in ms per second of audio, with its accuracy printed and kept in the
report: the share of sentences whose start and end both fall within 0.2 s of the true ones (the first
and last loud frame of each rendered sentence), and the share whose transcript comes back exact.

The sentences are LibreOffice's Vietnamese help (text no vasr model trains on), spoken by espeak-ng
voice variants the default corpus does not use, with pauses of 0.7-1.7 s and a -65 dBFS noise floor.
The model is an exported model directory: ``$VASR_BENCH_SEGMENT_MODEL`` (for instance the one
``vasr demo`` writes); without it the benchmark is skipped.
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import label

MODEL = os.environ.get("VASR_BENCH_SEGMENT_MODEL")
SENTENCES = 100
VARIANTS = ("Robert", "klatt", "Lee", "Gene")   # not among vasr.data.synth's variants
VOICES = ("vi", "vi-vn-x-south", "vi-vn-x-central")
TOLERANCE_S = 0.2


def held_out_sentences(n: int, seed: int = 0) -> list[str]:
    from vasr.data.textsource import split_sentences
    from vasr.punct.corpus import HELP_DIR, _help_paragraphs
    from vasr.text.normalize import is_syllable, normalize

    seen, found = set(), []
    for paragraph in _help_paragraphs(HELP_DIR):
        for sentence in split_sentences(" ".join(paragraph.split())):
            words = normalize(sentence).split()
            if 12 <= len(words) <= 28 and all(is_syllable(w) for w in words) and " ".join(words) not in seen:
                seen.add(" ".join(words))
                found.append(" ".join(words))
    random.Random(seed).shuffle(found)
    return found[:n]


def render_recording(out: Path, sentences: list[str], seed: int = 0) -> list[tuple[float, float]]:
    """Write the long recording to ``out``; returns each sentence's true (start, end) in seconds."""
    from vasr.runtime.audio import TARGET_RATE, resample
    from vasr.segment import frame_energy_db

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    pieces, spans, at = [], [], 0
    for i, text in enumerate(sentences):
        voice = f"{VOICES[i % len(VOICES)]}+{VARIANTS[i % len(VARIANTS)]}"
        raw = out.with_suffix(f".{i}.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rng.randint(140, 175)), "-w", str(raw), text], check=True)
        samples, rate = sf.read(str(raw), dtype="float32")
        raw.unlink()
        clip = resample(samples, rate)
        loud = np.flatnonzero(frame_energy_db(clip) > -50)
        pause = int(rng.uniform(0.7, 1.7) * TARGET_RATE)
        pieces += [np.zeros(pause, np.float32), clip]
        at += pause
        spans.append((at / TARGET_RATE + loud[0] / 100, at / TARGET_RATE + (loud[-1] + 1) / 100))
        at += len(clip)
    pieces.append(np.zeros(TARGET_RATE // 2, np.float32))
    wave = np.concatenate(pieces)
    wave += noise.normal(0, 10 ** (-65 / 20), wave.shape).astype(np.float32)
    sf.write(str(out), wave, TARGET_RATE, subtype="PCM_16")
    return spans


@pytest.mark.skipif(MODEL is None, reason="set VASR_BENCH_SEGMENT_MODEL to an exported model directory")
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng renders the recording")
def test_segment_10_minutes(benchmark, tmp_path):
    from vasr.runtime.audio import load
    from vasr.runtime.recognizer import Recognizer, RecognizerOptions
    from vasr.segment import SegmentConfig, segment_recording
    from vasr.text.normalize import normalize

    sentences = held_out_sentences(SENTENCES)
    recording = tmp_path / "long.wav"
    truth = render_recording(recording, sentences)
    transcript = ". ".join(sentences) + "."
    wave = load(recording)
    recognizer = Recognizer(MODEL, RecognizerOptions(threads=1, raw=True))
    cuts = benchmark.pedantic(segment_recording, args=(recognizer, wave, transcript, SegmentConfig()),
                              rounds=1, iterations=1)
    label(benchmark, group="segment 10 min recording", impl="vasr:segment", unit="ms/s", per=len(wave) / 16000)
    texts_exact = sum(normalize(c.text) == s for c, s in zip(cuts, sentences)) if len(cuts) == len(sentences) else 0
    within = [abs(c.start_s - a) <= TOLERANCE_S and abs(c.end_s - b) <= TOLERANCE_S
              for c, (a, b) in zip(cuts, truth)] if len(cuts) == len(sentences) else [False]
    errors = np.array([[c.start_s - a, c.end_s - b] for c, (a, b) in zip(cuts, truth)])
    benchmark.extra_info.update(segments=len(cuts), sentences=len(sentences), within_0_2s=float(np.mean(within)),
                                texts_exact=texts_exact / len(sentences), audio_min=len(wave) / 16000 / 60,
                                start_err_p95=float(np.percentile(np.abs(errors[:, 0]), 95)),
                                end_err_p95=float(np.percentile(np.abs(errors[:, 1]), 95)))
    print(f"\nsegment: {len(cuts)} segments for {len(sentences)} sentences, {len(wave) / 16000 / 60:.1f} min; "
          f"both edges within {TOLERANCE_S} s: {np.mean(within):.1%}; transcripts exact {texts_exact}/{len(sentences)}; "
          f"|start error| p50 {np.median(np.abs(errors[:, 0])):.3f} p95 {np.percentile(np.abs(errors[:, 0]), 95):.3f} s, "
          f"|end error| p50 {np.median(np.abs(errors[:, 1])):.3f} p95 {np.percentile(np.abs(errors[:, 1]), 95):.3f} s")
