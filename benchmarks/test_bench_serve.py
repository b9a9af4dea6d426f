"""Load on `vasr serve` over loopback, bounded in count and time: the server runs in its own process
(``python -m vasr serve``, one worker per core, the tiny preset's shape with untrained weights, int8:
speed does not depend on the weights) and the load comes from this one.

HTTP: ``CLIENTS`` concurrent clients post 5-second clips until ``REQUESTS`` are answered;
requests/s and latency p50/p95 go to extra_info. WebSocket: ``STREAMS`` concurrent streams each
send ``STREAM_S`` seconds of speech in real time (100 ms blocks); a partial's latency is its arrival
minus the moment the audio it covers had been sent, and a stream "fell behind" when one of its
partials came more than a chunk + 1 s late. The server's RSS with every stream open goes to extra_info.
"""
from __future__ import annotations

import asyncio
import io
import json
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


@pytest.fixture(scope="module")
def served(streaming_dir):  # noqa: F811
    """(base URL, server process, 5 s speech clip) of a `vasr serve` process on a free port."""
    model_dir, wave = streaming_dir
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "vasr", "serve", str(model_dir), "--port", str(port), "--raw",
                                "--max-streams", str(STREAMS), "--max-queue", str(CLIENTS)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"vasr serve did not start: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)
    yield url, process, np.resize(wave, CLIP_S * SR).astype(np.float32)
    process.terminate()
    process.wait(timeout=30)


def _wav(wave: np.ndarray) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, wave, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


async def _http_load(url: str, clip: bytes) -> tuple[list[float], float]:
    """(latency of each request in seconds, wall seconds) of REQUESTS posts from CLIENTS clients."""
    latencies: list[float] = []
    todo = iter(range(REQUESTS))

    async def client(http: httpx.AsyncClient) -> None:
        for _ in todo:
            start = time.perf_counter()
            response = await http.post(url + "/v1/audio/transcriptions", files={"file": ("clip.wav", clip)})
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=CLIENTS)) as http:
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
    return latencies, time.perf_counter() - start


def test_http_load(benchmark, served):
    url, _, wave = served
    clip = _wav(wave)
    results = []
    label(benchmark, group=f"server load, tiny int8, {CLIP_S} s clips, {CLIENTS} clients, {REQUESTS} requests",
          impl="vasr:serve-http", unit="ms/s", per=CLIP_S * REQUESTS)
    benchmark.pedantic(lambda: results.append(asyncio.run(_http_load(url, clip))), rounds=1, iterations=1)
    latencies, wall = results[0]
    benchmark.extra_info.update(requests=REQUESTS, clients=CLIENTS, requests_per_s=REQUESTS / wall,
                                latency_ms_p50=1000 * float(np.median(latencies)),
                                latency_ms_p95=1000 * float(np.percentile(latencies, 95)))


async def _stream(url: str, wave: np.ndarray, lags: list[float]) -> None:
    """One real-time stream of ``wave``; each partial's lag behind the audio it covers into ``lags``."""
    data = np.round(wave * 32767).astype("<i2")
    step = int(BLOCK_S * SR)
    async with websockets.connect(url.replace("http", "ws") + "/v1/stream", max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": SR, "format": "s16le"}))
        json.loads(await ws.recv())
        start = time.perf_counter()

        async def receive() -> None:
            while (event := json.loads(await ws.recv()))["type"] != "done":
                if event["type"] == "partial":
                    lags.append(time.perf_counter() - start - event["end"])

        receiving = asyncio.create_task(receive())
        for i in range(0, len(data), step):
            block = data[i: i + step]          # sent once all of it has been spoken, as a microphone would
            await asyncio.sleep(max(0.0, (i + len(block)) / SR - (time.perf_counter() - start)))
            await ws.send(block.tobytes())
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiving, 60)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _stream_load(url: str, wave: np.ndarray, pid: int) -> tuple[list[list[float]], float]:
    lags: list[list[float]] = [[] for _ in range(STREAMS)]
    tasks = [asyncio.create_task(_stream(url, wave, lags[i])) for i in range(STREAMS)]
    await asyncio.sleep(STREAM_S / 2)
    rss = _rss_mb(pid)
    await asyncio.gather(*tasks)
    return lags, rss


def test_websocket_load(benchmark, served):
    url, process, clip = served
    wave = np.resize(clip, STREAM_S * SR).astype(np.float32)
    results = []
    label(benchmark, group=f"server load, tiny int8, {STREAMS} real-time streams of {STREAM_S} s",
          impl="vasr:serve-stream", unit="RTF", per=STREAMS * STREAM_S)
    benchmark.pedantic(lambda: results.append(asyncio.run(_stream_load(url, wave, process.pid))),
                       rounds=1, iterations=1)
    lags, rss = results[0]
    every = [lag for stream in lags for lag in stream]
    assert every, "no partial results arrived"
    benchmark.extra_info.update(streams=STREAMS, stream_s=STREAM_S, chunk_ms=1000 * CHUNK_S, partials=len(every),
                                partial_latency_ms_p50=1000 * float(np.median(every)),
                                partial_latency_ms_p95=1000 * float(np.percentile(every, 95)),
                                partial_latency_ms_max=1000 * max(every),
                                streams_behind=sum(any(lag > BEHIND_S for lag in s) for s in lags),
                                server_rss_mb=rss)
