"""The CLI's tables: one function per listing, from the rows the commands also print as JSON."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from gateway.cli import formatting as fmt

STATE_STYLES = {
    "ready": "green",
    "loading": "yellow",
    "draining": "yellow",
    "stopping": "yellow",
    "failed": "red",
    "unloaded": "dim",
}


def _table(*headers: str, right: tuple[str, ...] = ()) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold cyan", pad_edge=False, show_edge=False)
    for header in headers:
        table.add_column(header, justify="right" if header in right else "left", no_wrap=True)
    return table


def _state(state: str | None) -> Text:
    return Text(state or fmt.DASH, style=STATE_STYLES.get(state or "", ""))


def _plain(value: object) -> str:
    return fmt.DASH if value is None else str(value)


def models_table(rows: list[dict[str, Any]]) -> Table:
    with_source = any(r["source"] for r in rows)
    headers = ["ID", "BACKEND", "SIZE", "CONTEXT", "STATE", "ALIASES"]
    table = _table(*headers, *(["SOURCE"] if with_source else []), right=("SIZE", "CONTEXT"))
    for r in rows:
        cells: list[str | Text] = [
            Text(r["id"], style="bold"),
            _plain(r["backend"]),
            fmt.size(r["size_bytes"]),
            fmt.count(r["context_length"]),
            _state(r["state"]),
            ", ".join(r["aliases"]) or fmt.DASH,
        ]
        table.add_row(*cells, *([_plain(r["source"])] if with_source else []))
    return table


def processes_table(rows: list[dict[str, Any]]) -> Table:
    table = _table(
        "ID", "STATE", "PID", "PORT", "RSS", "IN FLIGHT", "QUEUED", "IDLE FOR", "TTL LEFT",
        right=("PID", "PORT", "RSS", "IN FLIGHT", "QUEUED", "IDLE FOR", "TTL LEFT"),
    )  # fmt: skip
    for r in rows:
        table.add_row(
            Text(r["id"], style="bold"),
            _state(r["state"]),
            _plain(r["pid"]),
            _plain(r["port"]),
            fmt.size(r["rss_bytes"]),
            str(r["in_flight"]),
            str(r["queued"]),
            "busy" if r["idle_s"] is None and r["in_flight"] else fmt.duration(r["idle_s"]),
            _ttl_cell(r),
        )
    return table


def _ttl_cell(row: dict[str, Any]) -> str:
    if row["ttl_s"] == 0:
        return "never"
    return fmt.duration(row["ttl_left_s"])


def bench_table(result: dict[str, Any]) -> Table:
    table = _table("RUN", "TTFT", "TOKENS", "TOKENS/S", "DURATION", right=("RUN", "TTFT", "TOKENS"))
    for index, run in enumerate(result.get("runs", []), start=1):
        table.add_row(
            str(index),
            fmt.millis(run.get("ttft_ms")),
            fmt.count(run.get("tokens")),
            fmt.rate(run.get("tokens_per_s"), "tok"),
            fmt.millis(run.get("duration_ms")),
        )
    return table


def requests_table(rows: list[dict[str, Any]]) -> Table:
    table = _table("ID", "MODEL", "ROUTE", "STATE", "AGE", "TOKENS", "CLIENT", "STREAM")
    for r in rows:
        table.add_row(
            _plain(r.get("id")),
            _plain(r.get("model")),
            _plain(r.get("route")),
            _plain(r.get("state")),
            fmt.duration(r.get("age_s")),
            fmt.count(r.get("tokens")),
            _plain(r.get("client")),
            "yes" if r.get("stream") else "no",
        )
    return table
