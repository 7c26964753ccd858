"""`python -m gateway`: load the config, then serve the gateway with uvicorn."""

from __future__ import annotations

import logging
import sys

import uvicorn

from gateway.app import GatewayApp
from gateway.config.loader import ConfigError, load_config
from gateway.service import Gateway
from workers.contract.parent_watch import exit_with_parent
from workers.contract.time_slice import ask_for_short_slices


def main() -> int:
    exit_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # httpx logs every request at INFO: a line per worker per health tick would bury the rest.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    app = GatewayApp(Gateway(config))
    g = config.file.gateway
    ask_for_short_slices()  # relaying a token should not wait for a worker's time slice
    uvicorn.run(app, host=g.host, port=g.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
