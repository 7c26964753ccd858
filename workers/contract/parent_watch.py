"""No orphans: a program supervisord started exits when supervisord dies.

Killed with SIGKILL (the kernel's OOM killer, say), supervisord cannot stop its children;
left running, they would hold the ports the next start needs. On Linux the kernel sends
the parent-death signal; elsewhere (macOS) a thread notices the parent is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger("lmx.parent")

_PR_SET_PDEATHSIG = 1
POLL_S = 1.0


def exit_with_parent() -> None:
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        _linux_death_signal()
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()


def _linux_death_signal() -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass  # the watcher thread still covers it


def _watch(parent: int) -> None:
    # The parent may already be gone before prctl ran; a re-parented child sees a new ppid.
    while os.getppid() == parent:
        time.sleep(POLL_S)
    log.warning("parent process %d is gone: stopping", parent)
    os.kill(os.getpid(), signal.SIGTERM)
