"""Training: ``vasr train --config tiny [key=value ...] [--resume CKPT]`` (= ``python -m vasr.train``).

A linear loop in the spirit of nanoGPT's: AdamW, a pure ``get_lr(step)`` (linear warm-up, cosine
decay), gradient clipping and accumulation, bf16 autocast on CPU or fp16 + GradScaler on CUDA,
``torch.compile`` behind a flag, DistributedDataParallel under torchrun (``vasr.distributed``).
Checkpoints (``vasr.checkpoint``): ``last.pt`` at every epoch end and on a stop, ``best.pt`` on a new
best validation CER; ``--resume`` continues exactly (a run stopped and resumed ends with the weights
of an uninterrupted one). Every run is a training_runs row (``vasr.tracker``) that leaves ``running``
only as ``completed``, ``stopped`` (Ctrl-C: stop at the next step with a checkpoint; twice: abort) or ``failed``;
a process killed outright leaves it ``running``, shown as ``stale`` once the process is gone (heartbeat, pid).

Guards: ``check_config`` refuses a value out of its bounds (one line naming the key and the bound) before
anything is written; a step whose loss or gradient is not finite is skipped with a warning, and
NONFINITE_STEPS of them in a row (or non-finite validation outputs or parameters) fail the run with
``Diverged``: nothing non-finite is saved and no model is registered. Training utterances longer than
``data.max_duration_s`` are counted in the log (an error when none is left).
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
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from vasr import checkpoint, distributed, config as cfg
from vasr.data.augment import AugmentConfig, records as augment_records
from vasr.data.dataset import BatchDataset, DataConfig, TargetEncoder, loader, make_batches
from vasr.data.shards import training_split
from vasr.db import runs, store
from vasr.kernels import corpus_cer, corpus_wer, ctc_greedy_search
from vasr.model import CtcModel, ModelConfig, ctc_loss_sum, num_parameters
from vasr.text.tokens import BpeTokenizer, CharTokenizer
from vasr.tracker import RunTracker, check_name, check_run_dir, hardware

LAST, BEST = "last.pt", "best.pt"
NONFINITE_STEPS = 3    # optimizer steps in a row with a non-finite loss or gradient before the run fails
THREADS_PER_CORE = 4   # threads above this many per CPU core are refused


class Diverged(RuntimeError):
    """Training produced non-finite losses, gradients, outputs or parameters: the run has failed."""


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
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"   # bf16: CPU or CUDA autocast; fp16: CUDA only;
                                              # auto: bf16 where the device computes it natively, else fp32
    compile: bool = False                     # torch.compile the model
    device: str = "auto"                      # auto | cpu | cuda | cuda:N
    threads: int = 0                          # torch intra-op threads; 0 = torch's default
    sample_predictions: int = 20              # validation predictions stored at each new best
    init_from: str | None = None              # fine-tune: a checkpoint whose weights, tokenizer, CMVN and model
                                              # section start this run (a new run; its own schedule and data)
    progress: bool = True                     # tqdm progress bar on rank 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware: a CUDA GPU that supports it, a CPU with AVX512-BF16 or
    AMX. Elsewhere autocast emulates it: the tiny preset trained at 7 audio s/s in bf16 on an AVX2 EPYC
    against 74-85 in fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run computes in: ``auto`` is bf16 where ``native_bf16``, fp32 elsewhere."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def autocast(precision: str, device: torch.device):
    """Training's autocast context factory for a resolved ``precision`` (off for fp32)."""
    return functools.partial(torch.autocast, device.type, dtype=torch.float16 if precision == "fp16"
                             else torch.bfloat16, enabled=precision != "fp32")


def check_spelling(tokenizer, texts: list[str], checkpoint_path: str, split_version: str) -> None:
    """ValueError when the training transcripts hold characters that ``tokenizer`` (a fine-tuned
    checkpoint's) cannot spell: the model could never learn to write them."""
    missing: dict[str, int] = {}
    known: dict[str, bool] = {}
    for text in texts:
        for ch in set(text) - {" "}:
            if ch not in known:
                try:
                    known[ch] = bool(tokenizer.encode(ch))
                except ValueError:
                    known[ch] = False
            if not known[ch]:
                missing[ch] = missing.get(ch, 0) + 1
    if missing:
        shown = ", ".join(f"{ch!r} ({n} transcripts)" for ch, n in sorted(missing.items(), key=lambda kv: (-kv[1], kv[0]))[:8])
        raise ValueError(f"init_from {checkpoint_path}: its tokenizer cannot spell {len(missing)} character(s) of "
                         f"the training transcripts of split version {split_version!r}: {shown}; fine-tune on "
                         "text in the same alphabet, or train from scratch")


