"""``vasr transcribe MODEL_DIR AUDIO...``: the recognizer on files, a CSV manifest, utterances the
caller read (a database split: ``vasr.data.utterance``) or stdin, written as text, json, jsonl, srt or vtt.

Exit status: 0 when every input was transcribed, 1 when some failed (each failure is reported on
stderr naming the file, and the others go on), 2 when nothing could start (bad model directory,
bad arguments). With references (a manifest's ``transcript`` column, or a database split), the
corpus CER and WER are printed on stderr.

Torch-free and sqlalchemy-free: the command line reads a database split and hands its utterances in.
"""
from __future__ import annotations

import io
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from vasr.data.utterance import Utterance, manifest_utterances
from vasr.runtime.audio import AudioError, load
from vasr.runtime.decode import DecodeOptions
from vasr.runtime.decode.settings import MAX_BOOST
from vasr.runtime.formats import EXTENSIONS, FORMATS, render
from vasr.runtime.recognizer import MODEL_FP32, MODEL_INT8, Recognizer, RecognizerOptions, Source
from vasr.runtime.stream import StreamOptions
from vasr.runtime.vad import ChunkOptions

STDIN = "-"
LIVE_FORMATS = ("text", "jsonl")   # --stream writes these as results come; the others per input at its end
PARTIAL_WIDTH = 100                # characters of a partial result shown on the terminal line


@dataclass(frozen=True)
class TranscribeConfig:
    model_dir: str                              # a directory written by `vasr export`
    audio: tuple[str, ...] = ()                 # audio files; "-" reads one file from stdin
    manifest: str | None = None                 # CSV: file_path[,transcript,...] (header optional)
    format: str = "text"                        # one of vasr.runtime.formats.FORMATS
    out_dir: str | None = None                  # one file per input here instead of stdout
    fp32: bool = False                          # model.onnx instead of model.int8.onnx
    raw: bool = False                           # the acoustic text only (no ITN, punctuation, hot-word spelling)
    channels: str = "mix"                       # mix | split (one text per channel) | N (channel N alone, 1-based)
    beam: int = 1                               # 1 = greedy
    nbest: int = 1
    hotwords_file: str | None = None            # lines "phrase" or "phrase:boost"
    hotwords: tuple[str, ...] = ()              # "phrase" or "phrase:boost"
    lm: str | None = None                       # n-gram LM (vasr lm build): fusion + rescoring
    lm_weight: float | None = None              # None: the model directory's decode.json, else default
    word_bonus: float | None = None
    embeddings: str | None = None               # vasr embed build directory: phonetic expansion + rescoring
    context: tuple[str, ...] = ()               # phrases the speech is about (semantic rescoring)
    threads: int = 1
    max_batch_frames: int = 8000
    chunk: ChunkOptions = field(default_factory=ChunkOptions)
    stream: bool = False                        # the streaming model, fed block by block, VAD endpoints
    realtime: bool = False                      # --stream: feed no faster than the audio plays
    stream_chunk: int = 8                       # --stream: model frames (40 ms) per chunk


def parse_hotword(text: str, where: str) -> tuple[str, float | None]:
    """"phrase" or "phrase:boost" -> (phrase, boost in nats per token; None: the tuned or default
    boost); ValueError naming ``where``."""
    phrase, sep, boost = text.rpartition(":")
    if not sep:
        return text.strip(), None
    try:
        value = float(boost)
    except ValueError:
        raise ValueError(f"{where}: hot word {text!r}: the part after ':' must be a number (the boost)") from None
    if not 0.0 <= value <= MAX_BOOST:
        raise ValueError(f"{where}: hot word {text!r}: boost {boost.strip()} is outside 0..{MAX_BOOST:g} nats per token")
    return phrase.strip(), value


def read_hotwords(config: TranscribeConfig) -> tuple[tuple[str, float | None], ...]:
    words = []
    if config.hotwords_file:
        lines = _text_lines(Path(config.hotwords_file), "a hot-word file has one 'phrase[:boost]' per line")
        words += [parse_hotword(line, f"{config.hotwords_file}:{n}") for n, line in enumerate(lines, 1)
                  if line.strip() and not line.lstrip().startswith("#")]
    words += [parse_hotword(h, "--hotword") for h in config.hotwords]
    return tuple(words)


