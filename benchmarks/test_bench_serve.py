"""Load on `vasr serve` over loopback, bounded in count and time, and on sherpa-onnx's own servers
(``sherpa-onnx-offline-websocket-server`` and ``sherpa-onnx-online-websocket-server`` from the
``sherpa-onnx-bin`` package) serving the same exported int8 models. Each server runs in its own
process with two compute threads (the cores of the machine this was written on), the tiny preset's
shape with untrained weights (speed does not depend on them); the load comes from this process.

HTTP: ``CLIENTS`` concurrent clients post 5-second clips until ``REQUESTS`` are answered, to vasr with
its VAD and with ``--no-vad``; requests/s and latency p50/p95 go to extra_info. sherpa-onnx has no
HTTP server: its offline WebSocket server gets the same clips over ``CLIENTS`` kept-open connections
(its binary protocol, float32 samples, no VAD, no multipart parsing, batches across connections), so
it is the floor of what serving the model costs, not an equal. WebSocket: ``STREAMS`` concurrent
streams each send ``STREAM_S`` seconds of speech in real time (100 ms blocks). For vasr a partial's
latency is its arrival minus the moment the audio it covers had been sent; for both servers the final
latency is the time from the end of the audio to the last result, and a stream "fell behind" when that
is over a chunk + 1 s. vasr's streams run Silero VAD and endpointing; sherpa-onnx's run its
rule-based endpoints, no VAD. Each server's RSS with every stream open goes to extra_info.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICK, label
from test_bench_stream import SR, streaming_dir  # noqa: F401  (the fixture: a streaming model directory)

httpx = pytest.importorskip("httpx")
websockets = pytest.importorskip("websockets")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

CLIP_S = 5                       # seconds per posted clip
CLIENTS = 4 if QUICK else 8
REQUESTS = 40 if QUICK else 200
STREAMS = 4 if QUICK else 32
STREAM_S = 5 if QUICK else 10
BLOCK_S = 0.1
CHUNK_S = 0.32
BEHIND_S = CHUNK_S + 1.0         # a partial later than this: the stream fell behind real time
START_TIMEOUT_S = 60
THREADS = 2                      # compute threads of every server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def _server(command: list[str], port: int):
    """The server process of ``command`` once ``port`` accepts connections; stopped afterwards."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{Path(command[0]).name} did not start: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module", params=["vad", "no-vad"])
def served(request, streaming_dir):  # noqa: F811
    """(base URL, server process, 5 s speech clip) of a `vasr serve` process on a free port, uploads
    decoded through the VAD or (``--no-vad``) whole."""
    model_dir, wave = streaming_dir
    port = _free_port()
    extra = ["--no-vad"] if request.param == "no-vad" else []
    command = [sys.executable, "-m", "vasr", "serve", str(model_dir), "--port", str(port), "--raw",
               "--threads", str(THREADS), "--max-streams", str(STREAMS), "--max-queue", str(CLIENTS), *extra]
    with _server(command, port) as process:
        yield f"http://127.0.0.1:{port}", process, np.resize(wave, CLIP_S * SR).astype(np.float32)


@contextlib.contextmanager
def _sherpa(name: str, model_dir: Path, model_args: list[str], batch: int):
    """(ws URL, process) of sherpa-onnx's server ``name`` on the model files of ``model_args``."""
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        pytest.skip(f"{name} is missing: pip install sherpa-onnx-bin")
    port = _free_port()
    command = [path, f"--port={port}", f"--log-file={model_dir / (name + '.log')}", *model_args,
               f"--tokens={model_dir / 'tokens.txt'}", "--num-threads=1", f"--num-work-threads={THREADS}",
               "--num-io-threads=1", f"--max-batch-size={batch}"]
    with _server(command, port) as process:
        yield f"ws://127.0.0.1:{port}", process


