"""Listing and lifecycle routes: /healthz, /v1/models and the /admin API."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.fleet.states import State
from gateway.memory.admission import memory_limit
from gateway.memory.probe import GB
from gateway.service import Gateway
from workers.contract.body import parse_json_object, read_body
from workers.contract.errors import bad_request
from workers.contract.keys import require_admin_key, require_api_key

CREATED = int(time.time())


def routes(gateway: Gateway) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def list_models(request: Request) -> Response:
        require_api_key(request.scope, gateway.config.file.security.api_keys)
        return JSONResponse({"object": "list", "data": model_entries(gateway)})

    async def status(request: Request) -> Response:
        require_admin_key(request.scope, gateway.config.file.security.admin_key)
        return JSONResponse(
            {
                "models": _status_entries(gateway),
                "memory": memory_view(gateway),
                "peers": gateway.peers.status(),
                "scheduler": gateway.fleet.scheduler.view(),
            }
        )

    async def memory(request: Request) -> Response:
        require_admin_key(request.scope, gateway.config.file.security.admin_key)
        return JSONResponse(memory_view(gateway))

    async def load(request: Request) -> Response:
        require_admin_key(request.scope, gateway.config.file.security.admin_key)
        payload = await _payload(request, gateway)
        model_id = _resolve(payload, gateway)
        worker = gateway.fleet.workers[model_id]
        ttl = _ttl_field(payload)
        if ttl is not None:
            # Like Ollama's keep_alive: this model's idle TTL from now on (until a restart).
            worker.model = dataclasses.replace(worker.model, ttl_s=ttl)
        was_ready = worker.state is State.READY
        await gateway.fleet.ensure_ready(model_id)
        return JSONResponse({**worker.status(), "already_loaded": was_ready})

    async def unload(request: Request) -> Response:
        require_admin_key(request.scope, gateway.config.file.security.admin_key)
        model_id = await _model_field(request, gateway)
        worker = gateway.fleet.workers[model_id]  # a removed model is gone once unloaded
        await gateway.fleet.unload(model_id, reason="admin request")
        return JSONResponse(worker.status())

    return [
        Route("/healthz", healthz),
        Route("/v1/models", list_models),
        Route("/admin/status", status),
        Route("/admin/memory", memory),
        Route("/admin/models/load", load, methods=["POST"]),
        Route("/admin/models/unload", unload, methods=["POST"]),
    ]


async def _model_field(request: Request, gateway: Gateway) -> str:
    return _resolve(await _payload(request, gateway), gateway)


async def _payload(request: Request, gateway: Gateway) -> dict[str, Any]:
    limit = gateway.config.file.gateway.max_body_bytes
    return parse_json_object(await read_body(request.scope, request.receive, limit))


def _ttl_field(payload: dict[str, Any]) -> float | None:
    ttl = payload.get("ttl_s")
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl < 0:
        raise bad_request("`ttl_s` must be a number of idle seconds, 0 (never) or more", "ttl_s")
    return float(ttl)


def _status_entries(gateway: Gateway) -> list[dict[str, Any]]:
    """Each model's status with the idle TTL that applies to it now (0: never unloaded)."""
    workers = gateway.fleet.workers
    return [
        {**e, "ttl_s": gateway.watch.idle_ttl(workers[e["id"]])} for e in gateway.fleet.status()
    ]


def _resolve(payload: dict[str, Any], gateway: Gateway) -> str:
    name = payload.get("model")
    if isinstance(name, str) and name in gateway.fleet.workers:
        return name
    route = gateway.router.resolve(name)
    return route.chain[0]


def model_entries(gateway: Gateway) -> list[dict[str, Any]]:
    entries = []
    for w in gateway.fleet.workers.values():
        entry = {
            "id": w.id,
            "object": "model",
            "created": CREATED,
            "owned_by": "opta-lmx",
            "status": w.state.value,
            "backend": w.model.backend,
        }
        if w.state in (State.READY, State.DRAINING):
            entry["port"] = w.model.port
        entries.append(entry)
    for name, chain in gateway.config.file.routing.aliases.items():
        entries.append(
            {
                "id": name,
                "object": "model",
                "created": CREATED,
                "owned_by": "opta-lmx",
                "status": "alias",
                "targets": list(chain),
            }
        )
    return [*entries, *gateway.peers.model_entries(set(gateway.router.names()))]


def memory_view(gateway: Gateway) -> dict[str, Any]:
    fleet = gateway.fleet
    system = fleet.probe.system()
    percent = gateway.config.file.memory.max_memory_percent
    return {
        "total_bytes": system.total,
        "used_bytes": system.used,
        "available_bytes": system.available,
        "threshold_percent": percent,
        "threshold_bytes": memory_limit(system.total, percent),
        "total_gb": round(system.total / GB, 2),
        "workers": [
            {
                "id": w.id,
                "status": w.state.value,
                "rss_bytes": w.rss or None,
                "estimate_bytes": fleet.estimate(w),
                "max_rss_gb": w.model.max_rss_gb,
            }
            for w in fleet.workers.values()
        ],
    }
