"""Find where one JSON object or array ends, reading it piece by piece.

Formats without a closing tag (mistral, llama3) end a call where its JSON ends. Only
strings, escapes and brackets matter for that; `json.loads` judges the rest.
"""

from __future__ import annotations

import re

_OUTSIDE = re.compile(r'["{}\[\]]')
_INSIDE = re.compile(r'["\\]')


class JsonValueEnd:
    """Tracks bracket depth across pieces; whitespace may come before the value."""

    def __init__(self) -> None:
        self._depth = 0
        self._started = False
        self._in_string = False
        self._escape = False
        self.failed = False

    def scan(self, text: str) -> int | None:
        """Index in `text` just past the value's end, or None if it has not ended yet.

        A value that does not start with `{` or `[` sets `failed` and returns the index
        of the offending character.
        """
        i = 0
        if not self._started:
            while i < len(text) and text[i].isspace():
                i += 1
            if i == len(text):
                return None
            if text[i] not in "{[":
                self.failed = True
                return i
            self._started = True
        return self._scan_body(text, i)

    def _scan_body(self, text: str, i: int) -> int | None:
        while i < len(text):
            if self._escape:
                self._escape = False
                i += 1
            elif self._in_string:
                m = _INSIDE.search(text, i)
                if m is None:
                    return None
                self._in_string = m.group() != '"'
                self._escape = m.group() == "\\"
                i = m.end()
            else:
                m = _OUTSIDE.search(text, i)
                if m is None:
                    return None
                i = m.end()
                if self._step(m.group()):
                    return i
        return None

    def _step(self, char: str) -> bool:
        """Apply one structural character; True when the value just closed."""
        if char == '"':
            self._in_string = True
            return False
        self._depth += 1 if char in "{[" else -1
        return self._depth == 0
