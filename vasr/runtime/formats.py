"""Writers of the runtime's transcripts: text, json, jsonl, srt and vtt.

``json``/``jsonl`` objects carry ``path``, ``text``, ``duration_s``, ``words`` (text, start, end in
seconds, confidence), ``segments`` (the chunks, each with its n-best list and scores in nats) and
``tokens``; a failed input has ``path`` and ``error`` only. Subtitles group words into cues that
break at pauses, chunk boundaries, or a length limit.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

from vasr.runtime.recognizer import Transcript, Word

FORMATS = ("text", "json", "jsonl", "srt", "vtt")
CUE_MAX_S = 6.0           # a subtitle cue spans at most this many seconds ...
CUE_MAX_WORDS = 14        # ... and this many words
CUE_GAP_S = 0.8           # a pause this long between words starts a new cue


def to_dict(t: Transcript) -> dict:
    """The JSON object of one transcript."""
    if t.error:
        return {"path": t.path, "error": t.error}
    return {
        "path": t.path, "text": t.text, "duration_s": round(t.duration_s, 3),
        "words": [{"word": w.text, "start": w.start, "end": w.end, "confidence": w.confidence} for w in t.words],
        "segments": [{"start": s.start, "end": s.end, "text": s.text, "confidence": round(s.confidence, 4),
                      "nbest": [{"text": a.text, "score": round(a.score, 4), "acoustic": round(a.acoustic, 4),
                                 "tokens": list(a.tokens)} for a in s.nbest]} for s in t.segments],
        "tokens": list(t.tokens),
    }


def cues(t: Transcript) -> list[tuple[float, float, str]]:
    """(start s, end s, text) subtitle cues of a transcript."""
    out: list[tuple[float, float, str]] = []
    for segment in t.segments:
        group: list[Word] = []
        for w in segment.words:
            if group and (w.start - group[-1].end > CUE_GAP_S or w.end - group[0].start > CUE_MAX_S
                          or len(group) >= CUE_MAX_WORDS):
                out.append(_cue(group))
                group = []
            group.append(w)
        if group:
            out.append(_cue(group))
    return out


def _cue(words: Sequence[Word]) -> tuple[float, float, str]:
    return words[0].start, words[-1].end, " ".join(w.text for w in words)


def _timestamp(seconds: float, decimal: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{decimal}{ms:03d}"


def srt(t: Transcript) -> str:
    return "".join(f"{i}\n{_timestamp(a, ',')} --> {_timestamp(b, ',')}\n{text}\n\n"
                   for i, (a, b, text) in enumerate(cues(t), start=1))


def vtt(t: Transcript) -> str:
    return "WEBVTT\n\n" + "".join(f"{_timestamp(a, '.')} --> {_timestamp(b, '.')}\n{text}\n\n" for a, b, text in cues(t))


def render(t: Transcript, fmt: str, with_path: bool) -> str:
    """One transcript in ``fmt`` (one of FORMATS) as text ending in a newline. ``with_path``: prefix
    text lines with the input's path (several inputs on one stream)."""
    if fmt == "text":
        return f"{t.path}\t{t.text}\n" if with_path else f"{t.text}\n"
    if fmt == "jsonl":
        return json.dumps(to_dict(t), ensure_ascii=False) + "\n"
    if fmt == "json":
        return json.dumps(to_dict(t), ensure_ascii=False, indent=2) + "\n"
    if fmt == "srt":
        return srt(t)
    if fmt == "vtt":
        return vtt(t)
    raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")


EXTENSIONS = {"text": "txt", "json": "json", "jsonl": "jsonl", "srt": "srt", "vtt": "vtt"}
