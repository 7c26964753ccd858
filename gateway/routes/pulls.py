"""Getting models and getting rid of them: `POST /admin/models/pull` streams a pull's
progress as server-sent events, `DELETE /admin/models/{id}` removes a model's files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.events import log_event
from gateway.fleet.states import State
from gateway.library.pull_spec import PullSpec, inside
from gateway.library.removal import relative_inside, remove_model_files
from gateway.service import Gateway
from workers.contract.body import parse_json_object, read_body
from workers.contract.errors import ApiError
from workers.contract.keys import require_admin_key
from workers.contract.sse import SSEResponse, sse_event


def routes(gateway: Gateway) -> list[Route]:
    async def pull(request: Request) -> Response:
        require_admin_key(request.scope, gateway.config.file.security.admin_key)
        limit = gateway.config.file.gateway.max_body_bytes
        spec = PullSpec.parse(
            parse_json_object(await read_body(request.scope, request.receive, limit))
        )
        inside(gateway.config.models_dir, spec.target)  # a symlinked folder could lead out
        events = gateway.pulls.follow(spec, gateway.config.models_dir)
        return SSEResponse(_framed(events))

    async def delete(request: Request) -> Response:
        require_admin_key(request.scope, gateway.config.file.security.admin_key)
        model_id = request.path_params["id"]
        deleted = await delete_model(gateway, model_id)
        return JSONResponse({"id": model_id, "deleted": deleted})

    return [
        Route("/admin/models/pull", pull, methods=["POST"]),
        Route("/admin/models/{id}", delete, methods=["DELETE"]),
    ]


async def delete_model(gateway: Gateway, model_id: str) -> list[str]:
    """Unload every worker serving the model's files, then delete them."""
    worker = gateway.fleet.workers.get(model_id)
    if worker is None:
        known = ", ".join(sorted(gateway.fleet.workers)) or "none"
        raise ApiError(404, f"no model {model_id!r} (models: {known})", code="model_not_found")
    config = gateway.config
    path = config.model_path(worker.model)
    if gateway.pulls.writing(relative_inside(path, config.models_dir)):
        raise ApiError(409, f"{model_id}'s files are being pulled", code="pull_in_progress")
    for w in gateway.fleet.workers.values():
        if config.model_path(w.model).is_relative_to(path) and w.state is not State.UNLOADED:
            await gateway.fleet.unload(w.id, reason=f"deleting {model_id}")
    deleted = await asyncio.to_thread(remove_model_files, path, config.models_dir)
    log_event("model_deleted", model=model_id, deleted=deleted)
    return deleted


async def _framed(events: AsyncGenerator[dict[str, Any], None]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield sse_event(event)
    finally:
        await events.aclose()
