"""Stored responses (`store: true`, the default), in one SQLite file under run_dir, so
`previous_response_id` and `GET /v1/responses/{id}` survive a restart of the gateway.

Each row holds a Response and its input items: the whole conversation before its output,
earlier turns included, so continuing from a response needs that one row only, however
many of its ancestors have since been pruned. Every write first deletes what is older
than `responses.max_age_days`, then the oldest rows past `responses.max_bytes` (the
newest row always stays). SQLite's calls block, so they run on a thread, one at a time.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gateway.config.loader import Config
from gateway.request_fields import Json
from workers.contract.errors import ApiError

FILE_NAME = "responses.sqlite3"
_DAY_S = 86400.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    response TEXT NOT NULL,
    input_items TEXT NOT NULL,
    bytes INTEGER NOT NULL
)
"""
# Keep the newest rows that fit under the cap together (and the newest in any case).
_PRUNE_TO_SIZE = """
DELETE FROM responses WHERE seq < COALESCE(
    (SELECT MIN(seq) FROM (
        SELECT seq, SUM(bytes) OVER (ORDER BY seq DESC) AS kept FROM responses
    ) WHERE kept <= ?),
    (SELECT MAX(seq) FROM responses)
)
"""
T = TypeVar("T")


@dataclass(frozen=True)
class StoredResponse:
    response: Json
    input_items: list[Json]

    @property
    def conversation(self) -> list[Json]:
        """What a request that continues from this response continues."""
        return [*self.input_items, *self.response["output"]]


class ResponseStore:
    def __init__(
        self,
        path: Path,
        max_bytes: int,
        max_age_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @classmethod
    def for_config(cls, config: Config) -> ResponseStore:
        limits = config.file.responses
        return cls(config.run_dir / FILE_NAME, limits.max_bytes, limits.max_age_days * _DAY_S)

    async def save(self, response: Json, input_items: list[Json]) -> None:
        row = (json.dumps(response), json.dumps(input_items))
        await self._run(self._save, response["id"], *row)

    async def get(self, response_id: str) -> StoredResponse | None:
        return await self._run(self._get, response_id)

    async def delete(self, response_id: str) -> bool:
        return await self._run(self._delete, response_id)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(self._locked, work, *args)
        except sqlite3.Error as exc:
            raise ApiError(500, f"the response store ({self.path.name}) failed: {exc}") from None

    def _locked(self, work: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return work(self._connection(), *args)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    def _save(self, db: sqlite3.Connection, response_id: str, response: str, items: str) -> None:
        size = len(response) + len(items)
        with db:
            db.execute("DELETE FROM responses WHERE created_at < ?", (self._oldest_kept(),))
            db.execute(
                "INSERT OR REPLACE INTO responses (id, created_at, response, input_items, bytes)"
                " VALUES (?, ?, ?, ?, ?)",
                (response_id, self._clock(), response, items, size),
            )
            db.execute(_PRUNE_TO_SIZE, (self.max_bytes,))

    def _get(self, db: sqlite3.Connection, response_id: str) -> StoredResponse | None:
        row = db.execute(
            "SELECT response, input_items FROM responses WHERE id = ? AND created_at >= ?",
            (response_id, self._oldest_kept()),
        ).fetchone()
        if row is None:
            return None
        return StoredResponse(json.loads(row[0]), json.loads(row[1]))

    def _delete(self, db: sqlite3.Connection, response_id: str) -> bool:
        with db:
            return db.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount > 0

    def _oldest_kept(self) -> float:
        return self._clock() - self.max_age_s
