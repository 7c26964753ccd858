"""Ollama's `keep_alive`: how long a model stays loaded after this request.

A number is seconds, a string a Go duration ("5m", "1h30m", "250ms"); a negative value
means forever, 0 means unload once this request is answered. As seconds here, with
`math.inf` for forever.
"""

from __future__ import annotations

import math
import re
from typing import Any

from gateway.request_fields import invalid

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION = re.compile(rf"[-+]?(?:{_PART.pattern})+")
_PROBLEM = 'must be a duration such as "5m" or "1h", or a number of seconds'


def parse_keep_alive(value: Any) -> float | None:
    """Seconds (math.inf: forever); None when the request does not say."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise invalid("keep_alive", _PROBLEM)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _duration(value.strip())
    else:
        raise invalid("keep_alive", _PROBLEM)
    if math.isnan(seconds):
        raise invalid("keep_alive", _PROBLEM)
    return math.inf if seconds < 0 else seconds


def _duration(text: str) -> float:
    try:
        return float(text)  # "300" and "-1", which Ollama's own clients send as strings too
    except ValueError:
        pass
    if not _DURATION.fullmatch(text):
        raise invalid("keep_alive", _PROBLEM)
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    return -seconds if text.startswith("-") else seconds
