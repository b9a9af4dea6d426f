"""The embedded default corpus: Vietnamese sentences spoken by espeak-ng in the three dialects.

Speakers are espeak-ng's dialect voices combined with voice variants; each speaker keeps a base
speaking rate and pitch, jittered per utterance. Rendering is deterministic for a seed, runs one
espeak-ng process per core, and skips utterances already rendered (file names carry a hash of
everything that shapes the audio). The result is a folder with ``wavs/`` and ``manifest.csv``,
imported into the database with a speaker-disjoint split. The same speakers also render the
biasing test set (``synthesize_bias``: sentences with Vietnamese names and places, each with its
bias list).
"""
from __future__ import annotations

import csv
import dataclasses
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

from vasr.runtime.audio import TARGET_RATE, resample
from vasr.data.entities import PLACES, BiasItem, bias_items
from vasr.data.importers import ImportOptions, ImportReport, ingest
from vasr.data.manifests import Entry
from vasr.data.textsource import catalogue_sentences, file_sentences
from vasr.db import store

ESPEAK = "espeak-ng"
DIALECT_OF_VOICE = {"vi": "north", "vi-vn-x-central": "central", "vi-vn-x-south": "south"}
INSTALL_HINT = "install it with: sudo apt-get install espeak-ng   (Debian/Ubuntu)"
# the bias set's own defaults (see bias_config): a few hundred utterances, only val and test
BIAS_DEFAULTS = {"n": 300, "out_dir": "data/synth-bias", "split_version": "bias", "split_ratios": (0.0, 0.5, 0.5)}
PHRASE_SEPARATOR = " | "  # between phrases in the manifest's entities and bias_list columns


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
    bias: bool = False                              # the biasing test set (see synthesize_bias), not the corpus
    distractors: int = 20                           # bias set: phrases in each bias list beside its entities


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


def plan(config: SynthConfig, sentences: list[str], shuffle: bool = True) -> list[Job]:
    """The deterministic list of ``config.n`` utterances (no audio is made): each sentence spoken by a
    speaker drawn with ``config.seed``. ``shuffle``: sentences in a seeded order, repeating after all
    were used; False: ``sentences[i]`` is utterance i (the bias set, planned already)."""
    if not sentences:
        raise ValueError("no sentences to speak")
    if config.n <= 0:
        raise ValueError(f"synth n must be positive, got {config.n}")
    rng = random.Random(config.seed)
    speakers = [f"{voice}+{variant}" for voice in config.voices for variant in config.variants]
    base = {s: (rng.randint(*config.rate_wpm), rng.randint(*config.pitch)) for s in speakers}
    order = list(range(len(sentences)))
    if shuffle:
        rng.shuffle(order)
    elif len(sentences) < config.n:
        raise ValueError(f"{config.n} utterances planned from {len(sentences)} sentences in order")
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
    if config.bias:
        raise ValueError("a bias-set config goes to synthesize_bias")
    espeak = check_espeak()
    sentences = file_sentences(Path(config.text)) if config.text else catalogue_sentences()
    jobs = plan(config, sentences)
    _render_all(config, jobs, espeak, progress)
    manifest = _write_manifest(config, jobs, [""] * len(jobs))
    if engine is None:
        return jobs, None
    options = ImportOptions(auto_split=True, split_version=config.split_version, split_ratios=config.split_ratios,
                            seed=config.seed, annotation_type="synthetic")
    return jobs, ingest(engine, "synth", str(manifest.parent.resolve()), _entries(manifest, jobs, [None] * len(jobs)),
                        [], options, progress=progress)


def _render_all(config: SynthConfig, jobs: list[Job], espeak: str, progress: bool) -> None:
    workers = config.workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(tqdm(pool.map(lambda job: render(job, espeak), jobs), total=len(jobs), desc="espeak-ng",
                  unit="utt", disable=None if progress else True))


def _dialect(speaker: str) -> str | None:
    return DIALECT_OF_VOICE.get(speaker.split("+")[0])


def _write_manifest(config: SynthConfig, jobs: list[Job], splits: list[str],
                    extra: dict[str, list[str]] | None = None) -> Path:
    """``out_dir/manifest.csv`` (written atomically): the CSV columns vasr imports, then ``extra``."""
    out = Path(config.out_dir)
    extra = extra or {}
    manifest = out / "manifest.csv"
    tmp = manifest.with_suffix(".csv.part")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file_path", "transcript", "split", "speaker_id", "dialect", *extra])
        for i, job in enumerate(jobs):
            writer.writerow([job.path.relative_to(out).as_posix(), job.text, splits[i], job.speaker,
                             _dialect(job.speaker) or "", *(column[i] for column in extra.values())])
    os.replace(tmp, manifest)
    return manifest


