"""`vasr align` + `vasr clean` against transcripts corrupted on purpose: precision and recall per kind.

A copy of the default corpus's database (the espeak-ng synthetic corpus of `vasr demo`/`make demo`)
gets 5% of the transcripts of each split corrupted, in equal shares: *swap* (the transcripts of the
chosen utterances rotated among them), *truncate* (cut after 30-70% of the words) and *replace*
(one word replaced by another word of the corpus). Each split is aligned with the exported model and
judged by ``vasr.clean.flag`` with the default ``CleanConfig``. The model was trained on the train
split of that database: the held-out figures (val + test: voices it never heard) are the honest
ones; train is printed separately (the model has memorised those utterances, so a wrong word there
stands out far more than it would in a corpus the model was trained on with the errors in it).

Printed with ``-s`` (and stored in extra_info): per seed and per part, flagged, precision, recall,
recall per kind. The timed part is the alignment of the held-out splits (unit RTF: seconds of
compute per second of audio, one thread).

Inputs: ``VASR_BENCH_CLEAN_DB`` (default data/vasr.db, a SQLite file: it is copied, never written)
and ``VASR_BENCH_CLEAN_MODEL`` (default data/model); ``VASR_BENCH_CLEAN_SEEDS`` (default 0,1; quick
runs: 0 and held-out only). Skipped when either is missing.

The realistic case, a corpus whose model was trained with its errors in it: ``VASR_BENCH_CLEAN_FOLDS=K``
(default 0: off) also scores the train split by cross-fitting (``vasr align --folds K``: K tiny
models, each trained on the corrupted train split without its fold; about 11 minutes each here) and
prints it as part ``folds``; ``VASR_BENCH_CLEAN_TRAIN`` gives their training overrides (space-separated
KEY=VALUE).
"""
from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import pytest
from conftest import QUICK, label

DB = Path(os.environ.get("VASR_BENCH_CLEAN_DB", "data/vasr.db"))
MODEL = Path(os.environ.get("VASR_BENCH_CLEAN_MODEL", "data/model"))
SEEDS = [int(s) for s in os.environ.get("VASR_BENCH_CLEAN_SEEDS", "0" if QUICK else "0,1").split(",")]
FRACTION = 0.05
KINDS = ("swap", "truncate", "replace")
PARTS = {"held-out": ("val", "test"), "train": ("train",)}
FOLDS = int(os.environ.get("VASR_BENCH_CLEAN_FOLDS", "0"))
FOLD_TRAIN = tuple(os.environ.get("VASR_BENCH_CLEAN_TRAIN", "").split())


def corrupt(texts: dict[int, str], fraction: float, seed: int, vocabulary: list[str]) -> dict[int, tuple[str, str]]:
    """Corrupt ``fraction`` of ``texts`` (audio id -> normalised transcript), a third of them per kind;
    returns audio id -> (kind, the corrupted transcript)."""
    rng = random.Random(seed)
    per_kind = max(1, round(fraction * len(texts) / len(KINDS)))
    chosen = rng.sample(sorted(texts), per_kind * len(KINDS))
    out: dict[int, tuple[str, str]] = {}
    swap, truncate, replace = (chosen[k * per_kind:(k + 1) * per_kind] for k in range(len(KINDS)))
    for a, b in zip(swap, swap[1:] + swap[:1]):        # rotated: each gets the next one's transcript
        if texts[a] != texts[b]:
            out[a] = ("swap", texts[b])
    for a in truncate:
        words = texts[a].split()
        if len(words) > 1:
            keep = max(1, min(len(words) - 1, round(len(words) * rng.uniform(0.3, 0.7))))
            out[a] = ("truncate", " ".join(words[:keep]))
    for a in replace:
        words = texts[a].split()
        i = rng.randrange(len(words))
        word = words[i]
        while word == words[i]:
            word = rng.choice(vocabulary)
        words[i] = word
        out[a] = ("replace", " ".join(words))
    return out


def _scores(flagged: set[int], truth: dict[int, str], ids: set[int]) -> dict:
    positives = {a for a in ids if a in truth}
    hits = flagged & positives
    result = {"utterances": len(ids), "corrupted": len(positives), "flagged": len(flagged),
              "precision": len(hits) / len(flagged) if flagged else 1.0,
              "recall": len(hits) / len(positives) if positives else 1.0}
    for kind in KINDS:
        of_kind = {a for a in positives if truth[a] == kind}
        result[kind] = f"{len(hits & of_kind)}/{len(of_kind)}"
    return result


@pytest.fixture(scope="module")
def inputs():
    if not DB.is_file() or not (MODEL / "model.onnx").is_file():
        pytest.skip(f"needs the demo corpus: {DB} and {MODEL}/model.onnx (make demo, or set "
                    f"VASR_BENCH_CLEAN_DB and VASR_BENCH_CLEAN_MODEL)")
    return DB, MODEL


