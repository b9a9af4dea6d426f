"""``vasr export --checkpoint CKPT --out MODEL_DIR``: a checkpoint to ONNX (fp32 + dynamic int8).

Writes the model directory the torch-free runtime and sherpa-onnx read (DESIGN.md section 2):
``model.onnx`` (fp32, opset 17, dynamic N and T, one file), ``model.int8.onnx``, ``tokens.txt``, the
tokenizer's own files, and ``config.json``; both ONNX files carry the metadata sherpa-onnx's
``zipformer2_ctc`` loader reads plus vasr's keys (features, normaliser version, tokenizer).

int8: each of ``VARIANTS`` (weight type, reduce_range, per-channel, MatMul-only or every op) is
built and run per utterance on the gate set (a CSV manifest or a database split); among those whose
CER is within ``SELECT_TOLERANCE`` of the best, the fastest is kept. The chosen one's CER is compared
with fp32's and a warning is issued beyond ``cer_threshold``. Without a gate set the default variant
is written, ungated (also a warning). The export is registered in the models table (``onnx_path``).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vasr import __version__
from vasr.data.utterance import DataSource
from vasr.db.runs import load_utterances
from vasr.runtime.recognizer import (CONFIG_FILE, INPUT_NAMES, MODEL_FP32, MODEL_INT8, OUTPUT_NAMES, Recognizer,
                                     RecognizerOptions)
from vasr.kernels import FbankOptions
from vasr.model import SUBSAMPLING, CtcModel
from vasr.runtime.stream import STREAM_FP32, STREAM_INT8
from vasr.staging import stage
from vasr.text.itn import ITN_VERSION
from vasr.text.normalize import NORMALIZER_VERSION
from vasr.text.tokens import BPE_MODEL_FILE, TOKENS_FILE
from vasr.text.tokens import CONFIG_FILE as TOKENIZER_FILE

OPSET = 17
SHERPA_MODEL_TYPE = "zipformer2_ctc"     # the model_type sherpa-onnx's offline zipformer CTC loader expects
PARITY_TOLERANCE = 1e-4                  # max |log-prob difference| onnxruntime fp32 vs PyTorch
SELECT_TOLERANCE = 0.001                 # int8 variants within 0.1% absolute CER of the best count as tied
TRACE_FRAMES = (203, 157)                # example input lengths for tracing: two, so N and T stay dynamic
FBANK_MEAN = -8.0                        # rough log-mel level of speech, for the parity check's inputs


@dataclass(frozen=True)
class QuantVariant:
    name: str
    weight_type: str                     # "QInt8" | "QUInt8"
    reduce_range: bool                   # 7-bit weights: no VPMADDUBSW saturation, portable results
    per_channel: bool                    # one scale per output channel of each weight
    op_types: tuple[str, ...]            # ops quantized; () = every op onnxruntime can quantize


VARIANTS = (
    QuantVariant("qint8-matmul", "QInt8", False, False, ("MatMul",)),
    QuantVariant("quint8-matmul", "QUInt8", False, False, ("MatMul",)),
    QuantVariant("qint8-matmul-reduce", "QInt8", True, False, ("MatMul",)),
    QuantVariant("qint8-matmul-perchannel", "QInt8", False, True, ("MatMul",)),
    QuantVariant("qint8-all", "QInt8", False, False, ()),
    QuantVariant("quint8-all", "QUInt8", False, False, ()),
)
VARIANT_BY_NAME = {v.name: v for v in VARIANTS}
DEFAULT_VARIANT = "qint8-matmul-reduce"
# what an export writes into a model directory (a file of these left by an earlier export and not
# written again is removed; the directory's other files stay)
EXPORT_FILES = frozenset({TOKENS_FILE, TOKENIZER_FILE, BPE_MODEL_FILE, MODEL_FP32, MODEL_INT8, STREAM_FP32,
                          STREAM_INT8, CONFIG_FILE})


@dataclass(frozen=True)
class ExportConfig:
    checkpoint: str                      # a .pt written by python -m vasr.train
    out_dir: str                         # the model directory to write
    variant: str = "auto"                # "auto" = measure VARIANTS on the gate set; or one name
    gate: DataSource | None = DataSource()  # the gate set: a database split (when there is one) or a
                                         # CSV manifest with transcripts; None: no gate, the default variant
    db: str | None = None                # database (default: $VASR_DB or data/vasr.db)
    max_utterances: int = 200            # gate-set utterances used (the first ones)
    cer_threshold: float = 0.005         # warn when int8 CER - fp32 CER exceeds this (absolute)
    register: bool = True                # add the export to the models table
    threads: int = 1                     # onnxruntime threads while measuring


@dataclass(frozen=True)
class VariantResult:
    name: str
    cer: float                           # on the gate set, per-utterance inference
    rtf: float                           # seconds of compute per second of audio, one thread
    size_bytes: int


@dataclass
class ExportReport:
    out_dir: Path
    parity_max_abs: float                # onnxruntime fp32 vs PyTorch on synthetic features
    variant: str                         # the int8 variant written
    fp32: VariantResult | None = None    # None without a gate set
    variants: list[VariantResult] = dataclasses.field(default_factory=list)
    gate_utterances: int = 0
    gate_passed: bool | None = None      # None: not gated
    model_id: int | None = None
    streaming: dict | None = None        # the streaming export's figures (streaming models only)

    def format(self) -> str:
        lines = [f"exported to {self.out_dir} (fp32 vs PyTorch max |delta log-prob| {self.parity_max_abs:.2e})"]
        if self.fp32 is not None:
            lines.append(f"gate set: {self.gate_utterances} utterances; fp32 CER {100 * self.fp32.cer:.2f}% "
                         f"RTF {self.fp32.rtf:.4f} size {self.fp32.size_bytes / 1e6:.1f} MB")
            for v in self.variants:
                mark = "*" if v.name == self.variant else " "
                lines.append(f" {mark} {v.name:<26} CER {100 * v.cer:6.2f}%  RTF {v.rtf:.4f}  "
                             f"size {v.size_bytes / 1e6:.1f} MB")
            lines.append("int8 gate: " + ("passed" if self.gate_passed else "FAILED (see warning)"))
        else:
            lines.append(f"int8 variant {self.variant} written without a gate set (CER not measured)")
        if self.streaming is not None:
            st = self.streaming
            line = (f"streaming model ({st['chunk']} x 40 ms chunks, {st['left_chunks']} left): chunked onnxruntime "
                    f"vs PyTorch max |delta log-prob| {st['parity_max_abs']:.2e}")
            if st.get("cer_int8") is not None:
                line += f"; streaming CER fp32 {100 * st['cer_fp32']:.2f}% int8 {100 * st['cer_int8']:.2f}%"
            lines.append(line)
        if self.model_id is not None:
            lines.append(f"registered as model {self.model_id}")
        return "\n".join(lines)


def metadata(model: CtcModel, tokenizer_info: dict, features: FbankOptions) -> dict[str, str]:
    """ONNX metadata: sherpa-onnx's keys and vasr's (every value a string)."""
    return {"model_type": SHERPA_MODEL_TYPE, "vocab_size": str(model.vocab_size),
            "subsampling_factor": str(SUBSAMPLING), "vasr_version": __version__,
            "vasr_features": json.dumps(dataclasses.asdict(features)),
            "vasr_normalizer_version": str(NORMALIZER_VERSION), "vasr_tokenizer": json.dumps(tokenizer_info),
            "vasr_model": json.dumps(dataclasses.asdict(model.cfg))}


def export_fp32(model: CtcModel, path: Path, meta: dict[str, str]) -> float:
    """Write ``model`` to ``path`` (opset 17, dynamic N and T, one file); the max |Δ log-prob| of
    onnxruntime against PyTorch on a padded batch of two synthetic utterances."""
    import onnx
    import onnxruntime as ort

    model = model.eval()
    gen = torch.Generator().manual_seed(0)
    x = FBANK_MEAN + 2.0 * torch.randn(len(TRACE_FRAMES), max(TRACE_FRAMES), model.cfg.num_mel_bins, generator=gen)
    x_lens = torch.tensor(TRACE_FRAMES, dtype=torch.int64)
    axes = {"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "log_probs": {0: "N", 1: "T_out"}, "log_probs_len": {0: "N"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")      # the tracer's notes on shape arithmetic it turns into graph ops
        torch.onnx.export(model, (x, x_lens), str(path), input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        expected, _ = model(x, x_lens)
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got, lens = session.run(list(OUTPUT_NAMES), {"x": x.numpy(), "x_lens": x_lens.numpy()})
    valid = np.arange(got.shape[1])[None, :] < lens[:, None]
    return float(np.abs(got - expected.numpy())[valid].max())


def quantize(fp32: Path, out: Path, variant: QuantVariant) -> Path:
    """Dynamic int8 quantization of ``fp32`` into ``out`` (metadata kept)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)    # the quantizer logs advice and the ops it skips on the root logger
    try:
        quantize_dynamic(str(fp32), str(out), op_types_to_quantize=list(variant.op_types) or None,
                         per_channel=variant.per_channel, reduce_range=variant.reduce_range,
                         weight_type=getattr(QuantType, variant.weight_type))
    finally:
        root.setLevel(level)
    return out


