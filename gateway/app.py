"""The gateway's ASGI application: a direct dispatch for the model endpoints (the hot
path), Starlette for everything else, and one exception handler for the envelope."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.config.loader import Config
from gateway.envelopes import error_response_for
from gateway.responses import ResponseStore
from gateway.routes import admin as admin_routes
from gateway.routes import config_reload
from gateway.routes import dashboard as dashboard_routes
from gateway.routes import lmstudio as lmstudio_routes
from gateway.routes import metrics as metrics_routes
from gateway.routes import ollama as ollama_routes
from gateway.routes import operations as operations_routes
from gateway.routes import pulls as pull_routes
from gateway.routes import responses as responses_routes
from gateway.routes.messages import MessagesEndpoint
from gateway.routes.model_route import ModelRoute
from gateway.routes.openai import ModelEndpoint
from gateway.service import Gateway
from workers.contract.browser_guard import BrowserGuard, BrowserPolicy
from workers.contract.errors import ApiError

log = logging.getLogger("lmx.gateway")


class GatewayApp:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.store = store = ResponseStore.for_config(gateway.config)
        self.fast: dict[str, ModelRoute] = {
            "/v1/chat/completions": ModelEndpoint(gateway, "/v1/chat/completions"),
            "/v1/completions": ModelEndpoint(gateway, "/v1/completions"),
            "/v1/embeddings": ModelEndpoint(gateway, "/v1/embeddings", streams=False),
            "/v1/messages": MessagesEndpoint(gateway),
            "/v1/messages/count_tokens": MessagesEndpoint(gateway, count_only=True),
            "/v1/responses": responses_routes.ResponsesEndpoint(gateway, store),
            **ollama_routes.endpoints(gateway),
            **lmstudio_routes.endpoints(gateway),
        }
        self.starlette = Starlette(
            routes=[
                *admin_routes.routes(gateway),
                *config_reload.routes(gateway),
                *pull_routes.routes(gateway),
                *operations_routes.routes(gateway),
                *metrics_routes.routes(gateway),
                *responses_routes.routes(gateway, store),
                *ollama_routes.routes(gateway),
                *lmstudio_routes.routes(gateway),
                *dashboard_routes.routes(),
            ],
            lifespan=self._lifespan,
            exception_handlers={ApiError: _api_error, Exception: _unexpected},
        )
        self.starlette.add_exception_handler(404, _not_found)
        self.starlette.add_exception_handler(405, _method_not_allowed)
        self._guarded = BrowserGuard(self._dispatch, _browser_policy(gateway.config), _refusal)
        gateway.on_config.append(self._use_config)

    def _use_config(self, config: Config) -> None:
        self._guarded.policy = _browser_policy(config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._guarded(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.fast.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.starlette(scope, receive, send)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.gateway.startup()
        try:
            yield
        finally:
            await self.gateway.shutdown()
            self.store.close()


def _browser_policy(config: Config) -> BrowserPolicy:
    security, host = config.file.security, config.file.gateway.host
    return BrowserPolicy.build(host, security.allowed_hosts, security.cors_origins)


def _refusal(scope: Scope, error: ApiError) -> Response:
    """The browser guard's refusals, in the envelope of the API the request was for."""
    return error_response_for(scope["path"], error)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response_for(request.url.path, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s", request.url.path, exc_info=exc)
    error = ApiError(500, "internal error in the gateway; see its log")
    return error_response_for(request.url.path, error)


async def _not_found(request: Request, exc: Exception) -> Response:
    path = request.url.path
    return error_response_for(path, ApiError(404, f"no route {path}", code="not_found"))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    path = request.url.path
    return error_response_for(path, ApiError(405, f"{request.method} is not allowed on {path}"))
