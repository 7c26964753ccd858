"""What `lmx ls` and `lmx ps` list, built from the gateway's answers: plain dicts, the
same for the tables and for `--json`.

Fields a gateway does not report (an older one, or a model it knows little about) are
None, never guessed.
"""

from __future__ import annotations

from typing import Any

# States in which a model has (or is getting, or is leaving) a worker process.
LOADED_STATES = ("loading", "ready", "draining", "stopping")


def alias_map(listing: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Model id -> the aliases of /v1/models whose chain names it."""
    names: dict[str, list[str]] = {}
    for entry in listing:
        if entry.get("status") == "alias":
            for target in entry.get("targets", []):
                names.setdefault(target, []).append(entry["id"])
    return names


def model_rows(models: list[dict[str, Any]], listing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every model: /admin/status's entries with the aliases that point at each."""
    aliases = alias_map(listing)
    rows = []
    for m in models:
        own = list(m.get("aliases") or [])
        rows.append(
            {
                "id": m["id"],
                "backend": m.get("backend"),
                "state": m.get("status"),
                "size_bytes": m.get("size_bytes"),
                "context_length": m.get("context_length"),
                "aliases": own + [a for a in aliases.get(m["id"], []) if a not in own],
                "source": m.get("source"),
                "path": m.get("path"),
                "port": m.get("port"),
            }
        )
    return rows


def process_rows(models: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """The models with a worker process, with how long each has been idle and how long
    until its idle TTL unloads it (None: busy, or no TTL reported; 0 TTL never unloads)."""
    rows = []
    for m in models:
        if m.get("status") not in LOADED_STATES:
            continue
        idle = _idle_seconds(m, now)
        rows.append(
            {
                "id": m["id"],
                "state": m["status"],
                "pid": m.get("pid"),
                "port": m.get("port"),
                "rss_bytes": m.get("rss_bytes"),
                "in_flight": m.get("in_flight", 0),
                "queued": m.get("queued", 0),
                "idle_s": idle,
                "ttl_s": m.get("ttl_s"),
                "ttl_left_s": _ttl_left(m.get("ttl_s"), idle),
            }
        )
    return rows


def _idle_seconds(m: dict[str, Any], now: float) -> float | None:
    last_used = m.get("last_used")
    if m.get("in_flight") or m.get("queued") or last_used is None or m.get("status") != "ready":
        return None
    return round(max(0.0, now - float(last_used)), 1)


def _ttl_left(ttl: float | None, idle: float | None) -> float | None:
    if not ttl or idle is None:
        return None
    return round(max(0.0, ttl - idle), 1)
