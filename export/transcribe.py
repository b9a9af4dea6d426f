"""``vasr transcribe MODEL_DIR AUDIO...``: the recognizer on files, a CSV manifest, a database split
or stdin, written as text, json, jsonl, srt or vtt.

Exit status: 0 when every input was transcribed, 1 when some failed (each failure is reported on
stderr naming the file, and the others go on), 2 when nothing could start (bad model directory,
bad arguments). With references (a manifest's ``transcript`` column, or a database split), the
corpus CER and WER are printed on stderr.

Torch-free: a database split needs sqlalchemy, imported only then.
"""
from __future__ import annotations

import io
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from vasr.export.formats import EXTENSIONS, FORMATS, render
from vasr.export.runtime import MODEL_FP32, MODEL_INT8, DecodeOptions, Recognizer, RecognizerOptions, Source
from vasr.export.vad import ChunkOptions

STDIN = "-"


@dataclass(frozen=True)
class TranscribeConfig:
    model_dir: str                              # a directory written by `vasr export`
    audio: tuple[str, ...] = ()                 # audio files; "-" reads one file from stdin
    manifest: str | None = None                 # CSV: file_path[,transcript,...] (header optional)
    split: str | None = None                    # a database split (train | val | test) instead
    split_version: str = "default"
    db: str | None = None
    format: str = "text"                        # one of vasr.export.formats.FORMATS
    out_dir: str | None = None                  # one file per input here instead of stdout
    fp32: bool = False                          # model.onnx instead of model.int8.onnx
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


def parse_hotword(text: str, where: str) -> tuple[str, float | None]:
    """"phrase" or "phrase:boost" -> (phrase, boost in nats per token; None: the tuned or default
    boost); ValueError naming ``where``."""
    phrase, sep, boost = text.rpartition(":")
    if not sep:
        return text.strip(), None
    try:
        return phrase.strip(), float(boost)
    except ValueError:
        raise ValueError(f"{where}: hot word {text!r}: the part after ':' must be a number (the boost)") from None


def read_hotwords(config: TranscribeConfig) -> tuple[tuple[str, float | None], ...]:
    words = []
    if config.hotwords_file:
        lines = Path(config.hotwords_file).read_text(encoding="utf-8").splitlines()
        words += [parse_hotword(line, f"{config.hotwords_file}:{n}") for n, line in enumerate(lines, 1)
                  if line.strip() and not line.lstrip().startswith("#")]
    words += [parse_hotword(h, "--hotword") for h in config.hotwords]
    return tuple(words)


def read_manifest(path: str) -> list[tuple[str, str | None]]:
    """(audio path, transcript or None) rows of a CSV manifest (``vasr.data.manifests.read_csv``
    rules: header optional, paths relative to the manifest); a malformed row is an error naming it."""
    from vasr.data.manifests import read_csv

    entries, rejects = read_csv(Path(path), require_transcript=False)
    if rejects:
        raise ValueError("; ".join(f"{r.row_ref}: {r.reason}" for r in rejects))
    return [(str(e.path), e.transcript or None) for e in entries]


def split_inputs(db: str | None, split: str, version: str = "default") -> tuple[list, list[str]]:
    """Sources (for ``resolve``) and normalised references of a database split (needs sqlalchemy)."""
    from vasr.db import runs, store

    engine = store.connect(db)
    with engine.connect() as conn:
        records = runs.split_records(conn, split, version)
    engine.dispose()
    if not records:
        raise ValueError(f"split {split!r} of version {version!r} is empty")
    return [_Span(r.path, r.start_s, r.end_s) for r in records], [r.text for r in records]


def _sources(config: TranscribeConfig) -> tuple[list, list[str | None]]:
    """Inputs and their references (None where unknown)."""
    if config.split:
        return split_inputs(config.db, config.split, config.split_version)
    sources: list = []
    refs: list[str | None] = []
    if config.manifest:
        for audio, ref in read_manifest(config.manifest):
            sources.append(audio)
            refs.append(ref)
    for audio in config.audio:
        sources.append((STDIN, io.BytesIO(sys.stdin.buffer.read())) if audio == STDIN else audio)
        refs.append(None)
    if not sources:
        raise ValueError("no audio: give files, '-' for stdin, --manifest or --split")
    return sources, refs


class _Span:
    """A database utterance (a span of a file), decoded when the recognizer reaches it."""

    def __init__(self, path: str, start_s: float, end_s: float):
        self.path, self.start_s, self.end_s = path, start_s, end_s


def resolve(sources: Sequence) -> Iterator[Source]:
    """The recognizer's sources: database spans are decoded one at a time as they are reached."""
    from vasr.data.audio import AudioError, load

    for s in sources:
        if isinstance(s, _Span):
            try:
                yield (s.path, load(s.path, s.start_s, s.end_s))
            except AudioError as exc:
                yield (s.path, exc)
        else:
            yield s


def run(config: TranscribeConfig, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Transcribe what ``config`` names; the exit status (0 all good, 1 some inputs failed).
    ``out``/``err`` default to the current sys.stdout/sys.stderr."""
    out, err = out or sys.stdout, err or sys.stderr
    if config.format not in FORMATS:
        raise ValueError(f"unknown format {config.format!r}; expected one of {', '.join(FORMATS)}")
    options = RecognizerOptions(model_file=MODEL_FP32 if config.fp32 else MODEL_INT8, threads=config.threads, max_batch_frames=config.max_batch_frames,
                                chunk=config.chunk, decode=DecodeOptions(
                                    config.beam, config.nbest, read_hotwords(config), lm=config.lm,
                                    lm_weight=config.lm_weight, word_bonus=config.word_bonus,
                                    embeddings=config.embeddings, context=config.context))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recognizer = Recognizer(config.model_dir, options)
    for w in caught:
        print(f"vasr transcribe: warning: {w.message}", file=err)
    sources, refs = _sources(config)
    out_dir = Path(config.out_dir) if config.out_dir else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    many = len(sources) > 1
    failed, scored, audio_s = 0, [], 0.0
    start = time.perf_counter()
    as_array = config.format == "json" and many and out_dir is None
    if as_array:
        out.write("[\n")
    for i, t in enumerate(recognizer.transcribe(resolve(sources))):
        if t.error:
            failed += 1
            print(f"vasr transcribe: error: {t.error}", file=err)
        audio_s += t.duration_s
        if refs[i] is not None and not t.error:
            scored.append((refs[i], t.text))
        if t.error and config.format in ("text", "srt", "vtt"):
            continue
        text = render(t, config.format, with_path=many)
        if out_dir:
            (out_dir / f"{Path(t.path).stem}.{EXTENSIONS[config.format]}").write_text(text, encoding="utf-8")
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


def score(refs: Sequence[str], hyps: Sequence[str]):
    """(CER, WER) ErrorRates of hypotheses against references (normalised here)."""
    from vasr.kernels import corpus_cer, corpus_wer
    from vasr.text.normalize import normalize

    refs = [normalize(r) for r in refs]
    return corpus_cer(refs, list(hyps)), corpus_wer(refs, list(hyps))
