"""The streaming export of a streaming model (``ModelConfig.streaming``): one chunk in, log-probs and
new caches out, in the I/O contract of WeNet's streaming CTC models that sherpa-onnx's
``OnlineRecognizer.from_wenet_ctc`` loads unchanged (DESIGN.md section 2, "Streaming export").

Inputs, by position:
  ``x`` float32 (1, 4c + 3, 80): log-mel fbank of samples scaled to int16 range (WeNet's front end;
  sherpa-onnx sets ``normalize_samples = false`` for it), c output frames of 40 ms and the 3 input
  frames of the subsampling's look-ahead; ``offset`` int64 (1,): output frames decoded so far plus R
  (sherpa starts it at R); ``required_cache_size`` int64 (1,): R = c x left chunks;
  ``attn_cache`` float32 (L, H, R, 2 d/H): keys and values of the last R frames; ``conv_cache``
  float32 (L, 1, d, kernel - 1); ``attn_mask`` bool (1, 1, R + c): False at cache frames not yet filled.
Outputs: ``log_probs`` (1, c, V), ``next_att_cache``, ``next_conv_cache`` (shapes as the inputs).
Metadata: sherpa's keys (model_type wenet_ctc, head, num_blocks, output_size, cnn_module_kernel,
right_context, subsampling_factor, vocab_size, chunk_size, left_chunks) and vasr's.

The int16 scale is undone inside the graph: log(max(P s², eps)) - log s², clamped below at
log(eps), is exactly the float-scale feature log(max(P, eps)) the model was trained on.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vasr.model import SUBSAMPLING, CtcModel
from vasr.runtime.stream import (INT16_SCALE, STREAM_INPUTS, STREAM_OUTPUTS, SUBSAMPLING_CONTEXT, StreamOptions,
                                 chunk_frames)

OPSET = 17
WENET_MODEL_TYPE = "wenet_ctc"          # the model_type of sherpa-onnx's streaming WeNet CTC loader
LOG_SCALE = 2.0 * math.log(INT16_SCALE)  # log-power offset of int16-scale samples
LOG_FLOOR = math.log(np.finfo(np.float32).eps)  # the fbank's log floor (FLT_EPSILON)
PARITY_TOLERANCE = 1e-4                 # max |log-prob| of chunk-by-chunk onnxruntime vs chunk-masked PyTorch
PARITY_CHUNKS = 6                       # chunks in the parity check
FBANK_MEAN = -8.0                       # rough log-mel level of speech, for the parity check's inputs


class WenetStreaming(nn.Module):
    """``CtcModel.forward_chunk`` behind WeNet's streaming I/O (see the module docstring)."""

    def __init__(self, model: CtcModel):
        super().__init__()
        self.model = model

    def forward(self, x, offset, required_cache_size, attn_cache, conv_cache, attn_mask):
        x = torch.clamp(x - LOG_SCALE, min=LOG_FLOOR)
        return self.model.forward_chunk(x, offset, attn_cache, conv_cache, attn_mask, required_cache_size)


def initial_states(model: CtcModel, options: StreamOptions) -> tuple[np.ndarray, np.ndarray]:
    """Zero attention and convolution caches for ``options``."""
    cfg = model.cfg
    cache = options.chunk * options.left_chunks
    return (np.zeros((cfg.num_layers, cfg.num_heads, cache, 2 * cfg.d_model // cfg.num_heads), np.float32),
            np.zeros((cfg.num_layers, 1, cfg.d_model, cfg.conv_kernel - 1), np.float32))


def streaming_metadata(model: CtcModel, options: StreamOptions) -> dict[str, str]:
    cfg = model.cfg
    return {"model_type": WENET_MODEL_TYPE, "head": str(cfg.num_heads), "num_blocks": str(cfg.num_layers),
            "output_size": str(cfg.d_model), "cnn_module_kernel": str(cfg.conv_kernel),
            "right_context": str(SUBSAMPLING_CONTEXT), "subsampling_factor": str(SUBSAMPLING),
            "vocab_size": str(model.vocab_size), "chunk_size": str(options.chunk),
            "left_chunks": str(options.left_chunks), "comment": "streaming"}


def export_streaming(model: CtcModel, path: Path, meta: dict[str, str], options: StreamOptions) -> float:
    """Write the streaming graph of ``model`` to ``path`` with ``meta`` + the WeNet keys; return the
    max |Δ log-prob| of onnxruntime fed chunk by chunk against PyTorch's chunk-masked forward."""
    import onnx
    import onnxruntime as ort

    if not model.cfg.streaming:
        raise ValueError("the streaming export needs a model trained with model.streaming: true")
    model = model.eval()
    wrapper = WenetStreaming(model).eval()     # torch.onnx.export restores the wrapper's mode onto the model
    cache = options.chunk * options.left_chunks
    att, conv = initial_states(model, options)
    example = (torch.zeros(1, chunk_frames(options.chunk), model.cfg.num_mel_bins), torch.tensor([cache]),
               torch.tensor([cache]), torch.from_numpy(att), torch.from_numpy(conv),
               torch.ones(1, 1, cache + options.chunk, dtype=torch.bool))
    axes = {"x": {1: "T"}, "attn_cache": {2: "R"}, "attn_mask": {2: "R_plus_c"}, "log_probs": {1: "c"},
            "next_att_cache": {2: "R"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, example, str(path), input_names=list(STREAM_INPUTS),
                          output_names=list(STREAM_OUTPUTS), dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in {**meta, **streaming_metadata(model, options)}.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    return _parity(model, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), options)


def _parity(model: CtcModel, session, options: StreamOptions) -> float:
    """Feed PARITY_CHUNKS chunks of synthetic features through ``session`` as the runtime does and
    compare with ``model(x, x_lens, chunk, left_chunks)`` on the whole."""
    c, cache = options.chunk, options.chunk * options.left_chunks
    frames = SUBSAMPLING * c * (PARITY_CHUNKS - 1) + chunk_frames(c)
    gen = torch.Generator().manual_seed(0)
    x = FBANK_MEAN + 2.0 * torch.randn(1, frames, model.cfg.num_mel_bins, generator=gen)
    x = torch.clamp(x, min=LOG_FLOOR)      # real features never fall below the log floor
    with torch.no_grad():
        expected, _ = model(x, torch.tensor([frames]), chunk=c, left_chunks=options.left_chunks)
    att, conv = initial_states(model, options)
    scaled = (x + LOG_SCALE).numpy()
    got = []
    for k in range(PARITY_CHUNKS):
        offset = cache + k * c
        filled = min(k * c, cache)
        mask = np.zeros((1, 1, cache + c), dtype=bool)
        mask[..., cache - filled:] = True
        feats = scaled[:, SUBSAMPLING * c * k: SUBSAMPLING * c * k + chunk_frames(c)]
        lp, att, conv = session.run(list(STREAM_OUTPUTS), {
            "x": feats, "offset": np.array([offset], np.int64), "required_cache_size": np.array([cache], np.int64),
            "attn_cache": att, "conv_cache": conv, "attn_mask": mask})
        got.append(lp[0])
    got = np.concatenate(got)
    return float(np.abs(got - expected[0, : len(got)].numpy()).max())
