"""sherpa-onnx, a client we did not write, loads the exported fp32 model unchanged and agrees with
`vasr transcribe --beam 1` token for token (int8 agreement depends on its onnxruntime: reported only)."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest
import soundfile as sf

sherpa_onnx = pytest.importorskip("sherpa_onnx")

from test_export import exported  # noqa: E402  (the session's trained, exported fixture)


def _sherpa(model, tokens, paths):
    recognizer = sherpa_onnx.OfflineRecognizer.from_zipformer_ctc(model=str(model), tokens=str(tokens), num_threads=1,
                                                                 feature_dim=80, decoding_method="greedy_search")
    out = []
    for path in paths:
        samples, rate = sf.read(str(path), dtype="float32")
        stream = recognizer.create_stream()
        stream.accept_waveform(rate, samples)
        recognizer.decode_stream(stream)
        out.append((stream.result.text, list(stream.result.tokens)))
    return out


def _vasr(model_dir, paths, *flags):
    from vasr.cli import main

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["transcribe", str(model_dir), *map(str, paths), "--beam", "1", "--format", "jsonl", *flags]) == 0
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.fixture(scope="module")
def wavs16k(tmp_path_factory):
    """The held-out renderings at 16 kHz, float samples: both recognizers read identical samples."""
    from vasr.runtime.audio import load

    fixture = exported()
    folder = tmp_path_factory.mktemp("wav16k")
    paths = []
    for src in sorted(fixture["root"].glob("s155_*.wav")) + sorted(fixture["root"].glob("s140_*.wav"))[:4]:
        path = folder / src.name
        sf.write(str(path), load(src), 16000, subtype="FLOAT")
        paths.append(path)
    return paths


def test_sherpa_onnx_gives_the_same_tokens_and_text_as_vasr_greedy(wavs16k):
    """Both decode every sample of each file (vasr's transcribe would give the model only what its VAD
    calls speech): the model, features, padding and detokeniser are the contract compared here."""
    from vasr import Recognizer
    from vasr.runtime.recognizer import MODEL_FP32, RecognizerOptions

    fixture = exported()
    model_dir = fixture["model_dir"]
    symbols = [line.rsplit(" ", 1)[0] for line in (model_dir / "tokens.txt").read_text(encoding="utf-8").splitlines()]
    recognizer = Recognizer(model_dir, RecognizerOptions(model_file=MODEL_FP32, raw=True))
    ours = [recognizer.decode(recognizer.log_probs([sf.read(str(p), dtype="float32")[0]])[0]) for p in wavs16k]
    theirs = _sherpa(model_dir / "model.onnx", model_dir / "tokens.txt", wavs16k)
    assert sum(bool(o.raw_text) for o in ours) >= len(wavs16k) - 1, "the fixture must produce text"
    for path, o, (text, tokens) in zip(wavs16k, ours, theirs):
        assert [symbols[t].replace("\u2581", " ") for t in o.tokens] == tokens, path
        assert o.raw_text == text, path


def test_sherpa_int8_agreement_is_reported(wavs16k, capsys):
    fixture = exported()
    model_dir = fixture["model_dir"]
    ours = [o["raw_text"] for o in _vasr(model_dir, wavs16k, "--max-chunk", "20")]
    theirs = [t for t, _ in _sherpa(model_dir / "model.int8.onnx", model_dir / "tokens.txt", wavs16k)]
    same = sum(a == b for a, b in zip(ours, theirs))
    with capsys.disabled():
        print(f"\nsherpa-onnx int8 vs vasr int8 (greedy): {same}/{len(ours)} utterances identical")
    assert len(theirs) == len(ours)
