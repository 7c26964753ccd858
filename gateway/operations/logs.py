"""The programs' logs, read through supervisord: the tail, and a follow as server-sent
events for `GET /admin/logs` and `/admin/logs/stream`.

supervisord owns the log files (it names and rotates them), so a client names a program
that supervisord runs, never a path. XML-RPC has no push: a follow asks for the log's
size a few times a second and reads what was added.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.asgi import send_body, start_response, until_disconnect
from gateway.fleet.supervisor import LogTail, Supervisor, SupervisorError, UnknownProgram
from workers.contract import sse
from workers.contract.errors import ApiError, bad_request

LINES_DEFAULT = 100
LINES_MAX = 2000
# The tail grows from this many bytes until it holds the lines asked for, up to the cap.
_TAIL_START_BYTES = 16 * 1024
_TAIL_MAX_BYTES = 4 * 1024 * 1024
_READ_MAX_BYTES = 256 * 1024  # one read of a follow; what is left comes at the next poll
POLL_S = 0.25
KEEPALIVE_S = 15.0
# memwatch is an event listener: its stdout is supervisord's event protocol, so it writes
# its log to stderr (supervisor.conf). The gateway and workers send stderr to stdout.
_STDERR_PROGRAMS = frozenset({"memwatch"})


@dataclass(frozen=True)
class ProgramLog:
    program: str

    @property
    def channel(self) -> str:
        return "stderr" if self.program in _STDERR_PROGRAMS else "stdout"


def program_log(program: str | None, allowed: list[str]) -> ProgramLog:
    if program not in allowed:
        named = f"{program!r} is not" if program else "`program` is required and must be"
        raise bad_request(f"{named} one of: {', '.join(allowed)}", param="program")
    return ProgramLog(program)


def lines_wanted(value: str | None) -> int:
    if value is None:
        return LINES_DEFAULT
    if not value.isdigit() or int(value) > LINES_MAX:
        raise bad_request(f"`lines` must be a whole number from 0 to {LINES_MAX}", param="lines")
    return int(value)


def split_lines(text: str) -> tuple[list[str], str]:
    """Whole lines, and the unfinished rest."""
    pieces = text.split("\n")
    rest = pieces.pop()
    return [p.removesuffix("\r") for p in pieces], rest


class LogReader:
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    async def tail(self, log: ProgramLog, lines: int) -> tuple[list[str], int]:
        """The last `lines` lines, and the log's size then (where a follow goes on)."""
        length = _TAIL_START_BYTES if lines else 0
        while True:
            tail = await self._tail(log, length)
            found, rest = split_lines(tail.text)
            if tail.truncated:
                found = found[1:]  # it may begin mid-line
            if len(found) >= lines or not tail.truncated or length >= _TAIL_MAX_BYTES:
                # An unfinished last line comes whole with the follow.
                return (found[-lines:] if lines else []), tail.size - len(rest.encode())
            length *= 4

    async def follow(
        self, log: ProgramLog, offset: int, stopping: Callable[[], bool]
    ) -> AsyncIterator[list[str]]:
        """Lines as they are added after `offset` ([] after each quiet poll), until
        `stopping()`; a program that goes away ends it with a line saying so."""
        rest = ""
        while not stopping():
            try:
                size = (await self.supervisor.log_tail(log.program, log.channel, 0)).size
                if size < offset:  # rotated or truncated: the new file from its start
                    offset, rest = 0, ""
                length = min(size - offset, _READ_MAX_BYTES)
                text = await self._read(log, offset, length) if length else ""
            except SupervisorError as exc:
                yield [f"[lmx: the log stream ends: {exc}]"]
                return
            offset += length
            lines, rest = split_lines(rest + text)
            yield lines
            if not length:
                await asyncio.sleep(POLL_S)

    async def _tail(self, log: ProgramLog, length: int) -> LogTail:
        try:
            return await self.supervisor.log_tail(log.program, log.channel, length)
        except UnknownProgram:
            raise ApiError(
                404,
                f"supervisord has no program {log.program!r} now (a worker is known to it "
                "only while its model is loaded, or after it failed)",
                param="program",
                code="program_not_running",
            ) from None
        except SupervisorError as exc:
            raise ApiError(502, f"cannot read the log of {log.program}: {exc}") from None

    async def _read(self, log: ProgramLog, offset: int, length: int) -> str:
        try:
            return await self.supervisor.log_read(log.program, log.channel, offset, length)
        except UnknownProgram:
            raise
        except SupervisorError as exc:
            # Bytes that cannot cross (a split character, a control character): say so, go on.
            return f"[lmx: {length} bytes of the log could not be read: {exc}]\n"


class LogStream(Response):
    """`text/event-stream`: the tail's lines, then each new line, as `data: {"line": ...}`;
    a comment line when nothing came for KEEPALIVE_S. Ends when the client leaves (its
    task is cancelled at once, see gateway.asgi.until_disconnect) or the gateway stops."""

    def __init__(
        self,
        reader: LogReader,
        log: ProgramLog,
        tail: tuple[list[str], int],
        stopping: Callable[[], bool],
    ) -> None:
        super().__init__(media_type="text/event-stream")
        self._reader = reader
        self._log = log
        self._lines, self._offset = tail
        self._stopping = stopping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await start_response(send, 200, sse.HEADERS)
        await until_disconnect(receive, self._pump(send))

    async def _pump(self, send: Send) -> None:
        await self._send_lines(send, self._lines)
        quiet_since = time.monotonic()
        async for lines in self._reader.follow(self._log, self._offset, self._stopping):
            if lines:
                await self._send_lines(send, lines)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > KEEPALIVE_S:
                await send_body(send, sse.sse_comment("keepalive"), more=True)
                quiet_since = time.monotonic()
        await send_body(send, b"")

    @staticmethod
    async def _send_lines(send: Send, lines: list[str]) -> None:
        if lines:
            events = b"".join(sse.sse_event({"line": line}) for line in lines)
            await send_body(send, events, more=True)