@pytest.fixture(scope="module")
def sherpa_offline(streaming_dir):  # noqa: F811
    """sherpa-onnx's offline WebSocket server on the directory's model.int8.onnx."""
    model_dir, _ = streaming_dir
    with _sherpa("sherpa-onnx-offline-websocket-server", model_dir,
                 [f"--zipformer-ctc-model={model_dir / 'model.int8.onnx'}"], CLIENTS) as served:
        yield served


@pytest.fixture(scope="module")
def sherpa_online(streaming_dir):  # noqa: F811
    """sherpa-onnx's online WebSocket server on model-streaming.int8.onnx, vasr's chunking."""
    model_dir, _ = streaming_dir
    with _sherpa("sherpa-onnx-online-websocket-server", model_dir,
                 [f"--wenet-ctc-model={model_dir / 'model-streaming.int8.onnx'}", "--wenet-ctc-chunk-size=8",
                  "--wenet-ctc-num-left-chunks=8", "--model-type=wenet_ctc"], STREAMS) as served:
        yield served


def _wav(wave: np.ndarray) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, wave, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


async def _request_load(client) -> tuple[list[float], float]:
    """(latency of each request in seconds, wall seconds) of REQUESTS requests from CLIENTS copies of
    ``client(todo, latencies)``, which answers requests while ``todo`` yields."""
    latencies: list[float] = []
    todo = iter(range(REQUESTS))
    start = time.perf_counter()
    await asyncio.gather(*(client(todo, latencies) for _ in range(CLIENTS)))
    return latencies, time.perf_counter() - start


def _report_requests(benchmark, impl: str, run) -> None:
    results = []
    label(benchmark, group=f"server load, tiny int8, {CLIP_S} s clips, {CLIENTS} clients, {REQUESTS} requests",
          impl=impl, unit="ms/s", per=CLIP_S * REQUESTS)
    benchmark.pedantic(lambda: results.append(asyncio.run(_request_load(run))), rounds=1, iterations=1)
    latencies, wall = results[0]
    assert len(latencies) == REQUESTS
    benchmark.extra_info.update(requests=REQUESTS, clients=CLIENTS, requests_per_s=REQUESTS / wall,
                                latency_ms_p50=1000 * float(np.median(latencies)),
                                latency_ms_p95=1000 * float(np.percentile(latencies, 95)))


def test_http_load(benchmark, served, request):
    url, _, wave = served
    clip = _wav(wave)

    async def client(todo, latencies) -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            for _ in todo:
                start = time.perf_counter()
                response = await http.post(url + "/v1/audio/transcriptions", files={"file": ("clip.wav", clip)})
                response.raise_for_status()
                latencies.append(time.perf_counter() - start)

    _report_requests(benchmark, f"vasr:serve-http-{request.node.callspec.params['served']}", client)


def test_sherpa_offline_load(benchmark, sherpa_offline, streaming_dir):  # noqa: F811
    url, _ = sherpa_offline
    wave = np.resize(streaming_dir[1], CLIP_S * SR).astype(np.float32)
    message = SR.to_bytes(4, "little") + (wave.size * 4).to_bytes(4, "little") + wave.astype("<f4").tobytes()

    async def client(todo, latencies) -> None:
        async with websockets.connect(url, max_size=None) as ws:
            for _ in todo:
                start = time.perf_counter()
                await ws.send(message)
                json.loads(await ws.recv())
                latencies.append(time.perf_counter() - start)
            await ws.send("Done")

    _report_requests(benchmark, "peer:sherpa-onnx-offline-websocket", client)


async def _vasr_stream(url: str, wave: np.ndarray, lags: list[float]) -> float:
    """One real-time stream of ``wave`` to vasr: each partial's lag behind the audio it covers into
    ``lags``; returns the final latency."""
    data = np.round(wave * 32767).astype("<i2")
    async with websockets.connect(url.replace("http", "ws") + "/v1/stream", max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": SR, "format": "s16le"}))
        json.loads(await ws.recv())
        start = time.perf_counter()

        async def receive() -> None:
            while (event := json.loads(await ws.recv()))["type"] != "done":
                if event["type"] == "partial":
                    lags.append(time.perf_counter() - start - event["end"])

        receiving = asyncio.create_task(receive())
        await _send_realtime(ws, data, start)
        ended = time.perf_counter()
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiving, 60)
        return time.perf_counter() - ended


