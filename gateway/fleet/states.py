"""The states of one model's worker as the gateway sees it, and the moves allowed between
them (workers.contract.state_machine applies them)."""

from __future__ import annotations

import enum

from workers.contract.state_machine import StateMachine


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


def worker_machine(model_id: str) -> StateMachine[State]:
    return StateMachine(model_id, ALLOWED, State.UNLOADED)
