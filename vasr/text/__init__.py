"""Vietnamese text: normalisation (``normalize``), number reading (``numbers``), its inverse from
spoken words back to written numbers (``itn``) and the tokenizers that map normalised text to token
ids and ``tokens.txt`` (``tokens``)."""
from vasr.text.normalize import NORMALIZER_VERSION, is_syllable, normalize
from vasr.text.numbers import expand_numbers, number_to_words
from vasr.text.tokens import BpeTokenizer, CharTokenizer, Tokenizer, read_tokens, write_tokens

__all__ = ["NORMALIZER_VERSION", "normalize", "is_syllable", "number_to_words", "expand_numbers",
           "Tokenizer", "CharTokenizer", "BpeTokenizer", "read_tokens", "write_tokens"]
