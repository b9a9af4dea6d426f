"""The torch-free recognizer: an exported model directory + onnxruntime + the vasr kernels.

Imports numpy, onnxruntime, soundfile, soxr and vasr.kernels (and vasr's pure-Python text and
embeddings packages) — never torch or sqlalchemy, so ``vasr transcribe`` starts in well under a
second; kenlm, gensim and faiss only when an LM or embeddings are asked for.

A model directory (written by ``vasr export``) holds ``model.onnx`` (fp32), ``model.int8.onnx``,
``tokens.txt`` and ``config.json``. Audio of any rate, channel count and format libsndfile reads is
streamed, resampled to 16 kHz mono, cut at pauses into chunks of at most ``max_chunk_s``
(``vasr.export.vad``), turned into fbank features by the kernel, batched (padded with -23.0259 as
sherpa-onnx does; the model ignores the padding), run through the model and decoded by ``vasr.export.decoder``
(greedy or prefix beam search with hot words and an LM, then optional N-best rescoring). Word times come from the
token frame indices (one model frame = 40 ms) shifted by the chunk's offset in the file.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnxruntime as ort

from vasr.data.audio import TARGET_RATE, AudioError
from vasr.embeddings.rescore import word_spans
from vasr.export.decoder import Alternative, DecodeOptions, Decoder
from vasr.export.vad import ChunkOptions, StreamStats, chunks, read_blocks
from vasr.kernels import FbankOptions, Hypothesis, compute_fbank_batch
from vasr.kernels.ctc_py import WORD_SPACE

MODEL_FP32 = "model.onnx"
MODEL_INT8 = "model.int8.onnx"
TOKENS_FILE = "tokens.txt"
CONFIG_FILE = "config.json"
FRAME_S = 0.04               # seconds per model output frame: 10 ms fbank shift x subsampling 4
PAD_VALUE = -23.0259         # log(1e-10): the feature value sherpa-onnx pads batches with
MIN_CLIP_S = 0.07            # shorter clips are rejected: fewer than 7 fbank frames
SILENCE_PEAK = 10 ** (-70 / 20)   # a file whose peak stays below -70 dBFS is called silent
FBANK_FRAMES_PER_S = 100     # 10 ms shift
INPUT_NAMES = ("x", "x_lens")
OUTPUT_NAMES = ("log_probs", "log_probs_len")


# a path, or (name, binary file object), or (name, float32 16 kHz mono samples), or (name, the
# AudioError that already made the input unusable: it is reported in input order like the others)
Source = str | os.PathLike | tuple[str, BinaryIO] | tuple[str, np.ndarray] | tuple[str, AudioError]


class ModelDirError(ValueError):
    """A model directory that cannot be used; the message names the file at fault."""


@dataclass(frozen=True)
class RecognizerOptions:
    model_file: str = MODEL_INT8       # which ONNX file of the directory: model.int8.onnx or model.onnx
    threads: int = 1                   # onnxruntime intra-op threads
    max_batch_frames: int = 8000       # padded fbank frames per model call (batch x longest); 0 = one chunk
    chunk: ChunkOptions = field(default_factory=ChunkOptions)
    decode: DecodeOptions = field(default_factory=DecodeOptions)


@dataclass(frozen=True)
class Word:
    text: str
    start: float          # seconds from the start of the file
    end: float            # seconds
    confidence: float     # mean over its tokens of the token's best frame posterior, 0..1


@dataclass(frozen=True)
class Segment:
    """One chunk's result."""
    start: float          # seconds from the start of the file
    end: float
    text: str
    tokens: tuple[int, ...]
    frames: tuple[int, ...]          # per token, model frame (40 ms) within the file
    words: tuple[Word, ...]
    confidence: float                # exp(mean per-frame log-prob of the best path), 0..1
    nbest: tuple[Alternative, ...]


@dataclass(frozen=True)
class Transcript:
    """One input's result; ``error`` is set (and the rest empty) when it failed."""
    path: str
    duration_s: float = 0.0
    segments: tuple[Segment, ...] = ()
    error: str | None = None

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    @property
    def tokens(self) -> tuple[int, ...]:
        return tuple(t for s in self.segments for t in s.tokens)

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)


