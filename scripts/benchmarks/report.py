"""Plain-text tables, and the JSON record under run/bench/."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import psutil


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    rows = [[*row, *[""] * (len(header) - len(row))] for row in rows]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [
            str(c).rjust(w) if i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    return {
        "cpus": psutil.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in psutil.getloadavg()],
    }


def write_json(run_dir: Path, record: dict[str, Any]) -> Path:
    out = run_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / time.strftime("bench-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps(record, indent=2))
    return path
