"""The dashboard: one page (static/index.html), its stylesheet and its ES modules, shipped
as package data and served by gateway.routes.dashboard. No build step: the browser loads
these files as they are."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
