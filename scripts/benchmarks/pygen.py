"""The fallback load generator: keep-alive clients on raw asyncio streams, responses
framed by httptools, no HTTP library in between (uvloop when installed)."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int


class _Framer:
    """httptools callbacks: whether the answer ended, and how many SSE events it held."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.complete = False
        self.events = 0
        self._tail = b""

    def on_body(self, body: bytes) -> None:
        # An event's "data: " may straddle two pieces: count it in the joined window.
        window = self._tail + body
        self.events += window.count(b"data: ") - self._tail.count(b"data: ")
        self._tail = window[-5:]

    def on_message_complete(self) -> None:
        self.complete = True


def run(url: str, body: bytes, clients: int, seconds: float) -> Result:
    return _loop_run(_run(url, body, clients, seconds))


def stream_events(url: str, body: bytes, clients: int, seconds: float) -> tuple[int, float]:
    """SSE events received in `seconds` by `clients` that stream one answer after another.

    Counted as they arrive, so a stream still running when time is up counts its part:
    no rounding to whole streams."""
    return _loop_run(_stream_events(url, body, clients, seconds))


def _loop_run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _request(url: str, body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = f"POST {parts.path} HTTP/1.1\r\nhost: {host}:{port}\r\n"
    head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    return host, port, head.encode() + body


async def _stream_events(url: str, body: bytes, clients: int, seconds: float) -> tuple[int, float]:
    host, port, request = _request(url, body)
    counts = [0] * clients
    started = time.perf_counter()
    tasks = [
        asyncio.ensure_future(_streamer(host, port, request, counts, i)) for i in range(clients)
    ]
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - started
    total = sum(counts)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return total, elapsed


async def _streamer(host: str, port: int, request: bytes, counts: list[int], index: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            writer.write(request)
            framer = _Framer()
            while not framer.complete:
                data = await reader.read(65536)
                if not data:
                    return
                before = framer.events
                framer.parser.feed_data(data)
                counts[index] += framer.events - before
    finally:
        writer.close()


async def _run(url: str, body: bytes, clients: int, seconds: float) -> Result:
    host, port, request = _request(url, body)
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_client(host, port, request, deadline, latencies, errors) for _ in range(clients))
    )
    elapsed = time.perf_counter() - started
    return _result(latencies, elapsed, len(errors))


async def _client(
    host: str, port: int, request: bytes, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            writer.write(request)
            framer = _Framer()
            while not framer.complete:
                data = await reader.read(65536)
                if not data:
                    errors.append(1)
                    return
                framer.parser.feed_data(data)
            if framer.parser.get_status_code() != 200:
                errors.append(1)
            latencies.append(time.perf_counter() - began)
    finally:
        writer.close()


def _result(latencies: list[float], elapsed: float, errors: int) -> Result:
    if not latencies:
        return Result(0, elapsed, float("nan"), float("nan"), errors)
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Result(len(ordered), elapsed, statistics.median(ordered) * 1e3, p99 * 1e3, errors)
