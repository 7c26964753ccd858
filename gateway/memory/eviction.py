"""Which loaded model goes first when memory is short: the one idle longest.

memwatch (relieving memory pressure) chooses by this rule. The gateway's scheduler
(gateway.memory.turns, making room for a waiting model) orders idle victims the same way,
after its own conditions (a model's turn, requests in flight, who waits for it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Resident:
    model_id: str
    last_activity: float  # wall clock: last request, else when it became ready
    busy: bool  # requests in flight or queued: never evicted
    pinned: bool  # the config keeps it loaded: never evicted


def least_recently_used(residents: Iterable[Resident]) -> str | None:
    """The idle, unpinned model with the oldest activity, or None when there is none."""
    idle = [r for r in residents if not r.busy and not r.pinned]
    return min(idle, key=lambda r: r.last_activity).model_id if idle else None
