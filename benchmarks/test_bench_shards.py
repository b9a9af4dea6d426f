"""Training data from shards (``vasr.data.shards``) against the same split from the database.

* training throughput (ms of training per second of audio; the report's ratio is shards vs database):
  the tiny preset's model, optimizer and precision (``auto``: bf16 where the CPU has it), one thread,
  fed the same planned batches
  (``data.shard_size`` = the shards' size, so both sides train on identical batches), timed in blocks
  of BLOCK steps that alternate with untimed blocks of the other source (a shared machine's load
  then falls on both alike);
* raw read rate (ms per utterance): decoding every utterance of the split to 16 kHz float32 from the
  database records' files, from vasr's shards, and from Lhotse Shar (the peer, when lhotse is installed);
* writing shards (ms per utterance): ``write_shards`` against lhotse's ``CutSet.to_shar`` (FLAC both).

The corpus: a copy of the database at $VASR_BENCH_SHARDS_DB (e.g. `vasr synth`'s), else tones of
1-4 s with made-up transcripts (the model's speed does not depend on what is said).
"""
from __future__ import annotations

import csv
import functools
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICK, label

torch = pytest.importorskip("torch")

from vasr import config as cfg  # noqa: E402
from vasr.data.dataset import TargetEncoder, loader  # noqa: E402
from vasr.data.shards import decode_audio, open_index, read_shard, training_split, write_shards  # noqa: E402
from vasr.db import store  # noqa: E402
from vasr.db.runs import split_records  # noqa: E402
from vasr.model import CtcModel, ctc_loss_sum  # noqa: E402
from vasr.runtime import audio  # noqa: E402
from vasr.text.tokens import CharTokenizer  # noqa: E402
from vasr.train import TrainConfig, autocast, resolve_precision  # noqa: E402

DB_ENV = "VASR_BENCH_SHARDS_DB"
TONES = 80 if QUICK else 400             # utterances of the generated corpus
PER_SHARD = 20 if QUICK else 200         # utterances per shard (and data.shard_size)
BLOCK = 4 if QUICK else 10              # optimizer steps per timed block
ROUNDS = 2 if QUICK else 5              # timed blocks per source
WORDS = "xin chào cảm ơn bạn một hai ba tiếng việt hòa bình người dân".split()


