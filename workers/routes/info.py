"""GET /health and GET /v1/models."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from workers.contract.health import ModelState
from workers.worker import Worker


async def health(request: Request) -> Response:
    worker: Worker = request.app.state.worker
    health = worker.health()
    ready = health.status is ModelState.READY
    return JSONResponse(health.to_json(), status_code=200 if ready else 503)


async def models(request: Request) -> Response:
    worker: Worker = request.app.state.worker
    model = {
        "id": worker.settings.model_id,
        "object": "model",
        "created": worker.created,
        "owned_by": "opta-lmx",
    }
    return JSONResponse({"object": "list", "data": [model]})
