"""The prompt cache's choices, with states that are plain bytes: the longest shared
prefix wins, RAM stays under its cap least-recently-used, what falls out or is flushed
lands on disk and is found again by a new cache over the same folder."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from workers.backends.prompt_cache import (
    MIN_REUSE,
    CacheLimits,
    PromptCache,
    StateCodec,
    build_cache,
    common_prefix,
)

CODEC: StateCodec[bytes] = StateCodec(
    nbytes=len, save=lambda path, state: path.write_bytes(state), load=Path.read_bytes, suffix=".kv"
)


def seq(start: int, length: int) -> list[int]:
    return list(range(start, start + length))


def cache(ram_bytes: int = 10_000, disk: Path | None = None) -> PromptCache[bytes]:
    return build_cache(CacheLimits(ram_bytes=ram_bytes, disk_dir=disk, disk_bytes=10_000), CODEC)


def test_common_prefix_counts_the_shared_start() -> None:
    import numpy as np

    assert common_prefix(np.array([1, 2, 3]), np.array([1, 2, 4, 5])) == 2
    assert common_prefix(np.array([1, 2]), np.array([1, 2, 3])) == 2
    assert common_prefix(np.array([], dtype=int), np.array([1])) == 0


def test_lookup_finds_the_entry_sharing_the_longest_prefix() -> None:
    store = cache()
    system = seq(0, 40)
    store.store(system + seq(100, 20), b"a" * 10)
    store.store(system + seq(200, 30), b"b" * 10)
    hit = store.lookup([*system, *seq(200, 10), 7, 7])
    assert hit is not None
    assert hit.entry.state == b"b" * 10
    assert hit.reuse == 50


def test_a_prompt_differing_at_one_token_reuses_only_what_precedes_it() -> None:
    store = cache()
    prompt = seq(0, 60)
    store.store(prompt, b"s")
    changed = [*prompt[:30], 999, *prompt[31:]]
    hit = store.lookup(changed)
    assert hit is not None and hit.reuse == 30


def test_too_short_a_shared_prefix_or_no_gain_is_a_miss() -> None:
    store = cache()
    store.store(seq(0, 60), b"s")
    assert store.lookup([*seq(0, MIN_REUSE - 1), 999]) is None
    assert store.lookup(seq(0, 60), already=60) is None
    assert store.lookup(seq(0, 60), already=59) is not None


def test_an_entry_that_is_a_prefix_of_a_new_one_is_replaced() -> None:
    store = cache()
    store.store(seq(0, 40), b"turn1")
    store.store(seq(0, 80), b"turn2")
    assert store.stats().entries == 1
    assert not store.holds(seq(0, 40)) and store.holds(seq(0, 80))


def test_ram_keeps_the_most_recently_used_under_its_cap() -> None:
    store = cache(ram_bytes=250)
    store.store(seq(0, 20), b"a" * 100)
    store.store(seq(1000, 20), b"b" * 100)
    assert store.lookup(seq(0, 20)) is not None  # a is now the most recently used
    store.store(seq(2000, 20), b"c" * 100)
    stats = store.stats()
    assert stats.entries == 2 and stats.ram_bytes == 200
    assert store.holds(seq(0, 20)) and store.holds(seq(2000, 20))
    assert not store.holds(seq(1000, 20))


def test_a_state_larger_than_the_cap_is_not_kept() -> None:
    store = cache(ram_bytes=50)
    store.store(seq(0, 20), b"x" * 51)
    assert store.stats().entries == 0


def test_hits_misses_and_reused_tokens_are_counted() -> None:
    store = cache()
    store.count(0)
    store.count(MIN_REUSE - 1)
    store.count(40)
    stats = store.stats()
    assert (stats.hits, stats.misses, stats.tokens_reused) == (1, 2, 40)


def test_evicted_and_flushed_states_survive_on_disk_for_a_new_cache(tmp_path: Path) -> None:
    first = cache(ram_bytes=150, disk=tmp_path)
    first.store(seq(0, 30), b"a" * 100)
    first.store(seq(1000, 30), b"b" * 100)  # a spills to disk
    assert first.stats().disk_bytes == 100
    first.flush()  # b too, as a worker does when it stops
    assert first.stats().disk_bytes == 200

    second = cache(ram_bytes=150, disk=tmp_path)
    hit = second.lookup([*seq(0, 30), 5, 6])
    assert hit is not None and hit.reuse == 30 and hit.entry.state == b"a" * 100
    assert second.holds(seq(0, 30))  # read back into RAM: hot again


def test_the_disk_tier_stays_under_its_cap_dropping_the_oldest(tmp_path: Path) -> None:
    store = build_cache(CacheLimits(ram_bytes=150, disk_dir=tmp_path, disk_bytes=250), CODEC)
    for i in range(5):
        store.store(seq(i * 1000, 20), bytes([65 + i]) * 100)  # each spills the one before
    assert 0 < store.stats().disk_bytes <= 250
    assert store.lookup(seq(0, 20)) is None  # the oldest went first
    assert store.lookup(seq(2000, 20)) is not None


def test_an_unreadable_disk_entry_is_dropped_not_raised(tmp_path: Path) -> None:
    first = cache(ram_bytes=150, disk=tmp_path)
    first.store(seq(0, 30), b"a" * 100)
    first.flush()

    def broken(path: Path) -> bytes:
        raise ValueError("torn file")

    codec = StateCodec(nbytes=len, save=CODEC.save, load=broken, suffix=".kv")
    second = build_cache(CacheLimits(ram_bytes=150, disk_dir=tmp_path, disk_bytes=10_000), codec)
    assert second.lookup(seq(0, 30)) is None
    assert list(tmp_path.glob("*.kv")) == []


@pytest.mark.parametrize("length", [MIN_REUSE - 1, 0])
def test_sequences_too_short_to_reuse_are_not_stored(length: int) -> None:
    store = cache()
    store.store(seq(0, length), b"s")
    assert store.stats().entries == 0


class HeldSaves:
    """A codec whose saves wait until the test lets them go, noting the thread of each."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.threads: list[str] = []
        self.codec: StateCodec[bytes] = StateCodec(
            nbytes=len, save=self._save, load=Path.read_bytes, suffix=".kv", save_anywhere=True
        )

    def _save(self, path: Path, state: bytes) -> None:
        self.threads.append(threading.current_thread().name)
        assert self.go.wait(10), "the test never let the save go"
        path.write_bytes(state)


