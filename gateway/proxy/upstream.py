"""The gateway's HTTP/1.1 client for its workers: keep-alive connections over asyncio
transports, answers parsed by httptools (the llhttp parser uvicorn itself uses).

Why not httpx here: its connection pool scans every connection on every request
(encode/httpx#3215); measured on this path it cost 2-4 ms of CPU per proxied request,
aiohttp ~0.3 ms, this client ~0.1 ms. Workers are plain HTTP/1.1 on loopback, so a small
pool does all the proxy needs. Body bytes are handed on as they arrive, never collected.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import httptools

from workers.contract.errors import ApiError

# Above this much unread body, stop reading from the worker until the client catches up.
_HIGH_WATER = 256 * 1024


class UpstreamError(ApiError):
    """The worker could not be reached, or its answer broke off or went silent.

    An ApiError (502), so code that reads a worker's answer needs no second except."""

    def __init__(self, message: str) -> None:
        super().__init__(502, message, code="upstream_error")


@dataclass(frozen=True)
class Timeouts:
    connect_s: float
    read_s: float


class UpstreamResponse:
    """One worker answer: status and headers at once, the body as it arrives."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.status_code = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._complete = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive; what already arrived together comes as one piece."""
        while chunk := await self._next():
            yield chunk

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_raw()])

    async def aiter_lines(self) -> AsyncIterator[str]:
        pending = b""
        async for chunk in self.aiter_raw():
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield line.rstrip(b"\r").decode()
        if pending:
            yield pending.decode()

    async def aclose(self) -> None:
        """Give the connection back when the answer was read whole; otherwise close it,
        which is how the worker learns that nobody is listening any more."""
        if not self._closed:
            self._closed = True
            self._connection.release(reusable=self._complete and not self._chunks)

    async def _next(self) -> bytes:
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._complete:
                return b""
            self._waiter = self._connection.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        self._connection.resume()
        return data

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _HIGH_WATER:
            self._connection.pause()
        self._wake()

    def finish(self) -> None:
        self._complete = True
        self._wake()

    def fail(self, error: UpstreamError) -> None:
        if not self._complete:
            self._error = error
        self._wake()


