"""Why a request stops early: its client left, or its deadline passed.

One `StopSignal` per request is set from the event loop (a disconnect watcher, a
deadline timer, a matched stop sequence) and read from the generation thread between
tokens, which is how generation stops within one token step.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from enum import Enum

from starlette.types import Receive

from workers.contract.errors import ApiError, ClientGone


class StopReason(Enum):
    DISCONNECT = "disconnect"
    TIMEOUT = "timeout"
    FINISHED = "finished"  # the worker itself ended generation (stop sequence, answer done)


class StopSignal:
    def __init__(self) -> None:
        self._flag = threading.Event()
        self._event = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []
        self.reason: StopReason | None = None

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Called (on the event loop) when the signal is first set."""
        self._listeners.append(listener)

    def stop(self, reason: StopReason) -> None:
        """Only the first reason counts. Call from the event loop."""
        if self.reason is None:
            self.reason = reason
            self._flag.set()
            self._event.set()
            for listener in self._listeners:
                listener()

    def is_set(self) -> bool:
        """Safe from any thread: the backend's should_stop."""
        return self._flag.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    def raise_if_stopped(self, timeout_s: float) -> None:
        if self.reason is StopReason.DISCONNECT:
            raise ClientGone()
        if self.reason is StopReason.TIMEOUT:
            raise ApiError(504, f"request timed out after {timeout_s:g}s", code="timeout")


class RequestWatch:
    """Watches one request for disconnect and deadline while it is queued or generating."""

    def __init__(
        self, receive: Receive, timeout_s: float, on_disconnect: Callable[[], None]
    ) -> None:
        self.signal = StopSignal()
        self.timeout_s = timeout_s
        self._receive = receive
        self._on_disconnect = on_disconnect
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._watch_disconnect())
        self._timer = loop.call_later(self.timeout_s, self.signal.stop, StopReason.TIMEOUT)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._timer is not None:
            self._timer.cancel()

    def check(self) -> None:
        self.signal.raise_if_stopped(self.timeout_s)

    async def _watch_disconnect(self) -> None:
        # Called only after the body was read, so the next message can only be a disconnect.
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                break
        if self.signal.reason is None:
            self._on_disconnect()
        self.signal.stop(StopReason.DISCONNECT)
