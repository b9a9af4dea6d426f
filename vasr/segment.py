"""Long recordings into utterances: ``vasr segment MODEL_DIR RECORDING TRANSCRIPT``.

An audiobook chapter, a lecture or a subtitled video comes as one long recording and one long
transcript. The exported model's CTC output over the whole recording (computed in overlapping
windows and joined) is force-aligned to the whole transcript (``vasr.align.align_tokens``); the
recording is then cut between sentences (sentence punctuation or line breaks in the transcript),
and inside a sentence longer than ``max_segment_s`` at its longest pauses. Each cut is moved off
the CTC spikes onto the audio: a segment's edges extend over the neighbouring frames that are
louder than the recording's pauses, plus ``pad_s`` of silence, never past the middle of the pause.
The segments are imported as segments of the one audio file (like Kaldi's ``segments``), through
the same checks as any import; a segment whose words the model could not find (mean word
confidence below ``min_confidence`` or a third of the recording's median, a word aligned over more
than ``max_word_s`` (the alignment had to put speech that the transcript leaves out somewhere), or
a speaking rate 2.5 times faster or slower than the recording's: the transcript does not match the
audio there) is rejected with its reason instead, and sound that no segment holds is reported.

A transcript without any sentence punctuation or line break is cut only at pauses of at least
``min_pause_s``, into pieces up to ``max_segment_s`` long.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vasr.align import Alignment, WordSpan, align_tokens
from vasr.data.manifests import Entry, Reject
from vasr.data.textsource import split_sentences
from vasr.kernels import WORD_SPACE
from vasr.runtime.audio import TARGET_RATE, load
from vasr.runtime.decode.rescore import word_spans
from vasr.text.normalize import normalize

MAX_ALIGN_CELLS = 3_000_000_000   # frames x CTC states of one alignment (1 byte of back-pointer each): ~45 min


@dataclass(frozen=True)
class SegmentConfig:
    window_s: float = 20.0       # model input per window over the recording
    overlap_s: float = 2.0       # context on each side of a window, dropped when the windows are joined
    batch: int = 4               # windows per model call
    max_segment_s: float = 20.0  # a longer sentence is cut at its longest pauses
    min_pause_s: float = 0.25    # unpunctuated transcripts: cut only at pauses at least this long
    pad_s: float = 0.05          # silence kept before and after each segment (at most half of the pause)
    min_confidence: float = 0.05  # mean word confidence below which a segment is rejected,
    min_confidence_ratio: float = 0.33  # ... or below this share of the recording's median segment confidence,
    max_rate_ratio: float = 2.5   # ... or spoken this many times faster or slower than the recording's median,
    max_word_s: float = 1.5       # ... or holding a word aligned over longer than this
    speaker: str | None = None   # stored with every segment
    split: str | None = None     # train | val | test for every segment

    def __post_init__(self) -> None:
        checks = (("window_s", self.window_s >= 4.0, ">= 4"), ("overlap_s", 0 <= self.overlap_s <= self.window_s / 4,
                  "between 0 and window_s / 4"), ("batch", self.batch >= 1, ">= 1"),
                  ("max_segment_s", self.max_segment_s >= 1.0, ">= 1"), ("min_pause_s", self.min_pause_s >= 0, ">= 0"),
                  ("pad_s", self.pad_s >= 0, ">= 0"), ("min_confidence", 0 <= self.min_confidence <= 1, "in [0, 1]"),
                  ("min_confidence_ratio", 0 <= self.min_confidence_ratio <= 1, "in [0, 1]"),
                  ("max_rate_ratio", self.max_rate_ratio > 1, "> 1"), ("max_word_s", self.max_word_s > 0, "> 0"))
        for name, ok, what in checks:
            if not ok:
                raise ValueError(f"segment {name} must be {what}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Cut:
    start_s: float
    end_s: float
    text: str                    # the transcript's words for this segment (as written for whole sentences)
    confidence: float            # mean word confidence of its words
    longest_word: str = ""       # its longest word and how long it lasts: a word stretched over seconds
    longest_word_s: float = 0.0  # is the alignment covering speech the transcript leaves out


def long_log_probs(recognizer, wave: np.ndarray, config: SegmentConfig = SegmentConfig()) -> np.ndarray:
    """(T, V) log-probs of a recording of any length: windows of ``window_s`` that overlap by
    ``overlap_s`` on each side; each keeps the frames of its middle, so every frame saw context."""
    hop_frames = int(round(recognizer.frame_s * TARGET_RATE))            # samples per output frame
    # at least a frame: a window's output is a frame or so shorter than its input, and without one
    # frame to spare at its end the next windows would drift
    overlap = max(1, int(round(config.overlap_s / recognizer.frame_s)))
    keep = int(round(config.window_s / recognizer.frame_s)) - 2 * overlap  # frames a window contributes
    total = int(np.ceil(len(wave) / hop_frames))
    starts = list(range(0, max(total, 1), keep))
    pieces: list[np.ndarray] = []
    for i in range(0, len(starts), config.batch):
        group = starts[i:i + config.batch]
        waves = [wave[max(0, s - overlap) * hop_frames:(s + keep + overlap) * hop_frames] for s in group]
        for s, lp in zip(group, recognizer.log_probs(waves)):
            skip = s - max(0, s - overlap)
            pieces.append(lp[skip:skip + keep])
    return np.concatenate(pieces)[:total] if pieces else np.zeros((0, len(recognizer.symbols)), np.float32)


def units(transcript: str) -> tuple[list[str], bool]:
    """(the sentences of ``transcript`` as written, whether it had sentence breaks at all)."""
    sentences = split_sentences(transcript)
    return sentences, len(sentences) > 1


def cut(words: list[WordSpan], sentence_words: list[int], sentences: list[str], punctuated: bool,
        energy_db: np.ndarray, config: SegmentConfig) -> list[Cut]:
    """The segments of an aligned recording: ``words`` (aligned, in order), ``sentence_words`` (how
    many of them each sentence has), ``energy_db`` the recording's 10 ms frame energies."""
    groups: list[tuple[int, int, str | None]] = []       # word range and its text as written (None: the words)
    first = 0
    for sentence, count in zip(sentences, sentence_words):
        if count:
            groups.append((first, first + count, sentence if punctuated else None))
        first += count
    pieces: list[tuple[int, int, str | None]] = []
    for lo, hi, text in groups:
        pieces += _split_long(words, lo, hi, text, config, by_pause=not punctuated)
    floor = _pause_level(energy_db)
    cuts = []
    for k, (lo, hi, text) in enumerate(pieces):
        before = words[pieces[k - 1][1] - 1].end_s if k else 0.0
        after = words[pieces[k + 1][0]].start_s if k + 1 < len(pieces) else len(energy_db) / 100
        start, end = _edges(words[lo].start_s, words[hi - 1].end_s, before, after, energy_db, floor, config.pad_s)
        spoken = text if text is not None else " ".join(w.word for w in words[lo:hi])
        confidence = float(np.mean([w.confidence for w in words[lo:hi]]))
        longest = max(words[lo:hi], key=lambda w: w.end_s - w.start_s)
        cuts.append(Cut(round(start, 3), round(end, 3), spoken, round(confidence, 4), longest.word,
                        round(longest.end_s - longest.start_s, 3)))
    return cuts


