"""The torch-free recognizer: an exported model directory + onnxruntime + the vasr kernels.

    from vasr import Recognizer
    text = Recognizer("model/").transcribe("a.wav").text

Imports numpy, onnxruntime, soundfile, soxr and vasr.kernels (and vasr's pure-Python text and
embeddings packages) — never torch or sqlalchemy, so ``vasr transcribe`` starts in well under a
second; kenlm only when an LM is asked for, faiss when embeddings are.

A model directory (written by ``vasr export``) holds ``model.onnx`` (fp32), ``model.int8.onnx``,
``tokens.txt`` and ``config.json``. Audio of any rate, channel count and format libsndfile reads is
streamed, resampled to 16 kHz mono and reduced to its speech by the VAD (``vasr.runtime.vad.chunks``:
non-speech is never decoded, a pause of 0.2 s or more ends a piece, speech longer than ``max_chunk_s``
is cut at its quietest point; ``ChunkOptions(speech_only=False)`` decodes every sample: on the demo
model 1.3 CER points better on clean clips, 8 worse with 1.5 s of 20 dB noise around them, and 2-3x
less work per clip since Silero VAD costs twice the tiny model), turned into fbank features by the
kernel, batched (padded with -23.0259 as sherpa-onnx does; the model ignores the padding), run
through the model and decoded by
``vasr.runtime.decode`` (greedy or prefix beam search with hot words and an LM, then optional N-best
rescoring). Word times come from the token frame indices (one model frame = the fbank shift x the
subsampling factor of ``config.json``, 40 ms for vasr's models) shifted by the chunk's offset in the file.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, overload

import numpy as np
import onnxruntime as ort

from vasr.kernels import WORD_SPACE, FbankOptions, Hypothesis, compute_fbank_batch
from vasr.runtime.audio import READ_BLOCK_S, TARGET_RATE, AudioError, StreamStats, channel_count, read_blocks, resample
from vasr.runtime.decode import Alternative, DecodeOptions, Decoder, read_tuned, resolve
from vasr.runtime.decode.search import Decoded
from vasr.runtime.decode.rescore import word_spans
from vasr.runtime.display import Display, display_words
from vasr.runtime.punct import find_punctuator
from vasr.runtime.stream import STREAM_FP32, STREAM_INT8, Stream, StreamingModel, StreamOptions, feed
from vasr.runtime.vad import ChunkOptions, chunks
from vasr.text.normalize import NORMALIZER_VERSION

MODEL_FP32 = "model.onnx"
MODEL_INT8 = "model.int8.onnx"
TOKENS_FILE = "tokens.txt"
CONFIG_FILE = "config.json"
PAD_VALUE = -23.0259         # log(1e-10): the feature value sherpa-onnx pads batches with
MIN_CLIP_S = 0.07            # shorter clips are rejected: fewer than 7 fbank frames
SILENCE_PEAK = 10 ** (-70 / 20)   # a file whose peak stays below -70 dBFS is called silent
STREAM_BLOCK_S = 0.1         # seconds of audio per block when a file is fed to a stream
INPUT_NAMES = ("x", "x_lens")
OUTPUT_NAMES = ("log_probs", "log_probs_len")


# what ``Recognizer.transcribe`` takes: a path, a binary file object, or samples (with a sample rate)
Input = str | os.PathLike | BinaryIO | np.ndarray
# what ``Recognizer.transcribe_iter`` takes: a path, or (name, binary file object), or (name, float32
# 16 kHz mono samples), or (name, the AudioError that already made the input unusable: it is reported
# in input order like the others)
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
    raw: bool = False                  # show the acoustic text as it is: no ITN, punctuation or hot-word spelling
    channels: str = "mix"              # files: "mix" to mono, "split" (each channel alone), or "N" (1-based) only

    def __post_init__(self) -> None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if not isinstance(self.threads, int) or not 1 <= self.threads <= cores:
            raise ValueError(f"threads {self.threads!r}: expected 1 to {cores} (the cores here; more only "
                             f"slows onnxruntime down)")
        if not isinstance(self.max_batch_frames, int) or self.max_batch_frames < 0:
            raise ValueError(f"max_batch_frames {self.max_batch_frames!r}: expected an integer >= 0")


@dataclass(frozen=True)
class Word:
    text: str
    start: float          # seconds from the start of the file
    end: float            # seconds
    confidence: float     # mean over its tokens of the token's best frame posterior, 0..1


@dataclass(frozen=True)
class Segment:
    """One chunk's result: the display text and words (``vasr.runtime.display``) and the acoustic
    ones they came from."""
    start: float          # seconds from the start of the file
    end: float
    text: str                        # display text (= raw_text with RecognizerOptions.raw)
    tokens: tuple[int, ...]
    frames: tuple[int, ...]          # per token, model frame within the file
    words: tuple[Word, ...]          # display words, each timed over the spoken words it stands for
    confidence: float                # exp(mean per-frame log-prob of the best path), 0..1
    nbest: tuple[Alternative, ...]   # acoustic alternatives
    raw_text: str = ""               # the acoustic text: normalised, as the model spells it
    raw_words: tuple[Word, ...] = ()
    channel: int | None = None       # 1-based channel of a --channels split/N input (None: mixed)


@dataclass(frozen=True)
class Transcript:
    """One input's result; ``error`` is set (and the rest empty) when it failed."""
    path: str
    duration_s: float = 0.0
    segments: tuple[Segment, ...] = ()
    error: str | None = None

    @property
    def text(self) -> str:
        """What a person reads: numbers written, punctuated and cased where the model directory can."""
        return " ".join(s.text for s in self.segments if s.text)

    @property
    def raw_text(self) -> str:
        """The acoustic text (normalised): what CER/WER are measured on."""
        return " ".join(s.raw_text for s in self.segments if s.raw_text)

    @property
    def tokens(self) -> tuple[int, ...]:
        return tuple(t for s in self.segments for t in s.tokens)

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    @property
    def raw_words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.raw_words)


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


