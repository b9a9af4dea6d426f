"""Training the punctuation model: ``vasr punct train [--config FILE] [--set key=value]``.

Paragraphs of the training sources (``vasr.punct.corpus``) minus a validation share are cut into windows
of random length each epoch; the vocabulary is built on them. The loop is vasr.train's in miniature:
AdamW, its ``get_lr`` (warm-up, cosine), gradient clipping, a wall-time budget, the weights of the
epoch with the best validation loss kept. Then ``punct.onnx`` and ``punct.json`` are written, and the
held-out source, never trained on, is scored through the runtime (``vasr.runtime.punct.Punctuator``);
its figures go into punct.json. The run is a training_runs row with one epoch_metrics row per epoch.
"""
from __future__ import annotations

import collections
import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from vasr import config as cfg
from vasr.data.textsource import DEFAULT_LOCALE_DIR
from vasr.db import runs, store
from vasr.model import num_parameters
from vasr.punct.corpus import (GNOME_HELP_DIR, HELP_DIR, evaluation_windows, help_root, is_validation,
                               source_paragraphs, training_windows)
from vasr.punct.export import export_onnx, write_description
from vasr.punct.labels import Labelled
from vasr.punct.metrics import Scores, score
from vasr.punct.model import PunctModel, PunctModelConfig
from vasr.runtime.punct import Features, Punctuator
from vasr.tracker import hardware
from vasr.train import OptimConfig, get_lr

__all__ = ["PunctConfig", "Result", "build_features", "check_sources", "train"]

IGNORE = -100                 # target of a padded position


@dataclass(frozen=True)
class PunctConfig:
    name: str = "punct"                       # run name; the model's version is <name>-<run id>
    db: str | None = None                     # database of the run (default: $VASR_DB or data/vasr.db)
    out_dir: str = "punct"                    # the model directory written (punct.onnx, punct.json)
    seed: int = 0
    # trained on (vasr.punct.corpus.SOURCES): the help's 175k words of prose carry the commas; measured on
    # GNOME's Vietnamese help (the held-out source), period/comma F1 0.66/0.30 against 0.55/0.08 for
    # catalogues + generated and 0.63/0.32 for all three
    sources: tuple[str, ...] = ("libreoffice", "generated")
    heldout: str = "gnome"                    # a source never trained on, scored into punct.json; "" = none
    locale_dir: str = DEFAULT_LOCALE_DIR      # the catalogues source
    help_dir: str = HELP_DIR                  # the libreoffice source
    gnome_dir: str = GNOME_HELP_DIR           # the gnome source
    text_file: str | None = None              # the file source: one paragraph per line
    generated: int = 12000                    # sentences of the generated source
    val_share: float = 0.05                   # of the training paragraphs: validation, for choosing the epoch
    min_count: int = 2                        # vocabulary: training words seen at least this often ...
    max_vocab: int = 8000                     # ... the most frequent this many
    buckets: int = 4096                       # character n-gram hash buckets; 0 = no n-grams
    orders: tuple[int, ...] = (2, 3)          # n-gram lengths
    min_window: int = 6                       # words per training window, drawn uniformly
    max_window: int = 64
    eval_window: int = 40                     # validation and held-out windows: whole paragraphs up to this
    batch_windows: int = 64                   # windows per optimizer step
    epochs: int = 12
    max_minutes: float = 4.0                  # wall-time budget of the loop; 0 = none
    threads: int = 0                          # torch intra-op threads; 0 = torch's default
    model: PunctModelConfig = field(default_factory=PunctModelConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=3e-3, warmup_steps=100))


@dataclass
class Result:
    run_id: int
    out_dir: Path
    heldout: dict                             # Scores.as_dict() of the held-out source, {} when none
    num_parameters: int
    seconds: float


def _paragraphs(c: PunctConfig, source: str) -> list[Labelled]:
    return source_paragraphs(source, locale_dir=c.locale_dir, help_dir=c.help_dir, gnome_dir=c.gnome_dir,
                             text_file=c.text_file, generated=c.generated, seed=c.seed)


def check_sources(c: PunctConfig) -> None:
    """FileNotFoundError naming the source, its Debian package and the way round it when a help source
    of ``c`` (trained on or held out) is not installed; ``vasr demo`` asks before its first stage."""
    directories = {"libreoffice": c.help_dir, "gnome": c.gnome_dir}
    for source in (*c.sources, c.heldout):
        if source in directories:
            try:
                help_root(source, directories[source])
            except FileNotFoundError as exc:
                role, hint = (("held-out", "--set heldout='' trains without one") if source == c.heldout else
                              ("training", f"--set sources=[...] without {source}"))
                raise FileNotFoundError(f"{role} source {source}: {exc}; {hint}") from None


