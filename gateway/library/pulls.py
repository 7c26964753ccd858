"""Pulls in progress: at most one per target, each on its own thread, its events fanned out
to every client following it.

A pull runs to its end when its clients leave, as Ollama's do: the model lands anyway, and
whoever asks for the same pull meanwhile follows the one already running instead of
starting a second writer of the same files. A pull that would write files another running
pull writes is refused with 409.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path, PurePosixPath
from typing import Any

from gateway.events import log_event
from gateway.library.download import Download, hub_error
from gateway.library.pull_spec import PullSpec, paths_overlap
from workers.contract.errors import ApiError

log = logging.getLogger("lmx.pulls")

Event = dict[str, Any]
# The model id a pulled file or folder (its absolute path) is served as, once the gateway
# has taken it in; set by whoever knows how ids are derived from paths (the model library).
ModelIdFor = Callable[[Path], Awaitable[str | None]]
# Called on the event loop when a pull's thread is done: the failure, or the bytes pulled.
Ended = Callable[["Pull", BaseException | None, int], None]


class Pull:
    def __init__(self, spec: PullSpec, models_dir: Path, ended: Ended) -> None:
        self.spec = spec
        self.models_dir = models_dir
        self.cancelled = threading.Event()
        self._ended = ended
        self._loop = asyncio.get_running_loop()
        self._followers: set[asyncio.Queue[Event]] = set()
        self._started = time.monotonic()

    def start(self) -> None:
        name = f"pull {self.spec.target}"
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def follow(self) -> AsyncGenerator[Event, None]:
        """This pull's events from now on, the last one `success` or `error`."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._followers.add(queue)
        return self._events(queue)

    def publish(self, event: Event) -> None:
        for queue in self._followers:
            queue.put_nowait(event)

    @property
    def seconds(self) -> float:
        return round(time.monotonic() - self._started, 3)

    async def _events(self, queue: asyncio.Queue[Event]) -> AsyncGenerator[Event, None]:
        try:
            while True:
                event = await queue.get()
                yield event
                if event["status"] != "downloading":
                    return
        finally:
            self._followers.discard(queue)  # a client that left stops receiving, the pull goes on

    def _run(self) -> None:
        """The thread: the download, then its outcome handed back to the event loop."""
        failure: BaseException | None = None
        total = 0
        try:
            total = Download(self.spec, self.models_dir, self._emit, self.cancelled).run()
        except Exception as exc:
            failure = exc
        self._call(self._ended, self, failure, total)

    def _emit(self, event: Event) -> None:
        self._call(self.publish, event)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        # A closed loop means the gateway stopped, and with it every follower.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(fn, *args)


class Pulls:
    def __init__(self) -> None:
        self.model_id_for: ModelIdFor | None = None
        self._running: dict[PullSpec, Pull] = {}
        self._concluding: set[asyncio.Future[None]] = set()

    def follow(self, spec: PullSpec, models_dir: Path) -> AsyncGenerator[Event, None]:
        """The events of the pull of `spec`: the one running, else a new one."""
        pull = self._running.get(spec)
        if pull is None:
            self._refuse_overlap(spec)
            pull = Pull(spec, models_dir, self._ended)
            self._running[spec] = pull
            log_event("pull_started", repo=spec.repo, file=spec.file, revision=spec.revision)
            pull.start()
        return pull.follow()

    def writing(self, relative: PurePosixPath) -> bool:
        """Whether a running pull writes at or under (or above) this path of models_dir."""
        return any(paths_overlap(spec.target, relative) for spec in self._running)

    def stop(self) -> None:
        for pull in self._running.values():
            pull.cancelled.set()

    def _refuse_overlap(self, spec: PullSpec) -> None:
        for other in self._running:
            if other.overlaps(spec):
                raise ApiError(
                    409,
                    f"{other.target} is being pulled ({other.repo}@{other.revision}); "
                    "wait for it to finish, or repeat that same pull to follow it",
                    code="pull_in_progress",
                )

    def _ended(self, pull: Pull, failure: BaseException | None, total: int) -> None:
        # The success event names the model the files are served as, which takes the
        # library a look at the folder: awaited, so the pull's followers wait for it.
        task = asyncio.ensure_future(self._conclude(pull, failure, total))
        self._concluding.add(task)
        task.add_done_callback(self._concluding.discard)

    async def _conclude(self, pull: Pull, failure: BaseException | None, total: int) -> None:
        spec = pull.spec
        try:
            if failure is None:
                path = spec.target
                model_id = await self._model_id(pull.models_dir / path)
                log_event(
                    "pull_finished",
                    repo=spec.repo,
                    path=str(path),
                    bytes=total,
                    seconds=pull.seconds,
                )
                event = {
                    "status": "success",
                    "repo": spec.repo,
                    "path": str(path),
                    "bytes": total,
                    "id": model_id,
                }
            else:
                error = hub_error(failure, spec)
                if error.code == "pull_failed":
                    log.error("pull of %s failed", spec.target, exc_info=failure)
                log_event(
                    "pull_failed",
                    repo=spec.repo,
                    file=spec.file,
                    code=error.code,
                    message=error.message,
                )
                event = {"status": "error", "error": error.body()["error"]}
        finally:
            self._running.pop(spec, None)
        pull.publish(event)

    async def _model_id(self, path: Path) -> str | None:
        if self.model_id_for is None:
            return None
        try:
            return await self.model_id_for(path)
        except Exception:
            log.exception("model_id_for(%s) failed", path)
            return None
