"""The embedded default corpus: Vietnamese sentences spoken by espeak-ng in the three dialects.

Speakers are espeak-ng's dialect voices combined with voice variants; each speaker keeps a base
speaking rate and pitch, jittered per utterance. Rendering is deterministic for a seed, runs one
espeak-ng process per core, and skips utterances already rendered (file names carry a hash of
everything that shapes the audio). The result is a folder with ``wavs/`` and ``manifest.csv``,
imported into the database with a speaker-disjoint split.
"""
from __future__ import annotations

import csv
import hashlib
import os
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from sqlalchemy import Engine
from tqdm import tqdm

from vasr.data.audio import TARGET_RATE, resample
from vasr.data.importers import ImportOptions, ImportReport, ingest
from vasr.data.manifests import Entry
from vasr.data.textsource import catalogue_sentences, file_sentences

ESPEAK = "espeak-ng"
DIALECT_OF_VOICE = {"vi": "north", "vi-vn-x-central": "central", "vi-vn-x-south": "south"}
INSTALL_HINT = "install it with: sudo apt-get install espeak-ng   (Debian/Ubuntu)"


@dataclass(frozen=True)
class SynthConfig:
    n: int = 3000                                   # utterances to render (sentences repeat if fewer)
    seed: int = 0
    out_dir: str = "data/synth"
    text: str | None = None                         # UTF-8 text file; None: the system's vi message catalogues
    voices: tuple[str, ...] = tuple(DIALECT_OF_VOICE)
    # espeak-ng variants that sound like people (the robotic/whisper ones are left out)
    variants: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                                 "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "aunty", "belinda",
                                 "benjamin", "david", "ed", "Jacky", "linda", "max", "Michael", "Nguyen",
                                 "steph", "travis")
    rate_wpm: tuple[int, int] = (135, 185)          # range of a speaker's base rate (espeak -s, words/min)
    pitch: tuple[int, int] = (25, 75)               # range of a speaker's base pitch (espeak -p, 0..99)
    jitter_rate_wpm: int = 10                       # per-utterance change around the base rate
    jitter_pitch: int = 6                           # per-utterance change around the base pitch
    workers: int = 0                                # espeak-ng processes; 0 = one per core
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_version: str = "default"


@dataclass(frozen=True)
class Job:
    """One utterance to render."""
    utt_id: str
    text: str
    speaker: str        # "voice+variant"
    rate_wpm: int
    pitch: int
    path: Path


def check_espeak() -> str:
    """Path of espeak-ng, or a RuntimeError that says how to install it."""
    path = shutil.which(ESPEAK)
    if path is None:
        raise RuntimeError(f"{ESPEAK} is not installed; it renders the synthetic corpus. {INSTALL_HINT}")
    return path


def plan(config: SynthConfig, sentences: list[str]) -> list[Job]:
    """The deterministic list of utterances for ``config`` (no audio is made)."""
    if not sentences:
        raise ValueError("no sentences to speak")
    if config.n <= 0:
        raise ValueError(f"synth n must be positive, got {config.n}")
    rng = random.Random(config.seed)
    speakers = [f"{voice}+{variant}" for voice in config.voices for variant in config.variants]
    base = {s: (rng.randint(*config.rate_wpm), rng.randint(*config.pitch)) for s in speakers}
    order = list(range(len(sentences)))
    rng.shuffle(order)
    wav_dir = Path(config.out_dir) / "wavs"
    jobs = []
    for i in range(config.n):
        text = sentences[order[i % len(order)]]
        speaker = speakers[rng.randrange(len(speakers))]
        rate = base[speaker][0] + rng.randint(-config.jitter_rate_wpm, config.jitter_rate_wpm)
        pitch = min(99, max(0, base[speaker][1] + rng.randint(-config.jitter_pitch, config.jitter_pitch)))
        digest = hashlib.sha1(f"{text}|{speaker}|{rate}|{pitch}|{TARGET_RATE}".encode()).hexdigest()[:10]
        utt_id = f"{i:06d}-{digest}"
        jobs.append(Job(utt_id, text, speaker, rate, pitch, wav_dir / speaker.replace("+", "_") / f"{utt_id}.wav"))
    return jobs


def render(job: Job, espeak: str) -> None:
    """Speak ``job.text`` to ``job.path`` as 16 kHz mono 16-bit WAV (written atomically)."""
    if job.path.is_file() and job.path.stat().st_size > 0:
        return
    job.path.parent.mkdir(parents=True, exist_ok=True)
    raw = job.path.with_suffix(".espeak.wav")
    result = subprocess.run([espeak, "--stdin", "-v", job.speaker, "-s", str(job.rate_wpm), "-p", str(job.pitch),
                             "-w", str(raw)], input=job.text.encode("utf-8"), capture_output=True)
    if result.returncode != 0 or not raw.is_file():
        raise RuntimeError(f"{ESPEAK} failed on {job.utt_id} ({job.speaker}): "
                           f"{result.stderr.decode(errors='replace').strip()}")
    samples, rate = sf.read(str(raw), dtype="float32")
    raw.unlink()
    tmp = job.path.with_suffix(".part.wav")
    sf.write(str(tmp), resample(samples, rate), TARGET_RATE, subtype="PCM_16")
    os.replace(tmp, job.path)


def synthesize(config: SynthConfig, engine: Engine | None = None,
               progress: bool = True) -> tuple[list[Job], ImportReport | None]:
    """Render the corpus of ``config``, write ``manifest.csv``, and import it when ``engine`` is given."""
    espeak = check_espeak()
    sentences = file_sentences(Path(config.text)) if config.text else catalogue_sentences()
    jobs = plan(config, sentences)
    workers = config.workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(tqdm(pool.map(lambda job: render(job, espeak), jobs), total=len(jobs), desc="espeak-ng",
                  unit="utt", disable=None if progress else True))
    out = Path(config.out_dir)
    manifest = out / "manifest.csv"
    tmp = manifest.with_suffix(".csv.part")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file_path", "transcript", "split", "speaker_id", "dialect"])
        for job in jobs:
            writer.writerow([job.path.relative_to(out).as_posix(), job.text, "", job.speaker,
                             DIALECT_OF_VOICE.get(job.speaker.split("+")[0], "")])
    os.replace(tmp, manifest)
    if engine is None:
        return jobs, None
    entries = [Entry(f"{manifest.name}:{i + 2}", job.path, job.text, None, job.speaker, job.utt_id,
                     dialect=DIALECT_OF_VOICE.get(job.speaker.split("+")[0]))
               for i, job in enumerate(jobs)]
    options = ImportOptions(auto_split=True, split_version=config.split_version, split_ratios=config.split_ratios,
                            seed=config.seed, annotation_type="synthetic")
    return jobs, ingest(engine, "synth", str(out.resolve()), entries, [], options, progress=progress)
