"""Two Linux network namespaces joined by a veth pair: two machines' network stacks on
one machine, for tests of gateways that talk to each other.

Each namespace has its own loopback and one address on the shared link. Work runs inside
one through `Namespace.run`: a thread that entered the namespace (setns(2)) creates its
sockets there, and a process it starts (a supervisord stack) lives there with all its
children, exactly as under `ip netns exec`. Needs root (CAP_SYS_ADMIN) and iproute2;
`namespace_pair` skips the test with the reason where they cannot be had.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000  # from <sched.h>


def _enter(name: str) -> None:
    """Move the calling thread into namespace `name` (what `ip netns exec` does)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)


@dataclass
class Namespace:
    name: str
    address: str  # its address on the link
    _threads: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self._threads = ThreadPoolExecutor(4, self.name, _enter, (self.name,))

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._threads.submit(fn, *args)

    def run(self, fn: Callable[..., T], *args: Any, timeout: float = 120) -> T:
        """`fn(*args)` on a thread inside the namespace."""
        return self.submit(fn, *args).result(timeout)

    def listening(self) -> list[str]:
        """The local addresses of every listening TCP socket in the namespace."""
        out = _ip("netns", "exec", self.name, "ss", "-ltnH")
        return [_host(line.split()[3]) for line in out.splitlines() if line.strip()]

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


def listening_pids_here() -> set[int]:
    """Processes with a listening TCP socket in this (the test's own) namespace."""
    out = subprocess.run(
        ["ss", "-ltnpH"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


@contextlib.contextmanager
def namespace_pair() -> Iterator[tuple[Namespace, Namespace]]:
    """Namespaces lmx-a-<pid> (10.N.M.1/24) and lmx-b-<pid> (10.N.M.2/24) on one veth
    pair, removed (link included) in every outcome."""
    if sys.platform != "linux" or shutil.which("ip") is None or shutil.which("ss") is None:
        pytest.skip("network namespaces need Linux with iproute2 (ip, ss)")
    pid = os.getpid()
    names = (f"lmx-a-{pid}", f"lmx-b-{pid}")
    subnet = f"10.{200 + pid % 50}.{pid // 50 % 250}"
    created: list[str] = []
    try:
        for name in names:
            _add_namespace(name)
            created.append(name)
        links = (f"lmxa{pid}", f"lmxb{pid}")
        _ip("link", "add", links[0], "netns", names[0], "type", "veth", "peer", "name",
            links[1], "netns", names[1])  # fmt: skip
        pair = []
        for i, (name, link) in enumerate(zip(names, links, strict=True)):
            address = f"{subnet}.{i + 1}"
            _ip("-n", name, "addr", "add", f"{address}/24", "dev", link)
            _ip("-n", name, "link", "set", link, "up")
            _ip("-n", name, "link", "set", "lo", "up")
            pair.append(Namespace(name, address))
        try:
            yield pair[0], pair[1]
        finally:
            for namespace in pair:
                namespace.close()
    finally:
        for name in created:  # the veth pair goes with its namespaces
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def _add_namespace(name: str) -> None:
    result = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if result.returncode != 0:
        reason = result.stderr.strip() or f"exit status {result.returncode}"
        pytest.skip(f"cannot create a network namespace here (`ip netns add`: {reason})")


def _ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _host(local_address: str) -> str:
    """`10.0.0.1:1234`, `[::1]:80`, `*:22` -> the host part."""
    host = local_address.rsplit(":", 1)[0]
    return host.strip("[]").split("%", 1)[0]
