"""The comment line a worker's stream ends with, just before `data: [DONE]`: its exact
token counts and when its first output went out, for the gateway's metrics and request
history.

An SSE comment (a line starting with `:`) is skipped by every SSE reader, the OpenAI and
Anthropic SDKs included, so clients see the same events as before. The gateway relays a
stream's bytes without parsing them; it looks for this line in the stream's last bytes
only, once the stream has ended.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

PREFIX = ": lmx "
_PREFIX_BYTES = PREFIX.encode()


@dataclass(frozen=True)
class StreamTrailer:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    # Seconds from the request's arrival at the worker to the stream's first event after
    # its opening one: the first output token, or the finish when there was none.
    first_output_s: float | None

    def frame(self) -> bytes:
        fields = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "first_output_s": self.first_output_s,
        }  # not dataclasses.asdict: it deep-copies, and this runs once per stream
        return _PREFIX_BYTES + json.dumps(fields, separators=(",", ":")).encode() + b"\n\n"

    @classmethod
    def from_line(cls, line: str) -> StreamTrailer | None:
        """The trailer a comment line holds; None for any other line or a malformed one."""
        if not line.startswith(PREFIX):
            return None
        try:
            data = json.loads(line[len(PREFIX) :])
            first = data["first_output_s"]
            return cls(
                int(data["prompt_tokens"]),
                int(data["completion_tokens"]),
                int(data["cached_tokens"]),
                None if first is None else float(first),
            )
        except (ValueError, KeyError, TypeError):
            return None

    @classmethod
    def find(cls, tail: bytes) -> StreamTrailer | None:
        """The trailer in the last bytes of a stream, if they hold it whole."""
        start = tail.rfind(b"\n" + _PREFIX_BYTES)
        start = start + 1 if start >= 0 else (0 if tail.startswith(_PREFIX_BYTES) else -1)
        if start < 0:
            return None
        end = tail.find(b"\n", start)
        if end < 0:
            return None
        return cls.from_line(tail[start:end].decode("utf-8", "replace"))
