"""The `vasr` command line. Thin: each subcommand builds a config and calls one library function
(the parser is ``vasr.arguments``).

`vasr train ARGS` is `python -m vasr.train ARGS`: the options pass through unchanged. Every stage
whose library function takes a config dataclass has --print-config: the resolved config as YAML,
and nothing run. Config errors (a misspelt key, an ill-typed value) are one line on stderr, exit 2.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

from vasr import config as cfg
from vasr.arguments import build_parser

BROKEN_PIPE_EXIT = 141  # 128 + SIGPIPE, what a C tool killed by the closed pipe would exit with
INTERRUPTED_EXIT = 130  # 128 + SIGINT
MODEL_FRAME_MS = 40     # one output frame of vasr's models: 10 ms fbank shift x subsampling 4
# top-level module -> the extra of pyproject.toml that installs it (a missing one is named in one line)
EXTRA_OF = {**dict.fromkeys(("sqlalchemy", "alembic"), "db"), "psycopg": "postgres", "numba": "numba",
            **dict.fromkeys(("torch", "onnx", "sentencepiece"), "train"),
            **dict.fromkeys(("gensim", "faiss", "kenlm", "threadpoolctl"), "embed"),
            **dict.fromkeys(("starlette", "uvicorn", "websockets", "multipart", "python_multipart"), "serve"),
            **dict.fromkeys(("pytest", "pytest_benchmark", "matplotlib"), "bench")}

def main(argv: list[str] | None = None) -> int:
    """Run one command. Errors are one line on stderr: exit 2 for a bad command line, option, config
    or missing extra (ValueError and kin), 1 for inputs that failed or anything unforeseen; with
    --debug (anywhere) or VASR_DEBUG=1 the traceback instead. A closed stdout (``| head``) ends the
    command quietly."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get("VASR_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    command = argv[0] if argv else "vasr"
    try:
        if argv[:1] == ["train"]:
            return _train(argv[1:])
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        # argparse (before 3.12) fills a '*' positional at its first chance: audio files given after
        # an option of `transcribe` come back here as extras
        if args.command == "transcribe" and not [e for e in extra if e.startswith("-") and e != "-"]:
            args.audio += extra
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        command = _command_name(args)
        return _COMMANDS[args.command](args)
    except BrokenPipeError:
        # the reader went away: stop writing (Python would complain again flushing stdout at exit)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_EXIT
    except Exception as exc:
        if debug:
            raise
        return _error(command, exc)
    except KeyboardInterrupt:
        print(f"vasr {command}: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT


def _command_name(args) -> str:
    """``embed build`` for `vasr embed build`, ``synth`` for `vasr synth`."""
    nested = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {nested}" if nested else args.command


def _fail(command: str, exc: Exception) -> int:
    print(f"vasr {command}: error: {exc}", file=sys.stderr)
    return 2


def _error(command: str, exc: Exception) -> int:
    """The one line (and exit status) of an exception that ended ``command``."""
    if isinstance(exc, ModuleNotFoundError):
        return _missing(command, exc)
    if isinstance(exc, (ValueError, RuntimeError, FileNotFoundError, ImportError)):
        return _fail(command, exc)
    if isinstance(exc, OSError):             # FileExistsError, PermissionError, a full disk ...: name the file
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"vasr {command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"vasr {command}: internal error: {type(exc).__name__}: {exc} (--debug or VASR_DEBUG=1 shows the "
          f"traceback)", file=sys.stderr)
    return 1


def _missing(command: str, exc: ModuleNotFoundError) -> int:
    """A package of an extra that is not installed: which one, and how to install it."""
    top = (exc.name or "").split(".")[0]
    if top not in EXTRA_OF:
        return _fail(command, exc)
    print(f"vasr {command}: error: needs the {top!r} package, which is not installed: "
          f"pip install 'vasr[{EXTRA_OF[top]}]'", file=sys.stderr)
    return 2


def _stream_chunk(chunk_ms: int) -> int:
    """--chunk-ms as model frames of 40 ms."""
    from vasr.runtime.stream import MAX_CHUNK

    if not 0 < chunk_ms <= MAX_CHUNK * MODEL_FRAME_MS or chunk_ms % MODEL_FRAME_MS:
        raise ValueError(f"--chunk-ms {chunk_ms}: expected a multiple of {MODEL_FRAME_MS} ms (one model frame) "
                         f"from {MODEL_FRAME_MS} to {MAX_CHUNK * MODEL_FRAME_MS}")
    return chunk_ms // MODEL_FRAME_MS


def _print_config(config) -> int:
    print(cfg.to_yaml(config), end="")
    return 0


def _train(argv: list[str]) -> int:
    """`vasr train ARGV` = `python -m vasr.train ARGV` (its errors end as every command's do)."""
    from vasr import train

    # the process's own `vasr train ...` (not a call from a test or a notebook) may re-run itself under jemalloc
    return train.main(argv, prog="vasr train", own_process=sys.argv[1:] == ["train", *argv])


def _synth(args) -> int:
    from vasr.data.synth import SynthConfig, bias_config, synthesize, synthesize_bias
    from vasr.db import store

    flags = {"n": args.n, "out_dir": args.out, "text": args.text, "seed": args.seed, "distractors": args.distractors}
    config = cfg.load(SynthConfig, args.config, args.overrides)
    if args.bias or config.bias:
        config = bias_config(config)
    config = dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})
    if args.print_config:
        return _print_config(config)
    start = time.perf_counter()
    engine = None if args.no_import else store.connect(args.db)
    bias_set = synthesize_bias(config, engine) if config.bias else None
    jobs, report = (bias_set.jobs, bias_set.report) if bias_set else synthesize(config, engine)
    print(f"rendered {len(jobs)} utterances into {config.out_dir} in {time.perf_counter() - start:.1f} s")
    if bias_set:
        print(bias_set.format())
    if report is not None:
        print(report.format())
        _print_stats(engine, config.split_version)
    return 0


