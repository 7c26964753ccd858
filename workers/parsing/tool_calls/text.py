"""Text-stream helpers shared by the parsers.

A streaming parser must never let part of a marker out as text, yet must not re-scan
everything it has seen on each token: it keeps only the short tail that could still
grow into a marker, and searches that tail plus the new text.
"""

from __future__ import annotations


class MarkerSet:
    """The markers that switch a parser out of plain text."""

    def __init__(self, *markers: str) -> None:
        self.markers = markers
        self._firsts = frozenset(m[0] for m in markers)
        self._longest = max(len(m) for m in markers)

    def may_start_in(self, text: str) -> bool:
        """Whether a marker could begin anywhere in `text` (the cheap test first)."""
        return any(first in text for first in self._firsts)

    def find(self, buf: str) -> tuple[int, str] | None:
        """The earliest whole marker in `buf`, as (index, marker)."""
        best: tuple[int, str] | None = None
        for marker in self.markers:
            i = buf.find(marker)
            if i >= 0 and (best is None or i < best[0]):
                best = (i, marker)
        return best

    def held_start(self, buf: str) -> int:
        """Where the tail of `buf` that could still become a marker starts (len(buf): none).

        Callers look for whole markers first, so only proper prefixes matter here.
        """
        for i in range(max(0, len(buf) - self._longest + 1), len(buf)):
            if buf[i] in self._firsts and any(m.startswith(buf[i:]) for m in self.markers):
                return i
        return len(buf)


class Trimmer:
    """Keeps whitespace from piling up where markup was cut out of the text.

    Whitespace at the end of what was pushed is held until more text shows it is inside
    the text; `boundary()` drops it (markup follows) and strips whitespace that comes
    right after (markup preceded). `flush()` gives back what is held at the very end.
    """

    def __init__(self, *, strip_leading: bool = False) -> None:
        self._strip_leading = strip_leading
        self._held = ""

    def push(self, text: str) -> str:
        if self._strip_leading:
            text = text.lstrip()
            if not text:
                return ""
            self._strip_leading = False
        body = text.rstrip()
        if not body:
            self._held += text
            return ""
        out = self._held + body
        self._held = text[len(body) :]
        return out

    def boundary(self) -> None:
        self._held = ""
        self._strip_leading = True

    def flush(self) -> str:
        out, self._held = self._held, ""
        return out
