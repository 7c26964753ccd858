"""A worker's answer, sent back to the client: whole, or streamed as it comes.

A stream that has a load ahead of it sends its response head only when the first byte
must go: with the worker's own answer when that comes first (so the status, the error
envelope and `x-lmx-model` are the real ones), or with the first keepalive comment
while the load runs. Once the head is out, a failure becomes an error event instead.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import Send

from gateway.asgi import send_body, start_response, stop_task
from gateway.fleet.fleet import Fleet
from gateway.operations.requests import current_request
from gateway.proxy.forward import Upstream, order_chain
from gateway.proxy.upstream import UpstreamError
from gateway.routing import Route
from workers.contract import headers, sse
from workers.contract.errors import ApiError


async def relay_whole(upstream: Upstream, send: Send) -> None:
    """A non-streamed answer is small: read it whole, so a failure mid-way is a clean 502."""
    try:
        body = await upstream.response.aread()
    except UpstreamError as exc:
        raise ApiError(502, f"worker {upstream.worker.id} failed mid-answer: {exc}") from None
    current_request.get().answer = body  # its usage, for the metrics (operations.outcome)
    length = (b"content-length", str(len(body)).encode())
    await start_response(send, upstream.response.status_code, [*upstream.headers, length])
    await send_body(send, body)


async def relay_stream(upstream: Upstream, send: Send, head: StreamHead) -> None:
    """Relay SSE bytes as they come, under the worker's own head unless one already went out."""
    await head.send_once(upstream.response.status_code, upstream.headers)
    ticket = current_request.get()
    previous = last = b""
    try:
        async for chunk in upstream.response.aiter_raw():
            ticket.tokens += chunk.count(b"data: {")  # the worker's events, for /admin/requests
            previous, last = last, chunk  # the stream's end holds its trailer (operations.outcome)
            await send_body(send, chunk, more=True)
    except UpstreamError as exc:
        error = ApiError(502, f"worker {upstream.worker.id} failed mid-stream: {exc}")
        ticket.error = error
        await send_body(send, sse.sse_error(error), more=True)
    finally:  # a client that leaves cancels the loop: what it was sent still counts
        ticket.tail = previous + last
    await send_body(send, b"")


def stream_head(model_id: str) -> list[tuple[bytes, bytes]]:
    return [*sse.HEADERS, (headers.MODEL.encode(), model_id.encode())]


class StreamHead:
    """When a stream's response head goes out, and the keepalive that may send it early.

    While a load runs ahead of the answer, SSE comment lines every `every_s` keep the
    client from timing out; the first of them sends a 200 head naming the model being
    loaded. Every reader skips comments, OpenAI's and Anthropic's SDKs included.
    """

    def __init__(self, send: Send, every_s: float) -> None:
        self.sent = False
        self._send = send
        self._every_s = every_s
        self._keepalive: asyncio.Task[None] | None = None

    def keep_alive_while_loading(self, fleet: Fleet, route: Route) -> None:
        chain = order_chain(fleet, route)
        first = fleet.workers[chain[0]] if chain else None
        if first is not None and not fleet.admits_now(first):  # a load, or a wait for memory
            self._keepalive = asyncio.create_task(self._keep_alive(first.id))

    async def stop_keepalive(self) -> None:
        """Before anyone else writes: one writer at a time."""
        if self._keepalive is not None:
            await stop_task(self._keepalive)

    def abandon(self) -> None:
        """The request has ended, perhaps cancelled mid-load by a client that left: its
        keepalive must not outlive it (uvicorn drops writes to a closed connection
        silently, so nothing else would ever stop it)."""
        if self._keepalive is not None:
            self._keepalive.cancel()

    async def send_once(self, status: int, head: list[tuple[bytes, bytes]]) -> None:
        if not self.sent:
            self.sent = True
            await start_response(self._send, status, head)

    async def _keep_alive(self, model_id: str) -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(self._every_s)
            await self.send_once(200, stream_head(model_id))
            waited = time.monotonic() - started
            comment = sse.sse_comment(f"loading {model_id} {waited:.0f}")
            await send_body(self._send, comment, more=True)