def measure(model_dir: Path, model_file: str, sources: list, refs: list[str], threads: int) -> VariantResult:
    """CER and RTF of one ONNX file of ``model_dir``, greedy, one utterance per model call."""
    from vasr.runtime.transcribe import resolve, score

    recognizer = Recognizer(model_dir, RecognizerOptions(model_file=model_file, threads=threads, max_batch_frames=0))
    start = time.perf_counter()
    results = list(recognizer.transcribe_iter(resolve(sources)))
    seconds = time.perf_counter() - start
    bad = [t.error for t in results if t.error]
    if bad:
        raise ValueError(f"gate set: {len(bad)} utterance(s) failed, first: {bad[0]}")
    cer, _ = score(refs, [t.raw_text for t in results])
    audio_s = sum(t.duration_s for t in results)
    return VariantResult(model_file, cer.rate, seconds / audio_s, (model_dir / model_file).stat().st_size)


def _gate_set(config: ExportConfig) -> tuple[list, list[str]]:
    """Utterances and references to gate int8 on; empty when there is none."""
    if config.gate is None:
        return [], []
    try:
        utterances = load_utterances(config.gate, config.db)
    except ValueError:
        if config.gate.manifest:
            raise
        return [], []      # no database split to gate on: the default int8 variant, with a warning
    rows = [u for u in utterances if u.text is not None][: config.max_utterances]
    return rows, [u.text for u in rows]