def test_a_spilled_state_is_written_off_the_storing_thread_and_found_meanwhile(
    tmp_path: Path,
) -> None:
    saves = HeldSaves()
    limits = CacheLimits(ram_bytes=450, disk_dir=tmp_path, disk_bytes=10_000)
    store = build_cache(limits, saves.codec)
    try:
        store.store(seq(0, 30), b"a" * 300)
        store.store(seq(1000, 30), b"b" * 300)  # a spills; its write waits for `go`
        assert store.stats().disk_bytes == 0  # not written yet, and store() did not wait
        _wait_for(lambda: saves.threads == ["prompt-cache-disk"])  # the write is under way
        hit = store.lookup([*seq(0, 30), 7])  # does not wait for it
        assert hit is not None and hit.entry.state == b"a" * 300  # still found
    finally:
        saves.go.set()
    store.drain()
    assert store.stats().disk_bytes == 300
    assert saves.threads == ["prompt-cache-disk"]
    assert build_cache(limits, CODEC).lookup([*seq(0, 30), 7]) is not None


def test_writes_that_fall_behind_make_the_spilling_request_write_its_own(
    tmp_path: Path,
) -> None:
    saves = HeldSaves()
    store = build_cache(CacheLimits(ram_bytes=150, disk_dir=tmp_path), saves.codec)
    store.store(seq(0, 30), b"a" * 100)
    store.store(seq(1000, 30), b"b" * 100)  # a goes to the writer, which is held
    _wait_for(lambda: saves.threads == ["prompt-cache-disk"])
    storing = threading.Thread(target=store.store, args=(seq(2000, 30), b"c" * 100))
    storing.start()  # b spills while a, more than a quarter of the cap, is unwritten
    _wait_for(lambda: len(saves.threads) == 2)
    saves.go.set()
    storing.join(10)
    store.flush()
    assert saves.threads[:2] == ["prompt-cache-disk", storing.name]
    assert store.stats().disk_bytes == 300


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
