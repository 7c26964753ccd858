"""Reading server-sent events: the JSON payload of each `data:` line.

The same rule as workers.contract.sse.sse_payloads, for a blocking reader: that one is
async and pulls in Starlette, which the CLI keeps off its start-up path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


class MalformedEvent(ValueError):
    """A `data:` line whose payload is not JSON."""


def sse_payloads(lines: Iterable[str]) -> Iterator[Any]:
    """Each `data:` payload, parsed, until `data: [DONE]` or the end of the stream.

    Comments (`: loading ...` while a model loads), event names and blank lines are
    skipped.
    """
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            payload = json.loads(data)
        except ValueError:
            raise MalformedEvent(f"not JSON: {data[:80]!r}") from None
        yield payload
