"""The worker's ASGI app: one model behind the OpenAI API."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from workers.contract.browser_guard import BrowserGuard, BrowserPolicy
from workers.contract.errors import ApiError, error_response
from workers.contract.settings import WorkerSettings
from workers.routes.boundary import Boundary
from workers.routes.chat import chat_completions
from workers.routes.completions import completions
from workers.routes.embeddings import embeddings
from workers.routes.info import health, models
from workers.routes.tokenize import tokenize
from workers.worker import Worker


def create_app(worker: Worker) -> Starlette:
    routes = [
        Route("/health", health),
        Route("/v1/models", models),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/tokenize", tokenize, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(BrowserGuard, policy=_policy(worker.settings), render=_refusal),
            Middleware(Boundary, api_keys=worker.settings.api_keys),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.worker = worker
    return app


def _policy(settings: WorkerSettings) -> BrowserPolicy:
    return BrowserPolicy.build(settings.host, settings.allowed_hosts, settings.cors_origins)


def _refusal(scope: Scope, error: ApiError) -> Response:
    return error_response(error, origin="worker")


async def _http_error(request: Request, exc: Exception) -> Response:
    # Router refusals (404 unknown path, 405 wrong method) in the same envelope as the rest.
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    kind = "invalid_request_error" if status == 405 else None
    error = ApiError(status, f"{detail}: {request.method} {request.url.path}", type=kind)
    return error_response(error, origin="worker")
