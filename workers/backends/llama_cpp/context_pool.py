"""A small pool of llama.cpp contexts, created on first need, one per concurrent request."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

Context = TypeVar("Context")


class ContextPool(Generic[Context]):
    def __init__(self, factory: Callable[[], Context], size: int) -> None:
        self._factory = factory
        self._size = max(1, size)
        self._free: queue.SimpleQueue[Context] = queue.SimpleQueue()
        self._created = 0
        self._in_use = 0
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self._in_use

    def warm(self) -> Context:
        """Create the first context now (so a bad file fails the load) and return it."""
        context = self._factory()
        with self._lock:
            self._created += 1
        self._free.put(context)
        return context

    @contextmanager
    def lease(self) -> Iterator[Context]:
        context = self._take()
        with self._lock:
            self._in_use += 1
        try:
            yield context
        finally:
            with self._lock:
                self._in_use -= 1
            self._free.put(context)

    def _take(self) -> Context:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        if self._reserve():
            try:
                return self._factory()
            except BaseException:
                with self._lock:
                    self._created -= 1
                raise
        return self._free.get()

    def _reserve(self) -> bool:
        with self._lock:
            if self._created >= self._size:
                return False
            self._created += 1
            return True