def read_model_dir(directory: str | os.PathLike, model_file: str = MODEL_INT8) -> tuple[Path, list[str], dict]:
    """(model path, symbols, config) of an exported directory; ModelDirError naming the bad file."""
    from vasr.text.tokens import read_tokens

    directory = Path(directory)
    if not directory.is_dir():
        raise ModelDirError(f"{directory}: no such model directory")
    model = directory / model_file
    for path in (model, directory / TOKENS_FILE, directory / CONFIG_FILE):
        if not path.is_file():
            raise ModelDirError(f"{path}: missing (a model directory holds {MODEL_FP32}, {MODEL_INT8}, "
                                f"{TOKENS_FILE} and {CONFIG_FILE}; write one with `vasr export`)")
    try:
        symbols = read_tokens(directory / TOKENS_FILE)
    except ValueError as exc:
        raise ModelDirError(str(exc)) from None
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelDirError(f"{directory / CONFIG_FILE}: not valid JSON ({exc})") from None
    if config.get("vocab_size") != len(symbols):
        raise ModelDirError(f"{directory / TOKENS_FILE}: {len(symbols)} symbols, but {CONFIG_FILE} says the "
                            f"model has vocab_size {config.get('vocab_size')} (files of different models)")
    return model, symbols, config


class Recognizer:
    """An exported model ready to transcribe; not thread-safe (one per thread)."""

    def __init__(self, model_dir: str | os.PathLike, options: RecognizerOptions = RecognizerOptions()):
        self.options = options
        self.model_path, self.symbols, self.config = read_model_dir(model_dir, options.model_file)
        self.fbank = FbankOptions(**self.config.get("features", {}))
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.model_path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise ModelDirError(f"{self.model_path}: onnxruntime cannot load it ({exc})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if int(meta.get("vocab_size", -1)) != len(self.symbols):
            raise ModelDirError(f"{self.model_path}: vocab_size {meta.get('vocab_size')} in its metadata, "
                                f"but {TOKENS_FILE} has {len(self.symbols)} symbols")
        names = tuple(i.name for i in self.session.get_inputs()), tuple(o.name for o in self.session.get_outputs())
        if names != (INPUT_NAMES, OUTPUT_NAMES):
            raise ModelDirError(f"{self.model_path}: expected inputs {INPUT_NAMES} and outputs {OUTPUT_NAMES}, "
                                f"got {names}")
        self.decoder = Decoder(model_dir, self.symbols, options.decode)

    def log_probs(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Float32 (T'_i, V) log-probs of valid frames, per 16 kHz mono waveform, in one model call."""
        feats = compute_fbank_batch(list(waves), self.fbank)
        lens = np.array([f.shape[0] for f in feats], dtype=np.int64)
        x = np.full((len(feats), max(1, int(lens.max())), self.fbank.num_bins), PAD_VALUE, dtype=np.float32)
        for i, f in enumerate(feats):
            x[i, : f.shape[0]] = f
        log_probs, out_lens = self.session.run(list(OUTPUT_NAMES), {"x": x, "x_lens": lens})
        return [log_probs[i, : int(out_lens[i])] for i in range(len(feats))]

    def decode(self, log_probs: np.ndarray, offset_s: float = 0.0, duration_s: float | None = None) -> Segment:
        """A chunk's Segment from its (T, V) log-probs; ``offset_s`` = chunk start in the file,
        ``duration_s`` its length (default: T model frames)."""
        decoded = self.decoder.decode(log_probs)
        best = decoded.best
        first = int(round(offset_s / FRAME_S))
        frames = len(log_probs)
        confidence = math.exp(_best_path(log_probs) / frames) if frames else 0.0
        end = offset_s + (frames * FRAME_S if duration_s is None else duration_s)
        return Segment(round(offset_s, 3), round(end, 3), best.text, best.tokens,
                       tuple(first + f for f in best.frames), self._words(best, log_probs, offset_s),
                       confidence, decoded.alternatives)

    def _words(self, hyp: Hypothesis, log_probs: np.ndarray, offset_s: float) -> tuple[Word, ...]:
        """Words of ``hyp`` (``word_spans``: a token whose symbol starts with ▁ starts a new word),
        timed from the first to the last of their letter tokens' runs in the best path."""
        argmax = log_probs.argmax(axis=1) if len(log_probs) else np.zeros(0, np.int64)
        words = []
        for text, first, last in word_spans(hyp.tokens, self.symbols):
            start, end, posteriors = None, 0, []
            for token, frame in zip(hyp.tokens[first:last], hyp.frames[first:last]):
                if not self.symbols[token].replace(WORD_SPACE, ""):
                    continue            # a lone ▁ spells nothing and is not timed
                end = frame + 1
                while end < len(argmax) and argmax[end] == token:
                    end += 1            # the token's run in the best path
                start = frame if start is None else start
                posteriors.append(float(np.exp(log_probs[frame:end, token].max())))
            words.append(Word(text, round(offset_s + start * FRAME_S, 3), round(offset_s + end * FRAME_S, 3),
                              round(sum(posteriors) / len(posteriors), 4)))
        return tuple(words)

    def transcribe(self, sources: Iterable[Source]) -> Iterator[Transcript]:
        """Transcripts of ``sources`` in order: each a path, (name, binary file object) such as stdin,
        (name, float32 (S,) 16 kHz mono waveform) or (name, AudioError) (see ``Source``).

        Chunks of consecutive inputs share model calls up to ``max_batch_frames`` padded frames. A bad
        input yields a Transcript with ``error`` set and does not stop the others.
        """
        pending: list[tuple[int, float, np.ndarray]] = []     # (input index, offset s, wave)
        state: dict[int, _Input] = {}
        done = 0
        for index, source in enumerate(sources):
            name, stream = (source, source) if isinstance(source, (str, os.PathLike)) else source
            item = state[index] = _Input(str(name))
            try:
                for offset, wave in chunks(_blocks(stream, str(name), item.stats), self.options.chunk):
                    pending.append((index, offset / TARGET_RATE, wave))
                    if self._batch_full(pending):
                        self._run(pending, state)
                        pending = []
                item.error = _judge(str(name), item.stats)
            except AudioError as exc:
                item.error = str(exc)
            item.read = True
            if item.error:
                pending = [p for p in pending if p[0] != index]
            while done in state and state[done].read and not any(p[0] == done for p in pending):
                yield state.pop(done).result()
                done += 1
        self._run(pending, state)
        while done in state:
            yield state.pop(done).result()
            done += 1

    def _batch_full(self, pending: list[tuple[int, float, np.ndarray]]) -> bool:
        longest = max(p[2].size for p in pending) * FBANK_FRAMES_PER_S // TARGET_RATE
        return longest * (len(pending) + 1) > self.options.max_batch_frames

    def _run(self, pending: list[tuple[int, float, np.ndarray]], state: dict[int, _Input]) -> None:
        if not pending:
            return
        for (index, offset, wave), lp in zip(pending, self.log_probs([p[2] for p in pending])):
            state[index].segments.append(self.decode(lp, offset, wave.size / TARGET_RATE))


@dataclass
class _Input:
    name: str
    stats: StreamStats = field(default_factory=StreamStats)
    segments: list[Segment] = field(default_factory=list)
    error: str | None = None
    read: bool = False

    def result(self) -> Transcript:
        if self.error:
            return Transcript(self.name, error=self.error)
        return Transcript(self.name, self.stats.samples / TARGET_RATE, tuple(sorted(self.segments, key=_start)))


def _start(segment: Segment) -> float:
    return segment.start


def _blocks(stream, name: str, stats: StreamStats) -> Iterator[np.ndarray]:
    if isinstance(stream, AudioError):
        raise stream
    if not isinstance(stream, np.ndarray):
        return read_blocks(stream, name, stats)
    wave = np.ascontiguousarray(stream, dtype=np.float32)
    stats.source_rate, stats.samples = TARGET_RATE, wave.size
    stats.peak = float(np.abs(wave).max()) if wave.size else 0.0
    return iter([wave] if wave.size else [])


def _judge(name: str, stats: StreamStats) -> str | None:
    """Why a fully read input cannot be transcribed, or None."""
    if stats.samples == 0:
        return f"{name}: empty audio (no samples)"
    if stats.samples < MIN_CLIP_S * TARGET_RATE:
        return f"{name}: too short ({1000 * stats.samples / TARGET_RATE:.0f} ms; at least {1000 * MIN_CLIP_S:.0f} ms)"
    if stats.peak < SILENCE_PEAK:
        level = 20 * math.log10(stats.peak) if stats.peak > 0 else -math.inf
        return f"{name}: silence (peak {level:.0f} dBFS)"
    return None


def _best_path(log_probs: np.ndarray) -> float:
    return float(log_probs.max(axis=1).sum(dtype=np.float64))
