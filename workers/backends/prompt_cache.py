"""The prompt cache both backends share: KV states of token sequences a worker already
computed, found again by the longest prefix they share with a new prompt.

Two tiers. RAM: least-recently-used under a byte cap (`prompt_cache_gb`). Disk (optional,
`prompt_cache_dir`): what falls out of RAM, and everything still in RAM when the worker
stops, so a model that is unloaded and loaded again, or restarted, comes back warm. The
disk tier is least-recently-used under its own cap; its token lists are read at start,
its states only on a hit. A backend supplies how its state is measured, copied to disk
and read back; everything about choosing and keeping entries lives here, once.

What falls out of RAM is written by a thread of its own where the backend's state can be
written from any thread (llama.cpp's bytes): the request whose state pushed it out would
otherwise wait for the write (35 MB for a 1,500-token SmolLM2 conversation) before its
first token. Until written it is still found, by the spilled entries' list.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from workers.contract.health import PromptCacheStats

State = TypeVar("State")

log = logging.getLogger("workers.prompt_cache")

# Reusing fewer tokens than this costs more (a state copy) than it saves (a prefill).
MIN_REUSE = 16
_TOKENS_SUFFIX = ".tokens.npy"


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


@dataclass
class Entry(Generic[State]):
    tokens: np.ndarray  # int32, the sequence whose KV the state holds
    state: State
    nbytes: int


@dataclass(frozen=True)
class Hit(Generic[State]):
    entry: Entry[State]
    reuse: int  # tokens of the prompt the entry's state already holds


@dataclass(frozen=True)
class StateCodec(Generic[State]):
    """What the cache needs to know of a backend's state: its size, and how to write it
    to a file and read it back."""

    nbytes: Callable[[State], int]
    save: Callable[[Path, State], None]
    load: Callable[[Path], State]
    suffix: str  # of its files (a loader may go by it: safetensors)
    # Whether `save` may run on a thread of the cache's own: not for MLX, whose save
    # evaluates arrays, which MLX before 0.31.2 does not allow beside the batch thread.
    save_anywhere: bool = False


class DiskTier(Generic[State]):
    """States in files named by the hash of their tokens, least-recently-used by mtime."""

    def __init__(self, directory: Path, max_bytes: int, codec: StateCodec[State]) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._codec = codec
        directory.mkdir(parents=True, exist_ok=True)
        # Generation threads write while others look up: the index changes under a lock.
        self._lock = threading.RLock()
        self._index: dict[str, np.ndarray] = {}
        self.nbytes = 0
        for tokens_file in directory.glob("*" + _TOKENS_SUFFIX):
            key = tokens_file.name.removesuffix(_TOKENS_SUFFIX)
            try:
                self._index[key] = np.load(tokens_file)
            except (OSError, ValueError):
                self._remove(key)
        # Kept up to date rather than summed from the folder: /health reads it every poll.
        self.nbytes = sum(_size(path) for path in self._state_files())

    def best(self, tokens: np.ndarray) -> tuple[str, int] | None:
        with self._lock:
            stored_items = list(self._index.items())
        found = max(
            ((key, common_prefix(stored, tokens)) for key, stored in stored_items),
            key=lambda pair: pair[1],
            default=None,
        )
        return found if found is not None and found[1] > 0 else None

    def tokens_of(self, key: str) -> np.ndarray:
        with self._lock:
            return self._index[key]

    def read(self, key: str) -> State | None:
        path = self._state_path(key)
        try:
            state = self._codec.load(path)
            path.touch()  # recency for eviction
        except Exception as error:  # a torn or foreign file: forget it, do not fail the request
            log.warning("prompt cache file %s unreadable (%s); removed", path.name, error)
            self._remove(key)
            return None
        return state

    def write(self, tokens: np.ndarray, state: State) -> None:
        key = _key(tokens)
        with self._lock:
            if key in self._index:
                self._state_path(key).touch()
                return
        # The file is written outside the lock: lookups must not wait for a write. Two
        # threads writing the same state each use their own temporary file.
        tmp = self.directory / f"tmp-{key}-{threading.get_ident()}{self._codec.suffix}"
        try:
            self._codec.save(tmp, state)
            tmp.replace(self._state_path(key))
            np.save(self.directory / (key + _TOKENS_SUFFIX), tokens)
        except Exception as error:  # a full disk must not fail the request that caused it
            log.warning("cannot write prompt cache file (%s)", error)
            tmp.unlink(missing_ok=True)
            return
        with self._lock:
            if key not in self._index:
                self._index[key] = tokens
                self.nbytes += _size(self._state_path(key))
            self._evict()

    def _state_files(self) -> list[Path]:
        found = self.directory.glob("*" + self._codec.suffix)
        return [path for path in found if not path.name.startswith("tmp-")]

    def _evict(self) -> None:
        if self.nbytes <= self.max_bytes:
            return
        for path in sorted(self._state_files(), key=_mtime):
            if self.nbytes <= self.max_bytes:
                return
            self._remove(path.name.removesuffix(self._codec.suffix))

    def _remove(self, key: str) -> None:
        with self._lock:
            self._index.pop(key, None)
            state = self._state_path(key)
            self.nbytes = max(0, self.nbytes - _size(state))
            state.unlink(missing_ok=True)
            (self.directory / (key + _TOKENS_SUFFIX)).unlink(missing_ok=True)

    def _state_path(self, key: str) -> Path:
        return self.directory / f"{key}{self._codec.suffix}"


class PromptCache(Generic[State]):
    """Thread-safe: the generation threads (llama.cpp) or the batch thread (MLX) use it."""

    def __init__(
        self, max_bytes: int, codec: StateCodec[State], disk: DiskTier[State] | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self.disk = disk
        self._codec = codec
        self._entries: OrderedDict[str, Entry[State]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = self._misses = self._reused = 0
        # Out of RAM, on their way to disk: still found by lookups until written.
        self._spilled: dict[str, Entry[State]] = {}
        self._writes: queue.Queue[Entry[State]] | None = None
        if disk is not None and codec.save_anywhere:
            self._writes = queue.Queue()
            threading.Thread(
                target=self._write_spilled, name="prompt-cache-disk", daemon=True
            ).start()

    def lookup(self, tokens: Sequence[int], already: int = 0) -> Hit[State] | None:
        """The stored state sharing the longest prefix with `tokens`, if that is at least
        MIN_REUSE tokens and more than `already` (what the caller holds without it)."""
        wanted = np.asarray(tokens, dtype=np.int32)
        with self._lock:
            hit = self._best_in_ram(wanted)
        disk = self.disk.best(wanted) if self.disk is not None else None
        if disk is not None and disk[1] > (hit.reuse if hit else 0):
            hit = self._from_disk(*disk) or hit
        return hit if hit is not None and hit.reuse >= max(MIN_REUSE, already + 1) else None

    def count(self, reused: int) -> None:
        """Record one prompt: a hit when it reused at least MIN_REUSE tokens from anywhere."""
        with self._lock:
            if reused >= MIN_REUSE:
                self._hits += 1
                self._reused += reused
            else:
                self._misses += 1

    def store(self, tokens: Sequence[int], state: State) -> None:
        """Keep `state` for `tokens`; an entry that is a prefix of them is now redundant."""
        nbytes = self._codec.nbytes(state)
        if len(tokens) < MIN_REUSE or nbytes > self.max_bytes:
            return
        entry = Entry(np.asarray(tokens, dtype=np.int32), state, nbytes)
        key = _key(entry.tokens)
        with self._lock:
            for other_key, other in list(self._entries.items()):
                if common_prefix(other.tokens, entry.tokens) == len(other.tokens):
                    del self._entries[other_key]
            self._entries[key] = entry
            spilled = self._evict()
        self._spill(spilled)

    def holds(self, tokens: Sequence[int]) -> bool:
        with self._lock:
            return _key(np.asarray(tokens, dtype=np.int32)) in self._entries

    def flush(self) -> None:
        """Everything still in RAM to disk, most recent last (so it is evicted last); returns
        once all of it is written."""
        with self._lock:
            entries = list(self._entries.values())
        self._spill(entries)
        self.drain()

    def drain(self) -> None:
        """Wait until what has fallen out of RAM is on disk."""
        if self._writes is not None:
            self._writes.join()

    def stats(self) -> PromptCacheStats:
        with self._lock:
            ram = sum(entry.nbytes for entry in self._entries.values())
            return PromptCacheStats(
                hits=self._hits,
                misses=self._misses,
                tokens_reused=self._reused,
                entries=len(self._entries),
                ram_bytes=ram,
                disk_bytes=self.disk.nbytes if self.disk is not None else 0,
            )

    def _best_in_ram(self, wanted: np.ndarray) -> Hit[State] | None:
        held = [*self._spilled.items(), *self._entries.items()]  # on a tie, the first listed
        scored = ((common_prefix(e.tokens, wanted), key, e) for key, e in held)
        reuse, key, entry = max(scored, key=lambda found: found[0], default=(0, "", None))
        if reuse == 0 or entry is None:
            return None
        if key in self._entries:
            self._entries.move_to_end(key)
        return Hit(entry, reuse)

    def _from_disk(self, key: str, reuse: int) -> Hit[State] | None:
        assert self.disk is not None
        started = time.monotonic()
        state = self.disk.read(key)
        if state is None:
            return None
        took = time.monotonic() - started
        log.info("prompt cache: %d tokens' state read from disk in %.3fs", reuse, took)
        tokens = self.disk.tokens_of(key)
        self.store(tokens.tolist(), state)  # back in RAM: it is hot again
        return Hit(Entry(tokens, state, self._codec.nbytes(state)), reuse)

    def _evict(self) -> list[Entry[State]]:
        spilled = []
        total = sum(entry.nbytes for entry in self._entries.values())
        while total > self.max_bytes and self._entries:
            _, entry = self._entries.popitem(last=False)
            total -= entry.nbytes
            spilled.append(entry)
        return spilled

    def _spill(self, entries: list[Entry[State]]) -> None:
        if self.disk is None:
            return
        for entry in entries:
            with self._lock:
                # Spilled states still take memory: past a quarter of the cap's worth, the
                # request that spills waits for its own write.
                behind = sum(e.nbytes for e in self._spilled.values()) >= self.max_bytes // 4
                if self._writes is not None and not behind:
                    self._spilled[_key(entry.tokens)] = entry
                    self._writes.put(entry)
                    continue
            self.disk.write(entry.tokens, entry.state)

    def _write_spilled(self) -> None:
        assert self.disk is not None and self._writes is not None
        while True:
            entry = self._writes.get()
            try:
                self.disk.write(entry.tokens, entry.state)  # logs its own failures
            finally:
                with self._lock:
                    self._spilled.pop(_key(entry.tokens), None)
                self._writes.task_done()


def _key(tokens: np.ndarray) -> str:
    return hashlib.sha256(tokens.astype(np.int32).tobytes()).hexdigest()[:32]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@dataclass(frozen=True)
class CacheLimits:
    ram_bytes: int = 1024**3
    disk_dir: Path | None = None  # None: no disk tier
    disk_bytes: int = 8 * 1024**3


def build_cache(limits: CacheLimits, codec: StateCodec[State]) -> PromptCache[State]:
    disk = None
    if limits.disk_dir is not None and limits.disk_bytes > 0:
        disk = DiskTier(limits.disk_dir, limits.disk_bytes, codec)
    return PromptCache(limits.ram_bytes, codec, disk)