def _tones(root: Path) -> str:
    from vasr.data.importers import import_corpus

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file_path", "transcript", "split", "speaker_id"])
        for i in range(TONES):
            seconds = rng.uniform(1.0, 4.0)
            t = np.arange(int(seconds * audio.TARGET_RATE)) / audio.TARGET_RATE
            wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 400) * t) + 0.01 * rng.standard_normal(t.size)
            import soundfile as sf

            sf.write(root / f"u{i}.wav", wave.astype(np.float32), audio.TARGET_RATE, subtype="PCM_16")
            writer.writerow([f"u{i}.wav", " ".join(rng.choice(WORDS, size=4 + i % 6)), "train", f"s{i % 10}"])
    db = str(root / "vasr.db")
    import_corpus("csv", root / "manifest.csv", store.connect(db))
    return db


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(database, its training records, shard folder)."""
    root = tmp_path_factory.mktemp("bench-shards")
    if os.environ.get(DB_ENV):
        db = str(root / "vasr.db")
        shutil.copy(os.environ[DB_ENV], db)
    else:
        db = _tones(root / "tones")
    with store.connect(db).connect() as conn:
        records = split_records(conn, "train")
    write_shards(records, root / "shards", PER_SHARD, progress=False)
    write_shards(records, root / "shards-wav", PER_SHARD, progress=False, codec="wav")
    return db, records, root / "shards"


def _data(corpus, source: str):
    db, _, shards = corpus
    config = cfg.load(TrainConfig, "tiny", ["threads=1", f"data.shard_size={PER_SHARD}"]
                      + ([f"data.shards={shards}"] if source == "shards" else []))
    with store.connect(db).connect() as conn:
        split = training_split(config.data, conn)
    return config, split


def _trainer(corpus, source: str, first_epoch: int = 0):
    """A function that trains the tiny preset for BLOCK more optimizer steps on ``source``'s planned
    batches (epoch after epoch from ``first_epoch``) and returns the audio seconds it trained on."""
    config, split = _data(corpus, source)
    tokenizer = CharTokenizer.build([r.text for r in split.records])
    encoder = TargetEncoder(tokenizer)
    torch.manual_seed(0)
    model = CtcModel(config.model, tokenizer.vocab_size).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.optim.lr)
    cpu = torch.device("cpu")
    amp = autocast(resolve_precision(config.precision, cpu), cpu)

    def batches():
        epoch = first_epoch
        while True:
            dataset = split.dataset(split.plan(config.data, config.seed, epoch), encoder, fbank=config.data.fbank,
                                    augment=config.augment, seed=config.seed, epoch=epoch)
            yield from loader(dataset, 0, config.data.num_workers)
            epoch += 1

    stream = batches()

    def block() -> float:
        audio_s = 0.0
        for _ in range(BLOCK):
            batch = next(stream)
            with amp():
                log_probs, out_lens = model(batch["x"], batch["x_lens"])
            loss = ctc_loss_sum(log_probs, batch["targets"], out_lens, batch["target_lens"])
            (loss / max(1, int(batch["target_lens"].sum()))).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.clip_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            audio_s += batch["audio_s"]
        return audio_s

    return block


@pytest.mark.parametrize("source", ["database", "shards"])
def test_training_throughput(benchmark, corpus, source):
    """ROUNDS timed blocks of ``source``, each after an untimed block of the other source (so that both
    meet the same machine load); the other's rate goes to extra_info["other_audio_s_per_s"], both
    sources' audio seconds per CPU second to extra_info too. The other source trains on other epochs'
    batches: a batch shape seen first costs more (oneDNN builds its kernels), and the timed block
    would otherwise always come second."""
    torch.set_num_threads(1)
    other = "database" if source == "shards" else "shards"
    mine, theirs = _trainer(corpus, source), _trainer(corpus, other, first_epoch=1000)
    trained, other_rates = [], []

    cpu = {"mine": [0.0, 0.0], "theirs": [0.0, 0.0]}     # audio s, CPU s (this process, all threads)

    def timed(name, block):
        start = time.process_time()
        audio_s = block()
        cpu[name][0] += audio_s
        cpu[name][1] += time.process_time() - start
        return audio_s

    def between():
        start = time.perf_counter()
        other_rates.append(timed("theirs", theirs) / (time.perf_counter() - start))

    label(benchmark, group=f"training throughput, tiny, {ROUNDS} x {BLOCK} steps", impl=f"vasr:{source}",
          unit="ms/s", per=1.0)
    benchmark.pedantic(lambda: trained.append(timed("mine", mine)), setup=between, rounds=ROUNDS, iterations=1)
    # both sources' timed blocks train on the same planned batches: the same audio in block k of either
    benchmark.extra_info["per"] = float(np.median(trained))
    benchmark.extra_info["other_audio_s_per_s"] = float(np.median(other_rates))
    # CPU time is what a busy machine disturbs least
    benchmark.extra_info["audio_s_per_cpu_s"] = cpu["mine"][0] / cpu["mine"][1]
    benchmark.extra_info["other_audio_s_per_cpu_s"] = cpu["theirs"][0] / cpu["theirs"][1]
    if benchmark.stats is not None:                      # None under --benchmark-disable
        benchmark.extra_info["audio_s_per_s"] = sum(trained) / sum(benchmark.stats.stats.data)


def _read_files(records) -> int:
    return sum(len(audio.load(r.path, r.start_s, r.end_s)) > 0 for r in records)


def _read_shards(folder: Path) -> int:
    index = open_index(folder)
    return sum(len(decode_audio(*member)) > 0 for n in range(len(index.shards))
               for member in read_shard(index, n).values())


def _cuts(records):
    from lhotse import CutSet, Recording, SupervisionSegment

    cuts = []
    for r in records:
        cut = Recording.from_file(r.path, recording_id=r.id).to_cut()
        cut = cut.truncate(offset=r.start_s, duration=r.duration_s) if r.start_s else cut
        cut.supervisions = [SupervisionSegment(r.id, r.id, 0.0, cut.duration, text=r.text, speaker=r.speaker)]
        cuts.append(cut)
    return CutSet.from_cuts(cuts)


def _read_shar(folder: Path) -> int:
    from lhotse import CutSet

    return sum(cut.load_audio().size > 0 for cut in CutSet.from_shar(in_dir=folder))


@pytest.mark.parametrize("source", ["database files", "shards", "shards (wav)", "lhotse shar"])
def test_read_rate(benchmark, corpus, tmp_path, source):
    _, records, shards = corpus
    label(benchmark, group="read and decode the training split", impl=("peer:lhotse" if source == "lhotse shar"
                                                                      else f"vasr:{source}"),
          unit="ms/utt", per=len(records))
    if source == "database files":
        run = functools.partial(_read_files, records)
    elif source.startswith("shards"):
        run = functools.partial(_read_shards, shards if source == "shards" else shards.with_name("shards-wav"))
    else:
        pytest.importorskip("lhotse")
        (tmp_path / "shar").mkdir()
        _cuts(records).to_shar(tmp_path / "shar", fields={"recording": "flac"}, shard_size=PER_SHARD)
        run = functools.partial(_read_shar, tmp_path / "shar")
    counts = []
    benchmark.pedantic(lambda: counts.append(run()), rounds=1 if QUICK else 3, iterations=1, warmup_rounds=1)
    assert counts[-1] == len(records)


@pytest.mark.parametrize("writer", ["vasr", "lhotse"])
def test_write_shards(benchmark, corpus, tmp_path, writer):
    _, records, _ = corpus
    label(benchmark, group="write the training split as shards (FLAC)",
          impl="vasr:write_shards" if writer == "vasr" else "peer:lhotse", unit="ms/utt", per=len(records))
    if writer == "vasr":
        run = functools.partial(write_shards, records, tmp_path / "out", PER_SHARD, force=True, progress=False)
        benchmark.pedantic(run, rounds=1, iterations=1)
        benchmark.extra_info["bytes"] = sum(s.bytes for s in open_index(tmp_path / "out").shards)
    else:
        pytest.importorskip("lhotse")
        cuts = _cuts(records)
        (tmp_path / "shar").mkdir()
        benchmark.pedantic(lambda: cuts.to_shar(tmp_path / "shar", fields={"recording": "flac"},
                                                shard_size=PER_SHARD), rounds=1, iterations=1)
        benchmark.extra_info["bytes"] = sum(p.stat().st_size for p in (tmp_path / "shar").iterdir())
