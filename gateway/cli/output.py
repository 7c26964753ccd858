"""Where the CLI writes: rich consoles for people, plain JSON for scripts, one-line errors."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

# Piped output is not wrapped at 80 columns: `lmx ls | grep` should see whole rows.
PIPE_WIDTH = 240


@functools.cache
def out() -> Console:
    return Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)


@functools.cache
def err() -> Console:
    return Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else PIPE_WIDTH)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    err().print(Text.assemble(("lmx:", "bold red"), " ", message), soft_wrap=True)


def say(message: str) -> None:
    """A plain line: no markup, so brackets in names and paths print as they are."""
    out().print(message, markup=False, soft_wrap=True, emoji=False)


def note(message: str) -> None:
    """A secondary line (what happened, how long it took), dim on a terminal."""
    out().print(message, style="dim", markup=False, soft_wrap=True, emoji=False)


def note_err(message: str) -> None:
    """A secondary line kept out of stdout (which holds a generated answer)."""
    err().print(message, style="dim", markup=False, soft_wrap=True, emoji=False)
