"""Errors as values, rendered once into the OpenAI envelope.

Both the gateway and the workers raise `ApiError`; `error_response` is the only place
that turns one into HTTP (`workers.contract.sse.sse_error` once a stream has begun).
The `x-lmx-error-origin` header tells a client (and the gateway's proxy) whether the
gateway itself refused a request or a worker did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.responses import Response

from workers.contract.headers import ERROR_ORIGIN

Origin = Literal["gateway", "worker"]

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    499: "cancelled",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


@dataclass
class ApiError(Exception):
    status: int
    message: str
    code: str | None = None
    param: str | None = None
    type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    @property
    def error_type(self) -> str:
        return self.type or _TYPE_BY_STATUS.get(self.status, "server_error")

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, code=code or "invalid_request", param=param)


def error_response(
    error: ApiError, origin: Origin = "gateway", body: dict[str, Any] | None = None
) -> Response:
    """The one renderer; `body` replaces the OpenAI envelope (Anthropic's routes use theirs)."""
    headers = {ERROR_ORIGIN: origin, **error.headers}
    return Response(
        json.dumps(error.body() if body is None else body),
        status_code=error.status,
        media_type="application/json",
        headers=headers,
    )


class ClientGone(Exception):
    """The client disconnected; there is nobody left to answer."""
