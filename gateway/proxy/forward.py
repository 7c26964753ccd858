"""Forward one OpenAI request to a worker and its answer back, bytes in, bytes out.

The body is re-encoded only when the `model` field (or a preset) must change. Streams
are relayed chunk by chunk, never buffered; the upstream response is closed in a
`finally` in every outcome. A failure before anything reached the client moves on to
the next model of the alias chain; after that, it becomes one SSE error chunk and [DONE].
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.types import Send

from gateway.fleet.fleet import Fleet
from gateway.fleet.states import State
from gateway.fleet.worker_handle import WorkerHandle
from gateway.proxy.upstream import UpstreamClient, UpstreamError, UpstreamResponse
from gateway.routes.asgi import SSE_HEADERS, send_body, start_response
from gateway.routing import Route
from workers.contract.errors import ApiError, sse_error_chunk

# Hop-by-hop and length headers are the gateway's own business, not the worker's.
_DROP_HEADERS = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"date", b"server"}
)
RETRYABLE_STATUSES = frozenset({502, 503})


@dataclass
class Upstream:
    """An open worker response, and which model it is from."""

    worker: WorkerHandle
    response: UpstreamResponse

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        raw = self.response.raw_headers
        kept = [(k, v) for k, v in raw if k.lower() not in _DROP_HEADERS]
        return [*kept, (b"x-lmx-model", self.worker.id.encode())]


def order_chain(fleet: Fleet, route: Route) -> list[str]:
    """Ready models first (in chain order), then the rest: a loaded fallback beats a load."""
    ready = [m for m in route.chain if fleet.workers[m].state is State.READY]
    return ready + [m for m in route.chain if m not in ready]


def body_for(payload: dict[str, Any], original: bytes, model_id: str, route: Route) -> bytes:
    if payload.get("model") == model_id and not route.params and route.system is None:
        return original
    merged = {**route.params, **payload, "model": model_id}
    if route.system is not None and isinstance(merged.get("messages"), list):
        merged["messages"] = [{"role": "system", "content": route.system}, *merged["messages"]]
    return json.dumps(merged).encode()


class Proxy:
    def __init__(self, fleet: Fleet, client: UpstreamClient) -> None:
        self.fleet = fleet
        self.client = client

    @asynccontextmanager
    async def open(
        self,
        route: Route,
        path: str,
        payload: dict[str, Any],
        body: bytes,
        auth: dict[str, str] | None = None,
    ) -> AsyncIterator[Upstream]:
        """Yield the first upstream answer in the chain that is not a retryable failure."""
        last: ApiError | None = None
        for model_id in order_chain(self.fleet, route):
            content = body_for(payload, body, model_id, route)
            try:
                upstream = await self._answer(model_id, path, content, auth or {})
            except ApiError as exc:
                last = exc
                continue
            try:
                yield upstream
                return
            finally:
                await upstream.response.aclose()
                upstream.worker.end_request()
        raise last or ApiError(503, f"no model of {route.requested!r} could answer")

    async def _answer(
        self, model_id: str, path: str, body: bytes, auth: dict[str, str]
    ) -> Upstream:
        """One model's answer; a worker found dead since the last tick is loaded again once."""
        for attempt in range(2):
            worker = await self.fleet.ensure_ready(model_id)
            worker.begin_request()
            try:
                return await self._send(worker, path, body, auth)
            except ApiError:
                worker.end_request()
                if attempt > 0 or not await self.fleet.confirm_lost(worker):
                    raise
        raise AssertionError("unreachable")

    async def _send(
        self, worker: WorkerHandle, path: str, body: bytes, auth: dict[str, str]
    ) -> Upstream:
        headers = {"content-type": "application/json", **auth}
        try:
            response = await self.client.post(worker.host, worker.model.port, path, body, headers)
        except UpstreamError as exc:
            raise ApiError(502, f"worker {worker.id} did not answer: {exc}") from None
        if response.status_code in RETRYABLE_STATUSES:
            detail = await error_text(response)
            await response.aclose()
            raise ApiError(502, f"worker {worker.id} failed: {detail}", code="worker_error")
        return Upstream(worker, response)


async def error_text(response: UpstreamResponse) -> str:
    try:
        body = json.loads(await response.aread())
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError, UpstreamError):
        return f"HTTP {response.status_code}"


async def relay_whole(upstream: Upstream, send: Send) -> None:
    """A non-streamed answer is small: read it whole, so a failure mid-way is a clean 502."""
    try:
        body = await upstream.response.aread()
    except UpstreamError as exc:
        raise ApiError(502, f"worker {upstream.worker.id} failed mid-answer: {exc}") from None
    length = (b"content-length", str(len(body)).encode())
    await start_response(send, upstream.response.status_code, [*upstream.headers, length])
    await send_body(send, body)


async def relay_stream(upstream: Upstream, send: Send, started: bool) -> None:
    """Relay SSE bytes as they come; `started` says whether headers already went out."""
    if not started:
        await start_response(send, upstream.response.status_code, upstream.headers)
    try:
        async for chunk in upstream.response.aiter_raw():
            await send_body(send, chunk, more=True)
    except UpstreamError as exc:
        error = ApiError(502, f"worker {upstream.worker.id} failed mid-stream: {exc}")
        await send_body(send, sse_error_chunk(error), more=True)
    await send_body(send, b"")


async def sse_error_after_start(send: Send, error: ApiError) -> None:
    await send_body(send, sse_error_chunk(error))


async def loading_keepalive(send: Send, model_id: str, every_s: float) -> None:
    """SSE comment lines while a streaming client waits for a load, so nothing times out."""
    started = time.monotonic()
    while True:
        await asyncio.sleep(every_s)
        line = f": loading {model_id} {time.monotonic() - started:.0f}\n\n"
        await send_body(send, line.encode(), more=True)


async def start_sse(send: Send) -> None:
    await start_response(send, 200, SSE_HEADERS)
