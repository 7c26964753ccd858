"""Why an answer ended, as a worker's `finish_reason` says it (OpenAI's names)."""

from __future__ import annotations

import enum


class FinishReason(enum.StrEnum):
    STOP = "stop"  # the model ended, or a stop sequence matched
    LENGTH = "length"  # max_tokens or the context ran out
    TOOL_CALLS = "tool_calls"  # the answer is tool calls (chat only)