def get_lr(step: int, optim: OptimConfig, total_steps: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine to the floor."""
    if step < optim.warmup_steps:
        return optim.lr * (step + 1) / optim.warmup_steps
    span = max(1, total_steps - optim.warmup_steps)
    progress = min(1.0, (step - optim.warmup_steps) / span)
    floor = optim.lr * optim.min_lr_ratio
    return floor + (optim.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def check_config(c: TrainConfig, resumed: bool = False) -> None:
    """ValueError naming the first key of ``c`` outside its bounds and the bound (the model section checks
    itself: ``ModelConfig``). ``resumed``: a checkpoint's config, whose thread count this machine may lack
    (then capped, not refused)."""
    from vasr.kernels import FbankOptions

    cores = os.cpu_count() or 1
    finite = math.isfinite
    o, d = c.optim, c.data
    checks = [
        ("epochs", c.epochs, c.epochs >= 1, ">= 1"),
        ("max_steps", c.max_steps, c.max_steps >= 0, ">= 0 (0 = the epochs decide)"),
        ("max_minutes", c.max_minutes, finite(c.max_minutes) and c.max_minutes >= 0, ">= 0 (0 = no budget)"),
        ("patience", c.patience, c.patience >= 0, ">= 0 (0 = never stop early)"),
        ("seed", c.seed, 0 <= c.seed < 2 ** 31, "in [0, 2^31)"),
        ("threads", c.threads, 0 <= c.threads and (resumed or c.threads <= THREADS_PER_CORE * cores),
         f"between 0 (torch's default) and {THREADS_PER_CORE * cores} ({THREADS_PER_CORE} x {cores} CPU cores)"),
        ("sample_predictions", c.sample_predictions, c.sample_predictions >= 0, ">= 0"),
        ("optim.lr", o.lr, finite(o.lr) and o.lr > 0, "> 0 and finite"),
        ("optim.betas", list(o.betas), all(0.0 <= b < 1.0 for b in o.betas), "two values in [0, 1)"),
        ("optim.weight_decay", o.weight_decay, finite(o.weight_decay) and o.weight_decay >= 0, ">= 0 and finite"),
        ("optim.warmup_steps", o.warmup_steps, o.warmup_steps >= 0, ">= 0"),
        ("optim.min_lr_ratio", o.min_lr_ratio, 0.0 <= o.min_lr_ratio <= 1.0, "in [0, 1]"),
        ("optim.clip_norm", o.clip_norm, finite(o.clip_norm) and o.clip_norm >= 0, ">= 0 and finite (0 = off)"),
        ("optim.accum_steps", o.accum_steps, o.accum_steps >= 1, ">= 1"),
        ("data.max_frames", d.max_frames, d.max_frames >= 1, ">= 1 (padded frames per batch)"),
        ("data.num_buckets", d.num_buckets, d.num_buckets >= 1, ">= 1"),
        ("data.num_workers", d.num_workers, d.num_workers >= 0, ">= 0 (0 = in the training process)"),
        ("data.max_duration_s", d.max_duration_s, finite(d.max_duration_s) and d.max_duration_s > 0,
         "> 0 and finite (seconds)"),
        ("data.dither", d.dither, finite(d.dither) and d.dither >= 0, ">= 0 and finite"),
        ("data.cmvn_utterances", d.cmvn_utterances, d.cmvn_utterances >= 0, ">= 0 (0 = all)"),
        ("data.shard_size", d.shard_size, d.shard_size >= 0, ">= 0 (0 = plan over the whole split)"),
        ("data.shuffle_shards", d.shuffle_shards, d.shuffle_shards >= 1, ">= 1 (shards per shuffle window)"),
        ("tokenizer.vocab_size", c.tokenizer.vocab_size, c.tokenizer.vocab_size >= 2, ">= 2"),
        ("model.num_mel_bins", c.model.num_mel_bins, c.model.num_mel_bins == FbankOptions().num_bins,
         f"{FbankOptions().num_bins} (the bins of the runtime's fbank)"),
    ] + [(f"augment.{f.name}.prob", getattr(c.augment, f.name).prob,
          0.0 <= getattr(c.augment, f.name).prob <= 1.0, "in [0, 1]") for f in dataclasses.fields(c.augment)]
    for key, value, ok, bound in checks:
        if not ok:
            raise ValueError(f"{key} must be {bound}, got {value!r}")
    c.model.check()


def _all_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


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
    status: str                    # completed | stopped (a failed run raises)
    progress: Progress
    best_checkpoint: Path | None
    model: CtcModel                # this process's trained copy (under DDP every rank holds the same)


@torch.no_grad()
def validate(model: CtcModel, records: list, encoder: TargetEncoder, c: TrainConfig, device: torch.device,
             amp: functools.partial, beat: Callable[[], None] = lambda: None) -> dict:
    """Loss per token (nats), greedy CER / WER over ``records``, and the first ``c.sample_predictions``
    predictions; ``amp()`` is training's autocast context (off for fp32). Outputs that are not finite
    (a diverged model) end it early with ``nonfinite`` true. ``beat`` is called after every batch."""
    model.eval()
    batches = make_batches([r.duration_s for r in records], c.data.max_frames, c.seed, 0, shuffle=False)
    loss_sum, tokens, seen, hyps = 0.0, 0, [], []
    for batch in loader(BatchDataset(records, batches, encoder), 0, c.data.num_workers):
        with amp():
            log_probs, out_lens = model(batch["x"].to(device), batch["x_lens"].to(device))
        if bool(torch.isnan(log_probs).any() | torch.isposinf(log_probs).any()):
            model.train()
            return {"loss": math.nan, "cer": math.nan, "wer": math.nan, "samples": [], "nonfinite": True}
        beat()
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


EXTENDABLE = ("epochs", "max_steps", "max_minutes", "patience")   # what a resumed run may change: its budget


def train(config: TrainConfig, resume: str | os.PathLike | None = None, stop_at_step: int | None = None,
          extend: dict | None = None) -> Result:
    """Train ``config`` (or continue the checkpoint ``resume``, whose config wins) to the end (epochs,
    max_steps, early stopping or the time budget) or to a stop. ``extend``: new values of the
    ``EXTENDABLE`` keys for the resumed run (a finished run given more epochs or minutes goes on; the
    cosine schedule then stretches to the new length).

    stop_at_step: behave as if Ctrl-C arrived right after this optimizer step (tests, time slicing).
    Raises ValueError for a config out of bounds (before anything is written), ``Diverged`` when
    training goes non-finite (the run is then ``failed``).
    """
    loaded = checkpoint.load_checkpoint(resume) if resume else None
    c = loaded.config if loaded else config
    if loaded and extend:
        unknown = sorted(set(extend) - set(EXTENDABLE))
        if unknown:
            raise ValueError(f"{resume}: a resumed run keeps its config; only {', '.join(EXTENDABLE)} may be given "
                             f"(to extend it), not {unknown[0]}")
        c = dataclasses.replace(c, **extend)
    base = None
    if c.init_from and not loaded:
        base = checkpoint.load_checkpoint(c.init_from)
        c = dataclasses.replace(c, model=base.config.model, tokenizer=base.config.tokenizer)
    try:
        check_config(c, resumed=loaded is not None)
    except ValueError as exc:
        raise ValueError(f"{resume}: {exc}" if loaded else str(exc)) from None
    if loaded:  # the run continues in the directory its checkpoint names: one made for it (vasr.tracker)
        try:
            check_run_dir(loaded.raw.get("run_dir", ""), c.name, loaded.raw.get("run_id", 0))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{resume}: {exc}") from None
    else:
        check_name(c.name)
    if c.threads:
        torch.set_num_threads(min(c.threads, THREADS_PER_CORE * (os.cpu_count() or 1)))
    rank, world, device = distributed.setup(c.device)
    if c.precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs CUDA; use bf16 or fp32 on CPU")
    precision = resolve_precision(c.precision, device)
    for seed in (torch.manual_seed, random.seed, np.random.seed):
        seed(c.seed + rank)
    with distributed.rank_zero_first(rank):       # rank 0 creates or upgrades the schema
        engine = store.connect(c.db, upgrade=rank == 0)
    with engine.connect() as conn:   # training utterances from the database or from shards (vasr.data.shards)
        source = training_split(c.data, conn)
        val_records = runs.split_records(conn, "val", c.data.split_version)
    train_records, too_long = source.records, source.too_long
    longest = (f"the longest {too_long[0].duration_s:.1f} s, audio id {too_long[0].audio_id}" if too_long else "")
    if not train_records and too_long:
        raise ValueError(f"split version {c.data.split_version!r}: all {len(too_long)} training utterances are "
                         f"longer than data.max_duration_s={c.data.max_duration_s:g} s ({longest}); raise "
                         f"data.max_duration_s or cut the audio into segments")
    if not train_records:
        raise ValueError(f"split version {c.data.split_version!r} has no training utterances")

    if loaded:
        tokenizer, model = loaded.tokenizer, loaded.model
    elif base is not None:
        tokenizer, model = base.tokenizer, base.model.train()
        check_spelling(tokenizer, [r.text for r in train_records], c.init_from, c.data.split_version)
    else:
        texts = [r.text for r in train_records]
        tokenizer = (BpeTokenizer.train(texts, c.tokenizer.vocab_size, Path(c.out_dir) / f".{c.name}-bpe")
                     if c.tokenizer.kind == "bpe" else CharTokenizer.build(texts))
        model = CtcModel(c.model, tokenizer.vocab_size)
        mean, std = source.cmvn(limit=c.data.cmvn_utterances)
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
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    amp = autocast(precision, device)
    per_epoch = math.ceil(len(source.plan(c.data, c.seed, 0, rank, world)) / o.accum_steps)
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
            "precision": precision, "compile": c.compile, "num_parameters": num_parameters(model),
            "vocab_size": tokenizer.vocab_size, "architecture": c.model.architecture,
            "train_utterances": len(train_records), "val_utterances": len(val_records),
            "skipped_long_utterances": len(too_long)},
            hardware(device, world), augment_records(c.augment), tokenizer)
    started = time.perf_counter()

    def elapsed() -> float:  # training wall time of the run, seconds, over every process that worked on it
        return p.elapsed_s + time.perf_counter() - started

    def save(name: str) -> None:
        if not _all_finite(model):     # the same on every rank (DDP keeps them equal): all raise together
            raise Diverged(f"non-finite parameters at epoch {p.epoch + 1}, step {p.step}: not saved as {name}")
        rng = distributed.gather(checkpoint.rng_state())     # every rank's, so that a resume is exact
        if rank == 0:
            checkpoint.save(tracker.run_dir / name, config=c, model=model, optimizer=optimizer, scaler=scaler,
                            tokenizer=tokenizer, progress={**dataclasses.asdict(p), "elapsed_s": elapsed()},
                            rng=rng, run_id=tracker.run_id, run_dir=tracker.run_dir)

    tracker.info("run %d: %d parameters, vocabulary %d, %d train / %d val utterances, %d steps planned",
                 tracker.run_id, num_parameters(model), tokenizer.vocab_size, len(train_records),
                 len(val_records), total_steps)
    if too_long:
        tracker.warning("%d training utterance(s) longer than data.max_duration_s=%g s skipped (%s)",
                        len(too_long), c.data.max_duration_s, longest)
    stop, bad_steps = False, 0
    with tracker.recording(elapsed), distributed.StopFlag() as flag:
        while p.epoch < c.epochs and p.step < total_steps:
            dataset = source.dataset(source.plan(c.data, c.seed, p.epoch, rank, world), encoder, fbank=c.data.fbank,
                                     augment=c.augment, seed=c.seed, epoch=p.epoch, spec_fill=spec_fill)
            epoch_start = time.perf_counter()
            window_audio, micro, out_of_time = 0.0, 0, False
            step_loss, step_tokens, bad = 0.0, 0, None    # this optimizer step's, kept only when it is taken
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
                loss_value = float(loss_sum.detach())
                if not math.isfinite(loss_value) and bad is None:
                    bad = f"loss ({loss_value})"
                step_loss += loss_value
                step_tokens += tokens
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
                bad = bad if not distributed.any_rank(bad is not None) else bad or "loss (on another rank)"
                if bad is None and (o.clip_norm > 0 or not scaler.is_enabled()):
                    if o.clip_norm > 0:
                        scaler.unscale_(optimizer)
                    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_norm or math.inf))
                    if not math.isfinite(norm) and not scaler.is_enabled():  # fp16: GradScaler skips the step
                        bad = f"gradient norm ({norm})"                      # (all ranks: gradients are reduced)
                if bad is None:
                    scaler.step(optimizer)
                    scaler.update()
                    p.step += 1
                    p.loss_sum, p.tokens, bad_steps = p.loss_sum + step_loss, p.tokens + step_tokens, 0
                else:  # skipped: the weights stay as they were; NONFINITE_STEPS in a row end the run
                    bad_steps += 1
                    where = f"non-finite {bad} at epoch {p.epoch + 1}, step {p.step + 1} (batch {i + 1})"
                    if bad_steps >= NONFINITE_STEPS:
                        raise Diverged(f"{where}, {bad_steps} steps in a row: training stopped; lower optim.lr, "
                                       f"use precision fp32, or check the training audio")
                    tracker.warning("%s: step skipped (%d of %d in a row fail the run)", where, bad_steps,
                                    NONFINITE_STEPS)
                optimizer.zero_grad(set_to_none=True)
                step_loss, step_tokens, bad = 0.0, 0, None
                tracker.beat()
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
            val = distributed.from_rank_zero(validate(model, val_records, encoder, c, device, amp, tracker.beat)
                                             if rank == 0 else None)
            if val.get("nonfinite"):
                raise Diverged(f"non-finite validation outputs after epoch {p.epoch + 1}, step {p.step}: the model "
                               f"diverged; lower optim.lr, use precision fp32, or check the training audio")
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


# jemalloc (Debian libjemalloc2), never giving pages back: the process keeps its peak working set
JEMALLOC = tuple(f"/usr/lib/{arch}-linux-gnu/libjemalloc.so.2" for arch in ("x86_64", "aarch64"))
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
ALLOCATOR_ENV = "VASR_ALLOCATOR"          # "system" keeps the C library's malloc


def use_jemalloc(argv: list[str], prog: str) -> None:
    """Run this training process again under jemalloc, when it is installed and not loaded yet.

    glibc's malloc fragments under batches of a new shape every step: 100 steps of the tiny model on
    random batch shapes grew from 0.9 to 2.2 GB RSS (and a tiny run on the demo corpus by ~0.3 GB an
    epoch), and every fix inside glibc traded it for page faults (a fixed 128 KiB mmap threshold:
    flat RSS, 9x the system time). jemalloc with its decay off holds the same loop at 1.33-1.35 GB
    with less CPU (user 34.3 s, system 0.2 s against 34.3 s and 3.0 s). ``VASR_ALLOCATOR=system``
    opts out; DataLoader workers and torchrun's ranks inherit the preload."""
    if os.environ.get(ALLOCATOR_ENV, "jemalloc") != "jemalloc" or "jemalloc" in os.environ.get("LD_PRELOAD", ""):
        return
    lib = next((path for path in JEMALLOC if os.path.exists(path)), None)
    if lib is None:
        return
    env = dict(os.environ, LD_PRELOAD=" ".join(filter(None, (lib, os.environ.get("LD_PRELOAD")))),
               MALLOC_CONF=os.environ.get("MALLOC_CONF", JEMALLOC_CONF), VASR_TRAIN_PROG=prog)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "vasr.train", *argv], env)


