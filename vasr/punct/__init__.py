"""Punctuation and capitalisation of the recognizer's words: the training side (needs torch).

``labels`` (punctuated text -> normalised words with a mark and a case each), ``corpus`` (the text
sources and training windows), ``sentences`` (generated everyday sentences), ``model`` (the Transformer),
``train`` (``vasr punct train``), ``export`` (punct.onnx and punct.json), ``metrics`` (``vasr punct eval``).
The torch-free half that applies a trained model is ``vasr.runtime.punct``.
"""
