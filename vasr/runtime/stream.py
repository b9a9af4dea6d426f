"""Live recognition: feed samples of any rate in blocks of any size, read partial results after every
model chunk and a final result at each endpoint.

    stream = Recognizer("model/").stream(sample_rate=8000, hotwords=["Đà Lạt"])
    for block in blocks:
        for event in stream.accept(block):
            print("final" if event.final else "partial", event.segment.text)
    for event in stream.finish(): ...

The pipeline per block: resampling to 16 kHz (soxr's stream), the VAD (``vasr.runtime.vad``) for
endpointing, the fbank kernel's streaming mode on int16-scale samples (the streaming model's front
end, see ``vasr.export.streaming``), the streaming ONNX encoder one chunk of ``chunk`` output frames
at a time with its attention and convolution caches, and the decoder's incremental search
(``Decoder.stream``: beams, hot-word context states and LM states kept across chunks; the second pass
runs on each final). Endpoints follow sherpa-onnx's three rules, measured on VAD frames:
silence without speech (the utterance is dropped: the VAD heard no speech, so nothing the model
made of it is shown), trailing silence after speech, and a maximum utterance length. Until the VAD
hears an utterance's first speech the model is not run: only the last ``vad.pad_s`` of features are
held (as the offline VAD pads a segment), so an utterance starts at its speech, never with the
silence after the previous endpoint (the model put junk letters there: it was trained on clips that
start at the speech), and silence costs no model time.

At ``finish()`` the last, incomplete chunk is padded and only its valid output frames are decoded,
so the finals equal the chunk-masked offline model on the same audio whatever the block sizes.

Imports numpy, onnxruntime and soxr only (with the rest of the runtime).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import soxr

from vasr.kernels import FbankOptions, FbankStream
from vasr.runtime.audio import TARGET_RATE
from vasr.runtime.decode.search import DecodeStream
from vasr.runtime.vad import SpeechDetector, VadOptions

STREAM_FP32 = "model-streaming.onnx"
STREAM_INT8 = "model-streaming.int8.onnx"
STREAM_INPUTS = ("x", "offset", "required_cache_size", "attn_cache", "conv_cache", "attn_mask")
STREAM_OUTPUTS = ("log_probs", "next_att_cache", "next_conv_cache")
INT16_SCALE = 32768.0        # WeNet's front end reads samples in int16 range
SUBSAMPLING_CONTEXT = 6      # input frames the x4 subsampling needs beyond one output frame's 4 (WeNet's right_context)
MAX_CHUNK = 64               # model frames per chunk (2.56 s), and chunks of left context, at most
MAX_RATE = 384000            # Hz: a declared sample rate above this is refused as a mistake
SILENCE_FEATURE = float(np.log(np.finfo(np.float32).eps))  # fbank of digital silence: pads the last chunk (masked)


def chunk_frames(chunk: int, subsampling: int = 4, right_context: int = SUBSAMPLING_CONTEXT) -> int:
    """Input fbank frames per model call for ``chunk`` output frames (sherpa-onnx's ChunkLength)."""
    return (chunk - 1) * subsampling + right_context + 1


def valid_output_frames(input_frames: int) -> int:
    """Output frames the offline model gives for ``input_frames`` (``vasr.model.output_lengths``)."""
    return ((max(input_frames, 7) - 1) // 2 - 1) // 2


@dataclass(frozen=True)
class EndpointRules:
    """sherpa-onnx's endpoint rules, on VAD decisions instead of CTC blanks."""
    silence_without_speech_s: float = 2.4   # rule 1: this much non-speech and no speech yet: drop, start anew
    trailing_silence_s: float = 0.8         # rule 2: this much non-speech after speech: final result
    max_utterance_s: float = 20.0           # rule 3: an utterance this long is finished as it stands

    def __post_init__(self) -> None:
        if min(self.silence_without_speech_s, self.trailing_silence_s, self.max_utterance_s) <= 0:
            raise ValueError("endpoint rules need positive durations")


@dataclass(frozen=True)
class StreamOptions:
    chunk: int = 8               # output frames per model call (8 x 40 ms = 320 ms of audio)
    left_chunks: int = 8         # chunks of left context in the attention cache (R = chunk x left_chunks)
    endpoint: EndpointRules = field(default_factory=EndpointRules)
    vad: VadOptions = field(default_factory=VadOptions)

    def __post_init__(self) -> None:
        if not 1 <= self.chunk <= MAX_CHUNK or not 1 <= self.left_chunks <= MAX_CHUNK:
            raise ValueError(f"chunk and left_chunks: expected 1 to {MAX_CHUNK} model frames / chunks, got "
                             f"{self.chunk}, {self.left_chunks}")


@dataclass(frozen=True)
class StreamEvent:
    final: bool                  # False: a partial result, replaced by the next event of the utterance
    segment: object              # vasr.runtime.recognizer.Segment: text, words with times in the stream
    log_probs: np.ndarray | None = None   # finals: float32 (T, V) of the utterance (for rescoring, scoring)


class StreamingModel:
    """The streaming ONNX encoder of a model directory; shared by every ``Stream`` of a recognizer."""

    def __init__(self, session, num_bins: int):
        meta = session.get_modelmeta().custom_metadata_map
        names = tuple(i.name for i in session.get_inputs()), tuple(o.name for o in session.get_outputs())
        if names != (STREAM_INPUTS, STREAM_OUTPUTS):
            raise ValueError(f"expected inputs {STREAM_INPUTS} and outputs {STREAM_OUTPUTS}, got {names}")
        self.session = session
        self.num_bins = num_bins
        self.layers, self.heads = int(meta["num_blocks"]), int(meta["head"])
        self.d_model, self.kernel = int(meta["output_size"]), int(meta["cnn_module_kernel"])
        self.subsampling, self.right_context = int(meta["subsampling_factor"]), int(meta["right_context"])

    def initial_state(self, options: StreamOptions) -> dict[str, np.ndarray]:
        cache = options.chunk * options.left_chunks
        return {"offset": np.array([cache], np.int64), "required_cache_size": np.array([cache], np.int64),
                "attn_cache": np.zeros((self.layers, self.heads, cache, 2 * self.d_model // self.heads), np.float32),
                "conv_cache": np.zeros((self.layers, 1, self.d_model, self.kernel - 1), np.float32)}

    def run(self, feats: np.ndarray, state: dict[str, np.ndarray], chunk: int, valid: int) -> np.ndarray:
        """Log-probs (valid, V) of one chunk of features (chunk_frames(chunk), bins); ``state`` is
        advanced in place. ``valid`` < chunk only for the padded last chunk: its padding is masked."""
        cache = int(state["required_cache_size"][0])
        filled = min(int(state["offset"][0]) - cache, cache)
        mask = np.zeros((1, 1, cache + chunk), dtype=bool)
        mask[..., cache - filled: cache + valid] = True
        log_probs, state["attn_cache"], state["conv_cache"] = self.session.run(
            list(STREAM_OUTPUTS), {**state, "x": feats[None], "attn_mask": mask})
        state["offset"] = state["offset"] + chunk
        return log_probs[0, :valid]


class Stream:
    """One live audio stream; create it with ``Recognizer.stream``. Not thread-safe."""

    def __init__(self, recognizer, model: StreamingModel, sample_rate: int, hotwords, options: StreamOptions):
        if not isinstance(sample_rate, int) or not 0 < sample_rate <= MAX_RATE:
            raise ValueError(f"sample_rate {sample_rate!r}: expected an integer number of Hz in 1..{MAX_RATE}")
        self._recognizer, self._model, self.options = recognizer, model, options
        self.sample_rate = sample_rate
        # the decoder and its hot-word context graph, prepared once for every utterance of the stream
        self._decoder = recognizer.decoder
        self._prepared = self._decoder.prepared if hotwords is None else self._decoder.prepare(hotwords)
        self._resampler = None if sample_rate == TARGET_RATE else soxr.ResampleStream(
            sample_rate, TARGET_RATE, 1, dtype="float32", quality="HQ")
        self._fbank = FbankStream(FbankOptions(**{**recognizer.fbank.to_dict(), "dither": 0.0}))
        self._vad = SpeechDetector(options.vad)
        self._state = model.initial_state(options)
        self._feats = np.zeros((0, model.num_bins), np.float32)
        self._chunk_frames = chunk_frames(options.chunk, model.subsampling, model.right_context)
        self._vad_frame = int(round(self._vad.frame_s * TARGET_RATE))   # samples per VAD decision
        self._pre_roll = -(-round(options.vad.pad_s * 1000 / recognizer.fbank.frame_shift_ms) // model.subsampling) \
            * model.subsampling     # fbank frames held before speech: vad.pad_s, whole model frames
        self._frames_in = 0          # fbank frames received, whole stream
        self._frames_out = 0         # model frames decoded, whole stream
        self._samples = 0            # 16 kHz samples received
        self._finished = False
        self._new_utterance(0)

    def _new_utterance(self, first_frame: int) -> None:
        self._decode = DecodeStream(self._decoder, self._prepared)
        self._log_probs: list[np.ndarray] = []
        self._first_frame = first_frame
        self._speech = False
        self._silence_s = self._utterance_s = 0.0

    @property
    def finished(self) -> bool:
        return self._finished

    def accept(self, samples: np.ndarray) -> list[StreamEvent]:
        """Feed the next block: 1-D samples at the stream's rate (float in [-1, 1], or int16);
        returns the partial and final results it completes."""
        if self._finished:
            raise RuntimeError("Stream.accept() after finish(): start a new stream")
        block = _as_samples(samples)
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block, last=False)
        return self._process(block, last=False)

    def finish(self) -> list[StreamEvent]:
        """End of audio: the results of what is left, ending with the last final (if any speech)."""
        if self._finished:
            raise RuntimeError("Stream.finish() called twice")
        block = np.zeros(0, np.float32)
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block, last=True)
        events = self._process(block, last=True)
        self._finished = True
        return events

    def _process(self, block: np.ndarray, last: bool) -> list[StreamEvent]:
        """Feed ``block`` one VAD frame at a time, so that endpoints (checked after each VAD frame)
        fall at the same place whatever the block sizes."""
        events: list[StreamEvent] = []
        step = self._vad_frame
        pos = 0
        while pos < block.size:
            take = min(block.size - pos, step - self._samples % step)
            events += self._feed(block[pos: pos + take])
            pos += take
        if last and self._speech:
            tail = self._fbank.finish()
            self._frames_in += len(tail)
            self._feats = np.concatenate([self._feats, tail])
            self._decode_chunks()
            valid = valid_output_frames(self._frames_in) - self._frames_out
            if valid > 0:
                need = self._chunk_frames
                pad = np.full((need - len(self._feats), self._model.num_bins), SILENCE_FEATURE, np.float32)
                self._step(np.concatenate([self._feats, pad]), valid)
            final = self._final()
            events += [final] if final is not None else []
        return events

    def _feed(self, piece: np.ndarray) -> list[StreamEvent]:
        """At most one VAD frame's samples: features, VAD, model chunks once there is speech, endpoint rules."""
        self._samples += piece.size
        feats = self._fbank.accept(piece * INT16_SCALE)
        self._frames_in += len(feats)
        self._feats = np.concatenate([self._feats, feats]) if len(feats) else self._feats
        vad = self.options.vad
        probs = self._vad.accept(piece)
        for p in probs:
            self._utterance_s += self._vad.frame_s
            # hysteresis: speech starts at threshold and lasts until the probability falls below neg_threshold
            if p >= vad.threshold or (self._speech and self._silence_s == 0.0 and p >= vad.neg_threshold):
                self._speech, self._silence_s = True, 0.0
            else:
                self._silence_s += self._vad.frame_s
        if self._speech:
            decoded = self._decode_chunks()
        else:       # trimmed where the VAD decides, so the trim does not depend on the block sizes
            decoded = False
            if probs.size:
                self._hold_pre_roll()
        if self._endpoint():
            final = self._final()
            # each utterance starts from fresh caches, as the model was trained on single utterances
            self._state = self._model.initial_state(self.options)
            self._new_utterance(self._frames_out)
            return [final] if final is not None else []
        if decoded and self._log_probs:
            return [StreamEvent(False, self._recognizer.partial_segment(
                self._decode.partial(), self._utterance_log_probs(), self._first_frame))]
        return []

    def _hold_pre_roll(self) -> None:
        """Before an utterance's speech: drop all but the last ``vad.pad_s`` of features (whole model
        frames, so times stay exact); the utterance now starts after what was dropped."""
        step = self._model.subsampling
        drop = (len(self._feats) - self._pre_roll) // step * step
        if drop > 0:
            self._feats = self._feats[drop:]
            self._frames_out += drop // step
            self._first_frame = self._frames_out
        return False

    def _decode_chunks(self) -> bool:
        """Run the model on every complete chunk of features held; whether there was one."""
        need, shift = self._chunk_frames, self.options.chunk * self._model.subsampling
        ran = False
        while len(self._feats) >= need:
            self._step(self._feats[:need], self.options.chunk)
            self._feats = self._feats[shift:]
            ran = True
        return ran

    def _step(self, feats: np.ndarray, valid: int) -> None:
        log_probs = self._model.run(feats, self._state, self.options.chunk, valid)
        self._decode.accept(log_probs)
        self._log_probs.append(log_probs)
        self._frames_out += valid

    def _utterance_log_probs(self) -> np.ndarray:
        if len(self._log_probs) > 1:
            self._log_probs = [np.concatenate(self._log_probs)]
        return self._log_probs[0]

    def _endpoint(self) -> bool:
        rules = self.options.endpoint
        if self._utterance_s >= rules.max_utterance_s:
            return True
        limit = rules.trailing_silence_s if self._speech else rules.silence_without_speech_s
        return self._silence_s >= limit

    def _final(self) -> StreamEvent | None:
        """The utterance's final result; None when there is nothing to show (no frames decoded, or
        the VAD heard no speech in it: what the model made of noise is not shown)."""
        decoded = self._decode.finish()
        if not self._log_probs or not self._speech:
            return None
        log_probs = self._utterance_log_probs()
        return StreamEvent(True, self._recognizer.final_segment(decoded, log_probs, self._first_frame), log_probs)


def feed(stream: Stream, blocks: Iterable[np.ndarray], realtime: bool = False,
         on_event: Callable[[StreamEvent], None] | None = None) -> list:
    """Feed ``blocks`` (at the stream's rate) and finish; the final segments in order. ``realtime``:
    wait so that no block arrives before its audio would have been spoken; ``on_event`` sees every
    partial and final as it comes."""
    finals = []
    start = time.perf_counter()
    fed = 0
    for block in blocks:
        if realtime:
            time.sleep(max(0.0, fed / stream.sample_rate - (time.perf_counter() - start)))
        fed += len(block)
        for event in stream.accept(block):
            _note(event, finals, on_event)
    for event in stream.finish():
        _note(event, finals, on_event)
    return finals


def _note(event: StreamEvent, finals: list, on_event) -> None:
    if event.final:
        finals.append(event.segment)
    if on_event is not None:
        on_event(event)


def _as_samples(samples) -> np.ndarray:
    """A block as float32 (n,) in [-1, 1]; one-line errors for what cannot be audio."""
    a = np.asarray(samples)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"samples: expected a 1-D block of mono samples, got shape {a.shape}")
    if a.dtype == np.int16:
        return a.astype(np.float32) / INT16_SCALE
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"samples: expected float or int16 samples, got {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"samples: {int((~np.isfinite(a)).sum())} of {a.size} are NaN or infinite")
    return a