def export(config: ExportConfig) -> ExportReport:
    """Write the model directory of ``config.checkpoint``; see the module docstring."""
    from vasr.checkpoint import load_checkpoint

    if config.variant != "auto" and config.variant not in VARIANT_BY_NAME:
        raise ValueError(f"unknown int8 variant {config.variant!r}; expected auto or one of "
                         f"{', '.join(VARIANT_BY_NAME)}")
    loaded = load_checkpoint(config.checkpoint)
    final = Path(config.out_dir)
    if final.exists() and not final.is_dir():
        raise ValueError(f"--out {final}: an existing file, not a directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    # everything is written and measured in a sibling folder, then moved in: a failed export leaves
    # the directory as it was, never new files beside old ones
    out = stage(final.parent, final.name, "export")
    try:
        report = _export_into(config, loaded, out)
        _install(out, final)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    report.out_dir = final
    if config.register:
        report.model_id = _register(config, loaded, final)
    return report


def _install(stage: Path, final: Path) -> None:
    """Move the export's files from ``stage`` into ``final`` (config.json last); files a previous
    export left there that this one did not write (a streaming model, bpe.model) go, other files
    (the punctuation model, decode.json) stay."""
    final.mkdir(exist_ok=True)
    written = {p.name for p in stage.iterdir()}
    for name in EXPORT_FILES - written:
        (final / name).unlink(missing_ok=True)
    for name in sorted(written - {CONFIG_FILE}) + [CONFIG_FILE]:
        os.replace(stage / name, final / name)


def _export_into(config: ExportConfig, loaded, out: Path) -> ExportReport:
    """The export's files in ``out`` (see the module docstring), measured there."""
    loaded.tokenizer.save(out)                       # tokens.txt, tokenizer.json (+ bpe.model)
    features = FbankOptions()                        # the runtime's features: the contract, no dither
    meta = metadata(loaded.model, loaded.tokenizer.to_dict(), features)
    parity = export_fp32(loaded.model, out / MODEL_FP32, meta)
    if parity > PARITY_TOLERANCE:
        warnings.warn(f"onnxruntime fp32 differs from PyTorch by {parity:.2e} (> {PARITY_TOLERANCE})", stacklevel=2)
    (out / CONFIG_FILE).write_text(json.dumps({
        "vocab_size": loaded.model.vocab_size, "subsampling_factor": SUBSAMPLING,
        "frame_shift_s": features.frame_shift_ms / 1000 * SUBSAMPLING,
        "model_type": SHERPA_MODEL_TYPE, "features": dataclasses.asdict(features),
        "normalizer_version": NORMALIZER_VERSION, "itn_version": ITN_VERSION, "tokenizer": loaded.tokenizer.to_dict(),
        "model": dataclasses.asdict(loaded.model.cfg), "checkpoint": str(Path(config.checkpoint).resolve()),
        "vasr_version": __version__}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    sources, refs = _gate_set(config)
    report = ExportReport(out, parity, DEFAULT_VARIANT if config.variant == "auto" else config.variant)
    if sources:
        _choose_int8(config, out, sources, refs, report)
    else:
        quantize(out / MODEL_FP32, out / MODEL_INT8, VARIANT_BY_NAME[report.variant])
        warnings.warn("no gate set (no --manifest and no database split): int8 written without a CER check",
                      stacklevel=2)
    _record_int8(out, report)
    if loaded.model.cfg.streaming:
        report.streaming = _export_streaming(config, loaded.model, out, meta, VARIANT_BY_NAME[report.variant],
                                               sources, refs)
    return report


def _choose_int8(config: ExportConfig, out: Path, sources: list, refs: list[str], report: ExportReport) -> None:
    """Measure fp32 and the int8 variants on the gate set, write the chosen one, gate it."""
    report.gate_utterances = len(sources)
    report.fp32 = measure(out, MODEL_FP32, sources, refs, config.threads)
    tried = VARIANTS if config.variant == "auto" else [v for v in VARIANTS if v.name == config.variant]
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        for v in tried:
            quantize(out / MODEL_FP32, Path(tmp) / f"{v.name}.onnx", v)
            shutil.copy(Path(tmp) / f"{v.name}.onnx", out / MODEL_INT8)
            report.variants.append(dataclasses.replace(measure(out, MODEL_INT8, sources, refs, config.threads),
                                                       name=v.name))
        best_cer = min(r.cer for r in report.variants)
        chosen = min((r for r in report.variants if r.cer <= best_cer + SELECT_TOLERANCE), key=lambda r: r.rtf)
        report.variant = chosen.name
        shutil.copy(Path(tmp) / f"{chosen.name}.onnx", out / MODEL_INT8)
    gap = chosen.cer - report.fp32.cer
    report.gate_passed = gap <= config.cer_threshold
    if not report.gate_passed:
        warnings.warn(f"int8 CER {100 * chosen.cer:.2f}% is {100 * gap:.2f} points above fp32 "
                      f"({100 * report.fp32.cer:.2f}%), beyond the {100 * config.cer_threshold:.2f}-point "
                      f"threshold: prefer {MODEL_FP32} (vasr transcribe --fp32)", stacklevel=3)


def _record_int8(out: Path, report: ExportReport) -> None:
    """Add the int8 choice and its measurements to config.json."""
    path = out / CONFIG_FILE
    config = json.loads(path.read_text(encoding="utf-8"))
    config["int8"] = {"variant": report.variant, "gate_passed": report.gate_passed,
                      "gate_utterances": report.gate_utterances,
                      "fp32": dataclasses.asdict(report.fp32) if report.fp32 else None,
                      "variants": [dataclasses.asdict(v) for v in report.variants]}
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _export_streaming(config: ExportConfig, model: CtcModel, out: Path, meta: dict[str, str], variant: QuantVariant,
                      sources: list, refs: list[str]) -> dict:
    """The streaming graph (fp32 and the offline model's int8 variant), its parity, and on the gate
    set its streaming CER fp32 against int8 (warned beyond ``cer_threshold``); kept in config.json."""
    from vasr.export.streaming import PARITY_TOLERANCE as STREAM_TOLERANCE, export_streaming
    from vasr.runtime.stream import StreamOptions

    options = StreamOptions()
    parity = export_streaming(model, out / STREAM_FP32, meta, options)
    if parity > STREAM_TOLERANCE:
        warnings.warn(f"streaming onnxruntime fp32 differs from PyTorch by {parity:.2e} (> {STREAM_TOLERANCE})",
                      stacklevel=3)
    quantize(out / STREAM_FP32, out / STREAM_INT8, variant)
    figures = {"chunk": options.chunk, "left_chunks": options.left_chunks, "parity_max_abs": parity,
               "variant": variant.name, "cer_fp32": None, "cer_int8": None}
    if sources:
        figures["cer_fp32"] = measure_streaming(out, MODEL_FP32, sources, refs, config.threads)
        figures["cer_int8"] = measure_streaming(out, MODEL_INT8, sources, refs, config.threads)
        gap = figures["cer_int8"] - figures["cer_fp32"]
        if gap > config.cer_threshold:
            warnings.warn(f"streaming int8 CER is {100 * gap:.2f} points above fp32, beyond the "
                          f"{100 * config.cer_threshold:.2f}-point threshold: prefer --fp32", stacklevel=3)
    path = out / CONFIG_FILE
    written = json.loads(path.read_text(encoding="utf-8"))
    written["streaming"] = figures
    path.write_text(json.dumps(written, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return figures


def measure_streaming(model_dir: Path, model_file: str, sources: list, refs: list[str], threads: int) -> float:
    """Streaming CER (greedy, whole files fed in 0.1 s blocks) of the streaming counterpart of ``model_file``."""
    from vasr.runtime.transcribe import resolve, score

    recognizer = Recognizer(model_dir, RecognizerOptions(model_file=model_file, threads=threads, raw=True))
    hyps = [recognizer.transcribe_stream(source).raw_text for source in resolve(sources)]
    cer, _ = score(refs, hyps)
    return cer.rate


def _register(config: ExportConfig, loaded, out: Path) -> int:
    """The checkpoint's models row, now pointing at the exported fp32 model."""
    from vasr.db import runs, store
    from vasr.tracker import checkpoint_model_id

    engine = store.connect(config.db)
    try:
        model_id = checkpoint_model_id(engine, loaded, config.checkpoint)
        runs.set_onnx_path(engine, model_id, str((out / MODEL_FP32).resolve()))
    finally:
        engine.dispose()
    return model_id
