"""Anthropic's Messages API on the gateway: /v1/messages and /v1/messages/count_tokens.

Each request is translated once into an OpenAI chat request, proxied to a worker like any
other, and the answer translated back: whole, or event by event for streams. Errors come
in Anthropic's envelope, so the `anthropic` SDK raises its own exception classes.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.anthropic import (
    AnthropicStream,
    anthropic_error_response,
    to_anthropic_message,
    to_openai_count_request,
    to_openai_request,
)
from gateway.asgi import send_body, send_json, until_disconnect
from gateway.proxy.forward import Upstream, worker_refusal
from gateway.proxy.reading import (
    json_answer,
    model_header,
    open_payload,
    prompt_tokens,
    worker_chunks,
)
from gateway.proxy.relay import StreamHead, stream_head
from gateway.routes.model_route import ModelRoute
from gateway.routing import Route
from gateway.service import Gateway
from workers.contract.body import parse_json_object
from workers.contract.errors import ApiError
from workers.contract.keys import forwarded_auth


class MessagesEndpoint(ModelRoute):
    """POST /v1/messages and /v1/messages/count_tokens."""

    def __init__(self, gateway: Gateway, count_only: bool = False) -> None:
        super().__init__(gateway)
        self.count_only = count_only

    def error_response(self, error: ApiError) -> Response:
        # A stream reports its own failures as `error` events once its head is out;
        # every ApiError that reaches here happened before any byte was sent.
        return anthropic_error_response(error)

    async def handle(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        anthropic = parse_json_object(body)
        translate = to_openai_count_request if self.count_only else to_openai_request
        payload = translate(anthropic)
        route = self.gateway.router.resolve(anthropic.get("model"))
        requested = str(anthropic["model"])
        call = _Call(self.gateway, route, payload, forwarded_auth(scope), requested)
        if self.count_only:
            work = call.count(send)
        elif payload.get("stream"):
            work = call.stream(send)
        else:
            work = call.whole(send)
        await until_disconnect(receive, work)


class _Call:
    def __init__(
        self,
        gateway: Gateway,
        route: Route,
        payload: dict[str, Any],
        auth: dict[str, str],
        requested: str,
    ) -> None:
        self.gateway = gateway
        self.route = route
        self.payload = payload
        self.auth = auth
        self.requested = requested

    def _open(self, path: str = "/v1/chat/completions") -> AbstractAsyncContextManager[Upstream]:
        return open_payload(self.gateway.proxy, self.route, path, self.payload, self.auth)

    async def whole(self, send: Send) -> None:
        async with self._open() as upstream:
            answer = await json_answer(upstream)
        await send_json(
            send, 200, to_anthropic_message(answer, self.requested), model_header(upstream)
        )

    async def count(self, send: Send) -> None:
        async with self._open("/tokenize") as upstream:
            answer = await json_answer(upstream)
        await send_json(send, 200, {"input_tokens": int(answer["prompt_tokens"])})

    async def stream(self, send: Send) -> None:
        head = StreamHead(send, self.gateway.config.file.gateway.loading_keepalive_s)
        head.keep_alive_while_loading(self.gateway.fleet, self.route)
        events = AnthropicStream(self.requested)
        try:
            async with self._open() as upstream:
                await head.stop_keepalive()
                status = upstream.response.status_code
                if status != 200:
                    raise await worker_refusal(upstream)
                await head.send_once(200, stream_head(upstream.worker.id))
                await _send_events(send, events.start(prompt_tokens(upstream)))
                await _relay(upstream, events, send)
        except ApiError as exc:
            await head.stop_keepalive()
            if not head.sent:
                raise
            await _send_events(send, events.error(exc))
        await send_body(send, b"")


async def _relay(upstream: Upstream, events: AnthropicStream, send: Send) -> None:
    async for chunk in worker_chunks(upstream):
        await _send_events(send, events.feed(chunk))
    await _send_events(send, events.finish())


async def _send_events(send: Send, events: list[bytes]) -> None:
    for event in events:
        await send_body(send, event, more=True)