def _split_long(words: list[WordSpan], lo: int, hi: int, text: str | None, config: SegmentConfig,
                by_pause: bool) -> list[tuple[int, int, str | None]]:
    """Word ranges of ``lo..hi``: whole when short enough (and, ``by_pause``, cut at every pause of
    ``min_pause_s`` greedily up to ``max_segment_s``); else cut at the longest pause, recursively."""
    if by_pause:
        out, start = [], lo
        for i in range(lo + 1, hi):
            pause = words[i].start_s - words[i - 1].end_s
            if pause >= config.min_pause_s and words[i].start_s - words[start].start_s > 0 and \
                    _next_pause_end(words, i, hi, config) - words[start].start_s > config.max_segment_s:
                out.append((start, i, None))
                start = i
        out.append((start, hi, None))
        return [p for q in out for p in _split_long(words, *q, config, by_pause=False)]
    if words[hi - 1].end_s - words[lo].start_s <= config.max_segment_s or hi - lo < 2:
        return [(lo, hi, text)]
    gap = max(range(lo + 1, hi), key=lambda i: words[i].start_s - words[i - 1].end_s)
    return _split_long(words, lo, gap, None, config, False) + _split_long(words, gap, hi, None, config, False)


def _next_pause_end(words: list[WordSpan], i: int, hi: int, config: SegmentConfig) -> float:
    """End time of the words from ``i`` up to the next pause of ``min_pause_s`` (or the end)."""
    for j in range(i + 1, hi):
        if words[j].start_s - words[j - 1].end_s >= config.min_pause_s:
            return words[j - 1].end_s
    return words[hi - 1].end_s


