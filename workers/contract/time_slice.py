"""Event loops ask the kernel for short time slices, so they run as soon as they wake.

While a llama.cpp worker decodes, its compute threads keep every core busy, and Linux's
scheduler (EEVDF, 6.6 and later) lets a running thread finish its time slice (1.4 ms
here) before a thread that just woke may run. A token handed to the worker's event loop
then waited 2.3-3.7 ms before the loop could send it (measured here), and again on its
way through the gateway. A thread that asks for a short slice (sched_setattr's
sched_runtime; for an ordinary thread no privilege is needed, Linux 6.12 and later) is
let in at once, 0.7-0.9 ms here; its share of the CPU stays what it was. Elsewhere, or
on older kernels, this does nothing.

New threads inherit the setting: threads that compute (llama.cpp's, which inherit from
the thread that starts them) give it back.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import struct
import sys

SHORT_SLICE_NS = 100_000  # the shortest the kernel accepts
_DEFAULT = 0  # sched_runtime 0: the kernel's own slice

_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}  # sched_setattr, sched_getattr
# struct sched_attr, first version: size, policy, flags, nice, priority, runtime,
# deadline, period.
_SCHED_ATTR = struct.Struct("IIQiIQQQ")


def ask_for_short_slices() -> bool:
    """For the calling thread and the threads it starts from now on; whether the kernel
    accepted the request."""
    return _set_slice(SHORT_SLICE_NS)


def give_back_short_slices() -> bool:
    """The calling thread (and what it starts) back on the kernel's own slices."""
    return _set_slice(_DEFAULT)


def _set_slice(runtime_ns: int) -> bool:
    calls = _SYSCALLS.get(os.uname().machine)
    if not sys.platform.startswith("linux") or calls is None:
        return False
    set_attr, get_attr = calls
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        current = ctypes.create_string_buffer(_SCHED_ATTR.size)
        if libc.syscall(get_attr, 0, current, _SCHED_ATTR.size, 0) != 0:
            return False
        _, policy, _, nice, priority, *_ = _SCHED_ATTR.unpack(current.raw)
        if policy != os.SCHED_OTHER:
            return False  # a real-time or batch thread was set up so on purpose
        wanted = _SCHED_ATTR.pack(_SCHED_ATTR.size, policy, 0, nice, priority, runtime_ns, 0, 0)
        return bool(libc.syscall(set_attr, 0, wanted, 0) == 0)
    return False
