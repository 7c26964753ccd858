"""OpenAI's Responses API on the gateway: POST /v1/responses, and GET and DELETE
/v1/responses/{id} and GET /v1/responses/{id}/input_items for stored responses.

A request is translated once into a chat request (with the stored conversation of its
`previous_response_id` in front), proxied to a worker like any other, and the answer
translated back: whole, or event by event for streams. A response is stored before the
client sees it end, so its id can be continued from at once.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.asgi import send_json, until_disconnect
from gateway.request_fields import Json
from gateway.responses import (
    Draft,
    ResponsesRequest,
    ResponsesStream,
    ResponseStore,
    StoredResponse,
    chat_request,
    parse_request,
    to_response,
)
from gateway.routes.chat_call import ChatCall, model_header
from gateway.routes.model_route import ModelRoute
from gateway.service import Gateway
from workers.contract.body import parse_json_object
from workers.contract.errors import ApiError
from workers.contract.keys import forwarded_auth, require_api_key

_MAX_PAGE = 100


class ResponsesEndpoint(ModelRoute):
    """POST /v1/responses."""

    reaches_peers = True

    def __init__(self, gateway: Gateway, store: ResponseStore) -> None:
        super().__init__(gateway)
        self.store = store

    async def handle(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        request = parse_request(parse_json_object(body))
        route = self.resolve(request.model, scope)
        items = await self._history(request.previous_response_id) + request.input
        call = ChatCall(self.gateway, route, chat_request(request, items), forwarded_auth(scope))
        draft = Draft(request.model, request.echo)
        if request.stream:
            work = self._stream(call, send, request, draft, items)
        else:
            work = self._whole(call, send, request, draft, items)
        await until_disconnect(receive, work)

    async def _history(self, previous_id: str | None) -> list[Json]:
        if previous_id is None:
            return []
        return (await _stored(self.store, previous_id, "previous_response_id")).conversation

    async def _whole(
        self, call: ChatCall, send: Send, request: ResponsesRequest, draft: Draft, items: list[Json]
    ) -> None:
        answer, model_id = await call.answer()
        response = to_response(answer, draft)
        if request.store:
            await self.store.save(response, items)
        await send_json(send, 200, response, model_header(model_id))

    async def _stream(
        self, call: ChatCall, send: Send, request: ResponsesRequest, draft: Draft, items: list[Json]
    ) -> None:
        events = ResponsesStream(draft)

        async def save() -> None:
            if request.store and events.response is not None:
                await self.store.save(events.response, items)

        await call.stream(send, events, save)


def routes(gateway: Gateway, store: ResponseStore) -> list[Route]:
    keys = gateway.config.file.security.api_keys

    async def retrieve(request: Request) -> Response:
        require_api_key(request.scope, keys)
        if request.query_params.get("stream") == "true":
            raise ApiError(400, "stream: replaying a stored response is not supported here")
        stored = await _stored(store, request.path_params["id"])
        return JSONResponse(stored.response)

    async def delete(request: Request) -> Response:
        require_api_key(request.scope, keys)
        response_id = request.path_params["id"]
        if not await store.delete(response_id):
            raise _not_found(response_id)
        return JSONResponse({"id": response_id, "object": "response", "deleted": True})

    async def input_items(request: Request) -> Response:
        require_api_key(request.scope, keys)
        stored = await _stored(store, request.path_params["id"])
        return JSONResponse(_page(stored.input_items, request))

    return [
        Route("/v1/responses/{id}", retrieve, methods=["GET"]),
        Route("/v1/responses/{id}", delete, methods=["DELETE"]),
        Route("/v1/responses/{id}/input_items", input_items, methods=["GET"]),
    ]


async def _stored(
    store: ResponseStore, response_id: str, param: str | None = None
) -> StoredResponse:
    stored = await store.get(response_id)
    if stored is None:
        raise _not_found(response_id, param)
    return stored


def _not_found(response_id: str, param: str | None = None) -> ApiError:
    message = f"no stored response with id {response_id!r} (never stored, deleted or expired)"
    return ApiError(404, message, code="response_not_found", param=param)


def _page(items: list[Json], request: Request) -> Json:
    """A cursor page as OpenAI lists them: newest first unless `order=asc`, `after` an id."""
    query = request.query_params
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "order: must be 'asc' or 'desc'", param="order")
    limit = _limit(query.get("limit", "20"))
    ordered = items if order == "asc" else items[::-1]
    after = query.get("after")
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise ApiError(400, f"after: no item {after!r} in this response", param="after")
        ordered = ordered[ids.index(after) + 1 :]
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > limit,
    }


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= _MAX_PAGE:
        raise ApiError(400, f"limit: must be an integer from 1 to {_MAX_PAGE}", param="limit")
    return int(text)
