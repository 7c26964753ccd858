"""One explicit state machine per model: the states, the allowed moves, and nothing else.

A move not in the table is refused and logged, never applied: that is what keeps a late
health check from resurrecting a worker that an unload is already stopping.
"""

from __future__ import annotations

import enum
import logging

log = logging.getLogger("lmx.states")


class State(enum.StrEnum):
    UNLOADED = "unloaded"
    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"
    STOPPING = "stopping"
    FAILED = "failed"


S = State
ALLOWED: dict[State, frozenset[State]] = {
    S.UNLOADED: frozenset({S.LOADING, S.READY}),
    S.LOADING: frozenset({S.READY, S.FAILED, S.STOPPING, S.UNLOADED}),
    S.READY: frozenset({S.DRAINING, S.STOPPING, S.FAILED, S.UNLOADED, S.LOADING}),
    S.DRAINING: frozenset({S.STOPPING, S.UNLOADED, S.FAILED}),
    S.STOPPING: frozenset({S.UNLOADED, S.FAILED}),
    S.FAILED: frozenset({S.LOADING, S.UNLOADED, S.READY}),
}


class StateMachine:
    def __init__(self, name: str, state: State = S.UNLOADED) -> None:
        self.name = name
        self.state = state

    def move(self, to: State, *, expect: State | frozenset[State] | None = None) -> bool:
        """Compare-and-swap: apply `to` only if allowed (and the current state is `expect`)."""
        current = self.state
        if current == to:
            return True
        if expect is not None and current not in (
            expect if isinstance(expect, frozenset) else {expect}
        ):
            log.info("%s: refused %s -> %s (expected %s)", self.name, current, to, expect)
            return False
        if to not in ALLOWED[current]:
            log.warning("%s: refused transition %s -> %s", self.name, current, to)
            return False
        log.info("%s: %s -> %s", self.name, current, to)
        self.state = to
        return True
