"""`vasr serve` against real clients: a uvicorn server on a free loopback port, the official
``openai`` package for the HTTP API, the ``websockets`` library for ``/v1/stream``. The model is the
session's streaming fixture (fp32, raw text: exact transcripts)."""
from __future__ import annotations

import asyncio
import io
import json
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from test_export import exported_streaming
from test_runtime import BLOCKER

from vasr.kernels import edit_distance

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
websockets = pytest.importorskip("websockets")
uvicorn = pytest.importorskip("uvicorn")

KEY = "sesame"
BLOCK_S = 0.1            # the clients send 100 ms blocks, as a microphone does
LIMITS = dict(threads=1, max_queue=0, max_streams=2, max_upload_mb=1.0, max_duration_s=10.0, idle_timeout_s=1.0)


def _wav(i: int) -> str:
    return str(exported_streaming()["root"] / f"s155_{i}.wav")


def _samples(i: int) -> np.ndarray:
    from vasr.runtime.audio import load

    return load(_wav(i))


class Running:
    """``vasr.serve.app.Server`` on uvicorn in a thread, bound to a free port on 127.0.0.1."""

    def __init__(self, model_dir=None, **options):
        from vasr.serve.app import ServeConfig, Server

        model_dir = str(model_dir or exported_streaming()["model_dir"])
        self.state = Server(ServeConfig(model_dir, fp32=True, raw=True, **options))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d" % sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.state.app(), log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    def client(self, key: str = KEY):
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0)

    def ws(self, query: str = f"?api_key={KEY}", **kwargs):
        return websockets.connect(self.url.replace("http", "ws") + "/v1/stream" + query, **kwargs)

    def health(self) -> dict:
        return httpx.get(self.url + "/healthz").json()


@pytest.fixture(scope="module")
def server():
    running = Running(api_key=KEY, **LIMITS)
    yield running
    running.stop()


def _offline(i: int) -> str:
    from vasr import Recognizer
    from vasr.runtime.recognizer import MODEL_FP32, RecognizerOptions

    return Recognizer(exported_streaming()["model_dir"], RecognizerOptions(model_file=MODEL_FP32, raw=True)
                      ).transcribe(_wav(i)).text


# -- HTTP, with the openai client

def test_every_response_format_through_the_openai_client(server):
    client = server.client()
    with open(_wav(2), "rb") as fh:
        result = client.audio.transcriptions.create(model="anything", file=fh)
    assert result.text == "một hai ba" == _offline(2)
    for fmt in ("text", "srt", "vtt"):
        with open(_wav(2), "rb") as fh:
            body = client.audio.transcriptions.create(model="anything", file=fh, response_format=fmt)
        assert "một hai ba" in body, fmt
    assert body.startswith("WEBVTT") and " --> " in body
    with open(_wav(2), "rb") as fh:
        srt = client.audio.transcriptions.create(model="anything", file=fh, response_format="srt")
    assert srt.startswith("1\n00:00:00,") and srt.endswith("một hai ba\n\n")
    with open(_wav(1), "rb") as fh:
        verbose = client.audio.transcriptions.create(model="anything", file=fh, response_format="verbose_json",
                                                     language="vi", timestamp_granularities=["word", "segment"],
                                                     temperature=0.2, prompt="ignored")
    assert verbose.text == "cảm ơn bạn" and verbose.language == "vi"
    assert verbose.duration == pytest.approx(1.11, abs=0.01)
    assert [w.word for w in verbose.words] == ["cảm", "ơn", "bạn"]
    assert all(0 <= w.start < w.end <= verbose.duration + 0.05 for w in verbose.words)
    (segment,) = verbose.segments
    assert segment.id == 0 and segment.text == "cảm ơn bạn" and segment.start < segment.end
    with open(_wav(1), "rb") as fh:
        words_only = client.audio.transcriptions.create(model="anything", file=fh, response_format="verbose_json",
                                                        timestamp_granularities=["word"])
    assert words_only.words and not words_only.segments


