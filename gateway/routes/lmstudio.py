"""LM Studio's REST API (v0) on the gateway's port: /api/v0/chat/completions,
/api/v0/completions and /api/v0/embeddings on the fast dispatch, /api/v0/models and
/api/v0/models/{id} as plain routes.

Chat and completions are the OpenAI requests, proxied like any other, with LM Studio's
additions in the answer: `stats` (timed by the gateway on the worker's stream),
`model_info` and `runtime`. A streamed answer carries them on its last chunk with a
`finish_reason`. Embeddings are the OpenAI route's, unchanged. Errors are OpenAI's.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive, Scope, Send

from gateway.asgi import send_body, send_json, until_disconnect
from gateway.lmstudio.models import model_entry, model_info, runtime
from gateway.lmstudio.stats import stats
from gateway.operations.requests import current_request
from gateway.proxy.fold import ChunkFold
from gateway.proxy.forward import Upstream, worker_refusal
from gateway.proxy.reading import model_header, open_payload, worker_chunks
from gateway.proxy.relay import StreamHead, stream_head
from gateway.proxy.timing import Timing
from gateway.routes.model_route import ModelRoute
from gateway.routes.openai import ModelEndpoint
from gateway.routing import Route
from gateway.service import Gateway
from workers.contract.errors import ApiError
from workers.contract.keys import forwarded_auth, require_api_key
from workers.contract.sse import DONE, sse_error, sse_event

Json = dict[str, Any]


def endpoints(gateway: Gateway) -> dict[str, ModelRoute]:
    return {
        "/api/v0/chat/completions": LMStudioEndpoint(gateway, "/v1/chat/completions"),
        "/api/v0/completions": LMStudioEndpoint(gateway, "/v1/completions"),
        "/api/v0/embeddings": ModelEndpoint(gateway, "/v1/embeddings", streams=False),
    }


class LMStudioEndpoint(ModelRoute):
    def __init__(self, gateway: Gateway, path: str) -> None:
        super().__init__(gateway)
        self.path = path

    async def handle(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        payload, route, stream = self.openai_request(body, scope)
        call = _Call(self.gateway, route, self.path, payload, forwarded_auth(scope))
        await until_disconnect(receive, call.stream(send) if stream else call.whole(send))


class _Call:
    def __init__(
        self, gateway: Gateway, route: Route, path: str, payload: Json, auth: dict[str, str]
    ) -> None:
        self.gateway = gateway
        self.route = route
        self.path = path
        self.auth = auth
        options = payload.get("stream_options")
        self.wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        # Always a stream from the worker, to see the first token come; usage to count them.
        self.payload = {**payload, "stream": True, "stream_options": {"include_usage": True}}
        if payload.get("max_tokens") == -1:  # LM Studio's "no limit"
            del self.payload["max_tokens"]
        self.timing = Timing()
        self.fold = ChunkFold()

    def _open(self) -> AbstractAsyncContextManager[Upstream]:
        return open_payload(self.gateway.proxy, self.route, self.path, self.payload, self.auth)

    async def whole(self, send: Send) -> None:
        async with self._open() as upstream:
            await self._opened(upstream)
            async for chunk in worker_chunks(upstream):
                self._feed(chunk)
        self.timing.finish()
        answer = {**self.fold.whole(), **self._extras(upstream)}
        await send_json(send, 200, answer, model_header(upstream))

    async def stream(self, send: Send) -> None:
        current_request.get().stream = True
        head = StreamHead(send, self.gateway.config.file.gateway.loading_keepalive_s)
        head.keep_alive_while_loading(self.gateway.fleet, self.route)
        try:
            async with self._open() as upstream:
                await head.stop_keepalive()
                await self._opened(upstream)
                await head.send_once(200, stream_head(upstream.worker.id))
                await self._relay(upstream, send)
        except ApiError as exc:
            await head.stop_keepalive()
            if not head.sent:
                raise
            await send_body(send, sse_error(exc), more=True)
        await send_body(send, b"")

    async def _relay(self, upstream: Upstream, send: Send) -> None:
        """Chunks as they come, but the last ones (finish, usage) held until the stream
        ends, so the finish chunk can carry the stats of the whole answer."""
        tail: list[Json] = []
        async for chunk in worker_chunks(upstream):
            self._feed(chunk)
            if tail or any(c.get("finish_reason") for c in chunk.get("choices") or []):
                tail.append(chunk)
            else:
                await send_body(send, sse_event(chunk), more=True)
        self.timing.finish()
        extras = self._extras(upstream)
        for chunk in tail:
            if not chunk.get("choices"):  # the usage chunk, which the worker was asked for
                if self.wants_usage:
                    await send_body(send, sse_event(chunk), more=True)
                continue
            await send_body(send, sse_event({**chunk, **extras}), more=True)
            extras = {}
        await send_body(send, DONE, more=True)

    async def _opened(self, upstream: Upstream) -> None:
        self.timing.open(upstream.worker)
        if upstream.response.status_code != 200:
            raise await worker_refusal(upstream)

    def _feed(self, chunk: Json) -> None:
        if self.fold.feed(chunk):
            self.timing.token()

    def _extras(self, upstream: Upstream) -> Json:
        model_id = upstream.worker.id
        return {
            "stats": stats(self.timing, self.fold),
            "model_info": model_info(self.gateway, model_id),
            "runtime": runtime(self.gateway, model_id),
        }


def routes(gateway: Gateway) -> list[StarletteRoute]:
    async def list_models(request: Request) -> Response:
        require_api_key(request.scope, gateway.config.file.security.api_keys)
        entries = [model_entry(gateway, m.id) for m in gateway.config.models]
        return JSONResponse({"object": "list", "data": entries})

    async def one_model(request: Request) -> Response:
        require_api_key(request.scope, gateway.config.file.security.api_keys)
        name = request.path_params["model_id"]
        model_id = name if name in gateway.fleet.workers else gateway.router.resolve(name).chain[0]
        return JSONResponse(model_entry(gateway, model_id))

    return [
        StarletteRoute("/api/v0/models", list_models),
        StarletteRoute("/api/v0/models/{model_id:path}", one_model),
    ]
