"""Items from one producer thread to the event loop, in order, with as few wake-ups as
the loop allows.

The producer wakes the loop only when the loop is not already due to look; whatever
arrives meanwhile is taken with it in one go. Each item is still taken as soon as the
loop can run: batching only gathers what is already waiting. An asyncio.Queue fed with
call_soon_threadsafe costs a loop wake-up and a queue round trip per item instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._items: list[T] = []
        self._wake_due = False  # a wake-up is scheduled or the consumer is about to look
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: T) -> None:
        """From any thread, the loop's own included."""
        with self._lock:
            self._items.append(item)
            if self._wake_due:
                return
            self._wake_due = True
        # RuntimeError: the loop closed (shutdown), and nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._wake)

    async def take(self) -> list[T]:
        """Everything that arrived, oldest first; waits while there is nothing."""
        while True:
            with self._lock:
                items, self._items = self._items, []
                # What arrives from now on must wake us again.
                self._wake_due = False
            if items:
                return items
            # A put from here on schedules _wake, which can only run once this awaits.
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
