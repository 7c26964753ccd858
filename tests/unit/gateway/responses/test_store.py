"""The /v1/responses store on a real SQLite file: kept across instances (a gateway
restart), pruned by age and by size on each write, the newest always kept."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from gateway.responses.store import FILE_NAME, ResponseStore

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def response(response_id: str, text: str = "hi") -> dict[str, Any]:
    return {"id": response_id, "object": "response", "output": [{"type": "message", "text": text}]}


def store_at(path: Path, clock: Clock, max_bytes: int = 10**9, days: float = 30) -> ResponseStore:
    return ResponseStore(path / FILE_NAME, max_bytes, days * DAY, clock)


def test_a_saved_response_is_read_back_by_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    clock = Clock()
    first = store_at(tmp_path, clock)
    items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]}]
    asyncio.run(first.save(response("resp_1"), items))
    first.close()

    stored = asyncio.run(store_at(tmp_path, clock).get("resp_1"))

    assert stored is not None
    assert stored.response == response("resp_1")
    assert stored.input_items == items
    assert stored.conversation == [*items, {"type": "message", "text": "hi"}]
    journal = sqlite3.connect(tmp_path / FILE_NAME).execute("PRAGMA journal_mode").fetchone()
    assert journal == ("wal",)


def test_unknown_and_deleted_ids_are_none(tmp_path: Path) -> None:
    store = store_at(tmp_path, Clock())
    asyncio.run(store.save(response("resp_1"), []))

    assert asyncio.run(store.delete("resp_1")) is True
    assert asyncio.run(store.delete("resp_1")) is False
    assert asyncio.run(store.get("resp_1")) is None
    assert asyncio.run(store.get("resp_2")) is None


def test_responses_past_the_age_limit_are_gone(tmp_path: Path) -> None:
    clock = Clock()
    store = store_at(tmp_path, clock, days=1)
    asyncio.run(store.save(response("resp_old"), []))
    clock.now += 0.5 * DAY
    asyncio.run(store.save(response("resp_mid"), []))
    clock.now += 0.6 * DAY

    assert asyncio.run(store.get("resp_old")) is None  # expired, even before a write prunes it
    assert asyncio.run(store.get("resp_mid")) is not None
    asyncio.run(store.save(response("resp_new"), []))
    rows = sqlite3.connect(tmp_path / FILE_NAME).execute("SELECT id FROM responses").fetchall()
    assert sorted(rows) == [("resp_mid",), ("resp_new",)]


def test_the_oldest_go_first_past_the_size_cap_and_the_newest_stays(tmp_path: Path) -> None:
    clock = Clock()
    one_row = len(json.dumps(response("resp_0", "x" * 100))) + len("[]")
    store = store_at(tmp_path, clock, max_bytes=3 * one_row)
    for i in range(5):
        clock.now += 1
        asyncio.run(store.save(response(f"resp_{i}", "x" * 100), []))

    kept = [i for i in range(5) if asyncio.run(store.get(f"resp_{i}")) is not None]
    assert kept == [2, 3, 4]

    asyncio.run(store.save(response("resp_big", "x" * 10 * one_row), []))
    assert asyncio.run(store.get("resp_big")) is not None
    assert [i for i in range(5) if asyncio.run(store.get(f"resp_{i}"))] == []
