"""Server-sent events: the one framer, the one reader, and the ASGI response that sends them.

Workers send OpenAI's framing (`data: {json}` events ending with `data: [DONE]`); the
gateway relays it, reads it back for the Anthropic translation, and writes Anthropic's
named events with the same framer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from workers.contract.errors import ApiError

DONE = b"data: [DONE]\n\n"

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


# One encoder for every event: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def sse_event(payload: dict[str, Any], name: str | None = None) -> bytes:
    """One complete event; `name` adds an `event:` line (Anthropic names every event)."""
    data = _encode(payload)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {data}\n\n".encode()


def sse_events(payloads: Iterable[dict[str, Any]]) -> bytes:
    """Several unnamed events, framed into one piece (one write)."""
    return b"".join(map(sse_event, payloads))


# The placeholder an EventTemplate's payload carries where the varying string goes.
SLOT = "\u0000lmx-slot\u0000"


class EventTemplate:
    """Events whose JSON differs only in one string (a stream's content deltas): the bytes
    around it are encoded once, the string per event, byte for byte what sse_event makes
    of the whole payload."""

    def __init__(self, payload: dict[str, Any]) -> None:
        head, slot, tail = _encode(payload).partition(_encode(SLOT))
        if not slot or _encode(SLOT) in tail:
            raise ValueError("the payload must hold SLOT exactly once")
        self._head = f"data: {head}".encode()
        self._tail = f"{tail}\n\n".encode()

    def event(self, text: str) -> bytes:
        return self._head + _encode(text).encode() + self._tail


def sse_comment(text: str) -> bytes:
    """A line every SSE reader skips: a keepalive that is not an event."""
    return f": {text}\n\n".encode()


def sse_error(error: ApiError) -> bytes:
    """The end of an OpenAI stream that fails after bytes were sent: one error event, [DONE]."""
    return sse_event(error.body()) + DONE


async def sse_payloads(
    lines: AsyncIterable[str], comments: Callable[[str], None] | None = None
) -> AsyncIterator[Any]:
    """The JSON payload of each `data:` line of an OpenAI stream, until `[DONE]`;
    `comments` sees each comment line (a worker's trailer, workers.contract.trailer).

    Raises ValueError for a payload that is not JSON.
    """
    async for line in lines:
        if not line.startswith("data:"):
            # event names, comments and the blank lines between events
            if comments is not None and line.startswith(":"):
                comments(line)
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


class SSEResponse(Response):
    """Streams already-framed events; the producer decides when the stream ends.

    Client disconnects are watched elsewhere (workers.generation.cancellation), so this
    response never reads `receive` itself and cannot race that watcher for the message.
    """

    def __init__(
        self, events: AsyncIterator[bytes], headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(media_type="text/event-stream")
        self._events = events
        self._extra_headers = headers or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [*HEADERS, *self._extra_headers]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            async for event in self._events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            return  # the client went away mid-write; the watcher has stopped generation
        finally:
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()
