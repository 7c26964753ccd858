"""The OpenAI endpoints that reach a model: chat, completions, embeddings.

Raw ASGI on purpose: these are the hot path, and the gateway only needs `model` and
`stream` out of the body before it hands the original bytes to a worker.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from gateway.fleet.states import State
from gateway.proxy.forward import (
    Upstream,
    error_text,
    loading_keepalive,
    order_chain,
    relay_stream,
    relay_whole,
    sse_error_after_start,
    start_sse,
)
from gateway.routes.asgi import (
    ClientGone,
    parse_json_object,
    read_body,
    stop_task,
    until_disconnect,
)
from gateway.routing import Route
from gateway.service import Gateway
from workers.contract.errors import ApiError, error_response
from workers.contract.keys import forwarded_auth, require_api_key


@dataclass(frozen=True)
class ProxyRequest:
    route: Route
    payload: dict[str, Any]
    body: bytes
    auth: dict[str, str]


class ModelEndpoint:
    """POST /v1/chat/completions, /v1/completions, /v1/embeddings."""

    def __init__(self, gateway: Gateway, path: str, streams: bool = True) -> None:
        self.gateway = gateway
        self.path = path
        self.streams = streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._handle(scope, receive, send)
        except ClientGone:
            return
        except ApiError as exc:
            await error_response(exc)(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.gateway.config.file
        require_api_key(scope, config.security.api_keys)
        body = await read_body(receive, config.gateway.max_body_bytes)
        payload = parse_json_object(body)
        route = self.gateway.router.resolve(payload.get("model"))
        stream = payload.get("stream", False)
        if not isinstance(stream, bool):
            raise ApiError(400, "`stream` must be true or false", param="stream")
        request = ProxyRequest(route, payload, body, forwarded_auth(scope))
        if stream and self.streams:
            await until_disconnect(receive, self._stream(request, send))
        else:
            await until_disconnect(receive, self._whole(request, send))

    def _open(self, r: ProxyRequest) -> AbstractAsyncContextManager[Upstream]:
        return self.gateway.proxy.open(r.route, self.path, r.payload, r.body, r.auth)

    async def _whole(self, request: ProxyRequest, send: Send) -> None:
        async with self._open(request) as upstream:
            await relay_whole(upstream, send)

    async def _stream(self, request: ProxyRequest, send: Send) -> None:
        fleet = self.gateway.fleet
        first = order_chain(fleet, request.route)[0]
        if fleet.workers[first].state is State.READY:
            async with self._open(request) as upstream:
                await relay_stream(upstream, send, started=False)
            return
        # A load is ahead: answer 200 now and keep the client company while it runs.
        await start_sse(send)
        every = self.gateway.config.file.gateway.loading_keepalive_s
        keepalive = asyncio.create_task(loading_keepalive(send, first, every))
        try:
            async with self._open(request) as upstream:
                await stop_task(keepalive)
                if upstream.response.status_code != 200:
                    message = await error_text(upstream.response)
                    status = upstream.response.status_code
                    await sse_error_after_start(send, ApiError(status, message))
                    return
                await relay_stream(upstream, send, started=True)
        except ApiError as exc:
            await stop_task(keepalive)
            await sse_error_after_start(send, exc)
