"""How to decode: what a caller asks (``DecodeOptions``), what ``vasr tune`` stored in the model
directory (``Tuned``, ``decode.json``), and the one frozen object the decoder runs on, both merged
(``DecodeSettings``, from ``resolve``).

An option left unset (None) takes its value from ``decode.json``, else the built-in default;
explicit values always win. ``resolve`` is also where an impossible request is turned into a
possible one, with a warning: hot words or an LM with greedy search decode at beam ``HOTWORD_BEAM``.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from vasr.config import from_dict, to_dict
from vasr.kernels import DEFAULT_BOOST
from vasr.runtime.decode.expand import ExpandOptions
from vasr.runtime.decode.rescore import RescoreWeights
from vasr.text.normalize import normalize

__all__ = ["TUNED_FILE", "HOTWORD_BEAM", "MAX_BEAM", "MAX_BOOST", "DEFAULT_LM_WEIGHT", "DecodeOptions", "Tuned", "DecodeSettings",
           "read_tuned", "write_tuned", "resolve"]

TUNED_FILE = "decode.json"
HOTWORD_BEAM = 4  # prefixes kept when hot words or an LM are given without a beam
MAX_BEAM = 64  # widest prefix beam (and most alternatives) a caller may ask for: beyond it only time grows
MAX_BOOST = 10.0  # largest hot-word bonus, nats per token: more forces the phrase over any audio
DEFAULT_LM_WEIGHT = 0.3  # shallow-fusion nats of LM per nat of acoustic score, untuned

# phrases, or (phrase, bonus in nats per matched token; None: the tuned boost) pairs
Hotwords = tuple[str | tuple[str, float | None], ...]


def _check_range(name: str, value: float | None, low: float, high: float) -> None:
    """ValueError unless ``value`` is None or a number in [low, high] (NaN is not)."""
    if value is not None and not low <= value <= high:
        raise ValueError(f"{name} {value!r}: expected a number from {low:g} to {high:g}")


@dataclass(frozen=True)
class DecodeOptions:
    """What a caller asks for; None means "the tuned value (decode.json), else the default"."""

    beam: int = 1  # 1 = greedy search; N > 1 = prefix beam search (hot words or an LM need N > 1)
    nbest: int = 1  # alternatives reported per chunk
    hotwords: Hotwords = ()  # (phrase, bonus in nats per matched token)
    lm: str | None = None  # n-gram LM (lm.bin / lm.arpa): shallow fusion, and a rescoring term
    lm_weight: float | None = None  # shallow-fusion weight of the LM
    word_bonus: float | None = None  # shallow-fusion bonus per word
    embeddings: str | None = None  # `vasr embed build` directory: phonetic expansion + rescoring
    context: tuple[str, ...] = ()  # phrases the speech is about (semantic rescoring term)
    rescore: RescoreWeights | None = None  # second-pass weights
    expand_threshold: float | None = None  # least Phon2Vec cosine for a hot-word substitution

    def __post_init__(self) -> None:
        for name in ("beam", "nbest"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_BEAM:
                raise ValueError(f"{name} {value!r}: expected an integer from 1 to {MAX_BEAM}")
        for item in self.hotwords:
            phrase, boost = (item, None) if isinstance(item, str) else item
            if boost is not None and not 0.0 <= boost <= MAX_BOOST:    # False for NaN too
                raise ValueError(f"hot word {phrase!r}: boost {boost:g} is outside 0..{MAX_BOOST:g} nats per token")
        _check_range("lm_weight", self.lm_weight, 0.0, 10.0)
        _check_range("word_bonus", self.word_bonus, -20.0, 20.0)
        _check_range("expand_threshold", self.expand_threshold, -1.0, 1.0)


@dataclass(frozen=True)
class Tuned:
    """The settings ``vasr tune`` found on a dev split (the defaults until it has run)."""

    boost: float = DEFAULT_BOOST  # hot-word bonus, nats per matched token
    lm_weight: float = DEFAULT_LM_WEIGHT
    word_bonus: float = 0.0
    rescore: RescoreWeights = RescoreWeights()
    expand_threshold: float = ExpandOptions().threshold
    report: dict = field(default_factory=dict)  # what the tuning measured (split, WER before/after, grid)


@dataclass(frozen=True)
class DecodeSettings:
    """Everything the decoder needs, resolved: no field is "unset"."""

    beam: int = 1  # 1 = greedy search, else prefix beam search with this many prefixes
    nbest: int = 1  # alternatives reported per chunk (at most ``beam`` without a second pass)
    hotwords: Hotwords = ()  # a None bonus means ``boost``
    boost: float = DEFAULT_BOOST  # bonus of a hot word given without one, nats per matched token
    lm: str | None = None  # n-gram LM file
    lm_weight: float = DEFAULT_LM_WEIGHT  # shallow fusion
    word_bonus: float = 0.0  # shallow fusion, per word
    embeddings: str | None = None  # `vasr embed build` directory
    context: tuple[str, ...] = ()  # normalised phrases the speech is about
    rescore: RescoreWeights = RescoreWeights()  # second-pass weights
    expand_threshold: float = ExpandOptions().threshold  # least Phon2Vec cosine for a substitution

    @property
    def second_pass(self) -> bool:
        """Whether decoding ends with N-best rescoring (it needs an LM or embeddings)."""
        return self.lm is not None or self.embeddings is not None


def read_tuned(model_dir: str | os.PathLike) -> Tuned:
    """The model directory's tuned settings (defaults when it has no decode.json); ValueError naming
    the file and field when it is malformed."""
    path = Path(model_dir) / TUNED_FILE
    if not path.is_file():
        return Tuned()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    try:
        return from_dict(Tuned, data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def write_tuned(model_dir: str | os.PathLike, tuned: Tuned) -> Path:
    """Write decode.json atomically; returns its path."""
    path = Path(model_dir) / TUNED_FILE
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(to_dict(tuned), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def resolve(options: DecodeOptions = DecodeOptions(), tuned: Tuned = Tuned()) -> DecodeSettings:
    """The settings ``options`` asks for, unset fields from ``tuned``; warns (and decodes at
    ``HOTWORD_BEAM``) when hot words or an LM come with greedy search."""
    beam = options.beam
    if beam <= 1 and (options.hotwords or options.lm):
        what = "hot words need" if options.hotwords else "an LM needs"
        warnings.warn(f"{what} beam search; greedy search cannot use them: decoding with --beam {HOTWORD_BEAM}",
                      stacklevel=2)
        beam = HOTWORD_BEAM

    def pick(value, default):
        return default if value is None else value

    return DecodeSettings(
        beam=beam, nbest=options.nbest, hotwords=tuple(options.hotwords), boost=tuned.boost, lm=options.lm,
        lm_weight=pick(options.lm_weight, tuned.lm_weight), word_bonus=pick(options.word_bonus, tuned.word_bonus),
        embeddings=options.embeddings, context=tuple(normalize(c) for c in options.context),
        rescore=pick(options.rescore, tuned.rescore),
        expand_threshold=pick(options.expand_threshold, tuned.expand_threshold))
