"""Training shards: `vasr shards write`, batches from shards equal to batches from the database (same
seed, same keys, same features), workers and resume, DDP planning, http reading, integrity, atomic output."""
from __future__ import annotations

import csv
import dataclasses
import functools
import http.server
import io
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import write_tone

from vasr.cli import main as cli
from vasr.data.augment import AugmentConfig, SpecAugmentConfig, SpeedConfig
from vasr.data.dataset import DataConfig, TargetEncoder, loader
from vasr.data.shards import (INDEX, ShardError, decode_audio, encode_audio, open_index, plan_batches, read_shard,
                              training_split, write_shards)
from vasr.db import store
from vasr.db.runs import split_records
from vasr.model import ModelConfig
from vasr.text.tokens import CharTokenizer
from vasr.train import LAST, OptimConfig, TrainConfig, train

WORDS = ["xin", "chào", "cảm", "ơn", "bạn", "một", "hai", "ba", "tiếng", "việt", "hòa", "bình"]
TRAIN_UTTERANCES = 22
PER_SHARD = 4                 # 6 shards, the last of 2
DATA = DataConfig(max_frames=260, num_buckets=2, shard_size=PER_SHARD, shuffle_shards=2, dither=0.05,
                  max_duration_s=1.2)
AUGMENT = AugmentConfig(speed=SpeedConfig(prob=0.5), spec=SpecAugmentConfig(prob=1.0, time_width=5))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[str, Path]:
    """(database, shard folder): 22 train utterances (tones of distinct pitch, one at 22.05 kHz so that its
    16 kHz samples are not 16-bit values, one longer than DATA.max_duration_s) and 2 val, written as shards."""
    root = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(0)
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file_path", "transcript", "split", "speaker_id"])
        for i in range(TRAIN_UTTERANCES + 2):
            seconds = 1.5 if i == 7 else 0.3 + 0.04 * (i % 13)
            write_tone(root / f"u{i}.wav", seconds=seconds, freq=150.0 + 37.0 * i, rate=22050 if i == 3 else 16000)
            text = " ".join(rng.choice(WORDS, size=2 + i % 3))
            split, speaker = ("train", f"s{i % 4}") if i < TRAIN_UTTERANCES else ("val", "v")
            writer.writerow([f"u{i}.wav", text, split, speaker])
    from vasr.data.importers import import_corpus

    db = str(root / "vasr.db")
    engine = store.connect(db)
    import_corpus("csv", root / "manifest.csv", engine)
    engine.dispose()
    assert cli(["shards", "write", "--split", "train", "--db", db, "--utterances-per-shard", str(PER_SHARD),
                str(root / "out")]) == 0
    return db, root / "out"


def _splits(db: str, out: Path, data: DataConfig = DATA):
    engine = store.connect(db)
    with engine.connect() as conn:
        from_db = training_split(data, conn)
    engine.dispose()
    return from_db, training_split(dataclasses.replace(data, shards=str(out)))


def _encoder(split) -> TargetEncoder:
    return TargetEncoder(CharTokenizer.build([r.text for r in split.records]))


def _same_batch(a: dict, b: dict) -> None:
    assert [r.id for r in a["records"]] == [r.id for r in b["records"]]
    for name in ("x", "x_lens", "targets", "target_lens"):
        assert torch.equal(a[name], b[name]), name
    assert a["audio_s"] == b["audio_s"]


def test_the_index_lists_every_shard_and_utterance_in_canonical_order(corpus):
    db, out = corpus
    index = open_index(out)
    engine = store.connect(db)
    with engine.connect() as conn:
        records = split_records(conn, "train")
    assert [s.name for s in index.shards] == [f"shard-{n:06d}.tar" for n in range(6)]
    assert [k for s in index.shards for k in s.keys] == [r.id for r in records]
    assert [d for s in index.shards for d in s.durations] == [r.duration_s for r in records]
    assert [len(s.keys) for s in index.shards] == [4, 4, 4, 4, 4, 2]
    assert all(s.bytes == (out / s.name).stat().st_size for s in index.shards)
    raw = json.loads((out / INDEX).read_text(encoding="utf-8"))
    assert (raw["format"], raw["version"], raw["split"], raw["split_version"]) == ("vasr-shards", 1, "train", "default")
    names = __import__("tarfile").open(out / "shard-000000.tar").getnames()
    assert names[:2] == [f"{records[0].id}.flac", f"{records[0].id}.json"]
    assert f"{records[3].id}.wav" in names            # the resampled one: float32, stored exactly


