"""`vasr serve`: an OpenAI-compatible transcription API and live streaming over a WebSocket.

    POST /v1/audio/transcriptions   multipart: file, model, language, prompt, response_format
                                    (json | text | srt | vtt | verbose_json), timestamp_granularities[]
                                    (word | segment), temperature, stream; vasr's extras: hotwords
                                    (one "phrase[:boost]" per line), beam
    GET  /v1/models                 the one model served, in OpenAI's list shape
    GET  /healthz                   liveness and load
    GET  /metrics                   Prometheus text (``vasr.serve.metrics``)
    WS   /v1/stream                 live audio (``vasr.serve.protocol`` documents the protocol)
    GET  /                          the web page (``vasr/serve/static``), when the package has it

With an API key set, /v1/* needs it; /healthz and /metrics do not (probes and scrapers).

Why Starlette (on uvicorn): it is small, it is the ASGI toolkit FastAPI is built on (routing,
multipart forms, WebSockets, static files, lifespan), and a handful of endpoints with hand-checked
form fields need neither FastAPI's dependency injection nor pydantic. Imports the torch-free runtime
only, never torch or sqlalchemy.

Work: ``threads`` workers, each one ``Recognizer`` (not thread-safe) with one onnxruntime thread and
its own single-thread executor, so N workers never oversubscribe N cores and a recognizer is only
ever used by its thread. A request goes to the least busy worker; a stream is pinned to the worker
with the fewest streams and all its work runs there, in order. Hot words or a beam asked for by a
request are served by swapping that worker's ``Recognizer.decoder`` for one built by
``decoder_for`` during the request (its display keeps the server's own hot-word spellings). More than
``threads + max_queue`` transcriptions at once are answered 429; more than ``max_streams`` streams 1013.

``stream=true`` (json or text only, as OpenAI) answers server-sent events in OpenAI's shapes, which
the ``openai`` package parses: ``{"type": "transcript.text.delta", "delta": ...}`` as text is decoded,
then ``{"type": "transcript.text.done", "text": ...}`` (the deltas joined). The text comes from the
directory's streaming model fed the file as fast as it decodes (``Recognizer.transcribe_stream``: one
delta per final, the first without and the others with a leading space); a directory without one
sends the whole offline transcript as one delta. The worker thread hands each final to the event
loop (``call_soon_threadsafe`` onto an asyncio queue); an error before the first delta is a plain
HTTP error, one after it an ``{"error": {...}}`` event (the ``openai`` package raises it); a client
that goes away stops the worker at the stream's next event. The request counts against the queue
limit until its worker is done, and its latency in ``/metrics`` is the time to the first event.
Graceful shutdown is uvicorn's: in-flight requests finish, then the workers stop.
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import soundfile as sf
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from vasr.runtime.decode import DecodeOptions
from vasr.runtime.decode.settings import MAX_BEAM
from vasr.runtime.formats import srt, vtt
from vasr.runtime.recognizer import MODEL_FP32, MODEL_INT8, ModelDirError, Recognizer, RecognizerOptions, Transcript
from vasr.runtime.stream import StreamEvent
from vasr.runtime.transcribe import parse_hotword
from vasr.runtime.vad import ChunkOptions
from vasr.serve.metrics import CONTENT_TYPE, Metrics
from vasr.serve.protocol import CLOSE_POLICY, CLOSE_TRY_LATER, ProtocolError, serve_stream

STATIC_DIR = Path(__file__).parent / "static"
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
STREAM_FORMATS = ("json", "text")       # what OpenAI streams
GRANULARITIES = ("word", "segment")
LANGUAGES = ("vi", "vie", "vietnamese")   # what `language` may say: the models speak Vietnamese only
HOTWORD_BEAM = 8             # beam of a request with hot words and no beam (hot words need a beam search)
MAX_FIELD_BYTES = 64 * 1024  # a form field other than the file (hot words are the longest)


@dataclass(frozen=True)
class ServeConfig:
    model_dir: str                       # a directory written by `vasr export`
    host: str = "127.0.0.1"              # loopback by default: open it to a network on purpose
    port: int = 8000
    api_key: str | None = None           # when set, /v1/* needs "Authorization: Bearer KEY" (or ?api_key=)
    threads: int = 0                     # workers, one Recognizer and one onnxruntime thread each; 0 = cores
    fp32: bool = False                   # model.onnx (and model-streaming.onnx) instead of the int8 files
    raw: bool = False                    # acoustic text only (no ITN, punctuation, hot-word spelling)
    beam: int = 1                        # default beam of requests and streams (1 = greedy)
    vad: bool = True                     # uploads decode only what the VAD calls speech (ChunkOptions.speech_only)
    max_upload_mb: float = 25.0          # OpenAI's limit on a file
    max_duration_s: float = 1800.0       # longer uploads are refused (413)
    max_streams: int = 32                # open /v1/stream connections; more are closed with 1013
    max_queue: int = 16                  # transcriptions waiting for a worker; more are answered 429
    idle_timeout_s: float = 30.0         # a stream without a message this long is closed (1001)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port}: expected 0 to 65535")
        if self.threads < 0 or self.beam < 1 or self.max_streams < 0 or self.max_queue < 0:
            raise ValueError("threads, max_streams and max_queue must be >= 0 and beam >= 1")
        if self.max_upload_mb <= 0 or self.max_duration_s <= 0 or self.idle_timeout_s <= 0:
            raise ValueError("max_upload_mb, max_duration_s and idle_timeout_s must be positive")


class ApiError(Exception):
    """An HTTP error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.param = status, param

    def body(self) -> dict:
        kind = {401: "authentication_error", 429: "rate_limit_error"}.get(self.status, "invalid_request_error")
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": None}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), self.status)


