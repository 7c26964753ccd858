"""The gateway's and memwatch's record of what they did: one JSON object per line, with
the same fields everywhere, so one `grep '"event"'` follows a model through both logs."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

log = logging.getLogger("lmx.events")


def emit(record: dict[str, Any]) -> None:
    log.info(json.dumps({"ts": round(time.time(), 3), **record}))


def log_event(event: str, **fields: Any) -> None:
    emit({"event": event, **fields})
