"""Follow a folder with watchfiles (inotify, FSEvents, ...) and run a callback once per
batch of changes: watchfiles yields a batch after a quiet moment, so a copy of many
files, or an editor's write-and-rename, is one callback, not dozens."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import Change, awatch

from gateway.events import log_event
from gateway.library.scan import PARTIAL_SUFFIXES

log = logging.getLogger("lmx.watch")

QUIET_MS = 300  # a batch ends after this long without a change...
MAX_BATCH_MS = 1600  # ...or after this long in any case

Accept = Callable[[Path], bool]


def follow(
    folder: Path,
    accept: Accept,
    on_change: Callable[[], Awaitable[object]],
    recursive: bool = True,
) -> asyncio.Task[None]:
    """A task that runs `on_change` after each batch of accepted changes until cancelled."""

    def wanted(_change: Change, path: str) -> bool:
        return accept(Path(path))

    async def run() -> None:
        try:
            async for _ in awatch(
                folder,
                watch_filter=wanted,
                debounce=MAX_BATCH_MS,
                step=QUIET_MS,
                recursive=recursive,
            ):
                try:
                    await on_change()
                except Exception:  # one failed reaction must not end the watch
                    log.exception("reacting to a change in %s failed", folder)
        except (OSError, RuntimeError) as exc:  # e.g. the OS's limit on watches
            log_event("watch_failed", path=str(folder), error=str(exc))

    return asyncio.create_task(run(), name=f"watch-{folder.name}")


def in_library(models_dir: Path) -> Accept:
    """Changes that can make a model appear or go: not in hidden folders (downloads in
    progress sit in `.cache`), not partial files."""

    def accept(path: Path) -> bool:
        try:
            parts = path.relative_to(models_dir).parts
        except ValueError:
            return False
        hidden = any(part.startswith(".") for part in parts)
        return not hidden and not path.name.lower().endswith(PARTIAL_SUFFIXES)

    return accept


def is_file(target: Path) -> Accept:
    return lambda path: path == target
