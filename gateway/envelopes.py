"""Which API's error envelope a path speaks, for errors raised outside its own route
(the browser guard, unknown paths, plain Starlette routes)."""

from __future__ import annotations

from starlette.responses import Response

from gateway.anthropic import anthropic_error_response
from gateway.ollama.errors import ollama_error_response
from workers.contract.errors import ApiError, error_response


def error_response_for(path: str, error: ApiError) -> Response:
    if path.startswith("/v1/messages"):
        return anthropic_error_response(error)
    if path.startswith("/api/") and not path.startswith("/api/v0/"):  # v0: LM Studio's
        return ollama_error_response(error)
    return error_response(error)
