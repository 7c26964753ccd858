"""The outermost layer of every request: API keys, the error envelope, one log line.

Anything a handler raises ends here: an ApiError is rendered with the one error
function; anything else becomes a short 500 envelope, its traceback goes to stderr.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workers.answers.delivery import ARRIVED_SCOPE_KEY, TOKENS_SCOPE_KEY
from workers.contract.errors import ApiError, ClientGone, error_response
from workers.contract.keys import require_api_key

log = logging.getLogger("workers.requests")

_OPEN_PATHS = ("/health",)


class Boundary:
    def __init__(self, app: ASGIApp, api_keys: tuple[str, ...] = ()) -> None:
        self.app = app
        self.api_keys = api_keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = scope[ARRIVED_SCOPE_KEY] = time.monotonic()
        status: list[int] = []

        async def send_tracking(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self._guarded(scope, receive, send_tracking, responded=status)
        finally:
            elapsed_ms = (time.monotonic() - started) * 1000
            code = status[0] if status else 0
            tokens = scope.get(TOKENS_SCOPE_KEY)
            suffix = f" {tokens} tokens" if tokens is not None else ""
            log.info("%s %s %d %.0fms%s", scope["method"], scope["path"], code, elapsed_ms, suffix)

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, responded: list[int]
    ) -> None:
        try:
            self._authorize(scope)
            await self.app(scope, receive, send)
        except Exception as exc:  # the catch-all: never a traceback to the client
            error = _as_api_error(exc)
            if not responded:
                await error_response(error, origin="worker")(scope, receive, send)

    def _authorize(self, scope: Scope) -> None:
        if scope["path"] not in _OPEN_PATHS:
            require_api_key(scope, list(self.api_keys))


def _as_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ClientGone | ClientDisconnect):
        return ApiError(499, "client disconnected", code="client_disconnected")
    log.error("unhandled error", exc_info=exc)
    return ApiError(500, f"internal error: {type(exc).__name__}", code="internal_error")