def test_hot_words_and_beam_are_extra_form_fields(server):
    client = server.client()

    def text(i: int, **extra) -> str:
        with open(_wav(i), "rb") as fh:
            return client.audio.transcriptions.create(model="m", file=fh, extra_body=extra).text

    assert text(5) == text(5, beam="8") == "ngưi dân"
    assert text(5, hotwords="người dân") == "người dân"          # beam 8 when hot words come without one
    assert text(6, hotwords="người dân\nchào bạn:3", beam="8") == "chào bạn"
    assert text(5) == "ngưi dân"                                  # the next request has the server's decoder


def test_models_health_and_metrics(server):
    models = server.client().models.list()
    assert [(m.id, m.owned_by, m.object) for m in models.data] == [("model", "vasr", "model")]
    assert server.health()["status"] == "ok"

    def count() -> float:
        text = httpx.get(server.url + "/metrics").text
        line = [x for x in text.splitlines() if x.startswith('vasr_requests_total{route="/v1/models",status="200"}')]
        return float(line[0].split()[-1]) if line else 0.0

    before = count()
    server.client().models.list()
    assert count() == before + 1
    text = httpx.get(server.url + "/metrics").text
    assert "# TYPE vasr_request_duration_seconds histogram" in text
    assert 'vasr_request_duration_seconds_bucket{route="/v1/models",le="+Inf"}' in text
    assert "vasr_active_streams 0" in text and "vasr_audio_seconds_total" in text


