"""A request of another API (Anthropic Messages, OpenAI Responses) translated into one
chat completion: sent to a worker like any other, its answer read whole, or its stream
re-framed chunk by chunk by the route's own translation.

Nothing here knows the other API's shapes; the routes bring those.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from starlette.types import Send

from gateway.asgi import send_body
from gateway.operations.requests import current_request
from gateway.proxy.forward import Upstream, worker_refusal
from gateway.proxy.reading import json_answer, prompt_tokens, worker_chunks
from gateway.proxy.relay import StreamHead, stream_head
from gateway.routing import Route
from gateway.service import Gateway
from workers.contract import headers
from workers.contract.errors import ApiError

Json = dict[str, Any]


class StreamTranslation(Protocol):
    """Chat completion chunks in, the other API's framed events out."""

    def start(self, prompt_tokens: int) -> list[bytes]: ...

    def feed(self, chunk: Json) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...

    def error(self, error: ApiError) -> list[bytes]: ...


class ChatCall:
    def __init__(self, gateway: Gateway, route: Route, payload: Json, auth: dict[str, str]):
        self.gateway = gateway
        self.route = route
        self.payload = payload
        self.auth = auth

    def open(self, path: str = "/v1/chat/completions") -> AbstractAsyncContextManager[Upstream]:
        body = json.dumps(self.payload).encode()
        return self.gateway.proxy.open(self.route, path, self.payload, body, self.auth)

    async def answer(self, path: str = "/v1/chat/completions") -> tuple[Json, str]:
        """The worker's whole JSON answer, and the id of the model that gave it."""
        async with self.open(path) as upstream:
            return await json_answer(upstream), upstream.worker.id

    async def stream(
        self,
        send: Send,
        translation: StreamTranslation,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Relay the worker's stream through `translation`; `settle` runs once the worker's
        stream has ended, before the closing events go out (a store, say)."""
        current_request.get().stream = True
        head = StreamHead(send, self.gateway.config.file.gateway.loading_keepalive_s)
        head.keep_alive_while_loading(self.gateway.fleet, self.route)
        try:
            async with self.open() as upstream:
                await head.stop_keepalive()
                if upstream.response.status_code != 200:
                    raise await worker_refusal(upstream)
                await head.send_once(200, stream_head(upstream.worker.id))
                await send_events(send, translation.start(prompt_tokens(upstream)))
                await _relay(upstream, translation, send)
            closing = translation.finish()
            if settle is not None:
                await settle()
            await send_events(send, closing)
        except ApiError as exc:
            await head.stop_keepalive()
            if not head.sent:
                raise
            await send_events(send, translation.error(exc))
        finally:
            head.abandon()
        await send_body(send, b"")


def model_header(model_id: str) -> list[tuple[bytes, bytes]]:
    return [(headers.MODEL.encode(), model_id.encode())]


async def send_events(send: Send, events: list[bytes]) -> None:
    for event in events:
        await send_body(send, event, more=True)


async def _relay(upstream: Upstream, translation: StreamTranslation, send: Send) -> None:
    ticket = current_request.get()
    async for chunk in worker_chunks(upstream):
        ticket.tokens += 1  # the worker's events, for /admin/requests
        await send_events(send, translation.feed(chunk))
