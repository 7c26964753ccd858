"""Ollama's API on the gateway's port: /api/chat, /api/generate, /api/embed and
/api/embeddings on the fast dispatch; /api/version, /api/tags, /api/ps, /api/show and
/api/pull as plain routes.

Each request is translated once into an OpenAI request (gateway.ollama.requests) and
proxied like any other: aliases, presets, keys, queueing, the prompt cache, tool and
reasoning parsing behave as on /v1. Answers stream as newline-delimited JSON unless the
client says `"stream": false`. Errors come as Ollama's `{"error": "..."}`.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive, Scope, Send

from gateway.asgi import send_body, send_json, start_response, until_disconnect
from gateway.fleet.states import State
from gateway.fleet.worker_handle import WorkerHandle
from gateway.library.pull_spec import inside
from gateway.ollama import models
from gateway.ollama import pull as ollama_pull
from gateway.ollama.answers import Kind, OllamaAnswer, embed_answer, load_answer
from gateway.ollama.errors import ollama_error_response
from gateway.ollama.requests import (
    OllamaRequest,
    chat_request,
    embed_request,
    embeddings_request,
    generate_request,
)
from gateway.operations.requests import current_request
from gateway.peers import PeerModel
from gateway.proxy.forward import Upstream, order_chain, worker_refusal
from gateway.proxy.reading import json_answer, model_header, open_payload, worker_chunks
from gateway.proxy.timing import Timing
from gateway.routes.model_route import ModelRoute
from gateway.routing import Route
from gateway.service import Gateway
from workers.contract.body import parse_json_object, read_body
from workers.contract.errors import ApiError
from workers.contract.keys import forwarded_auth, require_admin_key, require_api_key

Json = dict[str, Any]
# The Ollama API level these routes follow (thinking, tool calls, structured output).
OLLAMA_VERSION = "0.12.0"
NDJSON_HEAD = [(b"content-type", b"application/x-ndjson")]


def endpoints(gateway: Gateway) -> dict[str, ModelRoute]:
    return {
        "/api/chat": OllamaEndpoint(gateway, "chat", chat_request),
        "/api/generate": OllamaEndpoint(gateway, "generate", generate_request),
        "/api/embed": OllamaEndpoint(gateway, "embed", embed_request),
        "/api/embeddings": OllamaEndpoint(gateway, "embeddings", embeddings_request),
    }


class OllamaEndpoint(ModelRoute):
    def __init__(
        self, gateway: Gateway, kind: str, translate: Callable[[Any], OllamaRequest]
    ) -> None:
        super().__init__(gateway)
        self.kind = kind
        self.translate = translate

    def error_response(self, error: ApiError) -> Response:
        return ollama_error_response(error)

    async def handle(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        timing = Timing()
        request = self.translate(parse_json_object(body))
        route = models.resolve_model(self.gateway.router, request.model)
        call = _Call(self.gateway, route, request, forwarded_auth(scope), timing)
        if request.load_only:
            work = call.load_only(self.kind, send)
        elif self.kind in ("embed", "embeddings"):
            work = call.embed(self.kind, send)
        elif request.stream:
            work = call.stream(_kind(self.kind), send)
        else:
            work = call.whole(_kind(self.kind), send)
        await until_disconnect(receive, work)


def _kind(kind: str) -> Kind:
    return "chat" if kind == "chat" else "generate"


class _Call:
    def __init__(
        self,
        gateway: Gateway,
        route: Route,
        request: OllamaRequest,
        auth: dict[str, str],
        timing: Timing,
    ) -> None:
        self.gateway = gateway
        self.route = route
        self.request = request
        self.auth = auth
        self.timing = timing

    def _open(self) -> AbstractAsyncContextManager[Upstream]:
        r = self.request
        return open_payload(self.gateway.proxy, self.route, r.path, r.payload, self.auth)

    async def whole(self, kind: Kind, send: Send) -> None:
        answer = OllamaAnswer(kind, self.request.model, False, self.timing)
        async with self._open() as upstream:
            await self._opened(upstream)
            async for chunk in worker_chunks(upstream):
                answer.feed(chunk)
            (last,) = answer.finish()
        await self._keep_alive(upstream.worker)
        await send_json(send, 200, last, model_header(upstream))

    async def stream(self, kind: Kind, send: Send) -> None:
        # No keepalive lines while a model loads: NDJSON has no comments, and Ollama's
        # clients wait for the first line without a read timeout.
        current_request.get().stream = True
        answer = OllamaAnswer(kind, self.request.model, True, self.timing)
        started = False
        try:
            async with self._open() as upstream:
                await self._opened(upstream)
                await start_response(send, 200, [*NDJSON_HEAD, *model_header(upstream)])
                started = True
                async for chunk in worker_chunks(upstream):
                    await _send_lines(send, answer.feed(chunk))
                await _send_lines(send, answer.finish())
            await self._keep_alive(upstream.worker)
        except ApiError as exc:
            if not started:
                raise
            await _send_lines(send, [{"error": exc.message}])
        await send_body(send, b"")

    async def embed(self, kind: str, send: Send) -> None:
        async with self._open() as upstream:
            await self._opened(upstream)
            answer = await json_answer(upstream)
        self.timing.finish()
        await self._keep_alive(upstream.worker)
        try:
            body = embed_answer(
                kind, self.request.model, answer, self.request.dimensions, self.timing
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise ApiError(
                502, f"worker {upstream.worker.id} sent a malformed answer: {exc}"
            ) from None
        await send_json(send, 200, body, model_header(upstream))

    async def load_only(self, kind: str, send: Send) -> None:
        """Nothing to generate: load the model, or unload it when keep_alive is 0."""
        fleet = self.gateway.fleet
        worker = fleet.workers[order_chain(fleet, self.route)[0]]
        reason: Literal["load", "unload"]
        if self.request.keep_alive == 0 and not worker.model.pinned:
            if worker.state is not State.UNLOADED:
                await fleet.unload(worker.id, reason="keep_alive 0 (Ollama API)")
            reason = "unload"
        else:
            await fleet.ensure_ready(worker.id)
            await self._keep_alive(worker)
            reason = "load"
        await send_json(send, 200, load_answer(kind, self.request.model, reason))

    async def _opened(self, upstream: Upstream) -> None:
        self.timing.open(upstream.worker)
        if upstream.response.status_code != 200:
            raise await worker_refusal(upstream)

    async def _keep_alive(self, worker: WorkerHandle | PeerModel) -> None:
        """Ollama's keep_alive for the model that answered: 0 unloads it now (after this
        request, which is done); a duration is its idle time until it unloads. A pinned
        model is the operator's to unload, not a client's; a peer's is the peer's."""
        keep_alive = self.request.keep_alive
        if not isinstance(worker, WorkerHandle) or worker.model.pinned:
            return
        if keep_alive == 0:
            await self.gateway.fleet.unload(worker.id, reason="keep_alive 0 (Ollama API)")
        elif keep_alive is not None:
            worker.keep_alive_s = 0.0 if math.isinf(keep_alive) else keep_alive


async def _send_lines(send: Send, objects: list[Json]) -> None:
    for item in objects:
        line = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        await send_body(send, line, more=True)


# -- the plain routes ---------------------------------------------------------------------


def routes(gateway: Gateway) -> list[StarletteRoute]:
    def keyed(request: Request) -> None:
        require_api_key(request.scope, gateway.config.file.security.api_keys)

    async def version(request: Request) -> Response:
        return JSONResponse({"version": OLLAMA_VERSION})

    async def tags(request: Request) -> Response:
        keyed(request)
        return JSONResponse(models.tags(gateway))

    async def ps(request: Request) -> Response:
        keyed(request)
        return JSONResponse(models.running(gateway))

    async def show(request: Request) -> Response:
        keyed(request)
        body = await _body(request, gateway)
        name = body.get("model") if body.get("model") is not None else body.get("name")
        return JSONResponse(models.show(gateway, models.resolve_model(gateway.router, name)))

    async def pull(request: Request) -> Response:
        # A download changes the machine: the admin key once one is set, as on
        # /admin/models/pull; without one, the API keys as on every /api route.
        admin_key = gateway.config.file.security.admin_key
        if admin_key:
            require_admin_key(request.scope, admin_key)
        else:
            keyed(request)
        body = await _body(request, gateway)
        name = body.get("model") if body.get("model") is not None else body.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "model: field required", param="model")
        spec = await ollama_pull.resolve(name)
        inside(gateway.config.models_dir, spec.target)
        lines = ollama_pull.progress_lines(gateway.pulls.follow(spec, gateway.config.models_dir))
        if body.get("stream") is False:
            return _last_line(await _collect(lines))
        return StreamingResponse(_ndjson(lines), media_type="application/x-ndjson")

    return [
        StarletteRoute("/api/version", version),
        StarletteRoute("/api/tags", tags),
        StarletteRoute("/api/ps", ps),
        StarletteRoute("/api/show", show, methods=["POST"]),
        StarletteRoute("/api/pull", pull, methods=["POST"]),
    ]


async def _collect(lines: AsyncIterator[Json]) -> Json:
    last: Json = {}
    async for line in lines:
        last = line
    return last


def _last_line(line: Json) -> Response:
    """A pull asked for with `"stream": false`: its outcome alone, as Ollama answers."""
    if "error" in line:
        return ollama_error_response(ApiError(502, str(line["error"])))
    return JSONResponse(line)


async def _ndjson(lines: AsyncIterator[Json]) -> AsyncIterator[bytes]:
    async for line in lines:
        yield json.dumps(line).encode() + b"\n"


async def _body(request: Request, gateway: Gateway) -> Json:
    limit = gateway.config.file.gateway.max_body_bytes
    return parse_json_object(await read_body(request.scope, request.receive, limit))
