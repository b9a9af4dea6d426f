"""vasr.kernels: the hot loops (fbank, CTC prefix beam search, Levenshtein), compiled with a
pure-Python reference beside each. Public names resolve lazily through ``dispatch`` so that
importing this package loads no backend (the runtime's cold start stays small).

``BACKENDS`` maps each kernel to the backend that loaded.
"""
from __future__ import annotations

from vasr.kernels import dispatch

# public name -> kernel that owns it (each backend module of that kernel exports it)
_EXPORTS = {
    **dict.fromkeys(("FbankOptions", "compute_fbank", "compute_fbank_batch", "FbankStream", "num_frames"), "fbank"),
    **dict.fromkeys(("WORD_SPACE", "DEFAULT_BOOST", "Hypothesis", "ContextGraph", "WordLM", "ctc_greedy_search",
                     "ctc_prefix_beam_search", "PrefixBeamSearch", "ctc_log_likelihood", "ctc_forced_align",
                     "tokens_to_text"), "ctc"),
    **dict.fromkeys(("EditCounts", "ErrorRate", "edit_distance", "edit_counts", "align", "corpus_wer",
                     "corpus_cer"), "levenshtein"),
}

__all__ = ["BACKENDS", "dispatch", *_EXPORTS]


def __getattr__(name: str):
    if name == "BACKENDS":
        return {kernel: dispatch.backend_of(kernel) for kernel in dispatch.KERNELS}
    if name in _EXPORTS:
        return getattr(dispatch.load(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vasr.kernels' has no attribute {name!r}")
