"""A small pool of llama.cpp contexts, created on first need, one per concurrent request.

A context keeps the KV cache of its last request, so a request is handed the free
context that already holds the longest prefix of its prompt (its slot): an agent's next
turn lands where its last turn left off, whoever came in between.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

Context = TypeVar("Context")


class ContextPool(Generic[Context]):
    def __init__(self, factory: Callable[[], Context], size: int) -> None:
        self._factory = factory
        self._size = max(1, size)
        self._free: list[Context] = []
        self._all: list[Context] = []
        self._created = 0
        self._in_use = 0
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        return self._in_use

    def contexts(self) -> list[Context]:
        """Every context created so far (for saving their states at shutdown)."""
        with self._changed:
            return list(self._all)

    def warm(self) -> Context:
        """Create the first context now (so a bad file fails the load) and return it."""
        context = self._factory()
        with self._changed:
            self._created += 1
            self._all.append(context)
            self._free.append(context)
        return context

    @contextmanager
    def lease(self, score: Callable[[Context], int] = lambda _: 0) -> Iterator[Context]:
        """The free context that scores highest (the longest prefix held), else a new one
        while the pool may grow, else the next one given back."""
        context = self._take(score)
        try:
            yield context
        finally:
            with self._changed:
                self._in_use -= 1
                self._free.append(context)
                self._changed.notify()

    def _take(self, score: Callable[[Context], int]) -> Context:
        with self._changed:
            while True:
                best = max(self._free, key=score, default=None)
                if best is not None and (score(best) > 0 or self._created >= self._size):
                    self._free.remove(best)
                    self._in_use += 1
                    return best
                if self._created < self._size:
                    self._created += 1
                    self._in_use += 1
                    break
                self._changed.wait()
        try:
            context = self._factory()
        except BaseException:
            with self._changed:
                self._created -= 1
                self._in_use -= 1
            raise
        with self._changed:
            self._all.append(context)
        return context
