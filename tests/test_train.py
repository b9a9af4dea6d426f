"""Training: batches, features identical to the runtime's, dither, exact resume, database rows, DDP on gloo."""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_tone
from sqlalchemy import select

from vasr.checkpoint import load_checkpoint
from vasr.runtime import audio
from vasr.data.augment import AugmentConfig, SpecAugmentConfig, SpeedConfig
from vasr.data.dataset import DataConfig, BatchDataset, TargetEncoder, make_batches
from vasr.db import runs, store
from vasr.db.schema import data_augmentations, epoch_metrics, models, predictions, training_runs
from vasr.kernels import FbankOptions, compute_fbank
from vasr.model import ModelConfig
from vasr.text.tokens import CharTokenizer
from vasr.train import BEST, LAST, OptimConfig, TrainConfig, get_lr, native_bf16, resolve_precision, train

# (transcript, split, speaker): 6 train, 2 val, 2 test utterances, speakers disjoint across splits
CORPUS = [("xin chào", "train", "a"), ("cảm ơn bạn", "train", "a"), ("một hai ba", "train", "b"),
          ("tiếng việt", "train", "b"), ("hòa bình", "train", "c"), ("người dân", "train", "c"),
          ("khỏe không", "val", "d"), ("bạn ơi", "val", "d"),
          ("thủy điện", "test", "e"), ("chào bạn", "test", "e")]


