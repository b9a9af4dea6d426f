"""The ``/v1/stream`` WebSocket protocol: live audio in, partial and final results out.

Authentication (when the server has an API key): an ``Authorization: Bearer KEY`` header, or
``?api_key=KEY`` in the URL (browsers cannot set headers on a WebSocket).

1. The client's first message is text JSON::

       {"type": "start", "sample_rate": 16000, "format": "s16le",
        "hotwords": ["Đà Lạt", "Hồ Gươm:2.5"], "chunk_ms": 320}

   ``format`` is ``s16le`` (int16) or ``f32le`` (float32 in [-1, 1]); ``sample_rate`` any rate in Hz
   (resampled to 16 kHz by the stream); ``hotwords`` (optional) are "phrase" or "phrase:boost"
   (boost in nats per token); ``chunk_ms`` (optional, default 320) a multiple of 40 ms: the model
   runs once per chunk and a partial result follows each. The server answers
   ``{"type": "ready", "sample_rate": 16000, "chunk_ms": 320}``.
2. Then binary messages of little-endian mono PCM in the declared format, any length.
3. The server sends text JSON events as they come::

       {"type": "partial" | "final", "text": "...", "raw_text": "...", "start": 0.0, "end": 1.28,
        "words": [{"word": "xin", "start": 0.12, "end": 0.4}, ...]}

   times in seconds from the start of the stream. A partial is replaced by the next event of its
   utterance; a final (at a pause, or a maximum utterance length) is not revised.
4. The client sends ``{"type": "end"}``: the server decodes what is left, sends the remaining
   events, then ``{"type": "done"}``, and closes with code 1000.

Errors are ``{"type": "error", "message": "..."}`` followed by a close: 1008 (policy) for a wrong
API key, 1003 for a message of the wrong kind (binary before ``start``, an unknown ``type``), 1007
for invalid data (bad JSON, fields, or a frame that is not whole samples), 1013 (try again later)
when the server already holds its maximum of streams, 1011 when the model directory has no streaming
model, and 1001 after ``idle_timeout_s`` without a message. A client that goes away mid-stream
simply loses its stream; the server frees it.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from vasr.runtime.recognizer import ModelDirError
from vasr.runtime.stream import StreamEvent, StreamOptions
from vasr.runtime.transcribe import parse_hotword

FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
CHUNK_MS = 320               # default model chunk: 8 model frames of 40 ms
MODEL_FRAME_MS = 40
MAX_CHUNK_MS = 2560          # a longer chunk only delays partials
CLOSE_NORMAL, CLOSE_IDLE, CLOSE_UNSUPPORTED = 1000, 1001, 1003
CLOSE_INVALID, CLOSE_POLICY, CLOSE_ERROR, CLOSE_TRY_LATER = 1007, 1008, 1011, 1013


class ProtocolError(Exception):
    """Ends a connection: the message is sent as an error event, then the close ``code``."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Start:
    sample_rate: int
    dtype: np.dtype
    hotwords: tuple[tuple[str, float | None], ...] | None   # None: the server's decode options
    chunk_ms: int


