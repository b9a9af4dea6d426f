"""The main job on the embedded default: synthetic corpus -> database -> train -> evaluate -> export ->
transcribe held-out speech with the int8 model through the torch-free runtime -> contextual biasing
(n-gram LM and embeddings from the training transcripts, a rendered bias set with names and places,
decoding weights tuned on its val split, U-WER/B-WER of five decoders on its test split).

Every stage is the library function its own command runs (`vasr synth`, `python -m vasr.train`,
`vasr eval`, `vasr export`, `vasr transcribe`, `vasr lm build`, `vasr embed build`,
`vasr synth --bias`, `vasr tune`, `vasr bias-eval`), called in order with the outputs of the one before.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from vasr import config as cfg

TINY_PRESET = cfg.CONFIG_DIR / "tiny.yaml"


@dataclass(frozen=True)
class DemoConfig:
    out_dir: str = "data"               # synth/, runs/, model/ and transcripts/ are written here
    db: str | None = None               # database (default: $VASR_DB or data/vasr.db)
    n: int = 3000                       # utterances to synthesise
    train_config: str = str(TINY_PRESET)
    train_overrides: tuple[str, ...] = ()   # e.g. ("max_minutes=10",)
    punct_overrides: tuple[str, ...] = ()   # punctuation model config overrides, e.g. ("epochs=2",)
    beam: int = 8                       # the beam of the second evaluation (the first is greedy)
    bias_n: int = 300                   # utterances of the biasing test set (half val, half test)


def run_demo(config: DemoConfig) -> int:
    """Run every stage; returns the exit status of the final transcription (0: every file done)."""
    from vasr.data.synth import SynthConfig, synthesize
    from vasr.db import store
    from vasr.evaluate import EvalConfig, evaluate
    from vasr.export.onnx_export import ExportConfig, export
    from vasr.punct.train import PunctConfig, check_sources
    from vasr.punct.train import train as train_punct
    from vasr.data.utterance import DataSource
    from vasr.db.runs import load_utterances
    from vasr.runtime.stream import STREAM_INT8
    from vasr.runtime.transcribe import TranscribeConfig, run
    from vasr.train import TrainConfig, train

    out = Path(config.out_dir)
    engine = store.connect(config.db)
    db = str(engine.url.render_as_string(hide_password=False))
    started = time.perf_counter()
    punct_config = cfg.load(PunctConfig, None, [f"db={db}", f"out_dir={out / 'model'}", *config.punct_overrides])
    check_sources(punct_config)         # its help texts are read at stage 5: a missing one is said now

    _stage("1/6 synthetic corpus (espeak-ng) -> database")
    jobs, report = synthesize(SynthConfig(n=config.n, out_dir=str(out / "synth")), engine)
    print(report.format())
    with engine.connect() as conn:
        for row in store.dataset_stats(conn):
            print(f"  {row.split:<6}{row.utterances:>6} utterances {row.hours:7.3f} h {row.speakers:>4} speakers")
    engine.dispose()

    _stage("2/6 training")
    train_config = cfg.load(TrainConfig, config.train_config,
                            [f"db={db}", f"out_dir={out / 'runs'}", *config.train_overrides])
    result = train(train_config)
    checkpoint = str(result.best_checkpoint or result.run_dir / "last.pt")
    print(f"run {result.run_id} {result.status}: {checkpoint}")

    _stage("3/6 evaluation on the test split (PyTorch)")
    for beam in (1, config.beam):
        print(evaluate(EvalConfig(checkpoint=checkpoint, beam=beam, db=db)).format())

    _stage("4/6 export to ONNX (fp32 + int8 gated on the test split)")
    model_dir = out / "model"
    print(export(ExportConfig(checkpoint=checkpoint, out_dir=str(model_dir), db=db)).format())

    _stage("5/6 punctuation and capitalisation model into the model directory, then transcribe the test split "
           "with the int8 model (onnxruntime, no torch)")
    punct = train_punct(punct_config)
    print(f"punctuation model {punct.out_dir} in {punct.seconds:.0f} s")
    test = load_utterances(DataSource("test"), db)
    status = run(TranscribeConfig(model_dir=str(model_dir), out_dir=str(out / "transcripts")), utterances=test)
    if (model_dir / STREAM_INT8).is_file():     # a streaming model (the tiny preset): the same files live
        print("the same split through the streaming model (320 ms chunks, VAD endpoints):", flush=True)
        status |= run(TranscribeConfig(model_dir=str(model_dir), out_dir=str(out / "transcripts-stream"),
                                       stream=True), utterances=test)
    _stage("6/6 contextual biasing: LM + embeddings, bias set, tuning on its val split, table on its test split")
    _biasing(config, out, model_dir, db)
    print(f"\ndemo finished in {(time.perf_counter() - started) / 60:.1f} min; transcripts in {out / 'transcripts'}")
    return status


def _biasing(config: DemoConfig, out: Path, model_dir: Path, db: str) -> None:
    from vasr.biasing import EvalConfig, evaluate, format_table
    from vasr.data.synth import SynthConfig, bias_config, synthesize_bias
    from vasr.db import store
    from vasr.embeddings.build import EmbedConfig, build
    from vasr.lm import LMConfig, build_lm
    from vasr.tune import TuneConfig, tune

    engine = store.connect(db)
    lm = build_lm(LMConfig(out_dir=out / "lm"), engine)
    print(lm.format())
    print(build(EmbedConfig(out_dir=out / "embeddings"), engine).format())
    print(synthesize_bias(bias_config(SynthConfig(n=config.bias_n, out_dir=str(out / "synth-bias"))), engine).format())
    engine.dispose()
    lm_path = lm.binary or lm.arpa
    print(tune(TuneConfig(model_dir, db, beam=config.beam, lm=lm_path, embeddings=out / "embeddings")).format())
    rows = evaluate(EvalConfig(model_dir, db, beam=config.beam, lm=lm_path, embeddings=out / "embeddings"))
    print(format_table(rows))
    (out / "bias-eval.md").write_text(format_table(rows) + "\n", encoding="utf-8")


def _stage(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)