def frame_energy_db(wave: np.ndarray) -> np.ndarray:
    """Energy (dB full scale) of each 10 ms frame."""
    step = TARGET_RATE // 100
    frames = len(wave) // step
    power = np.square(wave[:frames * step].astype(np.float64)).reshape(frames, step).mean(axis=1)
    return 10 * np.log10(power + 1e-10)


def _pause_level(energy_db: np.ndarray) -> float:
    """Frames louder than this are sound, not pause: 15 dB over the quietest tenth of the recording,
    and never below -60 dBFS (digital silence would otherwise make breaths speech)."""
    if not len(energy_db):
        return 0.0
    return max(float(np.percentile(energy_db, 10)) + 15.0, -60.0)


def _edges(start: float, end: float, before: float, after: float, energy_db: np.ndarray, floor: float,
           pad_s: float) -> tuple[float, float]:
    """A segment's edges: its aligned words' span, first trimmed of the pause frames at its ends,
    then grown outward over the louder-than-pause frames (the CTC spike of a first letter comes
    after its onset, that of a last letter before its end), then ``pad_s``, but never past the
    middle of the pause to the neighbouring segments."""
    low, high = (before + start) / 2, (end + after) / 2
    a, b = int(start * 100), int(np.ceil(end * 100))
    lowest, highest = int(np.ceil(low * 100)), min(int(high * 100), len(energy_db))
    while b - 1 > a and energy_db[min(b, len(energy_db)) - 1] <= floor:
        b -= 1                  # a late spike (streaming models emit after the sound) trails into the pause
    while a + 1 < b and energy_db[min(a, len(energy_db) - 1)] <= floor:
        a += 1
    while a - 1 >= lowest and energy_db[a - 1] > floor:
        a -= 1
    while b < highest and energy_db[b] > floor:
        b += 1
    return max(low, a / 100 - pad_s, 0.0), min(high, b / 100 + pad_s)


def segment_recording(recognizer, wave: np.ndarray, transcript: str, config: SegmentConfig = SegmentConfig(),
                      energy_db: np.ndarray | None = None) -> list[Cut]:
    """Align ``transcript`` to ``wave`` (16 kHz mono) with ``recognizer`` and cut it (see the module
    docstring); ``energy_db``: its ``frame_energy_db``, when the caller has it already. ValueError
    when the transcript cannot be aligned to the recording at all."""
    if recognizer.tokenizer is None:
        raise ValueError("the model directory has no tokenizer, so the transcript cannot be spelt in its tokens")
    sentences, punctuated = units(transcript)
    normalized = [normalize(s) for s in sentences]
    text = " ".join(n for n in normalized if n)
    if not text:
        raise ValueError("the transcript has no words")
    log_probs = long_log_probs(recognizer, wave, config)
    cells = len(log_probs) * (2 * len(text) + 1)
    if cells > MAX_ALIGN_CELLS:
        minutes = len(wave) / TARGET_RATE / 60
        raise ValueError(f"{minutes:.0f} minutes with a {len(text):,}-character transcript is too long to align at "
                         f"once (the alignment's memory grows with both); cut the recording and its transcript "
                         f"into parts of at most {int(minutes * (MAX_ALIGN_CELLS / cells) ** 0.5)} minutes")
    words = spike_words(align_tokens(log_probs, text, recognizer.tokenizer, recognizer.frame_s),
                        recognizer.tokenizer.symbols, recognizer.frame_s)
    energy_db = frame_energy_db(wave) if energy_db is None else energy_db
    return cut(words, [len(n.split()) for n in normalized], sentences, punctuated, energy_db, config)


