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

from gateway.anthropic import anthropic_error_response
from gateway.config.loader import Config
from gateway.routes import admin as admin_routes
from gateway.routes import config_reload
from gateway.routes.messages import MessagesEndpoint
from gateway.routes.openai import ModelEndpoint
from gateway.service import Gateway
from workers.contract.browser_guard import BrowserGuard, BrowserPolicy
from workers.contract.errors import ApiError, error_response

log = logging.getLogger("lmx.gateway")


class GatewayApp:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.fast: dict[str, ModelEndpoint | MessagesEndpoint] = {
            "/v1/chat/completions": ModelEndpoint(gateway, "/v1/chat/completions"),
            "/v1/completions": ModelEndpoint(gateway, "/v1/completions"),
            "/v1/embeddings": ModelEndpoint(gateway, "/v1/embeddings", streams=False),
            "/v1/messages": MessagesEndpoint(gateway),
            "/v1/messages/count_tokens": MessagesEndpoint(gateway, count_only=True),
        }
        self.starlette = Starlette(
            routes=[*admin_routes.routes(gateway), *config_reload.routes(gateway)],
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


def _browser_policy(config: Config) -> BrowserPolicy:
    security, host = config.file.security, config.file.gateway.host
    return BrowserPolicy.build(host, security.allowed_hosts, security.cors_origins)


def _refusal(scope: Scope, error: ApiError) -> Response:
    """The browser guard's refusals, in the envelope of the API the request was for."""
    if scope["path"].startswith("/v1/messages"):
        return anthropic_error_response(error)
    return error_response(error)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s", request.url.path, exc_info=exc)
    return error_response(ApiError(500, "internal error in the gateway; see its log"))


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(ApiError(404, f"no route {request.url.path}", code="not_found"))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    path = request.url.path
    return error_response(ApiError(405, f"{request.method} is not allowed on {path}"))
