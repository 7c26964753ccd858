"""The one state-machine mechanism both programs use: an enum of states, one table of
allowed moves, and a compare-and-swap that refuses (and logs) every other move.

A move not in the table is never applied: that is what keeps a late health check from
resurrecting a worker that an unload is already stopping.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Mapping
from typing import Generic, TypeVar

S = TypeVar("S", bound=enum.Enum)

log = logging.getLogger("lmx.states")


class StateMachine(Generic[S]):
    def __init__(self, name: str, allowed: Mapping[S, frozenset[S]], state: S) -> None:
        self.name = name
        self.state = state
        self._allowed = allowed
        # The worker's loader thread moves its machine while requests read it.
        self._lock = threading.Lock()

    def move(self, to: S, *, expect: S | frozenset[S] | None = None) -> bool:
        """Apply `to` only if the table allows it (and the current state is `expect`)."""
        with self._lock:
            current = self.state
            if current == to:
                return True
            if expect is not None and current not in _as_set(expect):
                log.info("%s: refused %s -> %s (expected %s)", self.name, current, to, expect)
                return False
            if to not in self._allowed[current]:
                log.warning("%s: refused transition %s -> %s", self.name, current, to)
                return False
            log.info("%s: %s -> %s", self.name, current, to)
            self.state = to
            return True


def _as_set(expect: S | frozenset[S]) -> frozenset[S]:
    return expect if isinstance(expect, frozenset) else frozenset({expect})
