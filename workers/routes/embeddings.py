"""POST /v1/embeddings: under the same admission, deadline and counters as a generation."""

from __future__ import annotations

import base64
import struct
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from workers.backends.base import BackendError
from workers.contract.body import read_body
from workers.contract.errors import ApiError, bad_request
from workers.generation.bridge import call_on_thread
from workers.requests.parse import parse_embedding_request
from workers.worker import Worker


async def embeddings(request: Request) -> Response:
    worker: Worker = request.app.state.worker
    body = await read_body(request.scope, request.receive, worker.settings.max_body_bytes)
    embedding = parse_embedding_request(body)
    if not worker.settings.embeddings:
        raise bad_request(
            f"model {worker.settings.model_id} is not configured for embeddings", "model"
        )
    backend = worker.ready_model().backend
    texts = list(embedding.inputs)

    def embed_and_count() -> tuple[list[list[float]], int]:
        return backend.embed(texts), sum(backend.count_tokens(text) for text in texts)

    watch = worker.watch(request.receive)
    try:
        slot = await worker.admission.enter(watch)
        vectors, tokens = await call_on_thread(
            worker.generation_threads, slot, watch, embed_and_count
        )
    except BackendError as error:
        raise ApiError(500, f"embedding failed: {error}", code="embedding_failed") from None
    finally:
        watch.close()
    return JSONResponse(
        {
            "object": "list",
            "data": [
                _item(i, vector, embedding.encoding_format) for i, vector in enumerate(vectors)
            ],
            "model": worker.settings.model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _item(index: int, vector: list[float], encoding: str) -> dict[str, Any]:
    value: list[float] | str = vector
    if encoding == "base64":
        value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return {"object": "embedding", "index": index, "embedding": value}
