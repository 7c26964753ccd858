"""Following a program's log, over supervisord's own file functions (`tailFile`,
`readFile`) on a real file: only the XML-RPC socket is left out, so a test can write,
rotate and leave on cue. The routes are tested end to end in test_operations."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from supervisor.options import readFile, tailFile

from gateway.fleet.supervisor import LogTail
from gateway.operations import logs
from gateway.operations.logs import LogReader, LogStream, ProgramLog

GATEWAY = ProgramLog("gateway")


class FileSupervisor:
    """supervisord's log calls on one file, without the socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls = 0

    async def log_tail(self, name: str, channel: str, length: int) -> LogTail:
        self.calls += 1
        text, size, overflow = tailFile(str(self.path), 0, length)
        return LogTail(text, size, overflow)

    async def log_read(self, name: str, channel: str, offset: int, length: int) -> str:
        self.calls += 1
        data: bytes = readFile(str(self.path), offset, length)
        return data.decode()  # as supervisord does before it sends it


def reader(path: Path) -> tuple[LogReader, FileSupervisor]:
    source = FileSupervisor(path)
    return LogReader(source), source  # type: ignore[arg-type]


def append(path: Path, text: str) -> None:
    with path.open("a") as file:
        file.write(text)


async def collect(follow: Any, count: int) -> list[str]:
    """The next `count` lines of a follow, within a few seconds."""
    found: list[str] = []
    async with asyncio.timeout(5):
        while len(found) < count:
            found += await anext(follow)
    return found


def test_tail_drops_a_cut_first_line_and_leaves_an_unfinished_last_one(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    path.write_text("".join(f"line {i:04d}\n" for i in range(5000)) + "half")
    lines, offset = asyncio.run(reader(path)[0].tail(GATEWAY, 3000))
    assert lines == [f"line {i:04d}" for i in range(2000, 5000)]
    assert offset == path.stat().st_size - len("half")


def test_follow_sends_lines_as_written_and_holds_an_unfinished_one(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    path.write_text("old\n")

    async def scenario() -> list[str]:
        log_reader, _ = reader(path)
        _, offset = await log_reader.tail(GATEWAY, 0)
        follow = log_reader.follow(GATEWAY, offset, lambda: False)
        append(path, "first\nsec")
        first = await collect(follow, 1)
        append(path, "ond\nthird\n")
        return first + await collect(follow, 2)

    assert asyncio.run(scenario()) == ["first", "second", "third"]


def test_follow_starts_over_when_the_log_is_rotated(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    path.write_text("a long line before the rotation\n" * 10)

    async def scenario() -> list[str]:
        log_reader, _ = reader(path)
        _, offset = await log_reader.tail(GATEWAY, 0)
        follow = log_reader.follow(GATEWAY, offset, lambda: False)
        await anext(follow)
        path.write_text("after\n")  # supervisord moved the old file away
        return await collect(follow, 1)

    assert asyncio.run(scenario()) == ["after"]


async def serve(stream: LogStream, leave: asyncio.Event) -> list[dict[str, Any]]:
    """Run the response as uvicorn would; the client leaves when `leave` is set."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await stream({"type": "http"}, receive, send)
    return sent


def lines_sent(sent: list[dict[str, Any]]) -> list[str]:
    body = b"".join(m.get("body", b"") for m in sent).decode()
    return [json.loads(x[6:])["line"] for x in body.split("\n") if x.startswith("data: ")]


def test_stream_ends_when_the_client_leaves_and_leaves_no_task(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    path.write_text("before\n")

    async def scenario() -> tuple[list[str], int, int, set[asyncio.Task[Any]]]:
        log_reader, source = reader(path)
        tail = await log_reader.tail(GATEWAY, 10)
        leave = asyncio.Event()
        serving = asyncio.create_task(serve(LogStream(log_reader, GATEWAY, tail, bool), leave))
        await asyncio.sleep(0.1)
        append(path, "new\n")
        await asyncio.sleep(logs.POLL_S * 3)
        leave.set()
        async with asyncio.timeout(1):
            sent = await serving
        calls = source.calls
        await asyncio.sleep(logs.POLL_S * 3)
        others = asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]
        return lines_sent(sent), calls, source.calls, others

    lines, calls_at_leave, calls_later, others = asyncio.run(scenario())
    assert lines == ["before", "new"]
    assert calls_later == calls_at_leave  # no poll of supervisord after the client left
    assert others == set()


def test_stream_ends_when_the_gateway_stops(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    path.write_text("before\n")
    stopping = False

    async def scenario() -> list[dict[str, Any]]:
        nonlocal stopping
        log_reader, _ = reader(path)
        tail = await log_reader.tail(GATEWAY, 10)
        stream = LogStream(log_reader, GATEWAY, tail, lambda: stopping)
        serving = asyncio.create_task(serve(stream, asyncio.Event()))
        await asyncio.sleep(0.1)
        stopping = True
        async with asyncio.timeout(1):
            return await serving

    sent = asyncio.run(scenario())
    assert lines_sent(sent) == ["before"]
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