def build_features(paragraphs: Sequence[Labelled], c: PunctConfig) -> Features:
    counts = collections.Counter(w for p in paragraphs for w in p.words)
    words = [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= c.min_count]
    return Features(tuple(words[: c.max_vocab]), c.buckets, c.orders)


def _tensors(features: Features, windows: Sequence[Labelled]) -> tuple[torch.Tensor, ...]:
    """Model inputs and (marks, cases) targets, IGNORE where padded."""
    word_ids, gram_ids, lengths = (torch.from_numpy(a) for a in features.encode([w.words for w in windows]))
    marks = torch.full(word_ids.shape, IGNORE, dtype=torch.long)
    cases = marks.clone()
    for n, w in enumerate(windows):
        marks[n, : len(w.words)] = torch.tensor(w.marks)
        cases[n, : len(w.words)] = torch.tensor(w.cases)
    return word_ids, gram_ids, lengths, marks, cases


def _loss(model: PunctModel, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(summed loss of both heads over the batch's words, mark logits, case logits)."""
    word_ids, gram_ids, lengths, marks, cases = batch
    mark_logits, case_logits = model(word_ids, gram_ids, lengths)
    loss = (F.cross_entropy(mark_logits.flatten(0, 1), marks.flatten(), ignore_index=IGNORE, reduction="sum")
            + F.cross_entropy(case_logits.flatten(0, 1), cases.flatten(), ignore_index=IGNORE, reduction="sum"))
    return loss, mark_logits, case_logits


@torch.no_grad()
def validate(model: PunctModel, features: Features, windows: Sequence[Labelled], batch: int) -> tuple[float, Scores]:
    """(loss per word, scores of the model's own choices) on ``windows``."""
    model.eval()
    total, scores = 0.0, Scores()
    for i in range(0, len(windows), batch):
        part = windows[i:i + batch]
        tensors = _tensors(features, part)
        loss, mark_logits, case_logits = _loss(model, tensors)
        total += float(loss)
        for n, w in enumerate(part):
            size = len(w.words)
            scores.add(w.marks, w.cases, mark_logits[n, :size].argmax(-1).tolist(),
                       case_logits[n, :size].argmax(-1).tolist())
    model.train()
    return total / max(1, scores.words), scores


def _summary(scores: Scores) -> str:
    d = scores.as_dict()
    return ", ".join(f"{m} F1 {s['f1']:.3f}" for m, s in d["marks"].items()) + f", case {d['case_accuracy']:.4f}"


def train(c: PunctConfig, report: Callable[[str], None] = print) -> Result:
    """Train, export and score ``c``; ``report`` gets one line per stage and epoch."""
    started = time.perf_counter()
    if c.heldout in c.sources:
        raise ValueError(f"held-out source {c.heldout!r} is also a training source")
    if c.epochs < 1 or not 0 < c.min_window <= c.max_window:
        raise ValueError(f"epochs must be >= 1 and 0 < min_window <= max_window, got {c.epochs}, {c.min_window}, "
                         f"{c.max_window}")
    if c.threads:
        torch.set_num_threads(c.threads)
    check_sources(c)
    torch.manual_seed(c.seed)
    rng = random.Random(c.seed)
    paragraphs = {source: _paragraphs(c, source) for source in c.sources}
    train_set = [p for ps in paragraphs.values() for p in ps if not is_validation(p, c.val_share)]
    val_set = [p for ps in paragraphs.values() for p in ps if is_validation(p, c.val_share)]
    if not train_set:
        raise ValueError(f"no training paragraphs in sources {', '.join(c.sources)}")
    heldout = _paragraphs(c, c.heldout) if c.heldout else []
    features = build_features(train_set, c)
    model = PunctModel(c.model, len(features.vocabulary) + 2, c.buckets)
    val_windows = evaluation_windows(val_set, c.eval_window)
    report(f"{len(train_set)} training / {len(val_set)} validation paragraphs ("
           + ", ".join(f"{s} {len(ps)}" for s, ps in paragraphs.items()) + f"), {len(heldout)} held out "
           f"({c.heldout or 'none'}); vocabulary {len(features.vocabulary)}, {num_parameters(model)} parameters; "
           f"data read in {time.perf_counter() - started:.0f} s")

    words = sum(len(p.words) for p in train_set)
    per_epoch = math.ceil(words / ((c.min_window + c.max_window) / 2) / c.batch_windows / c.optim.accum_steps)
    total_steps = per_epoch * c.epochs
    engine = store.connect(c.db)
    run_id = runs.create_run(engine, c.name, cfg.to_dict(c), {
        "kind": "punct", "lr": c.optim.lr, "total_steps": total_steps, "num_parameters": num_parameters(model),
        "vocabulary": len(features.vocabulary), "train_paragraphs": len(train_set), "train_words": words,
        "val_paragraphs": len(val_set), "heldout": c.heldout, "heldout_paragraphs": len(heldout)},
        "none", hardware(torch.device("cpu"), 1))
    try:
        best, last, loop_s = _loop(c, model, features, train_set, val_windows, total_steps, engine, run_id, rng,
                                   report)
        model.load_state_dict(best["state"])
        result = _finish(c, model, features, train_set, heldout, run_id, report)
        runs.update_run(engine, run_id, best_val_loss=best["val_loss"], final_train_loss=last["train_loss"],
                        final_val_loss=last["val_loss"])
        runs.finish_run(engine, run_id, "completed", loop_s)
    except BaseException as exc:
        runs.finish_run(engine, run_id, "stopped" if isinstance(exc, KeyboardInterrupt) else "failed",
                        time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        engine.dispose()
    result.seconds = time.perf_counter() - started
    return result


def _loop(c: PunctConfig, model: PunctModel, features: Features, train_set: list[Labelled],
          val_windows: list[Labelled], total_steps: int, engine, run_id: int, rng: random.Random,
          report: Callable[[str], None]) -> tuple[dict, dict, float]:
    """The epochs; returns the best epoch's {state, val_loss}, the last one's {train_loss, val_loss} and the
    seconds."""
    o = c.optim
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    started, step, out_of_time = time.perf_counter(), 0, False
    best = {"val_loss": math.inf}
    model.train()
    for epoch in range(c.epochs):
        epoch_start, loss_sum, seen = time.perf_counter(), 0.0, 0
        windows = training_windows(train_set, rng, c.min_window, c.max_window)
        for i in range(0, len(windows), c.batch_windows):
            batch = _tensors(features, windows[i:i + c.batch_windows])
            loss, _, _ = _loss(model, batch)
            n = int((batch[3] != IGNORE).sum())
            (loss / max(1, n) / o.accum_steps).backward()
            loss_sum, seen = loss_sum + float(loss.detach()), seen + n
            if (i // c.batch_windows + 1) % o.accum_steps:
                continue
            # the schedule follows steps or the time budget, whichever is further along, so that a busy
            # machine still anneals the learning rate before the budget ends the loop
            spent = (time.perf_counter() - started) / (60 * c.max_minutes) if c.max_minutes else 0.0
            for group in optimizer.param_groups:
                group["lr"] = get_lr(max(step, round(spent * total_steps)), o, total_steps)
            if o.clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            out_of_time = c.max_minutes > 0 and time.perf_counter() - started > 60 * c.max_minutes
            if out_of_time:
                break
        val_loss, scores = (validate(model, features, val_windows, c.batch_windows) if val_windows
                            else (math.nan, Scores()))
        seconds = time.perf_counter() - epoch_start
        runs.add_epoch(engine, run_id, runs.EpochMetrics(epoch + 1, loss_sum / max(1, seen), val_loss, None, None,
                                                         optimizer.param_groups[0]["lr"], seconds))
        improved = not val_loss >= best["val_loss"]  # a NaN loss (no validation) counts as better
        if improved:
            best = {"state": copy.deepcopy(model.state_dict()), "val_loss": val_loss}
        last = {"train_loss": loss_sum / max(1, seen), "val_loss": val_loss}
        report(f"epoch {epoch + 1}: train loss {loss_sum / max(1, seen):.4f}, val loss {val_loss:.4f}, "
               f"{_summary(scores)}, {seconds:.0f} s{' (best)' if improved else ''}")
        if out_of_time:
            report(f"time budget of {c.max_minutes} min reached after {step} of {total_steps} steps")
            break
    return best, last, time.perf_counter() - started


def _finish(c: PunctConfig, model: PunctModel, features: Features, train_set: list[Labelled],
            heldout: list[Labelled], run_id: int, report: Callable[[str], None]) -> Result:
    """Export, check parity, score the held-out source through the runtime, write punct.json."""
    out = Path(c.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sample = [list(w.words) for w in evaluation_windows(train_set[:64], c.eval_window)][:16]
    diff = export_onnx(model, out, features, sample)
    version = f"{c.name}-{run_id}"
    write_description(out, features, version, cfg.to_dict(c), {})
    figures = {}
    if heldout:
        scores = score(evaluation_windows(heldout, c.eval_window), Punctuator(out))
        figures = {"source": c.heldout, "window": c.eval_window, **scores.as_dict()}
        report(f"held out ({c.heldout}, runtime rules):\n{scores.table()}")
        write_description(out, features, version, cfg.to_dict(c), figures)
    report(f"wrote {out / 'punct.onnx'} (parity {diff:.1e}) and punct.json, version {version}")
    return Result(run_id, out, figures, num_parameters(model), 0.0)
