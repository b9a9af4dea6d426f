"""Writers of the runtime's transcripts: text, json, jsonl, srt and vtt.

``json``/``jsonl`` objects carry ``path``, ``text`` (display text) and ``raw_text`` (the acoustic,
normalised text), ``duration_s``, ``words`` and ``raw_words`` (text, start, end in seconds,
confidence), ``segments`` (the chunks, each with both texts and its acoustic n-best list with scores
in nats) and ``tokens``; a failed input has ``path`` and ``error`` only. Text and subtitles show the
display words. Inputs read per channel (``--channels split`` or ``N``) label each text line, cue,
segment and word with its 1-based channel. Subtitles group words into cues that
break at pauses, chunk boundaries, or a length limit.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

from vasr.runtime.recognizer import Segment, Transcript, Word

FORMATS = ("text", "json", "jsonl", "srt", "vtt")
CUE_MAX_S = 6.0           # a subtitle cue spans at most this many seconds ...
CUE_MAX_WORDS = 14        # ... and this many words
CUE_GAP_S = 0.8           # a pause this long between words starts a new cue


def to_dict(t: Transcript) -> dict:
    """The JSON object of one transcript."""
    if t.error:
        return {"path": t.path, "error": t.error}
    return {
        "path": t.path, "text": t.text, "raw_text": t.raw_text, "duration_s": round(t.duration_s, 3),
        "words": [w for s in t.segments for w in _words(s.words, s.channel)],
        "raw_words": [w for s in t.segments for w in _words(s.raw_words, s.channel)],
        "segments": [{"start": s.start, "end": s.end, **({"channel": s.channel} if s.channel else {}),
                      "text": s.text, "raw_text": s.raw_text, "confidence": round(s.confidence, 4),
                      "nbest": [{"text": a.text, "score": round(a.score, 4), "acoustic": round(a.acoustic, 4),
                                 "tokens": list(a.tokens)} for a in s.nbest]} for s in t.segments],
        "tokens": list(t.tokens),
    }


def _words(words: Sequence[Word], channel: int | None) -> list[dict]:
    tag = {"channel": channel} if channel else {}
    return [{"word": w.text, "start": w.start, "end": w.end, "confidence": w.confidence, **tag} for w in words]


def _label(segment: Segment) -> str:
    """"[2] " before the text of a segment of channel 2 (--channels split/N); nothing when mixed."""
    return f"[{segment.channel}] " if segment.channel else ""


def cues(t: Transcript) -> list[tuple[float, float, str]]:
    """(start s, end s, text) subtitle cues of a transcript."""
    out: list[tuple[float, float, str]] = []
    for segment in t.segments:
        group: list[Word] = []
        for w in segment.words:
            if group and (w.start - group[-1].end > CUE_GAP_S or w.end - group[0].start > CUE_MAX_S
                          or len(group) >= CUE_MAX_WORDS):
                out.append(_cue(group, segment))
                group = []
            group.append(w)
        if group:
            out.append(_cue(group, segment))
    return sorted(out, key=lambda cue: cue[0]) if any(s.channel for s in t.segments) else out


def _cue(words: Sequence[Word], segment: Segment) -> tuple[float, float, str]:
    return words[0].start, words[-1].end, _label(segment) + " ".join(w.text for w in words)


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
        prefix = f"{t.path}\t" if with_path else ""
        if any(s.channel for s in t.segments):  # one line per segment, labelled with its channel
            return "".join(f"{prefix}{_label(s)}{s.text}\n" for s in t.segments if s.text)
        return f"{prefix}{t.text}\n"
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