def main(argv: list[str] | None = None, prog: str = "python -m vasr.train", own_process: bool | None = None) -> int:
    """The training command. ``own_process`` (default: when ``argv`` comes from this process's command
    line): this process is the command, so it may be re-run under jemalloc (``use_jemalloc``); never
    when called from another program (a test, a notebook)."""
    if own_process is None:
        own_process = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = os.environ.get("VASR_TRAIN_PROG", prog)
    if own_process:
        use_jemalloc(argv, prog)
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="YAML training config, or a preset name: " + ", ".join(cfg.presets()))
    parser.add_argument("--resume", type=Path, help="continue from this checkpoint (its config is used; "
                                                    f"{', '.join(EXTENDABLE)}=N extend its budget)")
    parser.add_argument("--db", help="database path or URL (overrides the config's db)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML; train nothing")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. optim.lr=5e-4")
    args = parser.parse_args(argv)
    overrides = args.overrides + ([f"db={args.db}"] if args.db else [])
    extend = {}
    if args.resume:
        keys = [o.split("=", 1)[0] for o in args.overrides]
        if args.config or args.db or args.print_config or any(k not in EXTENDABLE for k in keys):
            parser.error("--resume continues with the checkpoint's own config: drop --config and --db; of the "
                         f"overrides only {', '.join(EXTENDABLE)} may be given (to extend the run)")
        try:
            extend = dataclasses.asdict(cfg.load(TrainConfig, None, args.overrides))
        except ValueError as exc:
            parser.exit(2, f"{prog}: error: {exc}\n")
        extend = {k: extend[k] for k in keys}
        overrides = []
    try:
        config = cfg.load(TrainConfig, args.config, overrides)
        check_name(config.name)
        check_config(config)
    except ValueError as exc:  # a config error is one line, no traceback
        parser.exit(2, f"{prog}: error: {exc}\n")
    if args.print_config:
        return print(cfg.to_yaml(config), end="") or 0
    try:
        result = train(config, args.resume, extend=extend)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError) as exc:  # e.g. a refused checkpoint: one line naming the file
        parser.exit(2, f"{prog}: error: {exc}\n")
    except Diverged as exc:                          # the run is marked failed, nothing registered
        parser.exit(1, f"{prog}: error: run failed: {exc}\n")
    finally:
        distributed.close()
    print(f"run {result.run_id} {result.status}: best val CER {100 * result.progress.best_cer:.2f}% "
          f"-> {result.best_checkpoint or result.run_dir / LAST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
