"""Anthropic's Messages API on the gateway: /v1/messages and /v1/messages/count_tokens.

Each request is translated once into an OpenAI chat request, proxied to a worker like any
other, and the answer translated back: whole, or event by event for streams. Errors come
in Anthropic's envelope, so the `anthropic` SDK raises its own exception classes.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.anthropic import (
    AnthropicStream,
    anthropic_error_response,
    to_anthropic_message,
    to_openai_count_request,
    to_openai_request,
)
from gateway.asgi import send_json, until_disconnect
from gateway.routes.chat_call import ChatCall, model_header
from gateway.routes.model_route import ModelRoute
from gateway.service import Gateway
from workers.contract.body import parse_json_object
from workers.contract.errors import ApiError
from workers.contract.keys import forwarded_auth


class MessagesEndpoint(ModelRoute):
    """POST /v1/messages and /v1/messages/count_tokens."""

    def __init__(self, gateway: Gateway, count_only: bool = False) -> None:
        super().__init__(gateway)
        self.count_only = count_only
        self.reaches_peers = not count_only  # counting asks a worker's /tokenize

    def error_response(self, error: ApiError) -> Response:
        # A stream reports its own failures as `error` events once its head is out;
        # every ApiError that reaches here happened before any byte was sent.
        return anthropic_error_response(error)

    async def handle(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        anthropic = parse_json_object(body)
        translate = to_openai_count_request if self.count_only else to_openai_request
        payload = translate(anthropic)
        route = self.resolve(anthropic.get("model"), scope)
        requested = str(anthropic["model"])
        call = ChatCall(self.gateway, route, payload, forwarded_auth(scope))
        if self.count_only:
            work = _count(call, send)
        elif payload.get("stream"):
            work = call.stream(send, AnthropicStream(requested))
        else:
            work = _whole(call, send, requested)
        await until_disconnect(receive, work)


async def _whole(call: ChatCall, send: Send, requested: str) -> None:
    answer, model_id = await call.answer()
    await send_json(send, 200, to_anthropic_message(answer, requested), model_header(model_id))


async def _count(call: ChatCall, send: Send) -> None:
    answer, _ = await call.answer("/tokenize")
    await send_json(send, 200, {"input_tokens": int(answer["prompt_tokens"])})
