"""The one place that talks to supervisord, over its XML-RPC unix socket.

The gateway never forks a worker: it writes a program file and asks supervisord to pick
it up (`reloadConfig` + `addProcessGroup`, what `supervisorctl update` does), so what an
operator sees in `supervisorctl status` is always the truth. XML-RPC calls block, so each
runs on a thread with its own proxy (ServerProxy is not thread-safe).
"""

from __future__ import annotations

import asyncio
import enum
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from xml.parsers.expat import ExpatError

from supervisor.xmlrpc import Faults, SupervisorTransport


class ProcessState(enum.StrEnum):
    """supervisord's process states (`getProcessInfo()["statename"]`)."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"
    UNKNOWN = "UNKNOWN"


# The states of a worker that is up.
RUNNING_STATES = frozenset({ProcessState.STARTING, ProcessState.RUNNING})


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    state: ProcessState
    pid: int
    exit_status: int

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    @classmethod
    def from_rpc(cls, info: dict[str, Any]) -> ProcessInfo:
        return cls(
            name=info["name"],
            state=ProcessState(info["statename"]),
            pid=int(info.get("pid") or 0),
            exit_status=int(info.get("exitstatus") or 0),
        )


class SupervisorError(RuntimeError):
    pass


class UnknownProgram(SupervisorError):
    """supervisord has no program of that name (now)."""


@dataclass(frozen=True)
class LogTail:
    text: str  # the log's last bytes, from a character boundary
    size: int  # the log's size in bytes: where a follow goes on from
    truncated: bool  # the log holds more than `text`


class Supervisor(Protocol):
    """What the fleet needs from supervisord; tests may pass a small fake."""

    async def add_program(self, name: str) -> None: ...
    async def remove_program(self, name: str) -> None: ...
    async def start(self, name: str) -> None: ...
    async def stop(self, name: str) -> None: ...
    async def info(self, name: str) -> ProcessInfo | None: ...
    async def all_info(self) -> dict[str, ProcessInfo]: ...
    async def tail_log(self, name: str, length: int = 4000) -> str: ...
    async def log_tail(self, name: str, channel: str, length: int) -> LogTail: ...
    async def log_read(self, name: str, channel: str, offset: int, length: int) -> str: ...


class SupervisorClient:
    def __init__(self, socket_path: Path, timeout_s: float = 30.0) -> None:
        self._url = f"unix://{socket_path}"
        self._timeout_s = timeout_s

    def _proxy(self) -> Any:
        transport = SupervisorTransport(None, None, self._url)
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    async def _call(self, method: str, *args: Any) -> Any:
        def call() -> Any:
            return getattr(self._proxy(), method)(*args)

        try:
            return await asyncio.wait_for(asyncio.to_thread(call), self._timeout_s)
        except xmlrpc.client.Fault:
            raise
        except (OSError, TimeoutError, xmlrpc.client.ProtocolError) as exc:
            raise SupervisorError(f"supervisord is not answering on {self._url}: {exc}") from exc

    async def add_program(self, name: str) -> None:
        """Pick up run/workers/<name>.conf: reload, then add (or re-add) the group."""
        await self._call("reloadConfig")
        try:
            await self._call("addProcessGroup", name)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != Faults.ALREADY_ADDED:
                raise SupervisorError(f"cannot add {name}: {fault.faultString}") from None

    async def remove_program(self, name: str) -> None:
        try:
            await self._call("removeProcessGroup", name)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode not in (Faults.BAD_NAME,):
                raise SupervisorError(f"cannot remove {name}: {fault.faultString}") from None

    async def start(self, name: str) -> None:
        try:
            await self._call("startProcess", name, False)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != Faults.ALREADY_STARTED:
                raise SupervisorError(f"cannot start {name}: {fault.faultString}") from None

    async def stop(self, name: str) -> None:
        try:
            await self._call("stopProcess", name, True)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode not in (Faults.NOT_RUNNING, Faults.BAD_NAME):
                raise SupervisorError(f"cannot stop {name}: {fault.faultString}") from None

    async def info(self, name: str) -> ProcessInfo | None:
        try:
            return ProcessInfo.from_rpc(await self._call("getProcessInfo", name))
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == Faults.BAD_NAME:
                return None
            raise SupervisorError(f"cannot read {name}: {fault.faultString}") from None

    async def all_info(self) -> dict[str, ProcessInfo]:
        try:
            infos = await self._call("getAllProcessInfo")
        except xmlrpc.client.Fault as fault:  # e.g. SHUTDOWN_STATE while supervisord stops
            raise SupervisorError(f"cannot list processes: {fault.faultString}") from None
        return {i["name"]: ProcessInfo.from_rpc(i) for i in infos}

    async def tail_log(self, name: str, length: int = 4000) -> str:
        try:
            text, _offset, _overflow = await self._call("tailProcessStdoutLog", name, 0, length)
        except xmlrpc.client.Fault:
            return ""
        return str(text)

    async def log_tail(self, name: str, channel: str, length: int) -> LogTail:
        """The last `length` bytes or so of a program's `channel` ("stdout", "stderr") log.

        supervisord decodes what it sends as strict UTF-8, so a start inside a character
        fails (it answers 500): start up to three bytes later, at the next boundary."""
        method = f"tailProcess{channel.title()}Log"
        for shift in range(4):
            try:
                text, size, overflow = await self._log_call(method, name, 0, length - shift)
                return LogTail(str(text), int(size), bool(overflow))
            except UnknownProgram:
                raise
            except SupervisorError:
                if shift == 3 or length - shift <= 1:
                    raise
        raise AssertionError("unreachable")

    async def log_read(self, name: str, channel: str, offset: int, length: int) -> str:
        """`length` bytes of a program's log from `offset`."""
        return str(await self._log_call(f"readProcess{channel.title()}Log", name, offset, length))

    async def _log_call(self, method: str, name: str, *args: int) -> Any:
        try:
            return await self._call(method, name, *args)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == Faults.BAD_NAME:
                raise UnknownProgram(f"supervisord has no program {name!r}") from None
            raise SupervisorError(f"cannot read the log of {name}: {fault.faultString}") from None
        except ExpatError as exc:
            # XML 1.0 cannot carry most control characters; supervisord sends them raw.
            message = f"the log of {name} holds bytes XML-RPC cannot carry: {exc}"
            raise SupervisorError(message) from None