async def _sherpa_stream(url: str, wave: np.ndarray, lags: list[float]) -> float:
    """One real-time stream of ``wave`` to sherpa-onnx's online server; returns the final latency."""
    async with websockets.connect(url, max_size=None) as ws:
        start = time.perf_counter()

        async def receive() -> None:
            async for message in ws:
                if message == "Done!":
                    return

        receiving = asyncio.create_task(receive())
        await _send_realtime(ws, wave.astype("<f4"), start)
        ended = time.perf_counter()
        await ws.send("Done")
        await asyncio.wait_for(receiving, 60)
        return time.perf_counter() - ended


async def _send_realtime(ws, data: np.ndarray, start: float) -> None:
    step = int(BLOCK_S * SR)
    for i in range(0, len(data), step):
        block = data[i: i + step]          # sent once all of it has been spoken, as a microphone would
        await asyncio.sleep(max(0.0, (i + len(block)) / SR - (time.perf_counter() - start)))
        await ws.send(block.tobytes())


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _stream_load(stream, url: str, wave: np.ndarray, pid: int):
    """(per-stream partial lags, per-stream final latencies, server RSS in MB mid-way)."""
    lags: list[list[float]] = [[] for _ in range(STREAMS)]
    tasks = [asyncio.create_task(stream(url, wave, lags[i])) for i in range(STREAMS)]
    await asyncio.sleep(STREAM_S / 2)
    rss = _rss_mb(pid)
    finals = await asyncio.gather(*tasks)
    return lags, finals, rss


def _report_streams(benchmark, impl: str, stream, url: str, wave: np.ndarray, pid: int) -> list[float]:
    results = []
    label(benchmark, group=f"server load, tiny int8, {STREAMS} real-time streams of {STREAM_S} s",
          impl=impl, unit="RTF", per=STREAMS * STREAM_S)
    benchmark.pedantic(lambda: results.append(asyncio.run(_stream_load(stream, url, wave, pid))),
                       rounds=1, iterations=1)
    lags, finals, rss = results[0]
    benchmark.extra_info.update(streams=STREAMS, stream_s=STREAM_S, chunk_ms=1000 * CHUNK_S,
                                final_latency_ms_p50=1000 * float(np.median(finals)),
                                final_latency_ms_p95=1000 * float(np.percentile(finals, 95)),
                                server_rss_mb=rss,
                                streams_behind=sum(f > BEHIND_S or any(lag > BEHIND_S for lag in stream)
                                                   for f, stream in zip(finals, lags)))
    return [lag for stream in lags for lag in stream]


def test_websocket_load(benchmark, served, request):
    if request.node.callspec.params["served"] == "no-vad":
        pytest.skip("streams keep their VAD endpoints: --no-vad changes uploads only")
    url, process, clip = served
    wave = np.resize(clip, STREAM_S * SR).astype(np.float32)
    every = _report_streams(benchmark, "vasr:serve-stream", _vasr_stream, url, wave, process.pid)
    assert every, "no partial results arrived"
    benchmark.extra_info.update(partials=len(every), partial_latency_ms_p50=1000 * float(np.median(every)),
                                partial_latency_ms_p95=1000 * float(np.percentile(every, 95)),
                                partial_latency_ms_max=1000 * max(every))


def test_sherpa_online_load(benchmark, sherpa_online, streaming_dir):  # noqa: F811
    url, process = sherpa_online
    wave = np.resize(streaming_dir[1], STREAM_S * SR).astype(np.float32)
    _report_streams(benchmark, "peer:sherpa-onnx-online-websocket", _sherpa_stream, url, wave, process.pid)
