"""Streaming real-time factor (seconds of compute per second of audio) of vasr's ``Stream`` (resampling
check, VAD, streaming fbank, the streaming ONNX encoder in 320 ms chunks, incremental search) and of
sherpa-onnx's ``OnlineRecognizer.from_wenet_ctc`` on the same exported int8 model, fed the same audio
in 100 ms blocks; per-chunk compute (p50/p95) and the time from the last block to the final result
go to extra_info. The tiny preset's shape with untrained weights (speed does not depend on them);
the audio is espeak-ng speech (noise where espeak-ng is missing). sherpa-onnx runs no VAD here.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICK, label

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from vasr import config as cfg  # noqa: E402
from vasr.model import CtcModel, ModelConfig  # noqa: E402

SR = 16_000
CLIP_S = 5 if QUICK else 10
BLOCK = SR // 10                 # 100 ms blocks, as a microphone delivers them
VOCAB = 96
CONFIGS = cfg.CONFIG_DIR        # the packaged presets
TEXT = ("hôm nay trời đẹp chúng tôi đi chợ mua rau và cá sau đó về nhà nấu cơm cho cả gia đình "
        "buổi chiều cả nhà cùng nhau đi dạo trong công viên gần hồ")


def _clip(tmp: Path) -> np.ndarray:
    from vasr.runtime.audio import load

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        rng = np.random.default_rng(0)
        return (0.1 * rng.standard_normal(CLIP_S * SR)).astype(np.float32)
    wav = tmp / "speech.wav"
    subprocess.run([espeak, "-v", "vi", "-w", str(wav), TEXT], check=True)
    speech = load(wav)
    return np.resize(speech, CLIP_S * SR).astype(np.float32)


@pytest.fixture(scope="module")
def streaming_dir(tmp_path_factory):
    """A model directory with the tiny preset's streaming model (int8, the default variant)."""
    import yaml

    from vasr.export.onnx_export import DEFAULT_VARIANT, VARIANTS, metadata, quantize
    from vasr.export.streaming import export_streaming
    from vasr.kernels import WORD_SPACE, FbankOptions
    from vasr.runtime.recognizer import CONFIG_FILE, MODEL_FP32, MODEL_INT8
    from vasr.runtime.stream import STREAM_FP32, STREAM_INT8, StreamOptions
    from vasr.export.onnx_export import export_fp32
    from vasr.text.tokens import write_tokens

    raw = yaml.safe_load((CONFIGS / "tiny.yaml").read_text(encoding="utf-8"))
    torch.manual_seed(0)
    model = CtcModel(cfg.from_dict(ModelConfig, raw["model"]), VOCAB).eval()
    out = tmp_path_factory.mktemp("stream")
    meta = metadata(model, {"kind": "bench"}, FbankOptions())
    variant = next(v for v in VARIANTS if v.name == DEFAULT_VARIANT)
    export_fp32(model, out / MODEL_FP32, meta)
    quantize(out / MODEL_FP32, out / MODEL_INT8, variant)
    export_streaming(model, out / STREAM_FP32, meta, StreamOptions())
    quantize(out / STREAM_FP32, out / STREAM_INT8, variant)
    write_tokens(out / "tokens.txt", ["<blk>", WORD_SPACE] + [f"t{i}" for i in range(VOCAB - 2)])
    (out / CONFIG_FILE).write_text(json.dumps({"vocab_size": VOCAB, "subsampling_factor": 4}), encoding="utf-8")
    return out, _clip(out)


@pytest.mark.parametrize("impl", ["vasr:stream-int8", "vasr:stream-int8-beam8", "peer:sherpa-onnx-online-int8"])
def test_streaming_rtf(benchmark, streaming_dir, impl):
    from vasr.runtime.decode import DecodeOptions
    from vasr.runtime.recognizer import Recognizer, RecognizerOptions
    from vasr.runtime.stream import STREAM_INT8, StreamOptions

    model_dir, wave = streaming_dir
    blocks = [wave[i: i + BLOCK] for i in range(0, len(wave), BLOCK)]
    options = StreamOptions()
    chunk_s, final_s = [], []
    if impl.startswith("peer:"):
        sherpa_onnx = pytest.importorskip("sherpa_onnx")
        recognizer = sherpa_onnx.OnlineRecognizer.from_wenet_ctc(
            tokens=str(model_dir / "tokens.txt"), model=str(model_dir / STREAM_INT8), chunk_size=options.chunk,
            num_left_chunks=options.left_chunks, num_threads=1)

        def run():
            s = recognizer.create_stream()
            for block in blocks:
                s.accept_waveform(SR, block)
                while recognizer.is_ready(s):
                    start = time.perf_counter()
                    recognizer.decode_stream(s)
                    chunk_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            s.input_finished()
            while recognizer.is_ready(s):
                recognizer.decode_stream(s)
            final_s.append(time.perf_counter() - start)
            return recognizer.get_result(s)
    else:
        beam = 8 if impl.endswith("beam8") else 1
        recognizer = Recognizer(model_dir, RecognizerOptions(threads=1, raw=True, decode=DecodeOptions(beam=beam)))

        def run():
            stream = recognizer.stream(SR, None, options)
            for block in blocks:
                start = time.perf_counter()
                events = stream.accept(block)
                if events:          # a block that completed a chunk: its compute is the partial's latency
                    chunk_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            stream.finish()
            final_s.append(time.perf_counter() - start)
    label(benchmark, group=f"streaming RTF, tiny int8, 1 thread, {CLIP_S} s clip, {40 * options.chunk} ms chunks",
          impl=impl, unit="RTF", per=CLIP_S)
    benchmark(run)
    benchmark.extra_info.update(chunk_ms_p50=1000 * float(np.median(chunk_s)) if chunk_s else None,
                                chunk_ms_p95=1000 * float(np.percentile(chunk_s, 95)) if chunk_s else None,
                                final_ms_median=1000 * float(np.median(final_s)), chunk_s=0.04 * options.chunk)