def _entries(manifest: Path, jobs: list[Job], splits: list[str | None]) -> list[Entry]:
    return [Entry(f"{manifest.name}:{i + 2}", job.path, job.text, splits[i], job.speaker, job.utt_id,
                  dialect=_dialect(job.speaker)) for i, job in enumerate(jobs)]


# --------------------------------------------------------------------------------------------- bias set

@dataclass(frozen=True)
class BiasSet:
    """What ``synthesize_bias`` made."""
    jobs: list[Job]
    items: list[BiasItem]            # items[i] is spoken by jobs[i]
    splits: list[str]                # val | test, per utterance
    seconds: float                   # audio rendered
    report: ImportReport | None      # None with no engine
    phrases_written: int             # bias_phrases rows added (0 on a re-run)

    def format(self) -> str:
        spoken = [e for item in self.items for e in item.entities]
        places = set(PLACES)
        counts = {name: self.splits.count(name) for name in ("val", "test")}
        return "\n".join([
            f"bias set: {len(self.jobs)} utterances, {self.seconds / 3600:.3f} h "
            f"({', '.join(f'{k} {v}' for k, v in counts.items())})",
            f"entities spoken: {len(spoken)}; distinct person names {len({e for e in spoken if e not in places})}, "
            f"distinct places {len({e for e in spoken if e in places})} of {len(places)}; "
            f"bias lists: the entities + {len(self.items[0].bias_list) - len(self.items[0].entities)} distractors"
            + ("" if self.report is None else f"; {self.phrases_written} bias phrases written")])


def bias_config(config: SynthConfig) -> SynthConfig:
    """``config`` for the bias set: ``bias`` on, and n, out_dir, split_version and split_ratios that
    still hold the corpus defaults replaced by the bias set's."""
    corpus = SynthConfig()
    changes = {name: value for name, value in BIAS_DEFAULTS.items() if getattr(config, name) == getattr(corpus, name)}
    return dataclasses.replace(config, bias=True, **changes)


def synthesize_bias(config: SynthConfig, engine: Engine | None = None, progress: bool = True) -> BiasSet:
    """Render the biasing test set of ``config`` (``entities.bias_items``), write ``manifest.csv`` with
    ``entities`` and ``bias_list`` columns (phrases joined by " | "), and import it when ``engine`` is
    given: split version ``config.split_version``, speaker-disjoint by ``config.split_ratios``, each
    utterance's bias list in ``bias_phrases``.

    The splits are given per utterance (never ``store.auto_split``, which would pull every other
    utterance of the database into the version). The bias lists are written in the import's
    transaction (all or nothing) for the audio ids the import reports; a re-run writes whatever is
    missing and nothing twice.
    """
    espeak = check_espeak()
    items = bias_items(config.n, config.seed, config.distractors)
    jobs = plan(config, [item.text for item in items], shuffle=False)
    _render_all(config, jobs, espeak, progress)
    seconds = [sf.info(str(job.path)).duration for job in jobs]
    by_speaker: dict[str, list[float]] = {}
    for job, duration in zip(jobs, seconds):
        by_speaker.setdefault(job.speaker, []).append(duration)
    split_of = store.assign_speakers(by_speaker, config.split_ratios, config.seed)
    splits = [split_of[job.speaker] for job in jobs]
    manifest = _write_manifest(config, jobs, splits, {
        "entities": [PHRASE_SEPARATOR.join(item.entities) for item in items],
        "bias_list": [PHRASE_SEPARATOR.join(item.bias_list) for item in items]})
    if engine is None:
        return BiasSet(jobs, items, splits, sum(seconds), None, 0)
    options = ImportOptions(split_version=config.split_version, seed=config.seed, annotation_type="synthetic")
    entries = _entries(manifest, jobs, splits)
    written = []

    def attach_bias_lists(conn, ids: dict[str, int]) -> None:
        written.append(store.write_bias_lists(conn, {
            ids[e.row_ref]: [(phrase, phrase in item.entities) for phrase in item.bias_list]
            for e, item in zip(entries, items)}))

    report = ingest(engine, "synth", str(manifest.parent.resolve()), entries, [], options, progress=progress,
                    then=attach_bias_lists)
    return BiasSet(jobs, items, splits, sum(seconds), report, written[0])
