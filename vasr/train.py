"""Training: ``vasr train --config tiny [key=value ...] [--resume CKPT]`` (= ``python -m vasr.train``).

A linear loop in the spirit of nanoGPT's: AdamW, a pure ``get_lr(step)`` (linear warm-up, cosine
decay), gradient clipping and accumulation, bf16 autocast on CPU or fp16 + GradScaler on CUDA,
``torch.compile`` behind a flag, DistributedDataParallel under torchrun (``vasr.distributed``).
Checkpoints (``vasr.checkpoint``): ``last.pt`` at every epoch end and on a stop, ``best.pt`` on a new
best validation CER; ``--resume`` continues exactly (a run stopped and resumed ends with the weights
of an uninterrupted one). Every run is a training_runs row (``vasr.tracker``) that leaves ``running``
only as ``completed``, ``stopped`` (Ctrl-C: stop at the next step with a checkpoint; twice: abort) or ``failed``.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from vasr import checkpoint, distributed, config as cfg
from vasr.data.augment import AugmentConfig, records as augment_records
from vasr.data.dataset import BatchDataset, DataConfig, TargetEncoder, compute_cmvn, loader, make_batches
from vasr.db import runs, store
from vasr.kernels import corpus_cer, corpus_wer, ctc_greedy_search
from vasr.model import CtcModel, ModelConfig, ctc_loss_sum, num_parameters
from vasr.text.tokens import BpeTokenizer, CharTokenizer
from vasr.tracker import RunTracker, check_name, check_run_dir, hardware

LAST, BEST = "last.pt", "best.pt"


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3                          # peak learning rate, reached at the end of warm-up
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    warmup_steps: int = 500                   # optimizer steps of linear warm-up from 0
    min_lr_ratio: float = 0.05                # cosine decay ends at lr * min_lr_ratio
    clip_norm: float = 5.0                    # global gradient-norm clip; 0 = off
    accum_steps: int = 1                      # micro-batches per optimizer step


@dataclass(frozen=True)
class TokenizerConfig:
    kind: Literal["char", "bpe"] = "char"     # built from the training transcripts
    vocab_size: int = 256                     # BPE pieces (bpe only)


@dataclass(frozen=True)
class TrainConfig:
    name: str = "vasr"                        # run and model name: letters, digits, . _ - (no leading . or -)
    db: str | None = None                     # database (default: $VASR_DB or data/vasr.db)
    out_dir: str = "runs"                     # a run writes to out_dir/<name>-<run id>[-<hex>]/ (vasr.tracker)
    seed: int = 0
    epochs: int = 30
    max_steps: int = 0                        # optimizer steps; 0 = the epochs decide
    max_minutes: float = 0.0                  # training wall-time budget; 0 = none
    patience: int = 0                         # epochs without a better val CER before stopping; 0 = never
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"   # bf16: CPU or CUDA autocast; fp16: CUDA only
    compile: bool = False                     # torch.compile the model
    device: str = "auto"                      # auto | cpu | cuda | cuda:N
    threads: int = 0                          # torch intra-op threads; 0 = torch's default
    sample_predictions: int = 20              # validation predictions stored at each new best
    progress: bool = True                     # tqdm progress bar on rank 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)


def get_lr(step: int, optim: OptimConfig, total_steps: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine to the floor."""
    if step < optim.warmup_steps:
        return optim.lr * (step + 1) / optim.warmup_steps
    span = max(1, total_steps - optim.warmup_steps)
    progress = min(1.0, (step - optim.warmup_steps) / span)
    floor = optim.lr * optim.min_lr_ratio
    return floor + (optim.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""
    step: int = 0                  # optimizer steps done
    epoch: int = 0                 # current epoch (0-based)
    batch: int = 0                 # next batch index of the current epoch
    loss_sum: float = 0.0          # this epoch's summed CTC loss (nats) ...
    tokens: int = 0                # ... over this many target tokens
    audio_s: float = 0.0           # audio seconds trained on this epoch (this rank's share)
    best_cer: float = math.inf
    best_wer: float = math.inf
    best_val_loss: float = math.inf
    bad_epochs: int = 0            # epochs since the best CER
    elapsed_s: float = 0.0         # training wall time before this process started


@dataclass
class Result:
    run_id: int                    # 0 on ranks other than 0 of a new run
    run_dir: Path
    status: str                    # completed | stopped
    progress: Progress
    best_checkpoint: Path | None
    model: CtcModel                # this process's trained copy (under DDP every rank holds the same)


@torch.no_grad()
def validate(model: CtcModel, records: list, encoder: TargetEncoder, c: TrainConfig, device: torch.device,
             amp: functools.partial) -> dict:
    """Loss per token (nats), greedy CER / WER over ``records``, and the first ``c.sample_predictions``
    predictions; ``amp()`` is training's autocast context (off for fp32)."""
    model.eval()
    batches = make_batches([r.duration_s for r in records], c.data.max_frames, c.seed, 0, shuffle=False)
    loss_sum, tokens, seen, hyps = 0.0, 0, [], []
    for batch in loader(BatchDataset(records, batches, encoder), 0, c.data.num_workers):
        with amp():
            log_probs, out_lens = model(batch["x"].to(device), batch["x_lens"].to(device))
        loss_sum += float(ctc_loss_sum(log_probs, batch["targets"].to(device), out_lens,
                                       batch["target_lens"].to(device)))
        tokens += int(batch["target_lens"].sum())
        lp = log_probs.float().cpu().numpy()
        seen += batch["records"]
        hyps += [ctc_greedy_search(lp[k, : int(out_lens[k])], symbols=encoder.tokenizer.symbols).text
                 for k in range(len(batch["records"]))]
    model.train()
    if not hyps:
        return {"loss": math.nan, "cer": math.nan, "wer": math.nan, "samples": []}
    samples = [{"audio_id": r.audio_id, "text": h, "reference": r.text, "cer": corpus_cer([r.text], [h]).rate,
                "wer": corpus_wer([r.text], [h]).rate} for r, h in zip(seen[: c.sample_predictions], hyps)]
    refs = [r.text for r in seen]
    return {"loss": loss_sum / max(1, tokens), "cer": corpus_cer(refs, hyps).rate,
            "wer": corpus_wer(refs, hyps).rate, "samples": samples}


def train(config: TrainConfig, resume: str | os.PathLike | None = None, stop_at_step: int | None = None) -> Result:
    """Train ``config`` (or continue the checkpoint ``resume``, whose config wins) to the end (epochs,
    max_steps, early stopping or the time budget) or to a stop.

    stop_at_step: behave as if Ctrl-C arrived right after this optimizer step (tests, time slicing).
    """
    loaded = checkpoint.load_checkpoint(resume) if resume else None
    c = loaded.config if loaded else config
    if loaded:  # the run continues in the directory its checkpoint names: one made for it (vasr.tracker)
        try:
            check_run_dir(loaded.raw.get("run_dir", ""), c.name, loaded.raw.get("run_id", 0))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{resume}: {exc}") from None
    else:
        check_name(c.name)
    if c.threads:
        torch.set_num_threads(c.threads)
    rank, world, device = distributed.setup(c.device)
    if c.precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs CUDA; use bf16 or fp32 on CPU")
    for seed in (torch.manual_seed, random.seed, np.random.seed):
        seed(c.seed + rank)
    with distributed.rank_zero_first(rank):       # rank 0 creates or upgrades the schema
        engine = store.connect(c.db, upgrade=rank == 0)
    with engine.connect() as conn:
        train_records = [r for r in runs.split_records(conn, "train", c.data.split_version)
                         if r.duration_s <= c.data.max_duration_s]
        val_records = runs.split_records(conn, "val", c.data.split_version)
    if not train_records:
        raise ValueError(f"split version {c.data.split_version!r} has no training utterances")

    if loaded:
        tokenizer, model = loaded.tokenizer, loaded.model
    else:
        texts = [r.text for r in train_records]
        tokenizer = (BpeTokenizer.train(texts, c.tokenizer.vocab_size, Path(c.out_dir) / f".{c.name}-bpe")
                     if c.tokenizer.kind == "bpe" else CharTokenizer.build(texts))
        model = CtcModel(c.model, tokenizer.vocab_size)
        mean, std = compute_cmvn(train_records, limit=c.data.cmvn_utterances)
        model.set_cmvn(torch.from_numpy(mean).float(), torch.from_numpy(std).float())
    encoder = TargetEncoder(tokenizer)
    model.to(device)
    spec_fill = model.cmvn_mean.cpu().numpy()     # SpecAugment masks with the mean: zero after CMVN
    net = ddp = model if world == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    if c.compile:
        net = torch.compile(net, dynamic=True)
    o = c.optim
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=c.precision == "fp16")
    amp = functools.partial(torch.autocast, device.type, dtype=torch.float16 if c.precision == "fp16"
                            else torch.bfloat16, enabled=c.precision != "fp32")
    durations = [r.duration_s for r in train_records]
    per_epoch = math.ceil(len(make_batches(durations, c.data.max_frames, c.seed, 0, c.data.num_buckets, True,
                                           rank, world)) / o.accum_steps)
    total_steps = c.max_steps or per_epoch * c.epochs

    p = Progress(**loaded.raw["progress"]) if loaded else Progress()
    tracker = RunTracker(engine, rank)
    if loaded:
        optimizer.load_state_dict(loaded.raw["optimizer"])
        scaler.load_state_dict(loaded.raw["scaler"])
        rng = loaded.raw["rng"]                   # a run resumed on more ranks than it had: rank 0's
        checkpoint.set_rng_state(rng[rank] if rank < len(rng) else rng[0])
        tracker.resume(loaded.raw["run_id"], loaded.raw["run_dir"])
    else:
        tracker.start(c.name, c.out_dir, c.data.split_version, cfg.to_dict(c), {
            "lr": o.lr, "warmup_steps": o.warmup_steps, "total_steps": total_steps,
            "max_frames": c.data.max_frames, "accum_steps": o.accum_steps, "world_size": world,
            "precision": c.precision, "compile": c.compile, "num_parameters": num_parameters(model),
            "vocab_size": tokenizer.vocab_size, "architecture": c.model.architecture,
            "train_utterances": len(train_records), "val_utterances": len(val_records)},
            hardware(device, world), augment_records(c.augment), tokenizer)
    started = time.perf_counter()

    def elapsed() -> float:  # training wall time of the run, seconds, over every process that worked on it
        return p.elapsed_s + time.perf_counter() - started

    def save(name: str) -> None:
        rng = distributed.gather(checkpoint.rng_state())     # every rank's, so that a resume is exact
        if rank == 0:
            checkpoint.save(tracker.run_dir / name, config=c, model=model, optimizer=optimizer, scaler=scaler,
                            tokenizer=tokenizer, progress={**dataclasses.asdict(p), "elapsed_s": elapsed()},
                            rng=rng, run_id=tracker.run_id, run_dir=tracker.run_dir)

    tracker.info("run %d: %d parameters, vocabulary %d, %d train / %d val utterances, %d steps planned",
                 tracker.run_id, num_parameters(model), tokenizer.vocab_size, len(train_records),
                 len(val_records), total_steps)
    stop = False
    with tracker.recording(elapsed), distributed.StopFlag() as flag:
        while p.epoch < c.epochs and p.step < total_steps:
            batches = make_batches(durations, c.data.max_frames, c.seed, p.epoch, c.data.num_buckets, True,
                                   rank, world)
            dataset = BatchDataset(train_records, batches, encoder, fbank=c.data.fbank, augment=c.augment,
                                   seed=c.seed, epoch=p.epoch, spec_fill=spec_fill)
            epoch_start = time.perf_counter()
            window_audio, micro, out_of_time = 0.0, 0, False
            bar = tqdm(total=len(dataset), initial=p.batch, desc=f"epoch {p.epoch + 1}", unit="batch", leave=False,
                       disable=True if not c.progress or rank != 0 else None,  # None: terminals only
                       dynamic_ncols=True)
            net.train()
            for i, batch in zip(range(p.batch, len(dataset)), loader(dataset, p.batch, c.data.num_workers)):
                # forward and backward one micro-batch; DDP syncs gradients on the last of a step only
                micro += 1
                last_micro = micro == o.accum_steps or i == len(dataset) - 1
                with contextlib.nullcontext() if last_micro or world == 1 else ddp.no_sync():
                    with amp():
                        log_probs, out_lens = net(batch["x"].to(device), batch["x_lens"].to(device))
                    target_lens = batch["target_lens"].to(device)
                    loss_sum = ctc_loss_sum(log_probs, batch["targets"].to(device), out_lens, target_lens)
                    tokens = int(target_lens.sum())
                    scaler.scale(loss_sum / max(1, tokens) / o.accum_steps).backward()
                p.loss_sum += float(loss_sum.detach())
                p.tokens += tokens
                p.audio_s += batch["audio_s"]
                window_audio += batch["audio_s"]
                bar.update(1)
                if not last_micro:
                    continue
                # the optimizer step
                micro = 0
                lr = get_lr(p.step, o, total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                if o.clip_norm > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                p.step += 1
                p.batch = i + 1
                bar.set_postfix(loss=f"{p.loss_sum / max(1, p.tokens):.3f}", lr=f"{lr:.2e}",
                                audio_s_per_s=f"{window_audio / (time.perf_counter() - epoch_start):.0f}")
                stop = distributed.any_rank(flag.set or (stop_at_step is not None and p.step >= stop_at_step))
                out_of_time = distributed.any_rank(c.max_minutes > 0 and elapsed() > 60 * c.max_minutes)
                if stop or out_of_time or p.step >= total_steps:
                    break
            bar.close()
            if stop:
                save(LAST)
                break

            # the end of an epoch: validate on rank 0, record, checkpoint
            seconds = time.perf_counter() - epoch_start
            val = distributed.from_rank_zero(validate(model, val_records, encoder, c, device, amp)
                                             if rank == 0 else None)
            improved = val["cer"] < p.best_cer
            p.bad_epochs = 0 if improved else p.bad_epochs + 1
            if improved:
                p.best_cer, p.best_wer = val["cer"], val["wer"]
            p.best_val_loss = min(p.best_val_loss, val["loss"])
            tracker.epoch(runs.EpochMetrics(p.epoch + 1, p.loss_sum / max(1, p.tokens), val["loss"], val["cer"],
                                            val["wer"], optimizer.param_groups[0]["lr"], seconds),
                          p.audio_s * world / max(seconds, 1e-9),
                          {"best_cer": p.best_cer, "best_wer": p.best_wer, "best_val_loss": p.best_val_loss},
                          improved, val["samples"], encoder.unknown)
            finished = c.patience > 0 and p.bad_epochs >= c.patience
            if finished:
                tracker.info("early stop: no better validation CER for %d epochs", c.patience)
            p.epoch, p.batch, p.loss_sum, p.tokens, p.audio_s = p.epoch + 1, 0, 0.0, 0, 0.0
            if improved:
                save(BEST)
            save(LAST)
            if finished or out_of_time:
                break
        best, last = tracker.run_dir / BEST, tracker.run_dir / LAST
        if not stop:
            if distributed.from_rank_zero(not last.exists()):
                save(LAST)                        # no epoch ended: the models row still needs a file
            tracker.register_model(c.name, c.model.architecture, cfg.to_dict(c), best if best.exists() else last,
                                   num_parameters(model))
        status = "stopped" if stop else "completed"
        tracker.finish(status, elapsed())
    return Result(tracker.run_id, tracker.run_dir, status, p, best if best.exists() else None, model)


def main(argv: list[str] | None = None, prog: str = "python -m vasr.train") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="YAML training config, or a preset name: " + ", ".join(cfg.presets()))
    parser.add_argument("--resume", type=Path, help="continue from this checkpoint (its config is used)")
    parser.add_argument("--db", help="database path or URL (overrides the config's db)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML; train nothing")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. optim.lr=5e-4")
    args = parser.parse_args(argv)
    overrides = args.overrides + ([f"db={args.db}"] if args.db else [])
    if args.resume and (args.config or overrides or args.print_config):
        parser.error("--resume continues with the checkpoint's own config: drop --config, --db and overrides")
    try:
        config = cfg.load(TrainConfig, args.config, overrides)
        check_name(config.name)
    except ValueError as exc:  # a config error is one line, no traceback
        parser.exit(2, f"{prog}: error: {exc}\n")
    if args.print_config:
        return print(cfg.to_yaml(config), end="") or 0
    try:
        result = train(config, args.resume)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError) as exc:  # e.g. a refused checkpoint: one line naming the file
        parser.exit(2, f"{prog}: error: {exc}\n")
    finally:
        distributed.close()
    print(f"run {result.run_id} {result.status}: best val CER {100 * result.progress.best_cer:.2f}% "
          f"-> {result.best_checkpoint or result.run_dir / LAST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
