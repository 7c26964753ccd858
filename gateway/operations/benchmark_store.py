"""Benchmark results, newest first, kept in run/benchmarks.json across restarts.

A bounded list, rewritten whole on each new result through a temporary file and a rename,
so a crash mid-write leaves the previous file, never a torn one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("lmx.gateway")

KEEP = 50


class BenchmarkStore:
    def __init__(self, path: Path, keep: int = KEEP) -> None:
        self.path = path
        self.keep = keep
        self._results: list[dict[str, Any]] | None = None  # read at first use

    def results(self) -> list[dict[str, Any]]:
        if self._results is None:
            self._results = self._read()
        return list(self._results)

    def add(self, result: dict[str, Any]) -> None:
        self._results = [result, *self.results()][: self.keep]
        self._write(self._results)

    def _read(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("%s is unreadable (%s); starting a new list", self.path.name, exc)
            return []
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            log.warning("%s is not a list of results; starting a new list", self.path.name)
            return []
        return data[: self.keep]

    def _write(self, results: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as file:
            json.dump(results, file, indent=1)
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(self.path)