def _import(args) -> int:
    from vasr.data.importers import ImportOptions, ImportRejected, import_corpus
    from vasr.db import store

    options = ImportOptions(skip_bad=args.skip_bad, auto_split=args.auto_split, split_version=args.split_version,
                            split_ratios=tuple(args.ratios), seed=args.seed)
    if args.print_config:
        return _print_config(options)
    if args.supervisions and args.kind != "lhotse":
        raise ValueError(f"a second manifest ({args.supervisions}) is for lhotse supervisions only")
    engine = store.connect(args.db)
    try:
        report = import_corpus(args.kind, args.path, engine, options, args.audio_root, args.split,
                               args.supervisions)
    except ImportRejected as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        engine.dispose()      # no connection left open in a process that goes on (store.connect's header read)
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
    elif args.db_command == "export":
        from vasr.data.export import export_split

        with engine.connect() as conn:
            report = export_split(conn, args.format, args.split, args.out, args.split_version, args.force, args.gzip)
        print(report.format_line())
    return 0


def _print_stats(engine, split_version: str) -> None:
    from vasr.db import store

    with engine.connect() as conn:
        rows = store.dataset_stats(conn, split_version) + [store.corpus_totals(conn)]
    print(f"{'split':<8}{'utterances':>12}{'hours':>10}{'speakers':>10}{'words':>10}   (split version "
          f"{split_version!r})")
    for r in rows:
        print(f"{r.split:<8}{r.utterances:>12}{r.hours:>10.3f}{r.speakers:>10}{r.words:>10}")


def _shards(args) -> int:
    from vasr.data.shards import write_shards
    from vasr.data.utterance import DataSource
    from vasr.db.runs import load_utterances

    if args.utterances_per_shard < 1:
        raise ValueError(f"--utterances-per-shard must be >= 1, got {args.utterances_per_shard}")
    records = load_utterances(DataSource(args.split, args.split_version), args.db)
    print(write_shards(records, args.out, args.utterances_per_shard, args.split, args.split_version,
                       args.force, codec=args.audio).format())
    return 0


