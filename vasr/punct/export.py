"""The punctuation model -> ``punct.onnx`` (fp32, opset 17, dynamic batch, words and n-grams per word),
checked against PyTorch on a batch; and ``punct.json``, the description the runtime reads.

int8 is not written: measured on the default model, dynamic QUInt8 (reduce_range) shrank the file
from 3.7 to 1.0 MB and left the held-out F1 within 0.001, but ran only ~6 % faster than fp32, which
already takes ~0.4 ms per 20-word sentence on one thread.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from vasr import __version__
from vasr.punct.model import PunctModel
from vasr.runtime.punct import (CASES, FORMAT, INPUT_NAMES, MARKS, OUTPUT_NAMES, PUNCT_JSON, PUNCT_ONNX,
                                Features)
from vasr.text.normalize import NORMALIZER_VERSION

__all__ = ["OPSET", "export_onnx", "parity", "write_description"]

OPSET = 17
PARITY_TOLERANCE = 1e-4      # largest |PyTorch - onnxruntime| logit difference accepted


def _inputs(features: Features, batch: Sequence[Sequence[str]]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(a) for a in features.encode(batch))


def parity(model: PunctModel, path: str | os.PathLike, features: Features, batch: Sequence[Sequence[str]]) -> float:
    """The largest absolute difference between PyTorch's and onnxruntime's logits on ``batch`` (words
    of several lengths), over valid positions."""
    inputs = _inputs(features, batch)
    model.eval()
    with torch.no_grad():
        expected = [t.numpy() for t in model(*inputs)]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(OUTPUT_NAMES), {name: t.numpy() for name, t in zip(INPUT_NAMES, inputs)})
    lengths = inputs[2].numpy()
    valid = np.arange(inputs[0].shape[1])[None, :] < lengths[:, None]
    return max(float(np.abs(e - g)[valid].max()) for e, g in zip(expected, got))


def export_onnx(model: PunctModel, directory: str | os.PathLike, features: Features,
                batch: Sequence[Sequence[str]]) -> float:
    """Write ``directory/punct.onnx`` from ``model`` (traced on ``batch``); returns the parity
    difference, RuntimeError when it exceeds ``PARITY_TOLERANCE``."""
    path = Path(directory) / PUNCT_ONNX
    axes = {"word_ids": {0: "N", 1: "T"}, "gram_ids": {0: "N", 1: "T", 2: "G"}, "lengths": {0: "N"},
            "mark_logits": {0: "N", 1: "T"}, "case_logits": {0: "N", 1: "T"}}
    model.eval()
    with torch.no_grad():
        torch.onnx.export(model, _inputs(features, batch), str(path), input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    proto = onnx.load(str(path))
    for key, value in {"model_type": "vasr_punct", "normalizer_version": NORMALIZER_VERSION,
                       "vasr_version": __version__}.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    diff = parity(model, path, features, batch)
    if diff > PARITY_TOLERANCE:
        raise RuntimeError(f"{path}: onnxruntime differs from PyTorch by {diff:.2e} (> {PARITY_TOLERANCE})")
    return diff


def write_description(directory: str | os.PathLike, features: Features, version: str, config: dict,
                      heldout: dict) -> Path:
    """``directory/punct.json``: format, version, features, label sets, normaliser, training config and
    the held-out figures."""
    path = Path(directory) / PUNCT_JSON
    path.write_text(json.dumps({
        "format": FORMAT, "version": version, "vasr_version": __version__, "normalizer_version": NORMALIZER_VERSION,
        "marks": list(MARKS), "cases": list(CASES), "features": features.to_dict(), "heldout": heldout,
        "config": config}, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
