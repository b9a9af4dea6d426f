"""The server's counters in Prometheus' text exposition format (version 0.0.4), written here: four
families do not justify a dependency.

``vasr_requests_total{route, status}`` (counter), ``vasr_audio_seconds_total`` (counter, seconds of
audio transcribed or streamed), ``vasr_request_duration_seconds{route}`` (histogram of HTTP request
latency) and ``vasr_active_streams`` (gauge of open ``/v1/stream`` connections). Updated from the
event loop only, so no lock is needed.
"""
from __future__ import annotations

import bisect
from collections import Counter, defaultdict

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)   # upper bounds, seconds


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()          # (route, status) -> count
        self.audio_s = 0.0
        self.active_streams = 0
        self._buckets: dict[str, list[int]] = defaultdict(lambda: [0] * len(LATENCY_BUCKETS_S))
        self._sum_s: Counter[str] = Counter()
        self._count: Counter[str] = Counter()

    def observe(self, route: str, status: int, seconds: float) -> None:
        """One finished HTTP request (or WebSocket connection, without a latency)."""
        self.requests[route, status] += 1
        if seconds >= 0:
            buckets = self._buckets[route]
            for i in range(bisect.bisect_left(LATENCY_BUCKETS_S, seconds), len(buckets)):
                buckets[i] += 1
            self._sum_s[route] += seconds
            self._count[route] += 1

    def render(self) -> str:
        lines = ["# HELP vasr_requests_total Requests answered, by route and HTTP status (WebSocket: close code).",
                 "# TYPE vasr_requests_total counter"]
        lines += [f'vasr_requests_total{{route="{route}",status="{status}"}} {n}'
                  for (route, status), n in sorted(self.requests.items())]
        lines += ["# HELP vasr_audio_seconds_total Seconds of audio transcribed or streamed.",
                  "# TYPE vasr_audio_seconds_total counter", f"vasr_audio_seconds_total {self.audio_s:.3f}",
                  "# HELP vasr_request_duration_seconds Latency of HTTP requests.",
                  "# TYPE vasr_request_duration_seconds histogram"]
        for route in sorted(self._count):
            for bound, n in zip(LATENCY_BUCKETS_S, self._buckets[route]):
                lines.append(f'vasr_request_duration_seconds_bucket{{route="{route}",le="{bound}"}} {n}')
            lines += [f'vasr_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} {self._count[route]}',
                      f'vasr_request_duration_seconds_sum{{route="{route}"}} {self._sum_s[route]:.6f}',
                      f'vasr_request_duration_seconds_count{{route="{route}"}} {self._count[route]}']
        lines += ["# HELP vasr_active_streams Open /v1/stream connections.", "# TYPE vasr_active_streams gauge",
                  f"vasr_active_streams {self.active_streams}"]
        return "\n".join(lines) + "\n"
