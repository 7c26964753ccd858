"""GET /metrics (Prometheus text format) and GET /admin/requests/recent (the request
history). Both need the admin key when one is configured; the history never shows a
prompt or an answer unless logging.capture_bodies says so."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.metrics.fleet_gauges import FleetCollector
from gateway.routes.admin import memory_view
from gateway.service import Gateway
from workers.contract.errors import bad_request
from workers.contract.keys import require_admin_key

DEFAULT_LIMIT = 100


def routes(gateway: Gateway) -> list[Route]:
    ops = gateway.operations
    # auto_describe: a name used twice is refused here, at start-up, not in a scrape.
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ops.metrics)
    registry.register(FleetCollector(gateway, memory_view))

    async def metrics(request: Request) -> Response:
        require_admin_key(request.scope, gateway.config.file.security.admin_key)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def recent(request: Request) -> Response:
        require_admin_key(request.scope, gateway.config.file.security.admin_key)
        limit = _limit(request.query_params.get("limit"), ops.history.size)
        return JSONResponse({"object": "list", "data": ops.history.recent(limit)})

    return [
        Route("/metrics", metrics),
        Route("/admin/requests/recent", recent),
    ]


def _limit(text: str | None, size: int) -> int:
    if text is None:
        return min(DEFAULT_LIMIT, size)
    if not text.isdigit() or not 1 <= int(text) <= size:
        raise bad_request(f"`limit` must be a whole number from 1 to {size}", "limit")
    return int(text)