class Cancelled(Exception):
    """Raised in a worker's thread to stop a streamed transcription whose client has gone."""


class EventStream(StreamingResponse):
    """Server-sent events; ``gone`` is set when the response ends, however it ends (the client
    may leave while the body waits or while it is being sent)."""

    media_type = "text/event-stream"

    def __init__(self, events, gone: threading.Event):
        super().__init__(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.gone = gone

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.gone.set()


class Worker:
    """One recognizer and the one thread that uses it."""

    def __init__(self, recognizer: Recognizer, index: int):
        self.recognizer = recognizer
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"vasr-worker-{index}")
        self.jobs = 0            # requests queued or running here
        self.streams = 0         # streams pinned here

    async def run(self, fn, *args):
        self.jobs += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        finally:
            self.jobs -= 1


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Server:
    """The app's state and endpoints."""

    def __init__(self, config: ServeConfig):
        self.config = config
        options = RecognizerOptions(model_file=MODEL_FP32 if config.fp32 else MODEL_INT8, threads=1, raw=config.raw,
                                    decode=DecodeOptions(beam=config.beam),
                                    chunk=ChunkOptions(speech_only=config.vad))
        self.workers = [Worker(Recognizer(config.model_dir, options), i)
                        for i in range(config.threads or default_threads())]
        self.model_id = Path(config.model_dir).resolve().name
        self.created = int(Path(config.model_dir).stat().st_mtime)
        self.metrics = Metrics()
        self.transcribing = 0    # transcriptions admitted (running or waiting)
        self._jobs: set[asyncio.Task] = set()   # streamed transcriptions' jobs

    def app(self) -> Starlette:
        routes = [Route("/v1/audio/transcriptions", self._timed("/v1/audio/transcriptions", self.transcriptions),
                        methods=["POST"]),
                  Route("/v1/models", self._timed("/v1/models", self.models)),
                  Route("/healthz", self._timed("/healthz", self.healthz)),
                  Route("/metrics", self.prometheus),
                  WebSocketRoute("/v1/stream", self.stream)]
        if STATIC_DIR.is_dir():
            routes.append(Mount("/", StaticFiles(directory=STATIC_DIR, html=True)))
        return Starlette(routes=routes, lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app):
        yield
        for worker in self.workers:          # after uvicorn has let in-flight requests finish
            worker.executor.shutdown(wait=True)

    def _timed(self, route: str, endpoint):
        async def timed(request: Request) -> Response:
            start = time.perf_counter()
            try:
                response = await endpoint(request)
            except ApiError as exc:
                response = exc.response()
            self.metrics.observe(route, response.status_code, time.perf_counter() - start)
            return response
        return timed

    def _authorized(self, headers, query) -> bool:
        key = self.config.api_key
        if key is None:
            return True
        given = headers.get("authorization", "").removeprefix("Bearer ") or query.get("api_key", "")
        return hmac.compare_digest(given.encode(), key.encode())

    async def models(self, request: Request) -> Response:
        self._check_key(request)
        return JSONResponse({"object": "list", "data": [
            {"id": self.model_id, "object": "model", "created": self.created, "owned_by": "vasr"}]})

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": self.model_id, "workers": len(self.workers),
                             "transcribing": self.transcribing, "active_streams": self.metrics.active_streams})

    async def prometheus(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    def _check_key(self, request: Request) -> None:
        if not self._authorized(request.headers, request.query_params):
            raise ApiError(401, "invalid or missing API key (send Authorization: Bearer KEY)")

    async def transcriptions(self, request: Request) -> Response:
        self._check_key(request)
        limit = int(self.config.max_upload_mb * 1024 * 1024)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise ApiError(413, f"the upload is {int(length) / 2**20:.1f} MB; the limit is "
                                f"{self.config.max_upload_mb:g} MB", "file")
        try:
            form = await request.form(max_files=1, max_part_size=MAX_FIELD_BYTES)
        except HTTPException as exc:
            raise ApiError(400, f"unreadable multipart form: {exc.detail}") from None
        handed_over = False
        try:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise ApiError(400, "missing the 'file' field: send the audio as multipart/form-data", "file")
            if upload.size is not None and upload.size > limit:
                raise ApiError(413, f"the upload is {upload.size / 2**20:.1f} MB; the limit is "
                                    f"{self.config.max_upload_mb:g} MB", "file")
            fmt, granularities, decode = self._fields(form)
            streamed = self._streamed(form, fmt)
            if self.transcribing >= len(self.workers) + self.config.max_queue:
                raise ApiError(429, f"busy: {self.transcribing} transcriptions running or queued "
                                    f"(limit {len(self.workers) + self.config.max_queue}); retry later")
            self.transcribing += 1
            worker = min(self.workers, key=lambda w: w.jobs)
            if streamed:
                handed_over = True    # the stream's job closes the form and counts itself out when its worker is done
                return await self._stream_transcription(worker, upload.filename or "file", upload.file, decode, form)
            try:
                transcript = await worker.run(self._transcribe, worker.recognizer, upload.filename or "file",
                                              upload.file, decode)
            finally:
                self.transcribing -= 1
        finally:
            if not handed_over:
                await form.close()
        self.metrics.audio_s += transcript.duration_s
        return _render(transcript, fmt, granularities)

    def _streamed(self, form, fmt: str) -> bool:
        """The request's ``stream`` field; ApiError when it is not a boolean or the format cannot stream."""
        value = (_field(form, "stream") or "false").lower()
        if value not in ("true", "false", "1", "0"):
            raise ApiError(400, f"stream {value!r}: expected true or false", "stream")
        if value in ("true", "1") and fmt not in STREAM_FORMATS:
            raise ApiError(400, f"stream=true with response_format {fmt!r}: only json and text can be streamed "
                                f"(as OpenAI); ask for {fmt} without stream", "response_format")
        return value in ("true", "1")

    async def _stream_transcription(self, worker: Worker, name: str, file: BinaryIO, decode: DecodeOptions | None,
                                    form) -> Response:
        """Run the transcription on ``worker`` and answer its finals as server-sent events (see the
        module's docstring). Owns ``form`` and one count of ``self.transcribing``."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()   # final texts (str), then the Transcript or an exception
        gone = threading.Event()

        def on_event(event: StreamEvent) -> None:         # in the worker's thread
            if gone.is_set():
                raise Cancelled
            if event.final and event.segment.text:
                loop.call_soon_threadsafe(queue.put_nowait, event.segment.text)

        async def job() -> None:
            try:
                result = await worker.run(self._transcribe, worker.recognizer, name, file, decode, on_event)
            except Exception as exc:    # handed to the response: ApiError as an error, others raised there
                result = exc
            finally:
                self.transcribing -= 1
                await form.close()
            queue.put_nowait(result)

        task = asyncio.create_task(job())
        self._jobs.add(task)                             # held until done, whatever becomes of the response
        task.add_done_callback(self._jobs.discard)
        first = await queue.get()
        if isinstance(first, Exception):
            raise first                                  # nothing sent yet: a plain HTTP error
        return EventStream(self._events(first, queue), gone)

    async def _events(self, item, queue: asyncio.Queue):
        sent = ""
        while True:
            if isinstance(item, str):
                delta = (" " if sent else "") + item
                sent += delta
                yield _sse({"type": "transcript.text.delta", "delta": delta})
            elif isinstance(item, Transcript):
                self.metrics.audio_s += item.duration_s
                if not sent and item.text:               # no streaming model: the offline text at once
                    yield _sse({"type": "transcript.text.delta", "delta": item.text})
                yield _sse({"type": "transcript.text.done", "text": item.text})
                return
            elif isinstance(item, ApiError):
                yield _sse(item.body())
                return
            else:
                raise item
            item = await queue.get()

    def _fields(self, form) -> tuple[str, tuple[str, ...], DecodeOptions | None]:
        """(response format, timestamp granularities, decode options or None for the server's)."""
        fmt = _field(form, "response_format") or "json"
        if fmt not in RESPONSE_FORMATS:
            raise ApiError(400, f"response_format {fmt!r}: expected one of {', '.join(RESPONSE_FORMATS)}",
                           "response_format")
        granularities = tuple(form.getlist("timestamp_granularities[]") + form.getlist("timestamp_granularities"))
        for g in granularities:
            if g not in GRANULARITIES:
                raise ApiError(400, f"timestamp_granularities {g!r}: expected word or segment",
                               "timestamp_granularities")
        language = _field(form, "language")
        if language and language.lower() not in LANGUAGES:
            raise ApiError(400, f"language {language!r}: this model transcribes Vietnamese (vi) only", "language")
        hotwords = ()
        try:
            hotwords = tuple(parse_hotword(line, "hotwords") for line in (_field(form, "hotwords") or "").splitlines()
                             if line.strip())
        except ValueError as exc:
            raise ApiError(400, str(exc), "hotwords") from None
        beam = _field(form, "beam")
        if beam is not None and not (beam.isdigit() and 1 <= int(beam) <= MAX_BEAM):
            raise ApiError(400, f"beam {beam!r}: expected an integer from 1 to {MAX_BEAM}", "beam")
        if not hotwords and beam is None:
            return fmt, granularities, None
        base = self.workers[0].recognizer.options.decode
        width = int(beam) if beam is not None else max(base.beam, HOTWORD_BEAM)
        return fmt, granularities, replace(base, beam=width, hotwords=hotwords or base.hotwords)

    def _transcribe(self, recognizer: Recognizer, name: str, file: BinaryIO, decode: DecodeOptions | None,
                    on_event=None) -> Transcript:
        """In the worker's thread: the upload's transcript, or ApiError (too long, bad audio). With
        ``on_event``: through the streaming model, ``on_event`` seeing its partials and finals as they
        come (it may raise to stop), or offline when the model directory has no streaming model."""
        with contextlib.suppress(sf.LibsndfileError, RuntimeError, TypeError):   # unreadable: the recognizer says why
            with sf.SoundFile(file) as fh:
                if fh.frames > self.config.max_duration_s * fh.samplerate:
                    raise ApiError(413, f"{name}: {fh.frames / fh.samplerate:.1f} s of audio; the limit is "
                                        f"{self.config.max_duration_s:g} s", "file")
        file.seek(0)
        default = recognizer.decoder
        if decode is not None:
            recognizer.decoder = recognizer.decoder_for(decode)
        try:
            transcript = None
            if on_event is not None:
                with contextlib.suppress(ModelDirError):   # no streaming model (raised before the file is read)
                    transcript = recognizer.transcribe_stream((name, file), on_event=on_event)
            if transcript is None:
                transcript = next(recognizer.transcribe_iter([(name, file)]))
        finally:
            recognizer.decoder = default
        if transcript.error:
            raise ApiError(400, transcript.error, "file")
        return transcript

    async def stream(self, websocket: WebSocket) -> None:
        await websocket.accept()
        metrics, code = self.metrics, 1000
        try:
            if not self._authorized(websocket.headers, websocket.query_params):
                raise ProtocolError(CLOSE_POLICY, "invalid or missing API key (Authorization: Bearer KEY or "
                                                  "?api_key=KEY)")
            if metrics.active_streams >= self.config.max_streams:
                raise ProtocolError(CLOSE_TRY_LATER, f"busy: {metrics.active_streams} streams open (limit "
                                                     f"{self.config.max_streams}); try again later")
            worker = min(self.workers, key=lambda w: w.streams)
            metrics.active_streams += 1
            worker.streams += 1
            try:
                await serve_stream(websocket, worker.recognizer, worker.run, self.config.idle_timeout_s,
                                   self._count_audio)
            finally:
                metrics.active_streams -= 1
                worker.streams -= 1
        except ProtocolError as exc:
            code = exc.code
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):   # the client may be gone already
                await websocket.send_json({"type": "error", "message": str(exc)})
                await websocket.close(exc.code)
        except WebSocketDisconnect as exc:
            code = exc.code
        metrics.observe("/v1/stream", code, -1.0)

    def _count_audio(self, seconds: float) -> None:
        self.metrics.audio_s += seconds


def _field(form, name: str) -> str | None:
    value = form.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"{name}: expected a form field, got a file", name)
    return value


