"""Small raw-ASGI helpers for the hot path, where Starlette's Request/Response layers
would cost more than the proxying itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterable
from typing import Any

from starlette.types import Message, Receive, Send

from gateway.operations.requests import current_request


async def start_response(send: Send, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
    current_request.get().status = status  # once per answer, not per chunk: for its history
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})


async def send_body(send: Send, body: bytes, more: bool = False) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": more})


async def send_json(
    send: Send, status: int, payload: Any, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps(payload).encode()
    await start_response(send, status, [(b"content-type", b"application/json"), *headers])
    await send_body(send, body)


async def until_disconnect(receive: Receive, work: Awaitable[None]) -> None:
    """Run `work` in this task, cancelling it as soon as the client disconnects.

    Cancelling is what closes the upstream stream, which is what makes the worker
    stop generating for a reader who left. One watcher task per request, not two:
    this runs on every proxied request.
    """
    task = asyncio.current_task()
    assert task is not None
    watch = _DisconnectWatch(task)
    watcher = asyncio.ensure_future(_wait_disconnect(receive))
    watcher.add_done_callback(watch.fired)
    try:
        await work
    except asyncio.CancelledError:
        # Ours if the client left; a cancellation from outside as well still propagates.
        if not watch.gone or task.uncancel() > 0:
            raise
        current_request.get().client_left = True  # the request's end, for its history
    else:
        if watch.gone:  # `work` swallowed our cancellation; keep the task's count right
            task.uncancel()
    finally:
        watch.finished = True
        watcher.cancel()


class _DisconnectWatch:
    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.gone = False
        self.finished = False

    def fired(self, watcher: asyncio.Future[Message]) -> None:
        # Runs from the loop, so `work` is suspended at an await: the cancel lands there.
        if self.finished or watcher.cancelled() or watcher.exception() is not None:
            return
        self.gone = True
        self.task.cancel()


async def _wait_disconnect(receive: Receive) -> Message:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return message


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel a helper task (a keepalive writer) and wait until it has really stopped.
    A cancellation of the caller meanwhile still reaches the caller."""
    task.cancel()
    await asyncio.wait([task])
