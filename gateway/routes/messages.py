"""Anthropic's Messages API on the gateway: /v1/messages and /v1/messages/count_tokens.

Each request is translated once into an OpenAI chat request, proxied to a worker like any
other, and the answer translated back: whole, or event by event for streams. Errors come
in Anthropic's envelope, so the `anthropic` SDK raises its own exception classes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import Receive, Scope, Send

from gateway.anthropic import (
    AnthropicStream,
    anthropic_error_response,
    to_anthropic_message,
    to_openai_count_request,
    to_openai_request,
)
from gateway.proxy.forward import Upstream, error_text
from gateway.proxy.upstream import UpstreamError
from gateway.routes.asgi import (
    SSE_HEADERS,
    ClientGone,
    parse_json_object,
    read_body,
    send_body,
    send_json,
    start_response,
    stop_task,
    until_disconnect,
)
from gateway.routing import Route
from gateway.service import Gateway
from workers.contract.errors import ApiError
from workers.contract.keys import forwarded_auth, require_api_key

PING_EVERY_S = 10.0


class MessagesEndpoint:
    def __init__(self, gateway: Gateway, count_only: bool = False) -> None:
        self.gateway = gateway
        self.count_only = count_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A stream reports its own failures as `error` events once its headers are out;
        # every ApiError that reaches here happened before any byte was sent.
        try:
            await self._handle(scope, receive, send)
        except ClientGone:
            return
        except ApiError as exc:
            await anthropic_error_response(exc)(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.gateway.config.file
        require_api_key(scope, config.security.api_keys)
        body = parse_json_object(await read_body(receive, config.gateway.max_body_bytes))
        translate = to_openai_count_request if self.count_only else to_openai_request
        payload = translate(body)
        route = self.gateway.router.resolve(body.get("model"))
        call = _Call(self.gateway, route, payload, forwarded_auth(scope), str(body["model"]))
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

    def _open(self, path: str = "/v1/chat/completions") -> Any:
        body = json.dumps(self.payload).encode()
        return self.gateway.proxy.open(self.route, path, self.payload, body, self.auth)

    async def whole(self, send: Send) -> None:
        async with self._open() as upstream:
            answer = await _json_answer(upstream)
        await send_json(send, 200, to_anthropic_message(answer, self.requested), _model(upstream))

    async def count(self, send: Send) -> None:
        async with self._open("/tokenize") as upstream:
            answer = await _json_answer(upstream)
        await send_json(send, 200, {"input_tokens": int(answer["prompt_tokens"])})

    async def stream(self, send: Send) -> None:
        events = AnthropicStream(self.requested)
        await start_response(send, 200, SSE_HEADERS)
        for event in events.start():
            await send_body(send, event, more=True)
        pinger = asyncio.create_task(_ping(send, events))
        try:
            async with self._open() as upstream:
                await stop_task(pinger)  # before the relay: one writer at a time
                if upstream.response.status_code != 200:
                    message = await error_text(upstream.response)
                    raise ApiError(upstream.response.status_code, message)
                await _relay(upstream, events, send)
        except ApiError as exc:
            for event in events.error(exc.message):
                await send_body(send, event, more=True)
        finally:
            await stop_task(pinger)
        await send_body(send, b"")


async def _relay(upstream: Upstream, events: AnthropicStream, send: Send) -> None:
    try:
        async for line in upstream.response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise ApiError(502, str(chunk["error"].get("message", "worker error")))
            for event in events.feed(chunk):
                await send_body(send, event, more=True)
    except (UpstreamError, ValueError, AttributeError, TypeError) as exc:
        # UpstreamError: the worker went away; the others: a chunk that is not an object.
        raise ApiError(502, f"worker {upstream.worker.id} failed mid-stream: {exc}") from None
    for event in events.finish():
        await send_body(send, event, more=True)


async def _ping(send: Send, events: AnthropicStream) -> None:
    """Anthropic's keepalive while a load runs ahead of the answer."""
    while True:
        await asyncio.sleep(PING_EVERY_S)
        await send_body(send, events.ping(), more=True)


async def _json_answer(upstream: Upstream) -> dict[str, Any]:
    status = upstream.response.status_code
    if status != 200:
        raise ApiError(status, await error_text(upstream.response))
    try:
        answer = json.loads(await upstream.response.aread())
    except ValueError as exc:  # an UpstreamError is already an ApiError (502)
        raise ApiError(502, f"worker {upstream.worker.id} sent malformed JSON: {exc}") from None
    if not isinstance(answer, dict):
        raise ApiError(502, f"worker {upstream.worker.id} sent a malformed answer")
    return answer


def _model(upstream: Upstream) -> list[tuple[bytes, bytes]]:
    return [(b"x-lmx-model", upstream.worker.id.encode())]