def _text_lines(path: Path, what: str) -> list[str]:
    """The lines of a UTF-8 text file; ValueError naming the file when it is binary or not UTF-8."""
    data = path.read_bytes()
    if b"\x00" in data:
        raise ValueError(f"{path}: a binary file (NUL bytes), not text: {what}")
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}): {what}") from None


def _inputs(config: TranscribeConfig, utterances: Sequence[Utterance]) -> tuple[list, list[str | None]]:
    """Inputs and their references (None where unknown)."""
    sources: list = list(utterances)
    refs: list[str | None] = [u.text for u in utterances]
    if config.manifest:
        for u in manifest_utterances(config.manifest, require_transcript=False):
            sources.append(u)
            refs.append(u.text)
    for audio in config.audio:
        sources.append((STDIN, io.BytesIO(sys.stdin.buffer.read())) if audio == STDIN else audio)
        refs.append(None)
    if not sources:
        raise ValueError("no audio: give files, '-' for stdin, --manifest or --split")
    return sources, refs


def resolve(sources: Sequence) -> Iterator[Source]:
    """The recognizer's sources: a whole-file utterance streams from its path; a segment of a file
    is read (16 kHz) when the recognizer reaches it."""
    for s in sources:
        if not isinstance(s, Utterance):
            yield s
        elif s.start_s == 0.0 and s.end_s is None:
            yield s.path
        else:
            try:
                yield (s.path, load(s.path, s.start_s, s.end_s))
            except AudioError as exc:
                yield (s.path, exc)


def run(config: TranscribeConfig, out: TextIO | None = None, err: TextIO | None = None,
        utterances: Sequence[Utterance] = ()) -> int:
    """Transcribe ``utterances`` and what ``config`` names; the exit status (0 all good, 1 some
    inputs failed). ``out``/``err`` default to the current sys.stdout/sys.stderr."""
    out, err = out or sys.stdout, err or sys.stderr
    if config.format not in FORMATS:
        raise ValueError(f"unknown format {config.format!r}; expected one of {', '.join(FORMATS)}")
    options = RecognizerOptions(model_file=MODEL_FP32 if config.fp32 else MODEL_INT8, threads=config.threads,
                                max_batch_frames=config.max_batch_frames, chunk=config.chunk, raw=config.raw,
                                channels=config.channels,
                                decode=DecodeOptions(config.beam, config.nbest, read_hotwords(config), lm=config.lm,
                                                     lm_weight=config.lm_weight, word_bonus=config.word_bonus,
                                                     embeddings=config.embeddings, context=config.context))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recognizer = Recognizer(config.model_dir, options)
    for w in caught:
        print(f"vasr transcribe: warning: {w.message}", file=err)
    sources, refs = _inputs(config, utterances)
    out_dir = Path(config.out_dir) if config.out_dir else None
    if out_dir:
        if out_dir.exists() and not out_dir.is_dir():
            raise ValueError(f"--out-dir {out_dir}: an existing file, not a directory")
        out_dir.mkdir(parents=True, exist_ok=True)
        targets = output_paths([_source_name(s) for s in sources], out_dir, EXTENSIONS[config.format])
    many = len(sources) > 1
    failed, scored, audio_s = 0, [], 0.0
    start = time.perf_counter()
    as_array = config.format == "json" and many and out_dir is None
    if as_array:
        out.write("[\n")
    live = out_dir is None and config.stream and config.format in LIVE_FORMATS
    for i, t in enumerate(_transcripts(recognizer, config, sources, out, err, many, live)):
        if t.error:
            failed += 1
            print(f"vasr transcribe: error: {t.error}", file=err)
        audio_s += t.duration_s
        if refs[i] is not None and not t.error:
            scored.append((refs[i], t.raw_text))
        if live or (t.error and config.format in ("text", "srt", "vtt")):
            continue
        text = render(t, config.format, with_path=many)
        if out_dir:
            _write_atomic(targets[i], text)
        else:
            out.write(("" if i == 0 or not as_array else ",\n") + (text.rstrip("\n") if as_array else text))
        out.flush()
    if as_array:
        out.write("\n]\n")
    seconds = time.perf_counter() - start
    print(f"vasr transcribe: {len(sources) - failed}/{len(sources)} inputs, {audio_s:.1f} s of audio in "
          f"{seconds:.2f} s (RTF {seconds / max(audio_s, 1e-9):.4f})", file=err)
    if scored:
        cer, wer = score([r for r, _ in scored], [h for _, h in scored])
        print(f"vasr transcribe: CER {100 * cer.rate:.2f}% WER {100 * wer.rate:.2f}% on {len(scored)} "
              f"utterances with references", file=err)
    return 1 if failed else 0