def parse_start(text: str) -> Start:
    """The client's start message; ProtocolError(1007) naming what is wrong."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(CLOSE_INVALID, f"the start message is not JSON ({exc})") from None
    if not isinstance(message, dict) or message.get("type") != "start":
        raise ProtocolError(CLOSE_INVALID, 'the first message must be {"type": "start", "sample_rate": ..., '
                                           '"format": "s16le" | "f32le"}')
    rate, fmt = message.get("sample_rate"), message.get("format", "s16le")
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        raise ProtocolError(CLOSE_INVALID, f"sample_rate {rate!r}: expected a positive integer number of Hz")
    if fmt not in FORMATS:
        raise ProtocolError(CLOSE_INVALID, f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    chunk_ms = message.get("chunk_ms", CHUNK_MS)
    if (not isinstance(chunk_ms, int) or isinstance(chunk_ms, bool) or not 0 < chunk_ms <= MAX_CHUNK_MS
            or chunk_ms % MODEL_FRAME_MS):
        raise ProtocolError(CLOSE_INVALID, f"chunk_ms {chunk_ms!r}: expected a multiple of {MODEL_FRAME_MS} "
                                           f"up to {MAX_CHUNK_MS}")
    hotwords = message.get("hotwords")
    if hotwords is not None:
        if not isinstance(hotwords, list) or not all(isinstance(h, str) for h in hotwords):
            raise ProtocolError(CLOSE_INVALID, 'hotwords: expected a list of strings "phrase" or "phrase:boost"')
        try:
            hotwords = tuple(parse_hotword(h, f"hotwords[{i}]") for i, h in enumerate(hotwords) if h.strip())
        except ValueError as exc:
            raise ProtocolError(CLOSE_INVALID, str(exc)) from None
    return Start(rate, FORMATS[fmt], hotwords, chunk_ms)


def event_message(event: StreamEvent) -> dict:
    seg = event.segment
    return {"type": "final" if event.final else "partial", "text": seg.text, "raw_text": seg.raw_text,
            "start": seg.start, "end": seg.end,
            "words": [{"word": w.text, "start": w.start, "end": w.end} for w in seg.words]}


# runs a function in the thread that owns the stream's recognizer
Run = Callable[..., Awaitable]


async def serve_stream(websocket: WebSocket, recognizer, run: Run, idle_timeout_s: float,
                       on_audio: Callable[[float], None]) -> None:
    """One accepted connection, from its start message to ``done`` and a normal close; raises
    ProtocolError to end it with an error, WebSocketDisconnect when the client has gone. ``run(fn, *args)``
    runs the recognizer's work off the event loop; ``on_audio(seconds)`` counts audio received."""
    start = parse_start(await _text(websocket, idle_timeout_s, 'the first message must be JSON text '
                                                               '{"type": "start", ...}'))
    try:
        stream = await run(recognizer.stream, start.sample_rate, start.hotwords,
                           StreamOptions(chunk=start.chunk_ms // MODEL_FRAME_MS))
    except ModelDirError as exc:
        raise ProtocolError(CLOSE_ERROR, str(exc)) from None
    except ValueError as exc:
        raise ProtocolError(CLOSE_INVALID, str(exc)) from None
    await websocket.send_json({"type": "ready", "sample_rate": start.sample_rate, "chunk_ms": start.chunk_ms})
    while True:
        message = await _receive(websocket, idle_timeout_s)
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", CLOSE_NORMAL))
        if message.get("bytes") is not None:
            data = message["bytes"]
            if len(data) % start.dtype.itemsize:
                raise ProtocolError(CLOSE_INVALID, f"a frame of {len(data)} bytes is not whole "
                                                   f"{start.dtype.itemsize}-byte samples")
            samples = np.frombuffer(data, start.dtype)
            on_audio(samples.size / start.sample_rate)
            events = await run(stream.accept, samples)
        else:
            try:
                kind = json.loads(message["text"]).get("type")
            except (ValueError, AttributeError):
                raise ProtocolError(CLOSE_INVALID, 'text messages after start are JSON: {"type": "end"}') from None
            if kind != "end":
                raise ProtocolError(CLOSE_UNSUPPORTED, f'unknown message type {kind!r}: send audio as binary '
                                                       f'frames and {{"type": "end"}} to finish')
            events = await run(stream.finish)
        for event in events:
            await websocket.send_json(event_message(event))
        if stream.finished:
            await websocket.send_json({"type": "done"})
            await websocket.close(CLOSE_NORMAL)
            return


async def _receive(websocket: WebSocket, idle_timeout_s: float) -> dict:
    try:
        return await asyncio.wait_for(websocket.receive(), idle_timeout_s)
    except asyncio.TimeoutError:
        raise ProtocolError(CLOSE_IDLE, f"no message for {idle_timeout_s:g} s (idle timeout)") from None


async def _text(websocket: WebSocket, idle_timeout_s: float, expected: str) -> str:
    message = await _receive(websocket, idle_timeout_s)
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", CLOSE_NORMAL))
    if message.get("text") is None:
        raise ProtocolError(CLOSE_UNSUPPORTED, expected)
    return message["text"]
