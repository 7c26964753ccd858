"""Forward one OpenAI request to a worker and its answer back, bytes in, bytes out.

The body is re-encoded only when the `model` field (or a preset) must change. Streams
are relayed chunk by chunk, never buffered; the upstream response is closed in a
`finally` in every outcome. A failure before anything reached the client moves on to
the next model of the alias chain (or the next host that has it, gateway.peers); after
that, it becomes one SSE error chunk and [DONE].
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
from gateway.peers import PeerModel, Peers, Target
from gateway.proxy.upstream import UpstreamClient, UpstreamError, UpstreamResponse
from gateway.routing import Route
from workers.contract import headers
from workers.contract.errors import ApiError

# Hop-by-hop and length headers are the gateway's own business, not the worker's; a
# peer's x-lmx-model gives way to this gateway's name for its model.
_DROP_HEADERS = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"date", b"server"}
    | {headers.MODEL.encode()}
)
RETRYABLE_STATUSES = frozenset({502, 503})
# A peer's 4xx is its answer, passed on unchanged, except these: a 404 (its list changed
# since we read it) and a refused key (ours, in peers[].api_key) try the next host.
PEER_RETRYABLE_STATUSES = frozenset({401, 403, 404, 502, 503, 504})


@dataclass
class Upstream:
    """An open answer, and which model it is from: a worker's here, or a peer's."""

    worker: WorkerHandle | PeerModel
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
    def __init__(self, fleet: Fleet, client: UpstreamClient, peers: Peers | None = None) -> None:
        self.fleet = fleet
        self.client = client
        self.peers = peers

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
            for target in self._targets(route):
                try:
                    if isinstance(target, PeerModel):
                        content = body_for(payload, body, target.model, route)
                        upstream = await self._ask_peer(target, path, content)
                    else:
                        content = body_for(payload, body, target, route)
                        upstream = await self._answer(target, path, content, auth or {})
                except ApiError as exc:
                    last = exc
                    continue
                try:
                    yield upstream
                    return
                finally:
                    await upstream.response.aclose()
                    if isinstance(upstream.worker, WorkerHandle):
                        upstream.worker.end_request()
            raise last or ApiError(503, f"no model of {route.requested!r} could answer")

    def _targets(self, route: Route) -> list[Target]:
        """This host's models of the chain, or, for a route peers may answer, every host
        that has them, in the order gateway.peers.hosts gives."""
        if self.peers is None or not self.peers.states or not route.anywhere:
            return list(order_chain(self.fleet, route))
        workers = self.fleet.workers
        local_ready = {
            m: workers[m].state is State.READY
            for m in route.chain
            if m in workers and route.peer is None
        }
        return self.peers.plan(route, local_ready)

    async def _ask_peer(self, target: PeerModel, path: str, body: bytes) -> Upstream:
        """A peer's answer, sent with its key and the hop mark (gateway.peers.state)."""
        current_request.get().trying(target.id, ready=True)
        peer = self.peers.states.get(target.peer) if self.peers is not None else None
        if peer is None:  # removed by a reload since the route was planned
            raise ApiError(503, f"peer {target.peer!r} is no longer configured")
        try:
            response = await peer.post(self.client, path, body)
        except UpstreamError as exc:
            raise ApiError(502, f"peer {peer.name} did not answer: {exc}") from None
        if response.status_code in PEER_RETRYABLE_STATUSES:
            refusal = await worker_refusal(Upstream(target, response))
            await response.aclose()
            raise _peer_refusal(target, response.status_code, refusal)
        peer.answered(target.model)
        return Upstream(target, response)

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


def _peer_refusal(target: PeerModel, status: int, refusal: ApiError) -> ApiError:
    """What a peer's failure becomes when no other host takes the request: its own 404
    (the model is not there), or a 502 saying what went wrong there."""
    if status == 404:
        return refusal
    if status in (401, 403):
        message = f"peer {target.peer} refused the api_key of its peers entry"
        return ApiError(502, message, code="peer_refused_key")
    return ApiError(502, f"peer {target.peer} failed: {refusal.message}", code="peer_error")


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