def _bench(args) -> int:
    from vasr.bench import run_bench

    report = run_bench(args.out, quick=args.quick, only=args.only, threads=args.threads,
                       benchmarks_dir=args.benchmarks)
    print(report.summary())
    return 0


def _demo(args) -> int:
    from vasr.demo import DemoConfig, run_demo

    flags = {"n": args.n, "out_dir": args.out, "db": args.db}
    config = dataclasses.replace(DemoConfig(train_overrides=tuple(args.overrides)),
                                 **{k: v for k, v in flags.items() if v is not None})
    if args.print_config:
        return _print_config(config)
    return run_demo(config)


def _eval(args) -> int:
    from vasr.data.utterance import DataSource
    from vasr.evaluate import EvalConfig, evaluate

    config = EvalConfig(checkpoint=args.checkpoint, source=DataSource(args.split, args.split_version, args.manifest),
                        beam=args.beam, db=args.db, store=not args.no_store, seed=args.seed,
                        conditions=tuple(c.strip() for c in (args.conditions or "").split(",") if c.strip()))
    if args.print_config:
        return _print_config(config)
    print(evaluate(config).format())
    return 0


def _runs(args) -> int:
    from vasr import runs
    from vasr.db import store

    engine = store.connect(args.db)
    if args.runs_command == "list":
        print(runs.list_runs(engine, args.sort, args.ascending, args.limit))
    elif args.runs_command == "show":
        print(runs.show_run(engine, args.run))
    elif args.runs_command == "compare":
        print(runs.compare_runs(engine, args.runs))
    else:
        print(f"wrote {runs.plot_runs(engine, args.runs, args.out)}")
    return 0


def _export(args) -> int:
    import warnings

    from vasr.data.utterance import DataSource
    from vasr.export.onnx_export import ExportConfig, export

    config = ExportConfig(checkpoint=args.checkpoint, out_dir=args.out, variant=args.variant,
                          gate=DataSource(args.split, args.split_version, args.manifest), db=args.db,
                          cer_threshold=args.cer_threshold, register=not args.no_register)
    if args.print_config:
        return _print_config(config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        report = export(config)
    for w in caught:
        print(f"vasr export: warning: {w.message}", file=sys.stderr)
    print(report.format())
    return 0


def _transcribe(args) -> int:
    from vasr.runtime.transcribe import TranscribeConfig, run
    from vasr.runtime.vad import ChunkOptions

    config = TranscribeConfig(model_dir=args.model_dir, audio=tuple(args.audio), manifest=args.manifest,
                              format=args.format,
                              out_dir=args.out_dir, fp32=args.fp32, raw=args.raw, channels=args.channels,
                              beam=args.beam, nbest=args.nbest,
                              hotwords_file=args.hotwords_file, hotwords=tuple(args.hotwords), lm=args.lm,
                              lm_weight=args.lm_weight, word_bonus=args.word_bonus, embeddings=args.embeddings,
                              context=tuple(args.context), threads=args.threads,
                              chunk=ChunkOptions(max_chunk_s=args.max_chunk, min_chunk_s=0.4 * args.max_chunk,
                                                 speech_only=args.vad),
                              stream=args.stream, realtime=args.realtime, stream_chunk=_stream_chunk(args.chunk_ms))
    if args.print_config:
        return _print_config(config)
    utterances = ()
    if args.split:  # the database is read here: the runtime itself never imports sqlalchemy
        from vasr.data.utterance import DataSource
        from vasr.db.runs import load_utterances

        utterances = load_utterances(DataSource(args.split, args.split_version), args.db)
    return run(config, utterances=utterances)


def _stage_config(cls, args, flags: dict):
    """``cls`` from --config/--set, then the flags given (``--split all`` = every transcript)."""
    config = cfg.load(cls, args.config, args.overrides)
    if flags.get("split") == "all":
        config = dataclasses.replace(config, split=None)
        flags = {k: v for k, v in flags.items() if k != "split"}
    return dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})