def model_frame_s(directory: str | os.PathLike, config: dict, fbank: FbankOptions) -> float:
    """Seconds per model output frame: the fbank shift x ``config.json``'s ``subsampling_factor``
    (which must agree with its ``frame_shift_s`` where given); ModelDirError when it cannot be known."""
    where = Path(directory) / CONFIG_FILE
    factor = config.get("subsampling_factor")
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
        raise ModelDirError(f"{where}: subsampling_factor must be a positive integer, got {factor!r}")
    frame_s = fbank.frame_shift_ms / 1000 * factor
    stated = config.get("frame_shift_s")
    if stated is not None and (not isinstance(stated, (int, float)) or abs(stated - frame_s) > 1e-9):
        raise ModelDirError(f"{where}: frame_shift_s {stated!r} disagrees with the features' "
                            f"{fbank.frame_shift_ms} ms shift x subsampling_factor {factor}")
    return frame_s


class Recognizer:
    """An exported model ready to transcribe; not thread-safe (one per thread).

    ``transcribe`` takes one input (a path, a binary file object, or samples with their rate) and
    returns its ``Transcript``, or a list of inputs and returns a list; ``transcribe_iter`` streams
    the transcripts of any iterable of inputs in order.
    """

    def __init__(self, model_dir: str | os.PathLike, options: RecognizerOptions = RecognizerOptions()):
        from vasr.text.tokens import Tokenizer

        if options.channels not in ("mix", "split") and not (options.channels.isdigit() and int(options.channels) >= 1):
            raise ValueError(f"channels {options.channels!r}: expected mix, split or a channel number from 1")
        self.options = options
        self.model_path, self.symbols, self.config = read_model_dir(model_dir, options.model_file)
        self.fbank = FbankOptions(**self.config.get("features", {}))
        self.frame_s = model_frame_s(model_dir, self.config, self.fbank)
        if str(self.config.get("normalizer_version")) != NORMALIZER_VERSION:
            warnings.warn(f"{Path(model_dir) / CONFIG_FILE}: the model was trained with text normaliser version "
                          f"{self.config.get('normalizer_version')}, this vasr has {NORMALIZER_VERSION}: hot words "
                          f"and scores against references may be spelt differently", stacklevel=2)
        self.session = self._session(self.model_path)
        self._streaming: StreamingModel | None = None
        meta = self.session.get_modelmeta().custom_metadata_map
        if int(meta.get("vocab_size", -1)) != len(self.symbols):
            raise ModelDirError(f"{self.model_path}: vocab_size {meta.get('vocab_size')} in its metadata, "
                                f"but {TOKENS_FILE} has {len(self.symbols)} symbols")
        names = tuple(i.name for i in self.session.get_inputs()), tuple(o.name for o in self.session.get_outputs())
        if names != (INPUT_NAMES, OUTPUT_NAMES):
            raise ModelDirError(f"{self.model_path}: expected inputs {INPUT_NAMES} and outputs {OUTPUT_NAMES}, "
                                f"got {names}")
        try:
            self.tokenizer = Tokenizer.load(model_dir)
        except (OSError, ValueError, ImportError) as exc:
            self.tokenizer = None  # sherpa-style directories have tokens.txt only: fine without hot words and LM
            if options.decode.hotwords or options.decode.lm:
                warnings.warn(f"{model_dir}: cannot load the tokenizer ({exc})", stacklevel=2)
        self.tuned = read_tuned(model_dir)
        self.decoder = self.decoder_for(options.decode)
        self.display = None if options.raw else Display(
            find_punctuator(model_dir, options.threads),
            tuple(h if isinstance(h, str) else h[0] for h in options.decode.hotwords))

    def _session(self, path: Path) -> ort.InferenceSession:
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.options.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise ModelDirError(f"{path}: onnxruntime cannot load it ({exc})") from None

    def decoder_for(self, options: DecodeOptions) -> Decoder:
        """A decoder of this model's output with ``options`` (unset ones from its decode.json)."""
        return Decoder(self.symbols, resolve(options, self.tuned), self.tokenizer)

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
        return self._segment(self.decoder.decode(log_probs), log_probs, offset_s, duration_s)

    def _segment(self, decoded: Decoded, log_probs: np.ndarray, offset_s: float, duration_s: float | None) -> Segment:
        best = decoded.best
        first = int(round(offset_s / self.frame_s))
        frames = len(log_probs)
        confidence = math.exp(_best_path(log_probs) / frames) if frames else 0.0
        end = offset_s + (frames * self.frame_s if duration_s is None else duration_s)
        words = self._words(best, log_probs, offset_s)
        shown = words if self.display is None else display_words(words, self.display, Word)
        return Segment(round(offset_s, 3), round(end, 3), " ".join(w.text for w in shown), best.tokens,
                       tuple(first + f for f in best.frames), shown, confidence, decoded.alternatives,
                       best.text, words)

    def stream(self, sample_rate: int = TARGET_RATE, hotwords: Sequence[str | tuple[str, float | None]] | None = None,
               options: StreamOptions = StreamOptions()) -> Stream:
        """A live ``Stream`` of audio at ``sample_rate`` (see ``vasr.runtime.stream``); ``hotwords``
        replace the decode options' hot words for this stream. Needs the directory's streaming model
        (``model-streaming[.int8].onnx``, exported from a model trained with ``model.streaming``)."""
        if self._streaming is None:
            name = STREAM_FP32 if self.options.model_file == MODEL_FP32 else STREAM_INT8
            path = self.model_path.parent / name
            if not path.is_file():
                raise ModelDirError(f"{path}: no streaming model in this directory (train with model.streaming: "
                                    f"true, e.g. --config tiny, and export again)")
            try:
                self._streaming = StreamingModel(self._session(path), self.fbank.num_bins)
            except ValueError as exc:
                raise ModelDirError(f"{path}: {exc}") from None
        return Stream(self, self._streaming, sample_rate, hotwords, options)

    def transcribe_stream(self, source: Source, block_s: float = STREAM_BLOCK_S, realtime: bool = False,
                          on_event=None, options: StreamOptions = StreamOptions()) -> Transcript:
        """A file (or any ``Source``) through ``stream()``: fed in ``block_s`` blocks, in real time
        or as fast as possible; its Transcript holds the finals (``on_event`` sees partials too)."""
        name = str(source[0] if isinstance(source, tuple) else source)
        stats = StreamStats()
        try:
            finals = feed(self.stream(TARGET_RATE, None, options), _blocks(
                source[1] if isinstance(source, tuple) else source, name, stats, None, block_s), realtime, on_event)
        except AudioError as exc:
            return Transcript(name, error=str(exc))
        error = _judge(name, stats)
        return Transcript(name, error=error) if error else Transcript(name, stats.samples / TARGET_RATE, tuple(finals))

    def partial_segment(self, hyp: Hypothesis, log_probs: np.ndarray, first_frame: int) -> Segment:
        """A stream's partial result: ``hyp`` over the utterance's ``log_probs`` from model frame
        ``first_frame`` of the stream."""
        return self._segment(Decoded(hyp, ()), log_probs, first_frame * self.frame_s, None)

    def final_segment(self, decoded: Decoded, log_probs: np.ndarray, first_frame: int) -> Segment:
        """A stream's final result for one utterance (see ``partial_segment``)."""
        return self._segment(decoded, log_probs, first_frame * self.frame_s, None)

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
            words.append(Word(text, round(offset_s + start * self.frame_s, 3), round(offset_s + end * self.frame_s, 3),
                              round(sum(posteriors) / len(posteriors), 4)))
        return tuple(words)

    @overload
    def transcribe(self, audio: Input, sample_rate: int | None = None) -> Transcript: ...

    @overload
    def transcribe(self, audio: list[Input] | tuple[Input, ...],
                   sample_rate: int | None = None) -> list[Transcript]: ...

    def transcribe(self, audio, sample_rate=None):
        """Transcribe one input or a list of them.

        An input is a path, a binary file object (any format libsndfile reads, any rate and channel
        count) or a float waveform (S,) or (S, channels) with its ``sample_rate`` (required, resampled
        to 16 kHz). One input: its Transcript, or AudioError naming it when it cannot be transcribed.
        A list or tuple: a list of Transcripts in order, where a failed input has ``error`` set.
        """
        if isinstance(audio, (list, tuple)):
            return list(self.transcribe_iter(_source(a, sample_rate, f"audio[{i}]") for i, a in enumerate(audio)))
        transcript = next(self.transcribe_iter([_source(audio, sample_rate, "audio")]))
        if transcript.error:
            raise AudioError(transcript.error)
        return transcript

    def transcribe_iter(self, sources: Iterable[Source]) -> Iterator[Transcript]:
        """Transcripts of ``sources`` in order: each a path, (name, binary file object) such as stdin,
        (name, float32 (S,) 16 kHz mono waveform) or (name, AudioError) (see ``Source``).

        Chunks of consecutive inputs share model calls up to ``max_batch_frames`` padded frames. A bad
        input yields a Transcript with ``error`` set and does not stop the others.
        """
        pending: list[tuple[int, int | None, float, np.ndarray]] = []  # (input index, channel, offset s, wave)
        state: dict[int, _Input] = {}
        done = 0
        for index, source in enumerate(sources):
            name, stream = (source, source) if isinstance(source, (str, os.PathLike)) else source
            item = state[index] = _Input(str(name))
            try:
                for channel in self._channels(stream, str(name)):
                    stats = StreamStats()
                    for offset, wave in chunks(_blocks(stream, str(name), stats, channel), self.options.chunk):
                        pending.append((index, channel, offset / TARGET_RATE, wave))
                        if self._batch_full(pending):
                            self._run(pending, state)
                            pending = []
                    item.add(stats)
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

    def _channels(self, stream, name: str) -> list[int | None]:
        """0-based channels of a file input to read one by one; [None]: mixed to mono."""
        mode = self.options.channels
        if mode == "mix" or isinstance(stream, (np.ndarray, AudioError)):
            return [None]
        if mode == "split":
            return list(range(channel_count(stream, name)))
        return [int(mode) - 1]

    def _batch_full(self, pending: list[tuple[int, int | None, float, np.ndarray]]) -> bool:
        longest = max(p[3].size for p in pending) // self.fbank.window_shift  # fbank frames
        return longest * (len(pending) + 1) > self.options.max_batch_frames

    def _run(self, pending: list[tuple[int, int | None, float, np.ndarray]], state: dict[int, _Input]) -> None:
        if not pending:
            return
        for (index, channel, offset, wave), lp in zip(pending, self.log_probs([p[3] for p in pending])):
            segment = self.decode(lp, offset, wave.size / TARGET_RATE)
            state[index].segments.append(segment if channel is None else replace(segment, channel=channel + 1))


