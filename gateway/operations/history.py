"""The last requests the gateway finished, for GET /admin/requests/recent: a ring in
memory (logging.history_size entries), newest first. Nothing is written to disk."""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from typing import Any

from gateway.operations.outcome import FinishedRequest


class RequestHistory:
    def __init__(self, size: int) -> None:
        self._ring: deque[FinishedRequest] = deque(maxlen=size)

    @property
    def size(self) -> int:
        return self._ring.maxlen or 0

    def add(self, done: FinishedRequest) -> None:
        self._ring.append(done)

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` entries, newest first."""
        return [done.view() for done in itertools.islice(reversed(self._ring), limit)]

    def forget_bodies(self) -> None:
        """logging.capture_bodies turned off: what was captured goes at once."""
        self._ring = deque(
            (dataclasses.replace(d, request_body=None, answer=None) for d in self._ring),
            maxlen=self._ring.maxlen,
        )

    def resize(self, size: int) -> None:
        """A reload's new logging.history_size: the newest entries are kept."""
        if size != self.size:
            self._ring = deque(self._ring, maxlen=size)
