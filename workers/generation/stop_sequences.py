"""Stop sequences over streamed text, with holdback.

Text that might be the start of a stop sequence is held back until the next token shows
whether it is one, so a client never sees half a stop sequence that later vanishes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StopCheck:
    released: str  # text now safe to show
    matched: str | None = None  # the stop sequence that ended generation, if any


class StopMatcher:
    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""

    def feed(self, text: str) -> StopCheck:
        if not self._stops:
            return StopCheck(text)
        buffer = self._held + text
        hit = self._first_match(buffer)
        if hit is not None:
            position, stop = hit
            self._held = ""
            return StopCheck(buffer[:position], stop)
        keep = self._partial_suffix_length(buffer)
        self._held = buffer[len(buffer) - keep :]
        return StopCheck(buffer[: len(buffer) - keep])

    def flush(self) -> str:
        """The held-back text, once generation ended without a match."""
        held, self._held = self._held, ""
        return held

    def _first_match(self, buffer: str) -> tuple[int, str] | None:
        hits = [(buffer.find(stop), stop) for stop in self._stops if stop in buffer]
        return min(hits, key=lambda hit: hit[0]) if hits else None

    def _partial_suffix_length(self, buffer: str) -> int:
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), longest, -1):
                if buffer.endswith(stop[:size]):
                    longest = size
                    break
        return longest
