"""Forward one OpenAI request to a worker and its answer back, bytes in, bytes out.

The body is re-encoded only when the `model` field (or a preset) must change. Streams
are relayed chunk by chunk, never buffered; the upstream response is closed in a
`finally` in every outcome. A failure before anything reached the client moves on to
the next model of the alias chain; after that, it becomes one SSE error chunk and [DONE].
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from gateway.fleet.fleet import Fleet
from gateway.fleet.states import State
from gateway.fleet.worker_handle import WorkerHandle
from gateway.operations.requests import current_request
from gateway.proxy.upstream import UpstreamClient, UpstreamError, UpstreamResponse
from gateway.routing import Route
from workers.contract import headers
from workers.contract.errors import ApiError

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
        return [*kept, (headers.MODEL.encode(), self.worker.id.encode())]


def order_chain(fleet: Fleet, route: Route) -> list[str]:
    """Ready models first (in chain order), then the rest: a loaded fallback beats a load."""
    # A model removed by a reload since the route was resolved is left out.
    present = [m for m in route.chain if m in fleet.workers]
    ready = [m for m in present if fleet.workers[m].state is State.READY]
    return ready + [m for m in present if m not in ready]


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
        """Yield the first upstream answer in the chain that is not a retryable failure.

        An operator's cancel (gateway.operations.requests) lands here, and becomes an
        ApiError once the upstream answer is closed."""
        with current_request.get().cancellable():
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
        ticket = current_request.get()
        ticket.trying(model_id, ready=self.fleet.admits_now(self.fleet.workers[model_id]))
        for attempt in range(2):
            worker = await self.fleet.acquire(model_id)  # counted in flight from here
            ticket.running()
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
        request_headers = {"content-type": "application/json", **auth}
        try:
            response = await self.client.post(
                worker.host, worker.model.port, path, body, request_headers
            )
        except UpstreamError as exc:
            raise ApiError(502, f"worker {worker.id} did not answer: {exc}") from None
        if response.status_code in RETRYABLE_STATUSES:
            detail = (await worker_refusal(Upstream(worker, response))).message
            await response.aclose()
            raise ApiError(502, f"worker {worker.id} failed: {detail}", code="worker_error")
        return Upstream(worker, response)


async def worker_refusal(upstream: Upstream) -> ApiError:
    """A worker's error answer, re-raised as the worker's: its status, message, type, code
    and Retry-After, marked as the worker's and naming the model (for routes that re-render
    it)."""
    response = upstream.response
    try:
        error = json.loads(await response.aread())["error"]
        message, type_ = str(error["message"]), error.get("type")
        code, param = error.get("code"), error.get("param")
    except (ValueError, KeyError, TypeError, UpstreamError):
        message, type_, code, param = f"HTTP {response.status_code}", None, None, None
    marks = {headers.ERROR_ORIGIN: "worker", headers.MODEL: upstream.worker.id}
    for name, value in response.raw_headers:
        if name.lower() == b"retry-after":  # a full queue's 429 says when to come back
            marks["Retry-After"] = value.decode("latin-1")
    return ApiError(response.status_code, message, code, param, type_, marks)