def _sse(event: dict) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


def _render(t: Transcript, fmt: str, granularities: tuple[str, ...]) -> Response:
    if fmt == "json":
        return JSONResponse({"text": t.text})
    if fmt == "text":
        return PlainTextResponse(t.text + "\n")
    if fmt == "srt":
        return PlainTextResponse(srt(t))
    if fmt == "vtt":
        return PlainTextResponse(vtt(t), media_type="text/vtt")
    body = {"task": "transcribe", "language": "vi", "duration": round(t.duration_s, 3), "text": t.text}
    if "segment" in granularities or not granularities:    # OpenAI: segments unless only words are asked for
        body["segments"] = [{"id": i, "seek": 0, "start": s.start, "end": s.end, "text": s.text,
                             "tokens": list(s.tokens), "temperature": 0.0,
                             "avg_logprob": round(math.log(max(s.confidence, 1e-10)), 4), "raw_text": s.raw_text}
                            for i, s in enumerate(t.segments)]
    if "word" in granularities:
        body["words"] = [{"word": w.text, "start": w.start, "end": w.end} for w in t.words]
    return JSONResponse(body)


def create_app(config: ServeConfig) -> Starlette:
    """The ASGI app (models loaded here: a bad model directory fails before the port is bound)."""
    return Server(config).app()


def serve(config: ServeConfig) -> int:
    """Run the server until interrupted (Ctrl-C / SIGTERM: in-flight requests finish first)."""
    import uvicorn

    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")
    return 0
