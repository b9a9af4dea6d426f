"""vasr: Vietnamese speech-to-text toolkit.

    from vasr import Recognizer
    print(Recognizer("model/").transcribe("a.wav").text)

``Recognizer`` and its option types come from ``vasr.runtime`` (torch-free), loaded on first use.
"""
__version__ = "0.1.0"

__all__ = ["__version__", "Recognizer", "RecognizerOptions", "DecodeOptions", "ChunkOptions", "Transcript",
           "AudioError", "ModelDirError", "StreamOptions", "EndpointRules"]


def __getattr__(name: str):
    if name in __all__:
        from vasr import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'vasr' has no attribute {name!r}")