def output_paths(names: Sequence[str], out_dir: Path, ext: str) -> list[Path]:
    """One output file per input, none shared: ``STEM.ext`` in ``out_dir``; when stems repeat
    (``a/x.wav``, ``b/x.wav``), each input's path below the inputs' common folder (``a/x.ext``); when
    those still repeat (``x.wav``, ``x.flac``), the whole file name (``x.wav.ext``)."""
    flat = [Path(n).stem for n in names]
    if len(set(flat)) == len(flat):
        return [out_dir / f"{stem}.{ext}" for stem in flat]
    paths = [Path(n).resolve() for n in names]
    common = Path(os.path.commonpath([p.parent for p in paths]))
    nested = [p.relative_to(common) for p in paths]
    if len({n.with_suffix("") for n in nested}) == len(nested):
        return [out_dir / n.with_suffix(f".{ext}") for n in nested]
    return [out_dir / n.parent / f"{n.name}.{ext}" for n in nested]


def _source_name(source) -> str:
    if isinstance(source, Utterance):
        return str(source.path)
    return str(source[0] if isinstance(source, tuple) else source)


def _write_atomic(path: Path, text: str) -> None:
    """``path`` holds all of ``text`` or what it held before, never part of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _transcripts(recognizer: Recognizer, config: TranscribeConfig, sources: list, out: TextIO, err: TextIO,
                 many: bool, live: bool) -> Iterator:
    """The inputs' transcripts: offline, or with ``--stream`` one input at a time through the
    streaming model; ``live``: finals are written as they come (text: a line each; jsonl: partials
    too, each a line with ``"final"``), and on a terminal stderr shows the partial being decoded."""
    if not config.stream:
        yield from recognizer.transcribe_iter(resolve(sources))
        return
    if config.channels != "mix":
        raise ValueError(f"--channels {config.channels}: --stream mixes every input to mono")
    options = StreamOptions(chunk=config.stream_chunk)
    recognizer.stream(options=options)          # fails here, once, when there is no streaming model
    show_partials = config.format == "text" and err.isatty()
    for source in resolve(sources):
        name = str(source[0] if isinstance(source, tuple) else source)

        def on_event(event, name=name):
            seg = event.segment
            if live and config.format == "jsonl":
                out.write(json.dumps({"path": name, "final": event.final, "start": seg.start, "end": seg.end,
                                      "text": seg.text, "raw_text": seg.raw_text,
                                      "words": [{"word": w.text, "start": w.start, "end": w.end} for w in seg.words]},
                                     ensure_ascii=False) + "\n")
            elif live and event.final:
                if show_partials:
                    err.write("\r\x1b[K")
                out.write((f"{name}: " if many else "") + seg.text + "\n")
            elif show_partials:
                err.write("\r\x1b[K" + seg.text[-PARTIAL_WIDTH:])
            if live:
                out.flush()
            err.flush()

        yield recognizer.transcribe_stream(source, realtime=config.realtime, on_event=on_event, options=options)


def score(refs: Sequence[str], hyps: Sequence[str]):
    """(CER, WER) ErrorRates of hypotheses against references (normalised here)."""
    from vasr.kernels import corpus_cer, corpus_wer
    from vasr.text.normalize import normalize

    refs = [normalize(r) for r in refs]
    return corpus_cer(refs, list(hyps)), corpus_wer(refs, list(hyps))