def spike_words(alignment: Alignment, symbols, frame_s: float) -> list[WordSpan]:
    """The aligned words, each ending one frame after its last letter's spike instead of at the end
    of that letter's run: a run may stretch over speech the transcript leaves out (the best path has
    to put it somewhere), and the sound itself says where a word ends (``_edges``)."""
    words = []
    for w, (_, a, b) in zip(alignment.words, word_spans(alignment.tokens, symbols)):
        last = max(i for i in range(a, b) if symbols[alignment.tokens[i]].replace(WORD_SPACE, ""))
        words.append(WordSpan(w.word, w.start_s, round((alignment.starts[last] + 1) * frame_s, 3), w.confidence))
    return words


def uncovered(cuts: list[Cut], energy_db: np.ndarray, min_s: float = 0.5) -> list[tuple[float, float]]:
    """(start, end) in seconds of each stretch of sound at least ``min_s`` long that no segment holds:
    speech the transcript leaves out (or long noise), which the import then leaves out too."""
    loud = energy_db > _pause_level(energy_db)
    for c in cuts:
        loud[int(c.start_s * 100):int(np.ceil(c.end_s * 100))] = False
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
    return [(a / 100, b / 100) for a, b in zip(edges[::2], edges[1::2]) if (b - a) / 100 >= min_s]


def _rate(c: Cut) -> float:
    """Characters (spaces excluded) per second of a segment's normalised text."""
    return len(normalize(c.text).replace(" ", "")) / max(c.end_s - c.start_s, 1e-3)


def entries(recording: Path, cuts: list[Cut], config: SegmentConfig) -> tuple[list[Entry], list[Reject]]:
    """Import rows of ``cuts`` (segments of ``recording``), and rejects for those the model could not
    find in the audio: too low a confidence, or a speaking rate far from the recording's (the
    alignment squeezed the words into a stretch that is not theirs)."""
    accepted, rejected = [], []
    rates = [_rate(c) for c in cuts]
    median = float(np.median(rates)) if cuts else 0.0
    floor = max(config.min_confidence,
                config.min_confidence_ratio * float(np.median([c.confidence for c in cuts])) if cuts else 0.0)
    for i, (c, rate) in enumerate(zip(cuts, rates)):
        ref = f"{recording.name}@{c.start_s:.2f}-{c.end_s:.2f}s (segment {i + 1})"
        ratio = rate / median if median else 1.0
        why = None
        if c.confidence < floor:
            why = f"mean word confidence {c.confidence:.2f} < {floor:.2f}"
        elif c.longest_word_s > config.max_word_s:
            why = f"the word {c.longest_word!r} is aligned over {c.longest_word_s:.2f} s"
        elif not 1 / config.max_rate_ratio <= ratio <= config.max_rate_ratio:
            why = (f"{rate:.0f} characters per second, {ratio:.1f} times the recording's median "
                   f"({median:.0f})")
        if why is not None:
            rejected.append(Reject(ref, str(recording), f"{why}: the transcript does not match the audio here"))
            continue
        accepted.append(Entry(ref, recording, c.text, config.split, config.speaker,
                              f"{recording.stem}-{i + 1:05d}", c.start_s, c.end_s))
    return accepted, rejected


def read_transcript(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None


def run(model_dir: str | Path, recording: str | Path, transcript: str | Path, config: SegmentConfig,
        engine=None, options=None, threads: int = 1):
    """Segment ``recording`` with the model of ``model_dir`` and import the segments when ``engine``
    is given. Returns (cuts, the sound no cut holds (``uncovered``), ImportReport or None)."""
    from vasr.runtime.recognizer import Recognizer, RecognizerOptions

    recording, transcript = Path(recording), Path(transcript)
    for path in (recording, transcript):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    text = read_transcript(transcript)
    recognizer = Recognizer(model_dir, RecognizerOptions(threads=threads, raw=True))
    wave = load(recording)
    energy_db = frame_energy_db(wave)
    try:
        cuts = segment_recording(recognizer, wave, text, config, energy_db)
    except ValueError as exc:
        raise ValueError(f"{recording} with {transcript}: {exc}") from None
    gaps = uncovered(cuts, energy_db)
    if engine is None:
        return cuts, gaps, None
    from vasr.data.importers import ImportOptions, ingest

    accepted, rejected = entries(recording.resolve(), cuts, config)
    report = ingest(engine, "segment", str(recording.resolve()), accepted, rejected,
                    options or ImportOptions())
    return cuts, gaps, report
