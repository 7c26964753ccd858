"""The worker's event loop runs on short time slices, its generation threads on the
kernel's own (workers.contract.time_slice). Linux 6.12+ only: elsewhere it is a no-op."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.integration.workers.conftest import StartScripted
from workers.contract.time_slice import (
    SHORT_SLICE_NS,
    ask_for_short_slices,
    give_back_short_slices,
)


def _slice_ns(thread_id: int) -> int | None:
    """The scheduler's slice for one of this process's threads, as /proc shows it."""
    path = Path(f"/proc/self/task/{thread_id}/sched")
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        if line.startswith("se.slice"):
            return int(line.split(":")[1])
    return None


def _kernel_takes_custom_slices() -> bool:
    found: list[int | None] = []

    def probe() -> None:
        ask_for_short_slices()
        found.append(_slice_ns(threading.get_native_id()))

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return found == [SHORT_SLICE_NS]


pytestmark = pytest.mark.skipif(
    not _kernel_takes_custom_slices(), reason="this kernel has no per-thread slices"
)


def test_a_thread_started_after_asking_inherits_and_can_give_back() -> None:
    seen: dict[str, int | None] = {}

    def child() -> None:
        seen["inherited"] = _slice_ns(threading.get_native_id())
        give_back_short_slices()
        seen["given back"] = _slice_ns(threading.get_native_id())

    def parent() -> None:
        ask_for_short_slices()
        thread = threading.Thread(target=child)
        thread.start()
        thread.join()

    outer = threading.Thread(target=parent)
    outer.start()
    outer.join()
    assert seen["inherited"] == SHORT_SLICE_NS
    assert seen["given back"] not in (None, SHORT_SLICE_NS)


def test_the_event_loop_asks_for_short_slices_and_generation_does_not(
    start_scripted: StartScripted,
) -> None:
    worker = start_scripted({"default": "one two three"})
    worker.client().chat.completions.create(
        model="m", messages=[{"role": "user", "content": "go"}], max_tokens=3
    )
    loop = worker.thread.native_id
    generators = [t for t in threading.enumerate() if t.name.startswith("generate")]
    assert loop is not None and generators
    assert _slice_ns(loop) == SHORT_SLICE_NS
    for thread in generators:
        assert thread.native_id is not None
        assert _slice_ns(thread.native_id) not in (None, SHORT_SLICE_NS)
