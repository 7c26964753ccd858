"""Reading a worker's answer back, for the routes that translate it into another API
(Anthropic's, Ollama's, LM Studio's) rather than relaying its bytes: a whole JSON body,
or the chunks of its SSE stream. A worker that fails or sends something malformed is a
502 here, so each route renders it in its own envelope.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from gateway.operations.requests import current_request
from gateway.proxy.forward import Proxy, Upstream, worker_refusal
from gateway.proxy.upstream import UpstreamError
from gateway.routing import Route
from workers.contract import headers
from workers.contract.errors import ApiError
from workers.contract.sse import sse_payloads

Json = dict[str, Any]


def open_payload(
    proxy: Proxy, route: Route, path: str, payload: Json, auth: dict[str, str]
) -> AbstractAsyncContextManager[Upstream]:
    """The proxy's answer to a request the gateway wrote itself."""
    return proxy.open(route, path, payload, json.dumps(payload).encode(), auth)


async def json_answer(upstream: Upstream) -> Json:
    if upstream.response.status_code != 200:
        raise await worker_refusal(upstream)
    try:
        answer = json.loads(await upstream.response.aread())
    except ValueError as exc:  # an UpstreamError is already an ApiError (502)
        raise ApiError(502, f"worker {upstream.worker.id} sent malformed JSON: {exc}") from None
    if not isinstance(answer, dict):
        raise ApiError(502, f"worker {upstream.worker.id} sent a malformed answer")
    current_request.get().answer = answer  # its usage, for the metrics (operations.outcome)
    return answer


async def worker_chunks(upstream: Upstream) -> AsyncIterator[Json]:
    """Each chunk of a worker's stream until [DONE]; its error event raised as a 502.
    Its trailer (token counts, first output) goes on the request's ticket."""
    ticket = current_request.get()
    try:
        async for chunk in sse_payloads(upstream.response.aiter_lines(), ticket.comment):
            if "error" in chunk:
                raise ApiError(502, str(chunk["error"].get("message", "worker error")))
            yield chunk
    except (UpstreamError, ValueError, AttributeError, TypeError) as exc:
        # UpstreamError: the worker went away; the others: a chunk that is not an object.
        raise ApiError(502, f"worker {upstream.worker.id} failed mid-stream: {exc}") from None


def prompt_tokens(upstream: Upstream) -> int:
    """What the worker says the prompt took (0 from a worker that does not say)."""
    for name, value in upstream.response.raw_headers:
        if name.lower() == headers.PROMPT_TOKENS.encode() and value.isdigit():
            return int(value)
    return 0


def model_header(upstream: Upstream) -> list[tuple[bytes, bytes]]:
    return [(headers.MODEL.encode(), upstream.worker.id.encode())]
