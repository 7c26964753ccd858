"""What the output parsers make of a model's raw text, one event at a time.

A parser turns generated text into these events; the worker frames them as OpenAI
deltas (or whole messages) and the gateway's Anthropic translation as content blocks.
Concatenating every ToolCallArguments.fragment of one index gives that call's final
JSON arguments string.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class ToolCallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True)
class ToolCallArguments:
    index: int
    fragment: str


OutputEvent = TextDelta | ReasoningDelta | ToolCallStart | ToolCallArguments
