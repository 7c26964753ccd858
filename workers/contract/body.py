"""Reading a request body once, with the size limit enforced while it arrives, and the
JSON object every model route expects in it."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Receive, Scope

from workers.contract.errors import ApiError, ClientGone


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body; 413 as soon as it is known to pass `limit`, before reading it all."""
    if _declared_length(scope) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:
        raise ApiError(400, "request body is nested too deeply", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    return payload


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def _too_large(limit: int) -> ApiError:
    message = f"request body is larger than the limit of {limit} bytes (gateway.max_body_bytes)"
    return ApiError(413, message, code="body_too_large")
