"""The torch-free runtime: an exported model directory + onnxruntime + the vasr kernels.

``recognizer`` (the public ``Recognizer``), ``audio`` (reading and resampling), ``vad`` (speech
detection), ``stream`` (live recognition), ``formats`` (text, json, srt, vtt), ``transcribe`` (the command) and ``decode/``
(settings, search, LM, rescoring, hot-word expansion). Nothing here imports torch, sqlalchemy or the
trainer. Names resolve lazily, so ``import vasr.runtime.audio`` does not load onnxruntime.
"""
from __future__ import annotations

_EXPORTS = {name: "vasr.runtime.recognizer" for name in
            ("Recognizer", "RecognizerOptions", "Transcript", "Segment", "Word", "ModelDirError")}
_EXPORTS.update({"DecodeOptions": "vasr.runtime.decode", "ChunkOptions": "vasr.runtime.vad",
                 "VadOptions": "vasr.runtime.vad", "AudioError": "vasr.runtime.audio"})
_EXPORTS.update({name: "vasr.runtime.stream" for name in ("Stream", "StreamOptions", "StreamEvent", "EndpointRules")})

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vasr.runtime' has no attribute {name!r}")