class _Connection(asyncio.Protocol):
    """One keep-alive connection to a worker, carrying one request at a time.

    Silence is watched by one timer per answer that re-arms itself, rather than a timer
    per chunk: a stream of thousands of small chunks then costs a clock read each.
    """

    def __init__(self, pool: _HostPool) -> None:
        self.loop = asyncio.get_running_loop()
        self.pool = pool
        self.read_s = pool.timeouts.read_s
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: UpstreamResponse | None = None
        self.headers_ready: asyncio.Future[None] | None = None
        self.received = False
        self.lost = False
        self.open = True
        self.paused = False
        self.idle_since = 0.0
        self.last_read = 0.0
        self.watchdog: asyncio.TimerHandle | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._broken(UpstreamError(f"malformed answer from the worker: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.lost = True
        self._broken(UpstreamError(f"the worker closed the connection ({exc or 'EOF'})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.response is not None:
            self.response.status_code = self.parser.get_status_code()
        if self.headers_ready is not None and not self.headers_ready.done():
            self.headers_ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response.feed(body)

    def on_message_complete(self) -> None:
        if not self.parser.should_keep_alive():
            self.open = False
        self._disarm()
        if self.response is not None:
            self.response.finish()

    # used by the pool and the response
    async def send(self, head: bytes, body: bytes) -> UpstreamResponse:
        assert self.transport is not None
        response = self.response = UpstreamResponse(self)
        self.received = False
        self.headers_ready = self.loop.create_future()
        self.transport.writelines((head, body))
        self.last_read = self.loop.time()
        self.watchdog = self.loop.call_at(self.last_read + self.read_s, self._watch)
        await self.headers_ready
        return response

    def release(self, reusable: bool) -> None:
        self.response = None
        self._disarm()
        if reusable and self.open:
            self.resume()
            self.pool.put(self)
        else:
            self.close()

    def close(self) -> None:
        self.open = False
        self._disarm()
        if self.transport is not None:
            self.transport.close()

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def _watch(self) -> None:
        now = self.loop.time()
        if self.paused:  # waiting for our own client to read, not for the worker
            self.last_read = now
        due = self.last_read + self.read_s
        if due > now:
            self.watchdog = self.loop.call_at(due, self._watch)
            return
        self.watchdog = None
        self._broken(UpstreamError(f"no bytes for {self.read_s}s (gateway.read_timeout_s)"))

    def _disarm(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None

    def _broken(self, error: UpstreamError) -> None:
        self.open = False
        self._disarm()
        if self.headers_ready is not None and not self.headers_ready.done():
            self.headers_ready.set_exception(error)
        if self.response is not None:
            self.response.fail(error)
        if self.transport is not None:
            self.transport.close()


class _HostPool:
    """Idle connections to one worker, the most recently used first."""

    def __init__(self, host: str, port: int, timeouts: Timeouts, max_idle: int, idle_s: float):
        self.host = host
        self.port = port
        self.timeouts = timeouts
        self.max_idle = max_idle
        self.idle_s = idle_s
        self.idle: list[_Connection] = []

    def take(self) -> _Connection | None:
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if connection.open and now - connection.idle_since < self.idle_s:
                return connection
            connection.close()
        return None

    def put(self, connection: _Connection) -> None:
        if len(self.idle) >= self.max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self.idle.append(connection)

    async def connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        connect_s = self.timeouts.connect_s
        try:
            async with asyncio.timeout(connect_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self), self.host, self.port
                )
        except TimeoutError:
            raise UpstreamError(
                f"no connection in {connect_s}s (gateway.connect_timeout_s)"
            ) from None
        except OSError as exc:
            raise UpstreamError(f"cannot connect: {exc}") from None
        return connection

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


class UpstreamClient:
    """POSTs to workers over kept-alive connections, one request per connection at a time.

    There is no cap on open connections: each worker bounds its own concurrency and
    answers 429 past it, and the gateway's clients bound how many requests are open.
    """

    def __init__(
        self, timeouts: Timeouts, max_idle_per_worker: int = 64, idle_s: float = 4.0
    ) -> None:
        # idle_s stays under uvicorn's 5 s keep-alive, so the worker rarely closes first.
        self.timeouts = timeouts
        self.max_idle = max_idle_per_worker
        self.idle_s = idle_s
        self._pools: dict[tuple[str, int], _HostPool] = {}

    async def post(
        self, host: str, port: int, path: str, body: bytes, headers: dict[str, str]
    ) -> UpstreamResponse:
        """Send a request; returns once the status and headers came back."""
        pool = self._pool(host, port)
        head = _request_head(host, port, path, len(body), headers)
        reused = pool.take()
        if reused is not None:
            try:
                return await _exchange(reused, head, body)
            except UpstreamError:
                # The worker may have closed the idle connection just as we sent; one
                # closed without an answer byte is safe to try once more, on a new one.
                if reused.received or not reused.lost:
                    raise
        return await _exchange(await pool.connect(), head, body)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def _pool(self, host: str, port: int) -> _HostPool:
        pool = self._pools.get((host, port))
        if pool is None:
            pool = _HostPool(host, port, self.timeouts, self.max_idle, self.idle_s)
            self._pools[(host, port)] = pool
        return pool


async def _exchange(connection: _Connection, head: bytes, body: bytes) -> UpstreamResponse:
    try:
        return await connection.send(head, body)
    except BaseException:
        connection.close()
        raise


def _request_head(host: str, port: int, path: str, length: int, headers: dict[str, str]) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-length: {length}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    # Exactly one line break per line: a CR or LF inside a value would start a new header.
    lines = 3 + len(headers)
    if head.count("\n") != lines or head.count("\r") != lines:
        raise UpstreamError("refusing a request line or header with a line break in it")
    return (head + "\r\n").encode("latin-1")