def _corrupted_copy(source: Path, target: Path, seed: int) -> dict[int, str]:
    """``target`` = a copy of ``source`` with each split's transcripts corrupted; audio id -> kind."""
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    from sqlalchemy import select, update

    from vasr.db import store
    from vasr.db.schema import data_splits, transcripts

    engine = store.connect(str(target))
    truth: dict[int, str] = {}
    with engine.begin() as conn:
        rows = conn.execute(select(transcripts.c.audio_id, transcripts.c.normalized_text, data_splits.c.split)
                            .join(data_splits, data_splits.c.audio_id == transcripts.c.audio_id)
                            .where(data_splits.c.version == "default")).all()
        vocabulary = sorted({w for r in rows for w in r.normalized_text.split()})
        for k, split in enumerate(("train", "val", "test")):
            texts = {r.audio_id: r.normalized_text for r in rows if r.split == split}
            for audio_id, (kind, text) in corrupt(texts, FRACTION, seed * 10 + k, vocabulary).items():
                conn.execute(update(transcripts).where(transcripts.c.audio_id == audio_id)
                             .values(normalized_text=text, raw_text=text))
                truth[audio_id] = kind
    engine.dispose()
    return truth


def test_clean_flags_corrupted_transcripts(benchmark, inputs, tmp_path):
    from vasr.align import AlignConfig, align_split
    from vasr.clean import CleanConfig, flag, load_scores
    from vasr.db import store

    db, model = inputs
    config = CleanConfig()
    table, missed = [], []
    for seed in SEEDS:
        target = tmp_path / f"corrupted-{seed}.db"
        truth = _corrupted_copy(db, target, seed)
        engine = store.connect(str(target))
        runs: dict[str, int] = {}

        def align(splits):
            for split in splits:
                runs[split] = align_split(AlignConfig(model_dir=str(model), split=split, db=str(target)), engine,
                                          progress=False).run_id

        if seed == SEEDS[0]:
            benchmark.pedantic(align, args=(PARTS["held-out"],), rounds=1, iterations=1)
        else:
            align(PARTS["held-out"])
        if not QUICK:
            align(PARTS["train"])
        if FOLDS:
            runs["folds"] = align_split(AlignConfig(folds=FOLDS, train_overrides=FOLD_TRAIN, db=str(target),
                                                    fold_dir=str(tmp_path / f"folds-{seed}")), engine).run_id
        for part, splits in {**PARTS, "folds": ("folds",)}.items():
            if not all(s in runs for s in splits):
                continue
            flagged, ids, all_rows = set(), set(), []
            with engine.connect() as conn:
                for split in splits:
                    rows = load_scores(conn, runs[split])
                    all_rows += rows
                    ids |= {r.audio_id for r in rows}
                    flagged |= {f.utterance.audio_id for f in flag(rows, config)}
            table.append({"seed": seed, "part": part, **_scores(flagged, truth, ids)})
            missed.extend((seed, part, truth[r.audio_id], r) for r in all_rows
                          if r.audio_id in truth and r.audio_id not in flagged)
        if seed == SEEDS[0]:
            from sqlalchemy import func, select

            from vasr.db.schema import alignment_runs, audio_files, data_splits

            with engine.connect() as conn:
                audio_s = conn.execute(select(func.sum(audio_files.c.duration_s)).join(
                    data_splits, data_splits.c.audio_id == audio_files.c.id).where(
                    data_splits.c.version == "default", data_splits.c.split.in_(PARTS["held-out"]))).scalar()
                assert conn.execute(select(func.count()).select_from(alignment_runs)).scalar() >= 2
        engine.dispose()
    label(benchmark, group="align corpus (held-out splits)", impl="vasr:onnx", unit="RTF", per=audio_s)
    benchmark.extra_info["clean"] = table
    print(f"\nvasr clean, {FRACTION:.0%} of transcripts corrupted; model {model}; config {config}")
    print(f"{'seed':>4} {'part':<9} {'utts':>5} {'bad':>4} {'flagged':>7} {'P':>5} {'R':>5}  "
          + "  ".join(f"{k:>8}" for k in KINDS))
    for row in table:
        print(f"{row['seed']:>4} {row['part']:<9} {row['utterances']:>5} {row['corrupted']:>4} {row['flagged']:>7} "
              f"{row['precision']:>5.2f} {row['recall']:>5.2f}  " + "  ".join(f"{row[k]:>8}" for k in KINDS))
    print("missed (seed, part, kind, audio id, speaker, greedy CER, worst word contrast in nats):")
    for seed, part, kind, r in missed:
        print(f"  {seed} {part:<9} {kind:<8} {r.audio_id:>6} {r.speaker or '-':<24} {_fmt(r.greedy_cer)} "
              f"{_fmt(r.word_contrast)}  ref: {r.text}  hyp: {r.hypothesis}")
    for row in table:                  # a regression guard: swapped and truncated transcripts are the easy kinds
        for kind in ("swap", "truncate"):
            found, of = map(int, row[kind].split("/"))
            assert found >= 0.8 * of, row
        assert row["precision"] >= 0.8, row


def _fmt(value: float | None) -> str:
    return "    -" if value is None else f"{value:5.2f}"