def _post(server, files=None, data=None, key=KEY) -> httpx.Response:
    return httpx.post(server.url + "/v1/audio/transcriptions", files=files, data=data,
                      headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _wav_bytes(seconds: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.resize(_samples(1), int(seconds * 16000)), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.parametrize("case, status, message", [
    ("no file", 400, "missing the 'file' field"),
    ("not audio", 400, "upload.wav: unreadable audio"),
    ("silence", 400, "upload.wav: silence"),
    ("too large", 413, "the limit is 1 MB"),
    ("too long", 413, "upload.wav: 12.0 s of audio; the limit is 10 s"),
    ("response_format", 400, "response_format 'xml': expected one of json, text, srt, vtt, verbose_json"),
    ("granularity", 400, "timestamp_granularities 'char': expected word or segment"),
    ("language", 400, "language 'en': this model transcribes Vietnamese (vi) only"),
    ("hotword boost", 400, "hotwords: hot word 'hòa bình:lots': the part after ':' must be a number"),
    ("beam", 400, "beam '0': expected an integer from 1 to 64"),
    ("key", 401, "invalid or missing API key"),
])
def test_bad_requests_name_the_problem_and_the_server_keeps_serving(server, case, status, message):
    good = ("upload.wav", open(_wav(3), "rb").read(), "audio/wav")
    files, data, key = {"file": good}, {"model": "m"}, KEY
    if case == "no file":
        files = None
    elif case == "not audio":
        files = {"file": ("upload.wav", b"RIFF and then nothing like a wave file", "audio/wav")}
    elif case == "silence":
        files = {"file": ("upload.wav", _silence(), "audio/wav")}
    elif case == "too large":
        files = {"file": ("upload.wav", b"\0" * (1024 * 1024 + 1), "audio/wav")}
    elif case == "too long":
        files = {"file": ("upload.wav", _wav_bytes(12.0), "audio/wav")}
    elif case == "key":
        key = "wrong"
    else:
        field, value = {"response_format": ("response_format", "xml"),
                        "granularity": ("timestamp_granularities[]", "char"), "language": ("language", "en"),
                        "hotword boost": ("hotwords", "hòa bình:lots"), "beam": ("beam", "0")}[case]
        data = {**data, field: value}
    response = _post(server, files, data, key)
    assert response.status_code == status
    assert message in response.json()["error"]["message"]
    assert _post(server, {"file": good}).json() == {"text": "tiếng việt"}


def _silence() -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(16000, np.float32), 16000, format="WAV")
    return buf.getvalue()


def test_the_openai_client_sees_a_wrong_key_as_an_authentication_error(server):
    with pytest.raises(openai.AuthenticationError, match="invalid or missing API key"):
        server.client("wrong").models.list()


def test_a_request_beyond_the_queue_is_answered_429_and_the_queued_one_finishes(server):
    hold = threading.Event()
    server.state.workers[0].executor.submit(hold.wait, 30)    # the only worker is busy
    first: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: first.append(_post(server, {"file": open(_wav(7), "rb")})))
    sender.start()
    try:
        deadline = time.monotonic() + 10
        while server.health()["transcribing"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        refused = _post(server, {"file": open(_wav(7), "rb")})
        assert refused.status_code == 429 and "busy: 1 transcriptions running or queued" in refused.text
    finally:
        hold.set()
        sender.join()
    assert first[0].json() == {"text": "bạn ơi"}


def test_shutdown_lets_the_request_in_flight_finish():
    running = Running(**LIMITS)
    hold = threading.Event()
    running.state.workers[0].executor.submit(hold.wait, 30)
    answers: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: answers.append(_post(running, {"file": open(_wav(4), "rb")})))
    sender.start()
    deadline = time.monotonic() + 10
    while running.health()["transcribing"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    running.server.should_exit = True      # what uvicorn does on SIGINT/SIGTERM
    time.sleep(0.3)
    assert running.thread.is_alive(), "the server stopped before its request was answered"
    hold.set()
    sender.join(timeout=20)
    running.thread.join(timeout=20)
    assert answers[0].json() == {"text": "hòa bình"} and not running.thread.is_alive()


# -- stream=true: server-sent events

def _streamed(client, file, **kwargs) -> list:
    return list(client.audio.transcriptions.create(model="m", file=file, stream=True, **kwargs))


def _joined(parts: list[np.ndarray], pause_s: float = 1.0) -> bytes:
    """One WAV of ``parts`` with ``pause_s`` of silence after each (a final per part in a stream)."""
    pause = np.zeros(int(pause_s * 16000), np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.concatenate([x for part in parts for x in (part, pause)]), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_stream_true_sends_openai_delta_events_then_done_with_the_json_text(server):
    from openai.types.audio import TranscriptionTextDeltaEvent, TranscriptionTextDoneEvent
    from vasr import Recognizer
    from vasr.runtime.recognizer import MODEL_FP32, RecognizerOptions

    client = server.client()
    for fmt in ("json", "text"):
        with open(_wav(2), "rb") as fh:
            events = _streamed(client, fh, response_format=fmt)
        assert [type(e) for e in events] == [TranscriptionTextDeltaEvent, TranscriptionTextDoneEvent], fmt
        assert [e.type for e in events] == ["transcript.text.delta", "transcript.text.done"]
        assert events[0].delta == events[1].text == "một hai ba" == _offline(2)
        assert events[0].logprobs is None and events[1].usage is None
    with open(_wav(2), "rb") as fh:
        assert client.audio.transcriptions.create(model="m", file=fh).text == events[1].text
    # two utterances: a delta per streaming final as it is decoded, joined by a space into the done text
    two = _joined([_samples(1), _samples(3)])
    expected = Recognizer(exported_streaming()["model_dir"], RecognizerOptions(model_file=MODEL_FP32, raw=True)
                          ).transcribe_stream(("two.wav", io.BytesIO(two)))
    events = _streamed(client, ("two.wav", two))
    assert [e.delta for e in events[:-1]] == [expected.segments[0].text, " " + expected.segments[1].text]
    assert edit_distance(expected.segments[0].text, "cảm ơn bạn") <= 1 and len(expected.segments) == 2
    assert events[-1].type == "transcript.text.done" and events[-1].text == expected.text
    assert "".join(e.delta for e in events[:-1]) == events[-1].text
    # on the wire: text/event-stream, one "data: {json}" per event
    response = _post(server, {"file": open(_wav(2), "rb")}, {"model": "m", "stream": "true"})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text == ('data: {"type": "transcript.text.delta", "delta": "một hai ba"}\n\n'
                             'data: {"type": "transcript.text.done", "text": "một hai ba"}\n\n')
    assert server.health()["transcribing"] == 0


@pytest.mark.parametrize("fmt", ["srt", "vtt", "verbose_json"])
def test_stream_true_with_a_format_openai_does_not_stream_is_400_and_the_server_keeps_serving(server, fmt):
    client = server.client()
    with open(_wav(3), "rb") as fh, pytest.raises(openai.BadRequestError,
                                                   match=f"stream=true with response_format '{fmt}': only json "
                                                         f"and text can be streamed"):
        client.audio.transcriptions.create(model="m", file=fh, response_format=fmt, stream=True)
    with open(_wav(3), "rb") as fh:
        assert [e.delta for e in _streamed(client, fh)[:-1]] == ["tiếng việt"]


def test_stream_field_errors_and_bad_audio_before_any_event_are_plain_http_errors(server):
    good = ("upload.wav", open(_wav(3), "rb").read(), "audio/wav")
    response = _post(server, {"file": good}, {"model": "m", "stream": "maybe"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "stream 'maybe': expected true or false"
    response = _post(server, {"file": ("upload.wav", _silence(), "audio/wav")}, {"model": "m", "stream": "true"})
    assert response.status_code == 400 and "upload.wav: silence" in response.json()["error"]["message"]
    with pytest.raises(openai.APIStatusError, match="12.0 s of audio; the limit is 10 s") as caught:
        _streamed(server.client(), ("upload.wav", _wav_bytes(12.0)))
    assert caught.value.status_code == 413
    assert _post(server, {"file": good}, {"model": "m", "stream": "false"}).json() == {"text": "tiếng việt"}
    assert server.health()["transcribing"] == 0


def test_a_model_without_a_streaming_model_streams_the_offline_text_as_one_delta(tmp_path):
    import shutil

    model = tmp_path / "offline-only"
    shutil.copytree(exported_streaming()["model_dir"], model, ignore=shutil.ignore_patterns("model-streaming*"))
    running = Running(model, **LIMITS)
    try:
        two = _joined([_samples(1), _samples(3)])
        offline = running.client().audio.transcriptions.create(model="m", file=("two.wav", two)).text
        events = _streamed(running.client(), ("two.wav", two))
        assert [e.type for e in events] == ["transcript.text.delta", "transcript.text.done"]
        assert events[0].delta == events[1].text == offline
        assert offline.startswith("cảm ơn bạn ")
    finally:
        running.stop()


def test_a_client_that_leaves_mid_stream_stops_its_worker_and_the_server_keeps_serving():
    from vasr import Recognizer
    from vasr.runtime.recognizer import MODEL_FP32, RecognizerOptions
    from vasr.serve.app import Cancelled

    running = Running(api_key=KEY, **{**LIMITS, "max_upload_mb": 8.0, "max_duration_s": 200.0})
    recognizer = running.state.workers[0].recognizer
    outcome: list[str] = []
    original = recognizer.transcribe_stream

    def spy(*args, **kwargs):
        try:
            result = original(*args, **kwargs)
        except Cancelled:
            outcome.append("cancelled")
            raise
        outcome.append("finished")
        return result

    recognizer.transcribe_stream = spy
    try:
        long = _joined([_samples(i) for i in (1, 2, 3, 4, 5, 7) * 12])     # ~100 s: a few seconds of decoding
        with httpx.stream("POST", running.url + "/v1/audio/transcriptions", files={"file": ("long.wav", long)},
                          data={"model": "m", "stream": "true"}, headers={"Authorization": f"Bearer {KEY}"},
                          timeout=30) as response:
            first = next(response.iter_lines())
        # the first final of a stream that starts as the long file does (what follows an endpoint cannot change it)
        first_final = Recognizer(exported_streaming()["model_dir"], RecognizerOptions(model_file=MODEL_FP32, raw=True)
                                 ).transcribe_stream(("two.wav", io.BytesIO(_joined([_samples(1), _samples(2)])))
                                                     ).segments[0].text
        assert json.loads(first.removeprefix("data: ")) == {"type": "transcript.text.delta", "delta": first_final}
        deadline = time.monotonic() + 20
        while running.health()["transcribing"]:
            assert time.monotonic() < deadline, "the worker of a stream whose client left is still busy"
            time.sleep(0.05)
        assert outcome == ["cancelled"]
        with open(_wav(4), "rb") as fh:
            assert [e.delta for e in _streamed(running.client(), fh)[:-1]] == ["hòa bình"]
    finally:
        running.stop()


# -- the WebSocket stream

async def _stream(server, wave: np.ndarray, rate: int, fmt: str, realtime: bool, query: str = f"?api_key={KEY}"):
    """Send ``wave`` in 100 ms blocks; (ready message, events before done)."""
    dtype = {"s16le": "<i2", "f32le": "<f4"}[fmt]
    # int16 = the WAV's own samples (soundfile reads them as int16 / 32768): the same audio as the file
    data = (np.clip(np.round(wave * 32768), -32768, 32767) if fmt == "s16le" else wave).astype(dtype)
    step = int(BLOCK_S * rate)
    async with server.ws(query) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": rate, "format": fmt}))
        ready = json.loads(await ws.recv())
        events: list[dict] = []

        async def receive():
            while (event := json.loads(await ws.recv()))["type"] != "done":
                events.append(event)

        receiving = asyncio.create_task(receive())
        start = time.perf_counter()
        for i in range(0, len(data), step):
            if realtime:
                await asyncio.sleep(max(0.0, i / rate - (time.perf_counter() - start)))
            await ws.send(data[i: i + step].tobytes())
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiving, 20)
        await ws.wait_closed()
        assert ws.close_code == 1000
    return ready, events


def test_a_real_time_stream_gets_partials_and_the_final_equals_the_offline_transcript(server):
    from vasr import Recognizer
    from vasr.runtime.recognizer import MODEL_FP32, RecognizerOptions

    ready, events = asyncio.run(_stream(server, _samples(2), 16000, "s16le", realtime=True))
    assert ready == {"type": "ready", "sample_rate": 16000, "chunk_ms": 320}
    partials = [e for e in events if e["type"] == "partial"]
    finals = [e for e in events if e["type"] == "final"]
    assert len(partials) >= 2 and events[-1]["type"] == "final"
    expected = Recognizer(exported_streaming()["model_dir"], RecognizerOptions(model_file=MODEL_FP32, raw=True)
                          ).transcribe_stream(_wav(2))
    assert [f["text"] for f in finals] == [expected.text] == [_offline(2)] == ["một hai ba"]
    assert [w["word"] for w in finals[0]["words"]] == ["một", "hai", "ba"]
    assert finals[0]["words"] == [{"word": w.text, "start": w.start, "end": w.end} for w in expected.words]


def test_float32_at_48_khz_and_the_bearer_header():
    import soxr

    running = Running(api_key=KEY, **LIMITS)
    try:
        wave = soxr.resample(_samples(1), 16000, 48000).astype(np.float32)
        # a header instead of ?api_key=: what non-browser clients send
        _, events = asyncio.run(_with_header(running, wave))
        finals = [e["text"] for e in events if e["type"] == "final"]
        assert len(finals) == 1 and edit_distance(finals[0], "cảm ơn bạn") <= 1, finals
    finally:
        running.stop()


async def _with_header(running, wave):
    original = running.ws
    running.ws = lambda query: original("", additional_headers={"Authorization": f"Bearer {KEY}"})
    return await _stream(running, wave, 48000, "f32le", realtime=False)


async def _refused(server, first, query: str = f"?api_key={KEY}") -> tuple[dict, int]:
    async with server.ws(query) as ws:
        if first is not None:
            await ws.send(first)
        message = json.loads(await ws.recv())
        await ws.wait_closed()
        return message, ws.close_code


@pytest.mark.parametrize("first, code, message", [
    (b"\0\0", 1003, "the first message must be JSON text"),
    ("not json", 1007, "the start message is not JSON"),
    (json.dumps({"type": "hello"}), 1007, 'the first message must be {"type": "start"'),
    (json.dumps({"type": "start", "sample_rate": 16000, "format": "mp3"}), 1007, "format 'mp3': expected one of"),
    (json.dumps({"type": "start", "sample_rate": "fast"}), 1007, "sample_rate 'fast': expected a positive integer"),
    (json.dumps({"type": "start", "sample_rate": 16000, "chunk_ms": 100}), 1007, "chunk_ms 100: expected a multiple"),
    (json.dumps({"type": "start", "sample_rate": 16000, "hotwords": ["a:b"]}), 1007, "hotwords[0]: hot word 'a:b'"),
    (None, 1001, "no message for 1 s (idle timeout)"),
])
def test_bad_first_messages_are_refused_with_a_reason(server, first, code, message):
    event, close_code = asyncio.run(_refused(server, first))
    assert event["type"] == "error" and message in event["message"] and close_code == code
    assert server.health()["active_streams"] == 0


def test_bad_frames_and_messages_after_start():
    async def run(server, after: list) -> tuple[dict, int]:
        async with server.ws() as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": 16000}))
            await ws.recv()
            for message in after:
                await ws.send(message)
            event = json.loads(await ws.recv())
            await ws.wait_closed()
            return event, ws.close_code

    running = Running(api_key=KEY, **LIMITS)
    try:
        event, code = asyncio.run(run(running, [b"\0\0\0"]))
        assert code == 1007 and event["message"] == "a frame of 3 bytes is not whole 2-byte samples"
        event, code = asyncio.run(run(running, [json.dumps({"type": "pause"})]))
        assert code == 1003 and event["message"].startswith("unknown message type 'pause'")
    finally:
        running.stop()


def test_stream_auth():
    running = Running(api_key=KEY, **LIMITS)
    try:
        for query in ("", "?api_key=wrong"):
            event, code = asyncio.run(_refused(running, None, query))
            assert code == 1008 and "invalid or missing API key" in event["message"]
    finally:
        running.stop()


def test_streams_beyond_the_limit_are_told_to_come_back_and_a_client_that_leaves_frees_its_stream(server):
    async def run():
        held = []
        for _ in range(LIMITS["max_streams"]):
            ws = await server.ws()
            await ws.send(json.dumps({"type": "start", "sample_rate": 16000}))
            await ws.recv()
            held.append(ws)
        assert server.health()["active_streams"] == LIMITS["max_streams"]
        event, code = await _refused(server, None)
        assert code == 1013 and event["message"].startswith("busy: 2 streams open (limit 2)")
        wave = (np.round(_samples(2) * 32767)).astype("<i2")
        await held[0].send(wave[:8000].tobytes())      # half a second of speech, then the client vanishes
        assert json.loads(await held[0].recv())["type"] == "partial"
        held[0].transport.abort()
        await held[1].close()
        deadline = time.monotonic() + 10
        while server.health()["active_streams"]:
            assert time.monotonic() < deadline, "a stream was not freed"
            await asyncio.sleep(0.05)

    asyncio.run(run())
    ready, events = asyncio.run(_stream(server, _samples(3), 16000, "s16le", realtime=False))
    assert [e["text"] for e in events if e["type"] == "final"] == ["tiếng việt"]
    assert "vasr_active_streams 0" in httpx.get(server.url + "/metrics").text


# -- the process

def test_the_server_imports_neither_torch_nor_sqlalchemy(tmp_path):
    code = BLOCKER + textwrap.dedent(f"""
        from vasr.serve.app import ServeConfig, create_app
        create_app(ServeConfig({str(exported_streaming()["model_dir"])!r}, threads=1))
        assert "torch" not in sys.modules and "sqlalchemy" not in sys.modules, "a heavy module was imported"
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr


def test_vasr_serve_names_a_bad_model_directory(tmp_path, capsys):
    from vasr.cli import main

    assert main(["serve", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"vasr serve: error: {tmp_path / 'nowhere'}: no such model directory\n"
