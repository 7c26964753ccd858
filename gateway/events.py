"""The gateway's and memwatch's record of what they did: one JSON object per line, with
the same fields everywhere, so one `grep '"event"'` follows a model through both logs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("lmx.events")
# In-process observers of every event, by name and fields: the gateway's metrics count
# loads, evictions, crashes and restarts here (gateway.metrics.counters).
listeners: list[Callable[[str, dict[str, Any]], None]] = []


def emit(record: dict[str, Any]) -> None:
    log.info(json.dumps({"ts": round(time.time(), 3), **record}))


def log_event(event: str, **fields: Any) -> None:
    emit({"event": event, **fields})
    for listener in listeners:
        listener(event, fields)
