"""Looking at training runs: ``vasr runs list|show|compare|plot``.

Everything is read through ``vasr.db.runs``; the only user string that shapes a query, the sort
key, is checked against its whitelist there. Statuses are shown as ``runs.run_state`` gives them: a
``running`` row whose process is gone or silent is ``stale``. ``plot`` draws loss and CER curves per epoch into a
PNG with matplotlib's Agg backend (no display needed).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from vasr.db import runs


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _num(value: float | None, fmt: str = ".4f") -> str:
    return "-" if value is None else format(value, fmt)


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def list_runs(engine: Engine, sort: str = "id", ascending: bool = False, limit: int = 50) -> str:
    """One line per run: id, name, status (``stale``: see ``show``), epochs, best CER / WER, best val loss,
    duration, start."""
    with engine.connect() as conn:
        rows = runs.list_runs(conn, sort, descending=not ascending, limit=limit)
        epochs = {r.id: len(runs.run_epochs(conn, r.id)) for r in rows}
    header = f"{'id':>4}  {'name':<16}{'status':<10}{'epochs':>7}{'best CER':>10}{'best WER':>10}{'val loss':>10}" \
             f"{'duration':>11}  started"
    lines = [header]
    for r in rows:
        started = r.started_at.strftime("%Y-%m-%d %H:%M") if r.started_at else "-"
        lines.append(f"{r.id:>4}  {r.name[:15]:<16}{runs.run_state(r)[0]:<10}{epochs[r.id]:>7}{_pct(r.best_cer):>10}"
                     f"{_pct(r.best_wer):>10}{_num(r.best_val_loss):>10}{_duration(r.duration_s):>11}  {started}")
    return "\n".join(lines)


def show_run(engine: Engine, run_id: int) -> str:
    """A run's summary, hardware, hyperparameters, augmentations, epochs and sample predictions."""
    with engine.connect() as conn:
        r = runs.get_run(conn, run_id)
        epochs = runs.run_epochs(conn, run_id)
        augs = runs.run_augmentations(conn, run_id)
        preds = runs.run_predictions(conn, run_id=run_id)
    status, why = runs.run_state(r)
    lines = [f"run {r.id} {r.name!r}: {status}{f' ({why})' if why else ''}, split version {r.split_version!r}, "
             f"{_duration(r.duration_s)}, best CER {_pct(r.best_cer)}, best WER {_pct(r.best_wer)}",
             f"hardware: {json.dumps(r.hardware, ensure_ascii=False)}",
             f"hyperparameters: {json.dumps(r.hyperparameters, ensure_ascii=False)}"]
    if r.error:
        lines.append(f"error: {r.error}")
    if augs:
        lines.append("augmentations: " + ", ".join(f"{a.name} p={a.probability:g}" for a in augs if a.enabled)
                     or "augmentations: none")
    lines.append(f"{'epoch':>5}{'train loss':>12}{'val loss':>10}{'CER':>9}{'WER':>9}{'lr':>10}{'time':>9}")
    lines += [f"{e.epoch:>5}{_num(e.train_loss):>12}{_num(e.val_loss):>10}{_pct(e.cer):>9}{_pct(e.wer):>9}"
              f"{_num(e.learning_rate, '.2e'):>10}{_num(e.duration_s, '.0f'):>8}s" for e in epochs]
    if preds:
        lines.append("sample predictions (validation, best epoch):")
        lines += [f"  ref: {p.reference}\n  hyp: {p.text}" for p in preds]
    return "\n".join(lines)


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def compare_runs(engine: Engine, run_ids: list[int]) -> str:
    """Metrics side by side, then the config keys whose values differ between the runs."""
    with engine.connect() as conn:
        rows = [runs.get_run(conn, i) for i in run_ids]
        epochs = [runs.run_epochs(conn, i) for i in run_ids]
    width = 14
    lines = ["".ljust(18) + "".join(f"run {r.id}".rjust(width) for r in rows)]
    metrics = [("status", lambda r, e: runs.run_state(r)[0]), ("epochs", lambda r, e: str(len(e))),
               ("best CER", lambda r, e: _pct(r.best_cer)), ("best WER", lambda r, e: _pct(r.best_wer)),
               ("best val loss", lambda r, e: _num(r.best_val_loss)),
               ("final train loss", lambda r, e: _num(r.final_train_loss)),
               ("duration", lambda r, e: _duration(r.duration_s)),
               ("parameters", lambda r, e: str((r.hyperparameters or {}).get("num_parameters", "-")))]
    for label, get in metrics:
        lines.append(label.ljust(18) + "".join(get(r, e).rjust(width) for r, e in zip(rows, epochs)))
    configs = [_flatten(r.config or {}) for r in rows]
    keys = sorted({k for c in configs for k in c})
    differing = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]
    if differing:
        lines.append("config differences:")
        for k in differing:
            lines.append(f"  {k}".ljust(18) + "".join(str(c.get(k, "-"))[: width - 1].rjust(width) for c in configs))
    return "\n".join(lines)


def plot_runs(engine: Engine, run_ids: list[int], out: str | Path) -> Path:
    """Train/val loss and val CER per epoch of each run, side by side, written to the PNG ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with engine.connect() as conn:
        series = [(runs.get_run(conn, i), runs.run_epochs(conn, i)) for i in run_ids]
    fig, (ax_loss, ax_cer) = plt.subplots(1, 2, figsize=(11, 4))
    for run, epochs in series:
        x = [e.epoch for e in epochs]
        label = f"run {run.id} {run.name}"
        line, = ax_loss.plot(x, [e.train_loss for e in epochs], label=f"{label} train")
        ax_loss.plot(x, [e.val_loss for e in epochs], "--", color=line.get_color(), label=f"{label} val")
        ax_cer.plot(x, [100 * e.cer if e.cer is not None else None for e in epochs], color=line.get_color(),
                    label=label)
    ax_loss.set(xlabel="epoch", ylabel="CTC loss per token (nats)", title="loss")
    ax_cer.set(xlabel="epoch", ylabel="CER (%)", title="validation CER (greedy)")
    for ax in (ax_loss, ax_cer):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
