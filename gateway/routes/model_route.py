"""What every route that reaches a model starts with: the API key, then the body, read
once under its limit. An ApiError raised before any byte went out is answered in the
route's own error envelope; a client that left gets nothing. Each request is listed in
/admin/requests (gateway.operations.requests) from its arrival to its end, then in the
request history and the metrics."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.operations.requests import RequestTicket as Ticket
from gateway.peers import from_peer
from gateway.routing import Route
from gateway.service import Gateway
from workers.contract.body import parse_json_object, read_body
from workers.contract.errors import ApiError, ClientGone, error_response
from workers.contract.keys import require_api_key


class ModelRoute(ABC):
    # Whether another gateway (gateway.peers) may answer: routes that send the worker an
    # OpenAI request a peer's gateway serves as well.
    reaches_peers = False

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self.gateway.operations.requests.track(scope) as ticket:
            await self._serve(scope, receive, send, ticket)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, ticket: Ticket) -> None:
        config = self.gateway.config.file
        try:
            require_api_key(scope, config.security.api_keys)
            ticket.body = await read_body(scope, receive, config.gateway.max_body_bytes)
            await self.handle(scope, receive, send, ticket.body)
        except ClientGone:
            ticket.client_left = True
            return
        except ApiError as exc:
            ticket.error = exc
            await self.error_response(exc)(scope, receive, send)

    @abstractmethod
    async def handle(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None: ...

    def error_response(self, error: ApiError) -> Response:
        return error_response(error)

    def resolve(self, name: object, scope: Scope) -> Route:
        """The route for `name`. A request a peer sent here is answered here or not at
        all: one hop at most, so gateways that list each other cannot loop."""
        router = self.gateway.router
        if self.reaches_peers and not from_peer(scope):
            return router.resolve_anywhere(name, self.gateway.peers)
        return router.resolve(name)

    def openai_request(self, body: bytes, scope: Scope) -> tuple[dict[str, Any], Route, bool]:
        """An OpenAI-shaped body: its JSON object, its model's route, whether it streams."""
        payload = parse_json_object(body)
        route = self.resolve(payload.get("model"), scope)
        stream = payload.get("stream", False)
        if not isinstance(stream, bool):
            raise ApiError(400, "`stream` must be true or false", param="stream")
        return payload, route, stream
