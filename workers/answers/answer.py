"""What every answer shares: ids, the parser seam, usage."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from workers.generation.bridge import Chunk, Outcome
from workers.parsing.events import OutputEvent


class EventParser(Protocol):
    """workers.parsing.output.OutputParser, or workers.parsing.forced_tools.ForcedToolCallParser."""

    @property
    def saw_tool_calls(self) -> bool: ...

    def feed(self, text: str) -> list[OutputEvent]: ...

    def finish(self) -> list[OutputEvent]: ...


@dataclass(frozen=True)
class AnswerId:
    model: str
    prefix: str
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", f"{self.prefix}-{uuid.uuid4().hex}")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # of the prompt tokens, those the prompt cache already held

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
        }


class Answer(Protocol):
    """One endpoint's output shape, fed by one generation, streamed or whole."""

    def head(self) -> list[dict[str, Any]]: ...

    def feed(self, chunk: Chunk) -> list[dict[str, Any]]: ...

    def stream(self, chunk: Chunk) -> bytes:
        """What feed() returns, as SSE events (b"" for none): the streamed path."""
        ...

    def finish(self, outcome: Outcome) -> list[dict[str, Any]]: ...

    def usage_chunk(self, usage: Usage) -> dict[str, Any]: ...

    def whole(self, outcome: Outcome, usage: Usage) -> dict[str, Any]: ...