def _embed(args) -> int:
    from vasr.embeddings.vectors import Embeddings, convert_legacy

    if args.embed_command == "neighbours":
        for word, cosine in Embeddings.load(args.dir, args.kind).neighbours(args.word, args.k):
            print(f"{cosine:.3f}  {word}")
        return 0
    if args.embed_command == "convert":
        print(f"vasr embed convert: trusting the files of {args.dir}: loading them with gensim's pickle loader, "
              f"which runs any code they hold", file=sys.stderr)
        for old, new in convert_legacy(args.dir, args.keep_old):
            print(f"{old} -> {new}" + ("" if args.keep_old else f" ({old.name} removed)"))
        return 0
    from vasr.db import store
    from vasr.embeddings.build import EmbedConfig, build

    config = _stage_config(EmbedConfig, args, {"out_dir": args.out and Path(args.out),
                                               "text": args.text and Path(args.text), "split": args.split})
    if args.print_config:
        return _print_config(config)
    print(build(config, store.connect(args.db)).format())
    return 0


def _lm(args) -> int:
    from vasr.db import store
    from vasr.lm import LMConfig, build_lm

    config = _stage_config(LMConfig, args, {"out_dir": args.out and Path(args.out), "order": args.order,
                                            "text": args.text and Path(args.text), "split": args.split})
    if args.print_config:
        return _print_config(config)
    print(build_lm(config, store.connect(args.db)).format())
    return 0


def _rescore(args) -> int:
    import json

    from vasr.runtime.decode.rescore import RescoreConfig, RescoreWeights, run
    from vasr.runtime.transcribe import parse_hotword

    hotwords = [parse_hotword(h, "--hotword")[0] for h in args.hotwords]
    if args.hotwords_file:
        lines = Path(args.hotwords_file).read_text(encoding="utf-8").splitlines()
        hotwords += [parse_hotword(line, f"{args.hotwords_file}:{n}")[0] for n, line in enumerate(lines, 1)
                     if line.strip() and not line.lstrip().startswith("#")]
    config = RescoreConfig(nbest=Path(args.nbest), weights=cfg.load(RescoreWeights, args.config, args.overrides),
                           lm=args.lm and Path(args.lm), embeddings=args.embeddings and Path(args.embeddings),
                           context=tuple(args.context), hotwords=tuple(hotwords))
    if args.print_config:
        return _print_config(config)
    for record in run(config):
        print(json.dumps(record, ensure_ascii=False))
    return 0


def _tune(args) -> int:
    from vasr.data.utterance import DataSource
    from vasr.tune import TuneConfig, tune

    config = TuneConfig(args.model_dir, args.db, DataSource(args.split, args.split_version), args.beam, args.lm,
                        args.embeddings, args.fp32, args.threads)
    if args.print_config:
        return _print_config(config)
    print(tune(config).format())
    return 0


def _bias_eval(args) -> int:
    from vasr.biasing import EvalConfig, evaluate, format_table
    from vasr.data.utterance import DataSource

    config = EvalConfig(Path(args.model_dir), args.db, DataSource(args.split, args.split_version), args.beam,
                        args.lm, args.embeddings, args.fp32, args.threads, args.limit, args.stream)
    if args.print_config:
        return _print_config(config)
    rows = evaluate(config)
    table = format_table(rows)
    print(table)
    for row in rows[-1:]:
        for ref, hyp in row.examples:
            print(f"  ref: {ref}\n  hyp: {hyp}")
    if args.out:
        args.out.write_text(table + "\n", encoding="utf-8")
    return 0


