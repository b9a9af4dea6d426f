"""The `vasr` command line. Thin: each subcommand builds a config and calls one library function."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from vasr import __version__


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLite path or SQLAlchemy URL (default: $VASR_DB or data/vasr.db)")


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file with this stage's options")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one option, e.g. --set rate_wpm=[140,170] (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vasr", description="Vietnamese speech-to-text toolkit")
    parser.add_argument("--version", action="version", version=f"vasr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="render the synthetic Vietnamese corpus with espeak-ng and import it")
    p.add_argument("--n", type=int, help="number of utterances")
    p.add_argument("--out", help="output folder (wavs/ and manifest.csv)")
    p.add_argument("--text", help="UTF-8 text file, one sentence per line (default: system message catalogues)")
    p.add_argument("--seed", type=int)
    p.add_argument("--no-import", action="store_true", help="render only; do not write the database")
    _add_config(p)
    _add_db(p)

    p = sub.add_parser("import", help="import a corpus into the database")
    p.add_argument("kind", choices=("csv", "vivos", "commonvoice", "kaldi"))
    p.add_argument("path", help="manifest file (csv) or corpus directory")
    p.add_argument("--audio-root", help="folder that relative audio paths are resolved against")
    p.add_argument("--split", help="kaldi: the split of this data dir (train, val/dev, test)")
    p.add_argument("--skip-bad", action="store_true", help="import the good rows and record the rejects")
    p.add_argument("--auto-split", action="store_true",
                   help="seeded speaker-disjoint train/val/test split for utterances without one")
    p.add_argument("--split-version", default="default")
    p.add_argument("--ratios", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--seed", type=int, default=0)
    _add_db(p)

    db = sub.add_parser("db", help="database maintenance and statistics").add_subparsers(dest="db_command",
                                                                                         required=True)
    p = db.add_parser("stats", help="hours, utterances and speakers per split")
    p.add_argument("--split-version", default="default")
    _add_db(p)
    p = db.add_parser("upgrade", help="migrate the schema to the newest revision")
    _add_db(p)
    p = db.add_parser("split", help="speaker-disjoint split of every utterance that has none")
    p.add_argument("--split-version", default="default")
    p.add_argument("--ratios", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--seed", type=int, default=0)
    _add_db(p)

    p = sub.add_parser("bench", help="benchmark the kernels against peer libraries on this machine")
    p.add_argument("--quick", action="store_true", help="a fast pass with smaller inputs")
    p.add_argument("--out", type=Path, default=Path("bench-report"), help="folder for bench.md/json/png")
    p.add_argument("--only", nargs="*", default=[], help="benchmark name filters (pytest -k terms)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--benchmarks", type=Path, help="the benchmarks folder (default: the source checkout's)")

    p = sub.add_parser("demo", help="the main job on the embedded default: synth -> database -> statistics")
    p.add_argument("--n", type=int, help="number of utterances (default: the synth default)")
    p.add_argument("--out", default="data/synth")
    _add_db(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"vasr {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _synth(args) -> int:
    from vasr import config as cfg
    from vasr.data.synth import SynthConfig, synthesize
    from vasr.db import store

    flags = {"n": args.n, "out_dir": args.out, "text": args.text, "seed": args.seed}
    config = cfg.load(SynthConfig, args.config, args.overrides)
    config = dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})
    start = time.perf_counter()
    engine = None if args.no_import else store.connect(args.db)
    jobs, report = synthesize(config, engine)
    print(f"rendered {len(jobs)} utterances into {config.out_dir} in {time.perf_counter() - start:.1f} s")
    if report is not None:
        print(report.format())
        _print_stats(engine, config.split_version)
    return 0


def _import(args) -> int:
    from vasr.data.importers import ImportOptions, ImportRejected, import_corpus
    from vasr.db import store

    options = ImportOptions(skip_bad=args.skip_bad, auto_split=args.auto_split, split_version=args.split_version,
                            split_ratios=tuple(args.ratios), seed=args.seed)
    engine = store.connect(args.db)
    try:
        report = import_corpus(args.kind, args.path, engine, options, args.audio_root, args.split)
    except ImportRejected as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(report.format())
    return 0


def _db(args) -> int:
    from vasr.db import store

    engine = store.connect(args.db)
    if args.db_command == "stats":
        _print_stats(engine, args.split_version)
    elif args.db_command == "upgrade":
        with engine.connect() as conn:
            print(f"schema at revision {store.schema_revision(conn)}")
    elif args.db_command == "split":
        with engine.begin() as conn:
            counts = store.auto_split(conn, args.split_version, tuple(args.ratios), args.seed)
        print("assigned: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def _print_stats(engine, split_version: str) -> None:
    from vasr.db import store

    with engine.connect() as conn:
        rows = store.dataset_stats(conn, split_version) + [store.corpus_totals(conn)]
    print(f"{'split':<8}{'utterances':>12}{'hours':>10}{'speakers':>10}{'words':>10}   (split version "
          f"{split_version!r})")
    for r in rows:
        print(f"{r.split:<8}{r.utterances:>12}{r.hours:>10.3f}{r.speakers:>10}{r.words:>10}")


def _bench(args) -> int:
    from vasr.bench import run_bench

    report = run_bench(args.out, quick=args.quick, only=args.only, threads=args.threads,
                       benchmarks_dir=args.benchmarks)
    print(report.summary())
    return 0


def _demo(args) -> int:
    overrides = ["synth", "--out", args.out] + (["--n", str(args.n)] if args.n else [])
    return main(overrides + (["--db", args.db] if args.db else []))


_COMMANDS = {"synth": _synth, "import": _import, "db": _db, "bench": _bench, "demo": _demo}
