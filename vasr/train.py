"""Training: ``python -m vasr.train --config vasr/configs/tiny.yaml [key=value ...] [--resume CKPT]``.

A linear loop in the spirit of nanoGPT's: AdamW, a pure ``get_lr(step)`` (linear warm-up, cosine
decay), gradient clipping and accumulation, bf16 autocast on CPU or fp16 + GradScaler on CUDA,
``torch.compile`` behind a flag, DistributedDataParallel under torchrun (gloo on CPU, nccl on CUDA).

Checkpoints (``last.pt`` at every epoch end and on a stop, ``best.pt`` on a new best validation
CER) hold the config, tokenizer, CMVN, optimizer and scaler states, the step, the data position
(epoch, next batch) and every rank's RNG states; they are written to a temporary file and renamed.
``--resume`` continues exactly: a run stopped after k steps and resumed ends with the weights of an
uninterrupted one. Every run is a training_runs row; it leaves ``running`` only through
``completed``, ``stopped`` (Ctrl-C: the first one stops at the next step boundary with a
checkpoint, a second one aborts) or ``failed`` (an exception).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import os
import platform
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from vasr import __version__
from vasr import config as cfg
from vasr.data.augment import AugmentConfig, records as augment_records
from vasr.data.dataset import BatchDataset, DataConfig, TargetEncoder, compute_cmvn, loader, make_batches
from vasr.db import runs, store
from vasr.kernels import corpus_cer, corpus_wer, ctc_greedy_search
from vasr.model import CtcModel, ModelConfig, num_parameters
from vasr.text.tokens import BpeTokenizer, CharTokenizer, Tokenizer

LAST, BEST = "last.pt", "best.pt"
LOG_FILE = "train.log"
CHECKPOINT_FORMAT = 1    # bump when the checkpoint layout changes
log = logging.getLogger("vasr.train")


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
    name: str = "vasr"                        # run and model name
    db: str | None = None                     # database (default: $VASR_DB or data/vasr.db)
    out_dir: str = "runs"                     # a run writes to out_dir/<name>-<run id>/
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


# ------------------------------------------------------------------------------------------ checkpoints

def tokenizer_state(tokenizer: Tokenizer) -> dict:
    state = {"kind": tokenizer.kind, "symbols": tokenizer.symbols}
    if isinstance(tokenizer, BpeTokenizer):
        state["bpe_model"] = tokenizer._model_proto
    return state


def tokenizer_from_state(state: dict) -> Tokenizer:
    return BpeTokenizer(state["bpe_model"]) if state["kind"] == "bpe" else CharTokenizer(state["symbols"])


@dataclass
class Loaded:
    """A checkpoint ready for inference."""
    model: CtcModel
    tokenizer: Tokenizer
    config: TrainConfig
    raw: dict                                  # everything the file holds


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> Loaded:
    """The model (in eval mode), tokenizer and config of a checkpoint written by ``train``."""
    raw = torch.load(path, map_location=device, weights_only=False)
    if raw.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a vasr checkpoint of format {CHECKPOINT_FORMAT}")
    config = cfg.from_dict(TrainConfig, raw["config"])
    tokenizer = tokenizer_from_state(raw["tokenizer"])
    model = CtcModel(config.model, tokenizer.vocab_size).to(device)
    model.load_state_dict(raw["model"])
    return Loaded(model.eval(), tokenizer, config, raw)


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------- the loop

@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""
    step: int = 0                  # optimizer steps done
    epoch: int = 0                 # current epoch (0-based)
    batch: int = 0                 # next batch index of the current epoch
    loss_sum: float = 0.0          # this epoch's summed CTC loss (nats) ...
    tokens: int = 0                # ... over this many target tokens
    audio_s: float = 0.0           # audio seconds trained on this epoch
    best_cer: float = math.inf
    best_wer: float = math.inf
    best_val_loss: float = math.inf
    bad_epochs: int = 0            # epochs since the best CER
    elapsed_s: float = 0.0         # training wall time before this process started


@dataclass
class Result:
    run_id: int
    run_dir: Path
    status: str                    # completed | stopped
    progress: Progress
    best_checkpoint: Path | None


class _StopFlag:
    """SIGINT or SIGTERM (torchrun, schedulers): stop at the next step boundary with a checkpoint;
    a second signal aborts at once (KeyboardInterrupt; the run is still marked stopped)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.set = False
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, *_):
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _distributed(device: str) -> tuple[int, int]:
    """(rank, world size): from torchrun's environment, else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def _hardware(device: torch.device, world: int) -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "device": str(device),
            "world_size": world, "vasr": __version__}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _any_rank(flag: bool, world: int) -> bool:
    if world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t)
    return bool(t.item() > 0)


class Trainer:
    def __init__(self, config: TrainConfig, resume: str | os.PathLike | None = None, stop_at_step: int | None = None):
        ckpt = torch.load(resume, map_location="cpu", weights_only=False) if resume else None
        if ckpt is not None:
            config = cfg.from_dict(TrainConfig, ckpt["config"])
        self.config = c = config
        self.stop_at_step = stop_at_step
        if c.threads:
            torch.set_num_threads(c.threads)
        self.device = torch.device("cuda" if c.device == "auto" and torch.cuda.is_available()
                                   else "cpu" if c.device == "auto" else c.device)
        if c.precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision fp16 needs CUDA; use bf16 or fp32 on CPU")
        self.rank, self.world = _distributed(str(self.device))
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        torch.manual_seed(c.seed + self.rank)
        random.seed(c.seed + self.rank)
        np.random.seed(c.seed + self.rank)

        if self.rank == 0:
            self.engine = store.connect(c.db)
        self._barrier()
        if self.rank != 0:
            self.engine = store.connect(c.db, upgrade=False)
        with self.engine.connect() as conn:
            self.train_records = [r for r in runs.split_records(conn, "train", c.data.split_version)
                                  if r.duration_s <= c.data.max_duration_s]
            self.val_records = runs.split_records(conn, "val", c.data.split_version)
        if not self.train_records:
            raise ValueError(f"split version {c.data.split_version!r} has no training utterances")

        if ckpt is not None:
            self.tokenizer = tokenizer_from_state(ckpt["tokenizer"])
        elif c.tokenizer.kind == "bpe":
            self.tokenizer = BpeTokenizer.train([r.text for r in self.train_records], c.tokenizer.vocab_size,
                                                Path(c.out_dir) / f".{c.name}-bpe")
        else:
            self.tokenizer = CharTokenizer.build(r.text for r in self.train_records)
        self.encoder = TargetEncoder(self.tokenizer)
        self.model = CtcModel(c.model, self.tokenizer.vocab_size)
        if ckpt is not None:
            self.model.load_state_dict(ckpt["model"])
        else:
            mean, std = compute_cmvn(self.train_records, limit=c.data.cmvn_utterances)
            self.model.set_cmvn(torch.from_numpy(mean).float(), torch.from_numpy(std).float())
        self.model.to(self.device)
        self.spec_fill = self.model.cmvn_mean.cpu().numpy()
        self.net = self.ddp = self.model
        if self.world > 1:
            self.net = self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if c.compile:
            self.net = torch.compile(self.net, dynamic=True)
        o = c.optim
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=c.precision == "fp16")
        self.progress = Progress()
        batches_per_epoch = len(make_batches([r.duration_s for r in self.train_records], c.data.max_frames, c.seed,
                                             0, c.data.num_buckets, True, self.rank, self.world))
        per_epoch = math.ceil(batches_per_epoch / o.accum_steps)
        self.total_steps = c.max_steps or per_epoch * c.epochs

        if ckpt is not None:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scaler.load_state_dict(ckpt["scaler"])
            self.progress = Progress(**ckpt["progress"])
            states = ckpt["rng"]
            _set_rng_state(states[self.rank] if self.rank < len(states) else states[0])
            self.run_id = ckpt["run_id"]
            self.run_dir = Path(ckpt["run_dir"])
            if self.rank == 0:
                runs.set_running(self.engine, self.run_id)
        else:
            self.run_id = runs.create_run(self.engine, c.name, cfg.to_dict(c), self._hyperparameters(),
                                          c.data.split_version, _hardware(self.device, self.world)) \
                if self.rank == 0 else 0
            self.run_dir = Path(c.out_dir).resolve() / f"{c.name}-{self.run_id}" if self.rank == 0 else Path()
            if self.rank == 0:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                self.tokenizer.save(self.run_dir / "tokenizer")
                runs.add_augmentations(self.engine, self.run_id, augment_records(c.augment))
        self._logging()

    def _hyperparameters(self) -> dict:
        c = self.config
        return {"lr": c.optim.lr, "warmup_steps": c.optim.warmup_steps, "total_steps": self.total_steps,
                "max_frames": c.data.max_frames, "accum_steps": c.optim.accum_steps, "world_size": self.world,
                "precision": c.precision, "compile": c.compile, "num_parameters": num_parameters(self.model),
                "vocab_size": self.tokenizer.vocab_size, "architecture": c.model.architecture,
                "train_utterances": len(self.train_records), "val_utterances": len(self.val_records)}

    def _logging(self) -> None:
        self._handlers = []
        if self.rank != 0:
            return
        log.setLevel(logging.INFO)
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
        for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(self.run_dir / LOG_FILE)):
            handler.setFormatter(fmt)
            log.addHandler(handler)
            self._handlers.append(handler)
        log.propagate = False

    def _barrier(self) -> None:
        if dist.is_initialized():
            dist.barrier()

    def _autocast(self):
        if self.config.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    # ------------------------------------------------------------------------------------------- run

    def run(self) -> Result:
        """Train to the end (epochs, max_steps, early stopping or time budget) or to a stop."""
        self._start = time.perf_counter()
        status, error = "failed", None
        try:
            with _StopFlag() as flag:
                status = self._loop(flag)
            return Result(self.run_id, self.run_dir, status, self.progress,
                          self.run_dir / BEST if (self.run_dir / BEST).exists() else None)
        except KeyboardInterrupt:
            status = "stopped"
            raise
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if self.rank == 0:
                runs.finish_run(self.engine, self.run_id, status, self._elapsed(), error)
                log.info("run %d %s", self.run_id, status)
            for handler in self._handlers:
                log.removeHandler(handler)
                handler.close()
            self.engine.dispose()

    def _elapsed(self) -> float:
        """Training wall time of the run, seconds, over every process that worked on it."""
        return self.progress.elapsed_s + time.perf_counter() - self._start

    def _loop(self, flag: _StopFlag) -> str:
        c, p = self.config, self.progress
        if self.rank == 0:
            log.info("run %d: %d parameters, vocabulary %d, %d train / %d val utterances, %d steps planned",
                     self.run_id, num_parameters(self.model), self.tokenizer.vocab_size, len(self.train_records),
                     len(self.val_records), self.total_steps)
        durations = [r.duration_s for r in self.train_records]
        while p.epoch < c.epochs and p.step < self.total_steps:
            batches = make_batches(durations, c.data.max_frames, c.seed, p.epoch, c.data.num_buckets, True,
                                   self.rank, self.world)
            dataset = BatchDataset(self.train_records, batches, self.encoder, augment=c.augment, seed=c.seed,
                                   epoch=p.epoch, spec_fill=self.spec_fill)
            epoch_start = time.perf_counter()
            stop, out_of_time = self._epoch(dataset, flag)
            if stop:
                self._save(LAST)
                return "stopped"
            finished = self._end_epoch(time.perf_counter() - epoch_start)
            if finished or out_of_time:
                break
        self._finish_model()
        return "completed"

    def _epoch(self, dataset: BatchDataset, flag: _StopFlag) -> tuple[bool, bool]:
        """Train on the rest of this epoch; returns (stopped by signal or stop_at_step, out of time)."""
        c, p = self.config, self.progress
        self.net.train()
        bar = tqdm(total=len(dataset), initial=p.batch, desc=f"epoch {p.epoch + 1}", unit="batch", leave=False,
                   disable=True if not c.progress or self.rank != 0 else None,  # None: terminals only
                   dynamic_ncols=True)
        window_audio, window_start = 0.0, time.perf_counter()
        micro = 0
        for i, batch in zip(range(p.batch, len(dataset)), loader(dataset, p.batch, c.data.num_workers)):
            micro += 1
            last_micro = micro == c.optim.accum_steps or i == len(dataset) - 1
            sync = contextlib.nullcontext() if last_micro or self.world == 1 else self.ddp.no_sync()
            with sync:
                loss_sum, tokens = self._forward_backward(batch, c.optim.accum_steps)
            p.loss_sum += loss_sum
            p.tokens += tokens
            p.audio_s += batch["audio_s"]
            window_audio += batch["audio_s"]
            bar.update(1)
            if not last_micro:
                continue
            micro = 0
            self._optimizer_step()
            p.batch = i + 1
            bar.set_postfix(loss=f"{p.loss_sum / max(1, p.tokens):.3f}", lr=f"{self._lr():.2e}",
                            audio_s_per_s=f"{window_audio / (time.perf_counter() - window_start):.0f}")
            stop = flag.set or (self.stop_at_step is not None and p.step >= self.stop_at_step)
            out_of_time = c.max_minutes > 0 and self._elapsed() > 60 * c.max_minutes
            stop, out_of_time = _any_rank(stop, self.world), _any_rank(out_of_time, self.world)
            if stop or out_of_time or p.step >= self.total_steps:
                bar.close()
                return stop, out_of_time
        bar.close()
        return False, False

    def _lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def _forward_backward(self, batch: dict, accum: int) -> tuple[float, int]:
        x, x_lens = batch["x"].to(self.device), batch["x_lens"].to(self.device)
        targets, target_lens = batch["targets"].to(self.device), batch["target_lens"].to(self.device)
        with self._autocast():
            log_probs, out_lens = self.net(x, x_lens)
        loss_sum = F.ctc_loss(log_probs.float().transpose(0, 1), targets, out_lens, target_lens, blank=0,
                              reduction="sum", zero_infinity=True)
        tokens = int(target_lens.sum())
        self.scaler.scale(loss_sum / max(1, tokens) / accum).backward()
        return float(loss_sum.detach()), tokens

    def _optimizer_step(self) -> None:
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = get_lr(self.progress.step, c.optim, self.total_steps)
        if c.optim.clip_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.optim.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.progress.step += 1

    def _end_epoch(self, seconds: float) -> bool:
        """Validate, record, checkpoint; True when early stopping ends training."""
        c, p = self.config, self.progress
        train_loss = p.loss_sum / max(1, p.tokens)
        throughput = p.audio_s * self.world / max(seconds, 1e-9)
        val = self.validate() if self.rank == 0 else None
        finished = False
        if self.rank == 0:
            improved = val["cer"] < p.best_cer
            if improved:
                p.best_cer, p.best_wer, p.bad_epochs = val["cer"], val["wer"], 0
            else:
                p.bad_epochs += 1
            p.best_val_loss = min(p.best_val_loss, val["loss"])
            log.info("epoch %d: train loss %.4f, val loss %.4f, CER %.2f%%, WER %.2f%%, lr %.2e, %.0f s, "
                     "%.0f audio s/s%s", p.epoch + 1, train_loss, val["loss"], 100 * val["cer"], 100 * val["wer"],
                     self._lr(), seconds, throughput, " (best)" if improved else "")
            runs.add_epoch(self.engine, self.run_id, runs.EpochMetrics(
                p.epoch + 1, train_loss, val["loss"], val["cer"], val["wer"], self._lr(), seconds))
            runs.update_run(self.engine, self.run_id, best_cer=p.best_cer, best_wer=p.best_wer,
                            best_val_loss=p.best_val_loss, final_train_loss=train_loss, final_val_loss=val["loss"])
            if improved:
                runs.replace_predictions(self.engine, self.run_id, "greedy", val["samples"])
            if self.encoder.unknown:
                log.warning("characters outside the tokenizer, dropped from targets: %s",
                            " ".join(sorted(self.encoder.unknown)))
            finished = c.patience > 0 and p.bad_epochs >= c.patience
            if finished:
                log.info("early stop: no better validation CER for %d epochs", c.patience)
            improved_flag = improved
        else:
            improved_flag = False
        finished = _any_rank(finished, self.world)
        improved_flag = _any_rank(improved_flag, self.world)
        p.epoch += 1
        p.batch, p.loss_sum, p.tokens, p.audio_s = 0, 0.0, 0, 0.0
        if improved_flag:
            self._save(BEST)
        self._save(LAST)
        return finished

    @torch.no_grad()
    def validate(self) -> dict:
        """Loss per token, greedy CER / WER on the validation split, and sample predictions."""
        c = self.config
        self.model.eval()
        batches = make_batches([r.duration_s for r in self.val_records], c.data.max_frames, c.seed, 0, shuffle=False)
        loss_sum, tokens, refs, hyps, samples = 0.0, 0, [], [], []
        for batch in loader(BatchDataset(self.val_records, batches, self.encoder), 0, c.data.num_workers):
            with self._autocast():
                log_probs, out_lens = self.model(batch["x"].to(self.device), batch["x_lens"].to(self.device))
            loss_sum += float(F.ctc_loss(log_probs.float().transpose(0, 1), batch["targets"].to(self.device),
                                         out_lens, batch["target_lens"].to(self.device), blank=0,
                                         reduction="sum", zero_infinity=True))
            tokens += int(batch["target_lens"].sum())
            lp = log_probs.float().cpu().numpy()
            for k, r in enumerate(batch["records"]):
                text = ctc_greedy_search(lp[k, : int(out_lens[k])], symbols=self.tokenizer.symbols).text
                refs.append(r.text)
                hyps.append(text)
                if len(samples) < c.sample_predictions:
                    samples.append({"audio_id": r.audio_id, "text": text, "reference": r.text,
                                    "cer": corpus_cer([r.text], [text]).rate, "wer": corpus_wer([r.text], [text]).rate})
        self.model.train()
        if not refs:
            return {"loss": math.nan, "cer": math.nan, "wer": math.nan, "samples": []}
        return {"loss": loss_sum / max(1, tokens), "cer": corpus_cer(refs, hyps).rate,
                "wer": corpus_wer(refs, hyps).rate, "samples": samples}

    def _save(self, name: str) -> None:
        rng = [_rng_state()]
        if self.world > 1:
            rng = [None] * self.world
            dist.all_gather_object(rng, _rng_state())
        if self.rank != 0:
            return
        save_atomic({
            "format": CHECKPOINT_FORMAT, "vasr_version": __version__, "config": cfg.to_dict(self.config),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(), "tokenizer": tokenizer_state(self.tokenizer),
            "cmvn": {"mean": self.model.cmvn_mean.cpu(), "istd": self.model.cmvn_istd.cpu()},
            "progress": {**dataclasses.asdict(self.progress), "elapsed_s": self._elapsed()}, "rng": rng,
            "run_id": self.run_id, "run_dir": str(self.run_dir), "num_parameters": num_parameters(self.model)}, self.run_dir / name)

    def _finish_model(self) -> None:
        """Register the best checkpoint (else the last one) in models and link it to the run."""
        if self.rank != 0:
            return
        path = self.run_dir / BEST if (self.run_dir / BEST).exists() else self.run_dir / LAST
        if not path.exists():
            self._save(LAST)
        model_id = runs.register_model(self.engine, self.config.name, f"run{self.run_id}",
                                       self.config.model.architecture, cfg.to_dict(self.config), str(path),
                                       num_parameters(self.model))
        runs.update_run(self.engine, self.run_id, model_id=model_id)


def train(config: TrainConfig, resume: str | os.PathLike | None = None, stop_at_step: int | None = None) -> Result:
    """Train ``config`` (or continue the checkpoint ``resume``, whose config wins).

    stop_at_step: behave as if Ctrl-C arrived right after this optimizer step (tests, time slicing).
    """
    return Trainer(config, resume, stop_at_step).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vasr.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="YAML training config (vasr/configs/tiny.yaml ...)")
    parser.add_argument("--resume", type=Path, help="continue from this checkpoint (its config is used)")
    parser.add_argument("--db", help="database path or URL (overrides the config's db)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. optim.lr=5e-4")
    args = parser.parse_args(argv)
    overrides = args.overrides + ([f"db={args.db}"] if args.db else [])
    if args.resume and (args.config or overrides):
        parser.error("--resume continues with the checkpoint's own config: drop --config, --db and overrides")
    config = cfg.load(TrainConfig, args.config, overrides)
    try:
        result = train(config, args.resume)
    except KeyboardInterrupt:
        return 130
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    print(f"run {result.run_id} {result.status}: best val CER {100 * result.progress.best_cer:.2f}% "
          f"-> {result.best_checkpoint or result.run_dir / LAST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
