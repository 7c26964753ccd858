"""`ApiError` rendered as Ollama sends errors: `{"error": "message"}`, the status kept.

Ollama's clients (the `ollama` Python package among them) raise their ResponseError
with that message and the status code; a stream that fails once begun ends with one
such object as its last line.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from workers.contract.errors import ApiError, error_response


def ollama_error_body(error: ApiError) -> dict[str, Any]:
    return {"error": error.message}


def ollama_error_response(error: ApiError) -> Response:
    return error_response(error, body=ollama_error_body(error))
