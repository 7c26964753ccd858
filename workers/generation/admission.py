"""At most `max_concurrent` requests generate at once; at most `max_queue` wait, in order.

Past both bounds a request is refused at once with 429 and Retry-After, so load never
piles up without limit. A slot is given back only when its generation thread has ended,
because the backend is still busy until then even if the client already left.
"""

from __future__ import annotations

import asyncio
from collections import deque

from workers.contract.errors import ApiError, ClientGone
from workers.generation.cancellation import RequestWatch, StopSignal

RETRY_AFTER_S = 1


class Slot:
    def __init__(self, admission: Admission) -> None:
        self._admission: Admission | None = admission

    def release(self) -> None:
        if self._admission is not None:
            self._admission.release()
            self._admission = None


class Admission:
    def __init__(self, max_concurrent: int, max_queue: int) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def acquire(self, signal: StopSignal) -> Slot | None:
        """A slot, or None when the signal fired while the request waited in the queue."""
        if self.in_flight < self.max_concurrent and not self._waiters:
            self.in_flight += 1
            return Slot(self)
        if len(self._waiters) >= self.max_queue:
            raise self._over_capacity()
        return await self._wait_in_queue(signal)

    async def enter(self, watch: RequestWatch) -> Slot:
        """A slot for a watched request: 429 when full, 504 or ClientGone if it stopped
        while it waited in the queue."""
        slot = await self.acquire(watch.signal)
        if slot is None:
            watch.check()
            raise ClientGone()
        return slot

    def release(self) -> None:
        # Hand the slot straight to the next waiter so in_flight never dips in between.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1

    async def _wait_in_queue(self, signal: StopSignal) -> Slot | None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        stopped = asyncio.ensure_future(signal.wait())
        granted = False
        try:
            await asyncio.wait({waiter, stopped}, return_when=asyncio.FIRST_COMPLETED)
            granted = waiter.done() and not waiter.cancelled()
        finally:
            stopped.cancel()
            if not granted:
                self._abandon(waiter)
        slot = Slot(self) if granted else None
        if slot is not None and signal.is_set():
            slot.release()  # granted in the same instant the request was abandoned
            return None
        return slot

    def _abandon(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled():
            self.release()  # handed a slot while being cancelled: pass it on
            return
        waiter.cancel()
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def _over_capacity(self) -> ApiError:
        return ApiError(
            429,
            f"worker is at capacity: {self.in_flight} requests generating and "
            f"{len(self._waiters)} queued; retry shortly",
            code="over_capacity",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
