"""Serving one worker: uvicorn starts at once, the model loads on a background thread.

/health therefore answers `loading` during the load. A failed load is logged as one
line, shown by /health for a moment, and then the process exits non-zero so that
supervisord sees it die.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Callable

import uvicorn

from workers.app import create_app
from workers.backends.registry import create_backend
from workers.contract.settings import WorkerSettings
from workers.contract.time_slice import ask_for_short_slices
from workers.worker import BackendFactory, Worker

log = logging.getLogger("workers")

FAILED_EXIT_DELAY_S = 2.0
GRACEFUL_SHUTDOWN_S = 5


class WorkerServer:
    def __init__(
        self,
        settings: WorkerSettings,
        backend_factory: BackendFactory = create_backend,
        failed_exit_delay_s: float = FAILED_EXIT_DELAY_S,
    ) -> None:
        self._socket = _bind(settings.host, settings.port)
        self.settings = dataclasses.replace(settings, port=self._socket.getsockname()[1])
        self.worker = Worker(self.settings, backend_factory)
        self._failed_exit_delay_s = failed_exit_delay_s
        self._server = _Server(self._config(), on_shutdown=self.worker.close)
        self.exit_code = 0

    @property
    def started(self) -> bool:
        return self._server.started

    def run(self) -> int:
        """Blocking; returns the process exit code."""
        threading.Thread(target=self._load, name="model-loader", daemon=True).start()
        # This thread becomes the event loop's (after the loader started: loading computes).
        ask_for_short_slices()
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._socket.close()
            self.worker.close()  # again, harmless: when the server never got to shut down
        return self.exit_code

    def stop(self) -> None:
        self._server.should_exit = True

    def _load(self) -> None:
        if self.worker.load():
            return
        time.sleep(self._failed_exit_delay_s)
        self.exit_code = 1
        self.stop()

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            create_app(self.worker),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            # uvloop and httptools when installed (much faster), else asyncio and h11.
            loop="auto",
            http="auto",
        )


class _Server(uvicorn.Server):
    """uvicorn re-raises the SIGTERM it caught once it has shut down, which ends the
    process before anything after run() executes; the worker's own shutdown (the prompt
    cache to disk, MLX's scheduler thread) therefore runs inside uvicorn's."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        await asyncio.to_thread(self._on_shutdown)


def _bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # without it every keep-alive request waits ~40 ms for a delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