def test_stored_audio_is_the_exact_samples():
    rng = np.random.default_rng(1)
    pcm = (rng.integers(-32768, 32767, 16000) / 32768).astype(np.float32)
    floats = rng.uniform(-1, 1, 16000).astype(np.float32)
    for wave, codec, ext in ((pcm, "flac", "flac"), (pcm, "wav", "wav"), (floats, "flac", "wav"),
                             (np.ones(10, np.float32), "flac", "wav")):
        kind, data = encode_audio(wave, codec)
        assert kind == ext and np.array_equal(decode_audio(kind, data), wave)
        assert np.array_equal(sf.read(io.BytesIO(data), dtype="float32")[0], wave)   # any reader agrees


def test_batches_from_shards_equal_batches_from_the_database(corpus):
    db, out = corpus
    from_db, from_shards = _splits(db, out)
    assert [r.id for r in from_db.records] == [r.id for r in from_shards.records]
    assert [r.id for r in from_db.too_long] == [r.id for r in from_shards.too_long] and len(from_db.too_long) == 1
    assert from_db.chunks == from_shards.chunks
    for a, b in zip(from_db.cmvn(), from_shards.cmvn()):
        assert np.array_equal(a, b)
    encoder = _encoder(from_db)
    for epoch in (0, 1):
        plans = [s.plan(DATA, 5, epoch) for s in (from_db, from_shards)]
        assert plans[0].batches == plans[1].batches and len(plans[0]) > 3
        assert sorted(j for b in plans[0].batches for j in b) == list(range(len(from_db.records)))
        keys = [[from_db.records[j].id for j in b] for b in plans[0].batches]
        sets = [s.dataset(p, encoder, fbank=DATA.fbank, augment=AUGMENT, seed=5, epoch=epoch, spec_fill=None)
                for s, p in zip((from_db, from_shards), plans)]
        for i in range(len(plans[0])):
            a, b = sets[0][i], sets[1][i]
            assert [r.id for r in b["records"]] == keys[i]
            _same_batch(a, b)
    # the epochs differ, and so do other seeds
    assert from_db.plan(DATA, 5, 0).batches != from_db.plan(DATA, 5, 1).batches != from_db.plan(DATA, 6, 1).batches


def test_workers_and_resume_give_the_same_batches_and_read_each_window_once(corpus):
    db, out = corpus
    _, split = _splits(db, out)
    plan = split.plan(DATA, 2, 0)
    dataset = split.dataset(plan, _encoder(split), fbank=DATA.fbank, seed=2, epoch=0)
    alone = list(loader(dataset, 0, 0))
    assert dataset.window_reads == len(plan.windows)             # sequential: one read per window
    workers = list(loader(dataset, 0, 2))
    resumed = list(loader(dataset, 3, 2))
    assert len(alone) == len(workers) == len(plan) and len(resumed) == len(plan) - 3
    for a, b in zip(alone, workers):
        _same_batch(a, b)
    for a, b in zip(alone[3:], resumed):
        _same_batch(a, b)


