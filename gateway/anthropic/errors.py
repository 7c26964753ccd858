"""`ApiError` rendered in Anthropic's error envelope for the /v1/messages endpoints.

The status code is kept as raised; only the body's `error.type` is Anthropic's name for
it, which the official SDKs show to users next to the exception class they pick by status.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from workers.contract.errors import ApiError, Origin, error_response

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

ANTHROPIC_ERROR_TYPES = frozenset(_TYPE_BY_STATUS.values())


def anthropic_error_type(status: int) -> str:
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    # Anthropic documents invalid_request_error for any other 4xx.
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def error_envelope(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def anthropic_error_body(error: ApiError) -> dict[str, Any]:
    type_ = error.type if error.type in ANTHROPIC_ERROR_TYPES else None
    return error_envelope(type_ or anthropic_error_type(error.status), error.message)


def anthropic_error_response(error: ApiError, origin: Origin = "gateway") -> Response:
    return error_response(error, origin, body=anthropic_error_body(error))