def make_corpus(root: Path, db: str) -> Path:
    """Tones of distinct pitch and length standing for the CORPUS utterances, imported into ``db``."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file_path", "transcript", "split", "speaker_id"])
        for i, (text, split, speaker) in enumerate(CORPUS):
            write_tone(root / f"u{i}.wav", seconds=0.3 + 0.07 * i, freq=180.0 + 70.0 * i)
            writer.writerow([f"u{i}.wav", text, split, speaker])
    from vasr.data.importers import import_corpus
    engine = store.connect(db)
    import_corpus("csv", root / "manifest.csv", engine)
    engine.dispose()
    return root / "manifest.csv"


def tiny_config(db: str, out: Path, **changes) -> TrainConfig:
    config = TrainConfig(
        name="t", db=db, out_dir=str(out), seed=3, epochs=2, progress=False, sample_predictions=1,
        model=ModelConfig(d_model=32, num_layers=1, num_heads=2, ff_dim=64, subsampling_channels=8, dropout=0.1),
        data=DataConfig(max_frames=150, num_buckets=2),
        augment=AugmentConfig(speed=SpeedConfig(prob=0.5), spec=SpecAugmentConfig(prob=1.0, time_width=5)),
        optim=OptimConfig(lr=3e-3, warmup_steps=2))
    return dataclasses.replace(config, **changes)


@pytest.fixture
def sqlite_corpus(tmp_path) -> str:
    db = str(tmp_path / "vasr.db")
    make_corpus(tmp_path / "audio", db)
    return db


def test_get_lr_warms_up_then_decays_to_the_floor():
    optim = OptimConfig(lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert get_lr(0, optim, 110) == pytest.approx(1e-4)
    assert get_lr(9, optim, 110) == pytest.approx(1e-3)
    assert get_lr(60, optim, 110) == pytest.approx(1e-4 + 0.9e-3 * 0.5)
    assert get_lr(110, optim, 110) == pytest.approx(1e-4)
    assert get_lr(500, optim, 110) == pytest.approx(1e-4)


def test_precision_auto_is_bf16_only_where_the_device_computes_it_natively():
    cpu = torch.device("cpu")
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert native_bf16(cpu) is native
    assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    assert [resolve_precision(p, cpu) for p in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "fp16"]  # as asked


def test_batches_cover_each_utterance_once_within_the_frame_budget():
    durations = [0.5 + 0.37 * (i % 11) for i in range(60)]
    batches = make_batches(durations, 1000, seed=1, epoch=0, num_buckets=3)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(60))
    for b in batches:
        assert len(b) == 1 or len(b) * max(round(100 * durations[i]) for i in b) <= 1000
    assert batches == make_batches(durations, 1000, seed=1, epoch=0, num_buckets=3)
    assert batches != make_batches(durations, 1000, seed=1, epoch=1, num_buckets=3)
    ranks = [make_batches(durations, 1000, 1, 0, 3, True, r, 2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) >= len(batches) // 2
    assert not {i for b in ranks[0] for i in b} & {i for b in ranks[1] for i in b}
    in_order = make_batches(durations, 1000, seed=1, epoch=0, shuffle=False)
    assert [durations[b[0]] for b in in_order] == sorted(durations[b[0]] for b in in_order)


def test_training_features_are_the_runtime_fbank(sqlite_corpus):
    engine = store.connect(sqlite_corpus)
    with engine.connect() as conn:
        records = runs.split_records(conn, "train")
    tokenizer = CharTokenizer.build(r.text for r in records)
    batch = BatchDataset(records, [list(range(len(records)))], TargetEncoder(tokenizer))[0]
    for k, r in enumerate(records):
        expected = compute_fbank(audio.load(r.path))
        n = int(batch["x_lens"][k])
        assert n == len(expected)
        np.testing.assert_array_equal(batch["x"][k, :n].numpy(), expected)
    assert batch["targets"].tolist()[: batch["target_lens"][0]] == tokenizer.encode(records[0].text)
    assert batch["audio_s"] == pytest.approx(sum(r.duration_s for r in records), abs=1e-3)


def test_dither_changes_training_features_only_when_set(sqlite_corpus):
    engine = store.connect(sqlite_corpus)
    with engine.connect() as conn:
        records = runs.split_records(conn, "train")
    assert DataConfig().fbank == FbankOptions() and DataConfig(dither=1e-3).fbank == FbankOptions(dither=1e-3)
    make = lambda data, epoch=0: BatchDataset(records, [[0, 1]], None, fbank=data.fbank, epoch=epoch)[0]  # noqa: E731
    plain, dithered = make(DataConfig()), make(DataConfig(dither=1e-3))
    for k in range(2):
        n = int(plain["x_lens"][k])
        np.testing.assert_array_equal(plain["x"][k, :n].numpy(), compute_fbank(audio.load(records[k].path)))
    assert torch.equal(plain["x_lens"], dithered["x_lens"])
    for k in range(2):
        n = int(plain["x_lens"][k])
        assert bool((dithered["x"][k, :n] != plain["x"][k, :n]).any(dim=1).all())   # noise in every frame
        assert torch.equal(dithered["x"][k, n:], plain["x"][k, n:])                  # padding untouched
    assert torch.equal(dithered["x"], make(DataConfig(dither=1e-3))["x"])   # seeded: a resume sees the same
    assert not torch.equal(dithered["x"], make(DataConfig(dither=1e-3), epoch=1)["x"])


def test_augmented_batches_depend_on_seed_epoch_and_index_only(sqlite_corpus):
    engine = store.connect(sqlite_corpus)
    with engine.connect() as conn:
        records = runs.split_records(conn, "train")
    augment = AugmentConfig(speed=SpeedConfig(prob=1.0, factors=(1.1,)), spec=SpecAugmentConfig(prob=1.0))
    make = lambda seed: BatchDataset(records, [[0, 1], [2, 3]], None, augment=augment, seed=seed)  # noqa: E731
    a, b = make(1)[1], make(1)[1]
    assert torch.equal(a["x"], b["x"])
    assert not torch.equal(a["x"], make(2)[1]["x"])
    plain = round(100 * records[2].duration_s)
    assert abs(int(a["x_lens"][0]) - plain / 1.1) <= 2  # speed 1.1 shortens by a tenth


def test_interrupted_and_resumed_equals_uninterrupted(sqlite_corpus, tmp_path):
    full = train(tiny_config(sqlite_corpus, tmp_path / "a"))
    assert full.status == "completed" and full.progress.step >= 4
    stopped = train(tiny_config(sqlite_corpus, tmp_path / "b"), stop_at_step=3)
    assert stopped.status == "stopped" and stopped.progress.step == 3
    resumed = train(TrainConfig(), resume=stopped.run_dir / LAST)
    assert resumed.run_id == stopped.run_id and resumed.status == "completed"
    assert resumed.progress.step == full.progress.step
    a = torch.load(full.run_dir / LAST, weights_only=False)
    b = torch.load(resumed.run_dir / LAST, weights_only=False)
    for name, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][name], tensor, atol=1e-6, rtol=1e-5, msg=name)
    assert a["progress"]["best_cer"] == pytest.approx(b["progress"]["best_cer"])
    engine = store.connect(sqlite_corpus)
    with engine.connect() as conn:
        assert runs.get_run(conn, stopped.run_id).status == "completed"
        assert [e.epoch for e in runs.run_epochs(conn, stopped.run_id)] == [1, 2]


def test_run_rows_in_the_database(db_url, tmp_path):
    make_corpus(tmp_path / "audio", db_url)
    result = train(tiny_config(db_url, tmp_path / "runs", sample_predictions=2, precision="auto"))
    engine = store.connect(db_url)
    with engine.connect() as conn:
        run = conn.execute(select(training_runs)).one()
        assert (run.id, run.status, run.name) == (result.run_id, "completed", "t")
        assert run.config["model"]["d_model"] == 32 and run.hardware["torch"] == torch.__version__
        assert run.hyperparameters["train_utterances"] == 6 and run.finished_at is not None
        # the config keeps "auto", the run records what it computed in
        assert run.config["precision"] == "auto"
        assert run.hyperparameters["precision"] == ("bf16" if native_bf16(torch.device("cpu")) else "fp32")
        assert 0.0 <= run.best_cer <= 1.0 and run.duration_s > 0
        metrics = conn.execute(select(epoch_metrics).order_by(epoch_metrics.c.epoch)).all()
        assert [m.epoch for m in metrics] == [1, 2]
        assert all(math.isfinite(m.train_loss) and math.isfinite(m.val_loss) for m in metrics)
        assert min(m.cer for m in metrics) == pytest.approx(run.best_cer)
        preds = conn.execute(select(predictions)).all()
        assert len(preds) == 2 and {p.reference for p in preds} == {"khỏe không", "bạn ơi"}
        model = conn.execute(select(models)).one()
        assert run.model_id == model.id and Path(model.checkpoint_path).name == BEST
        assert model.num_parameters == sum(p.numel() for p in load_checkpoint(model.checkpoint_path).model.parameters())
        augs = {a.name: a for a in conn.execute(select(data_augmentations)).all()}
        assert set(augs) == {"speed", "noise", "reverb", "telephone", "codec", "volume", "spec"}
        assert augs["speed"].enabled and augs["speed"].probability == 0.5 and not augs["noise"].enabled
        assert augs["speed"].params["factors"] == [0.9, 1.0, 1.1]
    engine.dispose()


def test_a_crash_marks_the_run_failed(sqlite_corpus, tmp_path):
    engine = store.connect(sqlite_corpus)
    with engine.connect() as conn:
        Path(runs.split_records(conn, "train")[2].path).unlink()
    config = tiny_config(sqlite_corpus, tmp_path / "runs")
    with pytest.raises(audio.AudioError):  # CMVN from the first two files: the third fails in the first epoch
        train(dataclasses.replace(config, data=dataclasses.replace(config.data, cmvn_utterances=2)))
    with engine.connect() as conn:
        run = conn.execute(select(training_runs)).one()
    assert run.status == "failed" and "u2.wav" in run.error and run.finished_at is not None


def test_checkpoint_holds_config_tokenizer_and_cmvn(sqlite_corpus, tmp_path):
    result = train(tiny_config(sqlite_corpus, tmp_path / "runs", epochs=1))
    loaded = load_checkpoint(result.run_dir / BEST)
    assert loaded.config.model.d_model == 32
    assert loaded.tokenizer.encode("xin chào") == CharTokenizer.build(t for t, s, _ in CORPUS if s == "train").encode(
        "xin chào")
    mean = loaded.model.cmvn_mean
    assert -20.0 < float(mean.mean()) < 10.0 and float(loaded.model.cmvn_istd.min()) > 0
    assert not any(p.name.endswith(".tmp") for p in result.run_dir.iterdir())
    assert (result.run_dir / "train.log").read_text(encoding="utf-8").count("epoch 1:") == 1


def _ddp_worker(rank: int, world: int, port: int, db: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    result = train(tiny_config(db, Path(out)))
    torch.save(result.model.state_dict(), Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_ddp_with_two_gloo_processes(sqlite_corpus, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_worker, args=(2, port, sqlite_corpus, str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=0, rtol=0, msg=name)
    engine = store.connect(sqlite_corpus)
    with engine.connect() as conn:
        run = conn.execute(select(training_runs)).one()
        assert run.status == "completed" and run.hyperparameters["world_size"] == 2
        assert len(runs.run_epochs(conn, run.id)) == 2


def test_dataloader_workers_do_not_change_the_result(sqlite_corpus, tmp_path):
    config = tiny_config(sqlite_corpus, tmp_path / "runs", epochs=1)
    in_process = train(config)
    workers = train(dataclasses.replace(config, data=dataclasses.replace(config.data, num_workers=2)))
    a = torch.load(in_process.run_dir / LAST, weights_only=False)["model"]
    b = torch.load(workers.run_dir / LAST, weights_only=False)["model"]
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_ctrl_c_stops_at_a_step_boundary_and_marks_the_run_stopped(sqlite_corpus, tmp_path):
    import signal
    import subprocess
    import sys

    import yaml

    from vasr import config as cfg

    path = tmp_path / "endless.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict(tiny_config(sqlite_corpus, tmp_path / "runs", epochs=100_000))))
    proc = subprocess.Popen([sys.executable, "-m", "vasr.train", "--config", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "epoch 2:" in line:
            proc.send_signal(signal.SIGINT)
            break
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert " stopped: best val CER" in out
    engine = store.connect(sqlite_corpus)
    with engine.connect() as conn:
        run = conn.execute(select(training_runs)).one()
    assert run.status == "stopped" and run.finished_at is not None
    last = torch.load(tmp_path / "runs" / f"t-{run.id}" / LAST, weights_only=False)
    assert last["progress"]["epoch"] >= 2 and last["progress"]["step"] > 0


@pytest.mark.parametrize("name,ok", [
    ("t", True), ("tiny-1", True), ("v2.large_bpe", True), ("_x", True), ("9", True), ("a" * 64, True),
    ("../../x", False), ("a/b", False), ("..", False), (".hidden", False), ("-x", False), ("", False),
    ("a" * 65, False), ("tên", False), ("a b", False), ("a\\b", False), ("x\n", False), (None, False)])
def test_run_names_are_one_plain_path_component(name, ok):
    from vasr.tracker import check_name

    if ok:
        assert check_name(name) == name
    else:
        with pytest.raises(ValueError, match=r"^name .*: a run name is 1 to 64 ASCII letters, digits, '\.', '_' or '-'"):
            check_name(name)


def test_a_bad_name_is_refused_before_anything_is_written(sqlite_corpus, tmp_path):
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ValueError, match="name '../x'"):
        train(tiny_config(sqlite_corpus, tmp_path / "runs", name="../x"))
    assert sorted(tmp_path.rglob("*")) == before
    engine = store.connect(sqlite_corpus)
    with engine.connect() as conn:
        assert conn.execute(select(training_runs)).all() == []
    engine.dispose()


def test_run_directories_are_unique_across_databases_and_resume_finds_theirs(tmp_path):
    import hashlib

    out = tmp_path / "runs"
    dbs = [str(tmp_path / f"{k}.db") for k in "ab"]
    for k, db in zip("ab", dbs):
        make_corpus(tmp_path / f"audio_{k}", db)
    first = train(tiny_config(dbs[0], out, epochs=1))
    assert first.run_dir == out.resolve() / "t-1"
    digest = hashlib.sha256((first.run_dir / LAST).read_bytes()).hexdigest()
    # the second database's first run is run 1 too: it gets a directory of its own
    stopped = train(tiny_config(dbs[1], out, epochs=1), stop_at_step=1)
    assert stopped.run_id == 1 and stopped.run_dir.parent == out.resolve()
    assert stopped.run_dir.name.startswith("t-1-") and len(stopped.run_dir.name) == len("t-1-") + 6
    resumed = train(TrainConfig(), resume=stopped.run_dir / LAST)
    assert resumed.status == "completed" and resumed.run_dir == stopped.run_dir
    assert hashlib.sha256((first.run_dir / LAST).read_bytes()).hexdigest() == digest  # untouched
    for db, result in zip(dbs, (first, resumed)):
        engine = store.connect(db)
        with engine.connect() as conn:
            [model] = conn.execute(select(models)).all()
        engine.dispose()
        assert Path(model.checkpoint_path).parent == result.run_dir
    # a checkpoint whose recorded run directory is not its run's is refused before anything is touched
    raw = torch.load(stopped.run_dir / LAST, weights_only=False)
    for run_dir in ("/tmp/elsewhere", str(out / "t-2"), str(out / "t-1-xyz"), ""):
        torch.save({**raw, "run_dir": run_dir}, tmp_path / "moved.pt")
        with pytest.raises(ValueError, match=r"moved\.pt: run directory .* is not the directory of run 1 \('t'\)"):
            train(TrainConfig(), resume=tmp_path / "moved.pt")
