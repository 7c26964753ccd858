"""POST /admin/config/reload: re-read config/lmx.yaml now, as SIGHUP and the file watch
do (gateway.live). A config with a mistake is refused whole: 400 naming the key, and
the running config stays."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config.loader import ConfigError
from gateway.service import Gateway
from workers.contract.errors import ApiError
from workers.contract.keys import require_admin_key


def routes(gateway: Gateway) -> list[Route]:
    async def reload(request: Request) -> Response:
        require_admin_key(request.scope, gateway.config.file.security.admin_key)
        try:
            report = await gateway.live.reload("POST /admin/config/reload")
        except ConfigError as exc:
            message = f"config refused, the running one stays: {exc}"
            raise ApiError(400, message, code="invalid_config", param=exc.key) from None
        return JSONResponse({"status": "reloaded", **report.as_json()})

    return [Route("/admin/config/reload", reload, methods=["POST"])]
