"""Vietnamese syllables as phonetic tokens: onset, rhyme and tone, spelt in Telex letters.

``decompose("việt") == Syllable("v", "ieet", "j")``, printed ``v ieet j``. The parts:

* onset: the initial consonant cluster, spelt by sound where the orthography has two spellings of
  one sound: ``ngh`` -> ``ng``, ``gh`` -> ``g``, ``k`` -> ``c`` (nghiêng = ``ng ieeng z``,
  ghi = ``g i z``, kể = ``c ee r``); ``đ`` -> ``dd``; ``gi`` and ``qu`` are onsets (gì = ``gi i f``,
  giữ = ``gi uw x``, quốc = ``qu ooc s``); no onset is ``""``;
* rhyme: vowels and final consonant in Telex letters (ă ``aw``, â ``aa``, ê ``ee``, ô ``oo``,
  ơ ``ow``, ư ``uw``: người = ``ng uwowi f``), with the i/y spellings of one sound merged: a lone
  ``y`` nucleus is ``i`` (lý = lí = ``l i s``) and ``yê`` is ``iê`` (yêu = ``ieeu``); the ``y`` of
  ``uy`` is a different vowel and stays (khuya = ``kh uya z``). After ``gi`` the ``i`` that the
  spelling drops before ``ê`` is put back (giếng = ``gi ieeng s``, rhyming with tiếng);
* tone: the Telex key, ``s`` sắc, ``f`` huyền, ``r`` hỏi, ``x`` ngã, ``j`` nặng, and ``z`` for ngang
  (no mark; ``z`` is Telex's "remove the tone" key).

The decomposition is a key for sound, not a spelling to invert: spellings of one sound share it
(kể and a would-be cể, lý and lí).

``phonetic_tokens(word)`` is what Phon2Vec trains on. Tone tokens carry a ``_`` prefix (``_s``)
because s, r and x are also onsets. Onsets that the Hanoi pronunciation merges add a sound-class
token (d/gi/r -> ``~z``, s/x -> ``~s``, ch/tr -> ``~c``), so that dành and giành share three of
their four tokens. A word that is not one Vietnamese syllable (``is_syllable`` false: foreign words,
acronyms) falls back to one token per letter: ``email`` -> ``e m a i l``.
"""
from __future__ import annotations

import unicodedata
from typing import NamedTuple

# the normaliser's onset + nucleus + final pattern: one definition of a Vietnamese spelling
from vasr.text.normalize import ONSETS, SYLLABLE, TONE_MARKS, is_syllable

__all__ = ["Syllable", "TONES", "decompose", "phonetic_tokens", "sentence_tokens", "token_role"]

# Telex tone keys in the order of TONE_MARKS (huyền sắc hỏi ngã nặng), then ngang
TONES = dict(zip(TONE_MARKS, ("f", "s", "r", "x", "j")))
NGANG = "z"
TONE_PREFIX = "_"  # tone tokens are "_s" ...: the bare keys s, r, x are onsets too
SOUND_PREFIX = "~"
# onsets the Hanoi pronunciation merges -> their shared sound-class token
SOUND_CLASS = {"d": "~z", "gi": "~z", "r": "~z", "s": "~s", "x": "~s", "ch": "~c", "tr": "~c"}
ONSET_SPELLING = {"ngh": "ng", "gh": "g", "k": "c"}
TELEX = str.maketrans({"ă": "aw", "â": "aa", "ê": "ee", "ô": "oo", "ơ": "ow", "ư": "uw", "đ": "dd"})
ONSET_TOKENS = frozenset(ONSET_SPELLING.get(o, o).translate(TELEX) for o in ONSETS)


class Syllable(NamedTuple):
    """One syllable's phonetic key; ``str()`` gives ``onset rhyme tone`` (no onset: ``rhyme tone``)."""

    onset: str  # Telex letters, "" for none (an, yêu)
    rhyme: str  # Telex letters: vowels and final consonant
    tone: str  # Telex key: s f r x j, or z for ngang

    def __str__(self) -> str:
        return " ".join(part for part in self if part)


def _strip_tone(word: str) -> tuple[str, str]:
    """(word without its tone mark, NFC; the tone's Telex key, ``z`` if none)."""
    tone = NGANG
    kept = []
    for char in unicodedata.normalize("NFD", word):
        if char in TONES:
            tone = TONES[char]
        else:
            kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept)), tone


def decompose(word: str) -> Syllable | None:
    """The phonetic key of ``word`` (one normalised, lower-case syllable), or None if ``word`` is not
    spelt as a Vietnamese syllable."""
    word = unicodedata.normalize("NFC", word)
    if not is_syllable(word):
        return None
    plain, tone = _strip_tone(word)
    onset, nucleus, final = (g or "" for g in SYLLABLE.fullmatch(plain).groups())
    if onset == "g" and nucleus.startswith("i"):
        onset = "gi"  # gì, gìn: the regex gives g + i(n), but the onset is gi and the rhyme keeps the i
    elif onset == "gi" and nucleus.startswith("ê"):
        nucleus = "i" + nucleus  # giếng = gi + iêng: the spelling drops the i of iê after gi
    if nucleus == "y":
        nucleus = "i"
    elif nucleus.startswith("yê"):
        nucleus = "i" + nucleus[1:]
    onset = ONSET_SPELLING.get(onset, onset)
    return Syllable(onset.translate(TELEX), (nucleus + final).translate(TELEX), tone)


def phonetic_tokens(word: str) -> tuple[str, ...]:
    """Phon2Vec tokens of one normalised word: onset, its sound class (merged onsets only), rhyme and
    ``_``-prefixed tone; one token per letter for a word that is not a Vietnamese syllable."""
    syllable = decompose(word)
    if syllable is None:
        return tuple(word)
    onset, rhyme, tone = syllable
    tokens = [onset] if onset else []
    if onset in SOUND_CLASS:
        tokens.append(SOUND_CLASS[onset])
    return (*tokens, rhyme, TONE_PREFIX + tone)


def sentence_tokens(text: str) -> list[str]:
    """Phon2Vec tokens of a normalised sentence: its words' tokens in order."""
    return [token for word in text.split() for token in phonetic_tokens(word)]


def token_role(token: str) -> str:
    """Which part of a syllable a Phon2Vec token stands for: ``onset``, ``class`` (sound class),
    ``rhyme`` or ``tone``. A letter of a non-syllable counts as an onset if it is a consonant onset
    (b, c, d ...), else as a rhyme."""
    if token.startswith(TONE_PREFIX):
        return "tone"
    if token.startswith(SOUND_PREFIX):
        return "class"
    return "onset" if token in ONSET_TOKENS else "rhyme"
