"""Numbers as people read them in a table: sizes, durations, rates. `None` is a dash."""

from __future__ import annotations

DASH = "-"
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def size(n: int | float | None) -> str:
    """Bytes in binary units: 512 B, 98.5 MiB, 1.2 GiB."""
    if n is None:
        return DASH
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float | None) -> str:
    """Two units at most: 0.4s, 42s, 3m 05s, 2h 10m, 3d 4h."""
    if seconds is None:
        return DASH
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def rate(per_second: float | None, unit: str) -> str:
    return DASH if per_second is None else f"{per_second:.1f} {unit}/s"


def millis(ms: float | None) -> str:
    return DASH if ms is None else f"{ms:.0f} ms"


def count(n: int | None) -> str:
    return DASH if n is None else f"{n:,}"