def test_ranks_get_disjoint_shards_and_the_same_batch_count():
    chunks = [list(range(10 * s, 10 * s + 10)) for s in range(7)]
    durations = [0.5 + 0.1 * (j % 9) for j in range(70)]
    plans = [plan_batches(chunks, durations, 400, 1, 0, 2, 2, rank, 3) for rank in range(3)]
    assert len({len(p) for p in plans}) == 1
    shards = [{s for w in p.windows for s in w} for p in plans]
    assert set().union(*shards) == set(range(7)) and sum(map(len, shards)) == 7
    for p, mine in zip(plans, shards):
        assert all(j // 10 in mine for b in p.batches for j in b)
        assert p.window_of == sorted(p.window_of)
        assert all(j // 10 in p.windows[w] for b, w in zip(p.batches, p.window_of) for j in b)
    with pytest.raises(ValueError, match="7 shards cannot feed 8 ranks"):
        plan_batches(chunks, durations, 400, 1, 0, world_size=8)


def test_shards_over_http_read_like_local_ones(corpus):
    db, out = corpus
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        local, remote = (training_split(dataclasses.replace(DATA, shards=s)) for s in (str(out), url + INDEX))
        assert remote.index.where(0) == url + "shard-000000.tar"
        plan = local.plan(DATA, 0, 0)
        encoder = _encoder(local)
        a, b = (s.dataset(plan, encoder, fbank=DATA.fbank, seed=0, epoch=0) for s in (local, remote))
        for i in range(len(plan)):
            _same_batch(a[i], b[i])
        with pytest.raises(ShardError, match="missing.json: cannot read the shard index"):
            open_index(url + "missing.json")
    finally:
        server.shutdown()
        server.server_close()


def test_a_damaged_shard_fails_with_one_line_naming_it(corpus, tmp_path):
    _, out = corpus
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shard = copy / "shard-000001.tar"
    data = bytearray(shard.read_bytes())
    data[2000] ^= 0xFF                                         # inside the first FLAC member: same size
    shard.write_bytes(bytes(data))
    index = open_index(copy)
    with pytest.raises(ShardError, match=r"shard-000001.tar: sha256 .* differs from the index") as caught:
        read_shard(index, 1)
    assert "\n" not in str(caught.value)
    split = training_split(dataclasses.replace(DATA, shards=str(copy)))
    plan = split.plan(DATA, 0, 0)
    with pytest.raises(ShardError, match=r"^\S*shard-00000\d.tar: sha256 [^\n]*stale$"):  # from a worker, too
        list(loader(split.dataset(plan, _encoder(split), fbank=DATA.fbank), 0, 1))
    shard.write_bytes(bytes(data[:-512]))
    with pytest.raises(ShardError, match=r"shard-000001.tar: \d+ bytes, the index says"):
        read_shard(open_index(copy), 1)
    raw = json.loads((copy / INDEX).read_text(encoding="utf-8"))
    raw["shards"][2]["name"] = "../escape.tar"
    (copy / INDEX).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ShardError, match=r"index.json: shards\[2\].name: '../escape.tar' is not a file name"):
        open_index(copy)


def test_output_appears_whole_or_not_at_all(corpus, tmp_path, capsys):
    db, out = corpus
    engine = store.connect(db)
    with engine.connect() as conn:
        records = split_records(conn, "train")
    broken = records[:5] + [dataclasses.replace(records[5], path=str(tmp_path / "gone.wav"))]
    target = tmp_path / "new"
    with pytest.raises(ValueError, match="gone.wav: no such file"):
        write_shards(broken, target, 2, progress=False)
    assert not target.exists() and not list(tmp_path.glob(".new.*"))       # no half-written shards left
    assert cli(["shards", "write", "--split", "train", "--db", db, str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith("folder exists and is not empty (--force replaces it)")
    assert cli(["shards", "write", "--split", "train", "--db", db, "--utterances-per-shard", "0", str(target)]) == 2
    assert "--utterances-per-shard must be >= 1" in capsys.readouterr().err
    # WAV members: the same batches
    assert cli(["shards", "write", "--split", "train", "--db", db, "--utterances-per-shard", str(PER_SHARD),
                "--audio", "wav", str(tmp_path / "wav")]) == 0
    from_db, from_wav = _splits(db, tmp_path / "wav")
    plan = from_db.plan(DATA, 1, 0)
    encoder = _encoder(from_db)
    a, b = (s.dataset(plan, encoder, fbank=DATA.fbank, seed=1, epoch=0) for s in (from_db, from_wav))
    for i in range(len(plan)):
        _same_batch(a[i], b[i])
    # the same split writes the same bytes
    again = write_shards(records, target, PER_SHARD, progress=False)
    assert again.shards == 6 and [s.sha256 for s in open_index(target).shards] == \
        [s.sha256 for s in open_index(out).shards]


def _config(db: str, out: Path, **data) -> TrainConfig:
    return TrainConfig(
        name="s", db=db, out_dir=str(out), seed=3, epochs=2, progress=False, sample_predictions=1,
        model=ModelConfig(d_model=32, num_layers=1, num_heads=2, ff_dim=64, subsampling_channels=8, dropout=0.1),
        data=dataclasses.replace(DATA, **data), augment=AUGMENT, optim=OptimConfig(lr=3e-3, warmup_steps=2))


def test_training_from_shards_ends_with_the_weights_of_training_from_the_database(corpus, tmp_path):
    db, out = corpus
    from_db = train(_config(db, tmp_path / "db"))
    from_shards = train(_config(db, tmp_path / "sh", shards=str(out), num_workers=2))
    assert from_db.status == from_shards.status == "completed" and from_db.progress.step >= 4
    a = torch.load(from_db.run_dir / LAST, weights_only=False)["model"]
    b = torch.load(from_shards.run_dir / LAST, weights_only=False)["model"]
    for name in a:
        assert torch.equal(a[name], b[name]), name
    with pytest.raises(ValueError, match="written from split version 'default', but data.split_version is 'x'"):
        train(_config(db, tmp_path / "x", shards=str(out), split_version="x"))