def _punct(args) -> int:
    if args.punct_command == "eval":
        from vasr.punct.metrics import evaluate_file

        scores, used, skipped = evaluate_file(args.model_dir, args.text, args.window)
        print(f"{used} paragraphs scored, {skipped} skipped (tokens that do not align with their normalised words)")
        print(scores.table())
        return 0
    from vasr.punct.train import PunctConfig, train

    config = _stage_config(PunctConfig, args, {"out_dir": args.out, "db": args.db})
    if args.print_config:
        return _print_config(config)
    result = train(config)
    print(f"run {result.run_id}: {result.out_dir} in {result.seconds:.0f} s")
    return 0


def _segment(args) -> int:
    from vasr.data.importers import ImportOptions, ImportRejected
    from vasr.db import store
    from vasr.segment import SegmentConfig, run

    config = _stage_config(SegmentConfig, args, {"speaker": args.speaker, "split": args.split})
    if args.print_config:
        return _print_config(config)
    engine = None if args.dry_run else store.connect(args.db)
    options = ImportOptions(skip_bad=args.skip_bad, split_version=args.split_version)
    try:
        cuts, gaps, report = run(args.model_dir, args.recording, args.transcript, config, engine, options)
    except ImportRejected as exc:
        print(str(exc), file=sys.stderr)
        return 1
    for c in cuts:
        print(f"{c.start_s:9.2f} {c.end_s:9.2f}  {c.confidence:.2f}  {c.text}")
    for start, end in gaps:
        print(f"vasr segment: warning: sound at {start:.2f}-{end:.2f} s is in no segment (speech the transcript "
              "leaves out?)", file=sys.stderr)
    if report is not None:
        print(report.format())
    return 0


def _align(args) -> int:
    from vasr.align import AlignConfig, align_split

    flags = {"batch": args.batch, "threads": args.threads, "folds": args.folds, "train_config": args.train_config,
             "fold_dir": args.fold_dir, "fold_seed": args.fold_seed}
    config = AlignConfig(model_dir=args.model_dir, checkpoint=args.checkpoint, split=args.split,
                         split_version=args.split_version, db=args.db,
                         model_file="model.int8.onnx" if args.int8 else "model.onnx",
                         train_overrides=tuple(args.train_set),
                         **{k: v for k, v in flags.items() if v is not None})
    if args.print_config:
        return _print_config(config)
    print(align_split(config).format())
    return 0


def _clean(args) -> int:
    from vasr.clean import CleanConfig, clean

    config = _stage_config(CleanConfig, args, {"split": args.split, "split_version": args.split_version,
                                               "run": args.run, "write_version": args.write_version,
                                               "db": args.db, "show": args.show})
    if args.print_config:
        return _print_config(config)
    print(clean(config).format())
    return 0

def _serve(args) -> int:
    import os

    from vasr.serve.app import ServeConfig, serve

    config = ServeConfig(model_dir=args.model_dir, host=args.host, port=args.port,
                         api_key=args.api_key or os.environ.get("VASR_API_KEY"), threads=args.threads,
                         fp32=args.fp32, raw=args.raw, beam=args.beam, max_upload_mb=args.max_upload_mb,
                         max_duration_s=args.max_duration_s, max_streams=args.max_streams,
                         max_queue=args.max_queue, idle_timeout_s=args.idle_timeout_s, vad=args.vad)
    return serve(config)


# `train` is not here: main() hands `vasr train ARGS` to vasr.train.main before argparse sees it
_COMMANDS = {"synth": _synth, "import": _import, "db": _db, "shards": _shards, "bench": _bench, "demo": _demo, "eval": _eval,
             "runs": _runs, "export": _export, "transcribe": _transcribe, "embed": _embed, "lm": _lm,
             "rescore": _rescore, "tune": _tune, "bias-eval": _bias_eval, "punct": _punct,
             "serve": _serve, "segment": _segment, "align": _align, "clean": _clean}
