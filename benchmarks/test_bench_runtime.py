"""End-to-end real-time factor (fbank + model + greedy search, seconds of compute per second of
audio) of PyTorch fp32 eager, onnxruntime fp32 and onnxruntime int8, for the tiny and base presets,
on 1 and 2 threads; model file sizes, peak RSS and the cold start of `vasr transcribe` go to
extra_info. Weights are untrained (speed does not depend on them); vocabularies are 96 characters
(tiny) and 500 BPE pieces (base).
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICK, label

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from vasr import config as cfg  # noqa: E402
from vasr.kernels import compute_fbank, ctc_greedy_search  # noqa: E402
from vasr.model import CtcModel, ModelConfig  # noqa: E402

SR = 16_000
CLIP_S = 5 if QUICK else 10
PRESETS = {"tiny": 96, "base": 500}         # preset -> vocabulary size
THREADS = (1,) if QUICK else (1, 2)
CONFIGS = cfg.CONFIG_DIR        # the packaged presets


def _model(preset: str) -> CtcModel:
    import yaml

    raw = yaml.safe_load((CONFIGS / f"{preset}.yaml").read_text(encoding="utf-8"))
    torch.manual_seed(0)
    return CtcModel(cfg.from_dict(ModelConfig, raw["model"]), PRESETS[preset]).eval()


@pytest.fixture(scope="module", params=list(PRESETS))
def exported(request, tmp_path_factory):
    """(preset, PyTorch model, model dir) with model.onnx and model.int8.onnx (the default variant)."""
    from vasr.export.onnx_export import DEFAULT_VARIANT, VARIANTS, export_fp32, metadata, quantize
    from vasr.runtime.recognizer import CONFIG_FILE, MODEL_FP32, MODEL_INT8
    from vasr.kernels import FbankOptions
    from vasr.kernels import WORD_SPACE
    from vasr.text.tokens import write_tokens

    preset = request.param
    model = _model(preset)
    out = tmp_path_factory.mktemp(preset)
    export_fp32(model, out / MODEL_FP32, metadata(model, {"kind": "bench"}, FbankOptions()))
    quantize(out / MODEL_FP32, out / MODEL_INT8, next(v for v in VARIANTS if v.name == DEFAULT_VARIANT))
    write_tokens(out / "tokens.txt", ["<blk>", WORD_SPACE] + [f"t{i}" for i in range(PRESETS[preset] - 2)])
    (out / CONFIG_FILE).write_text(json.dumps({"vocab_size": PRESETS[preset]}), encoding="utf-8")
    return preset, model, out


def _clip() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal(CLIP_S * SR)).astype(np.float32)


def _cold_start(model_dir: Path, tmp: Path) -> float:
    """Seconds for a fresh `vasr transcribe` process on a 5 s clip (int8, greedy)."""
    import soundfile as sf

    wav = tmp / "cold.wav"
    sf.write(str(wav), _clip()[: 5 * SR], SR)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vasr", "transcribe", str(model_dir), str(wav)], check=True,
                   capture_output=True)
    return time.perf_counter() - start


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("impl", ["torch-fp32", "onnxruntime-fp32", "onnxruntime-int8"])
def test_rtf(benchmark, exported, impl, threads, tmp_path):
    from vasr.runtime.recognizer import MODEL_FP32, MODEL_INT8, Recognizer, RecognizerOptions

    preset, model, model_dir = exported
    wave = _clip()
    if impl == "torch-fp32":
        torch.set_num_threads(threads)

        def run():
            feats = torch.from_numpy(compute_fbank(wave))[None]
            with torch.no_grad():
                lp, _ = model(feats, torch.tensor([feats.shape[1]]))
            return ctc_greedy_search(lp[0].numpy())
    else:
        name = MODEL_INT8 if impl.endswith("int8") else MODEL_FP32
        recognizer = Recognizer(model_dir, RecognizerOptions(model_file=name, threads=threads))

        def run():
            return ctc_greedy_search(recognizer.log_probs([wave])[0])
    label(benchmark, group=f"end-to-end RTF, {preset}, {threads} thread(s), {CLIP_S} s clip",
          impl=f"vasr:{impl}", unit="RTF", per=CLIP_S)
    sizes = {n: (model_dir / n).stat().st_size for n in ("model.onnx", "model.int8.onnx")}
    benchmark.extra_info.update(model_bytes=sizes, preset=preset, threads=threads)
    benchmark(run)
    benchmark.extra_info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if impl == "onnxruntime-int8" and threads == 1:
        benchmark.extra_info["cold_start_s"] = _cold_start(model_dir, tmp_path)
