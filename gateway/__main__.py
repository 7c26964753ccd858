"""`python -m gateway`: load the config, then serve the gateway with uvicorn."""

from __future__ import annotations

import logging
import sys
from types import FrameType

import uvicorn

from gateway.app import GatewayApp
from gateway.config.loader import ConfigError, load_config
from gateway.operations import Operations
from gateway.service import Gateway
from workers.contract.parent_watch import exit_with_parent
from workers.contract.time_slice import ask_for_short_slices


def main() -> int:
    exit_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # httpx logs every request at INFO: a line per worker per health tick would bury the rest.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # a line per batch of changes
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    gateway = Gateway(config)
    g = config.file.gateway
    settings = uvicorn.Config(
        GatewayApp(gateway), host=g.host, port=g.port, log_level="warning", access_log=False
    )
    server = GatewayServer(settings, gateway.operations)
    ask_for_short_slices()  # relaying a token should not wait for a worker's time slice
    server.run()
    return 0 if server.started else 3  # 3: what uvicorn.run exits with when it cannot start


class GatewayServer(uvicorn.Server):
    """uvicorn, telling the gateway when a shutdown begins: uvicorn waits for every open
    response to end, and a log follow would never end by itself."""

    def __init__(self, settings: uvicorn.Config, operations: Operations) -> None:
        super().__init__(settings)
        self.operations = operations

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.operations.shutting_down = True
        super().handle_exit(sig, frame)


if __name__ == "__main__":
    sys.exit(main())
