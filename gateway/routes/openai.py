"""The OpenAI endpoints that reach a model: chat, completions, embeddings.

Raw ASGI on purpose: these are the hot path, and the gateway only needs `model` and
`stream` out of the body before it hands the original bytes to a worker.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from gateway.asgi import send_body, until_disconnect
from gateway.operations.requests import current_request
from gateway.proxy.forward import Upstream, worker_refusal
from gateway.proxy.relay import StreamHead, relay_stream, relay_whole
from gateway.routes.model_route import ModelRoute
from gateway.routing import Route
from gateway.service import Gateway
from workers.contract.errors import ApiError
from workers.contract.keys import forwarded_auth
from workers.contract.sse import sse_error


@dataclass(frozen=True)
class ProxyRequest:
    route: Route
    payload: dict[str, Any]
    body: bytes
    auth: dict[str, str]


class ModelEndpoint(ModelRoute):
    """POST /v1/chat/completions, /v1/completions, /v1/embeddings."""

    reaches_peers = True

    def __init__(self, gateway: Gateway, path: str, streams: bool = True) -> None:
        super().__init__(gateway)
        self.path = path
        self.streams = streams

    async def handle(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        payload, route, stream = self.openai_request(body, scope)
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
        current_request.get().stream = True
        head = StreamHead(send, self.gateway.config.file.gateway.loading_keepalive_s)
        head.keep_alive_while_loading(self.gateway.fleet, request.route)
        try:
            async with self._open(request) as upstream:
                await head.stop_keepalive()
                if head.sent and upstream.response.status_code != 200:
                    raise await worker_refusal(upstream)
                await relay_stream(upstream, send, head)
        except ApiError as exc:
            await head.stop_keepalive()
            if not head.sent:
                raise
            await send_body(send, sse_error(exc))
        finally:
            head.abandon()
