"""Decoding CTC output: settings (``settings``), the first pass and the decoder (``search``), the
n-gram LM's query half (``lm``), the second pass (``rescore``) and phonetic hot-word expansion
(``expand``)."""
from vasr.runtime.decode.search import Alternative, Decoded, Decoder
from vasr.runtime.decode.settings import DecodeOptions, DecodeSettings, Tuned, read_tuned, resolve, write_tuned

__all__ = ["Alternative", "Decoded", "Decoder", "DecodeOptions", "DecodeSettings", "Tuned", "read_tuned", "resolve",
           "write_tuned"]