@dataclass
class _Input:
    name: str
    stats: StreamStats = field(default_factory=StreamStats)
    segments: list[Segment] = field(default_factory=list)
    error: str | None = None
    read: bool = False

    def add(self, stats: StreamStats) -> None:
        """One channel read: the input lasts as long as its longest channel, peaks at its loudest."""
        self.stats.source_rate = stats.source_rate
        self.stats.samples = max(self.stats.samples, stats.samples)
        self.stats.peak = max(self.stats.peak, stats.peak)

    def result(self) -> Transcript:
        if self.error:
            return Transcript(self.name, error=self.error)
        return Transcript(self.name, self.stats.samples / TARGET_RATE, tuple(sorted(self.segments, key=_order)))


def _source(audio, sample_rate: int | None, name: str) -> Source:
    """``transcribe``'s input as a ``Source``; a waveform is mixed to mono and resampled here."""
    if isinstance(audio, (str, os.PathLike)):
        if sample_rate is not None:
            raise ValueError(f"{name}: sample_rate is for waveforms; a file's rate is read from its header")
        return audio
    if isinstance(audio, np.ndarray):
        if sample_rate is None:
            raise ValueError(f"{name}: a waveform needs its sample_rate (e.g. transcribe(samples, sample_rate=16000))")
        if audio.ndim not in (1, 2) or not np.issubdtype(audio.dtype, np.floating):
            raise ValueError(f"{name}: expected float samples (S,) or (S, channels), got {audio.dtype} {audio.shape}")
        if audio.size and not np.isfinite(audio).all():
            raise ValueError(f"{name}: {int((~np.isfinite(audio)).sum())} samples are NaN or infinite")
        mono = audio.mean(axis=1) if audio.ndim == 2 else audio
        return name, resample(mono, int(sample_rate))
    if hasattr(audio, "read"):
        label = getattr(audio, "name", None)  # open("a.wav", "rb").name is the path
        return (label if isinstance(label, str) else name), audio
    raise TypeError(f"{name}: expected a path, a binary file object or a numpy waveform, got {type(audio).__name__}")


def _order(segment: Segment) -> tuple[float, int]:
    return segment.start, segment.channel or 0


def _blocks(stream, name: str, stats: StreamStats, channel: int | None,
            block_s: float = READ_BLOCK_S) -> Iterator[np.ndarray]:
    if isinstance(stream, AudioError):
        raise stream
    if not isinstance(stream, np.ndarray):
        if channel and hasattr(stream, "seek"):
            stream.seek(0)          # a file object read once per channel
        return read_blocks(stream, name, stats, block_s, channel=channel)
    wave = np.ascontiguousarray(stream, dtype=np.float32)
    stats.source_rate, stats.samples = TARGET_RATE, wave.size
    stats.peak = float(np.abs(wave).max()) if wave.size else 0.0
    step = max(1, int(block_s * TARGET_RATE))
    return (wave[i: i + step] for i in range(0, wave.size, step))


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
