"""Tool-call parsers, one module per output format, all streaming.

Each parser takes generated text piece by piece and gives TextDelta and tool-call
events; `finish()` flushes what it held back. Pick one by its config name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from workers.contract.settings import ToolParserName
from workers.parsing.events import OutputEvent
from workers.parsing.tool_calls.arguments import CallEmitter, new_call_id
from workers.parsing.tool_calls.hermes import HermesParser
from workers.parsing.tool_calls.llama3 import Llama3Parser
from workers.parsing.tool_calls.minimax import MinimaxParser
from workers.parsing.tool_calls.mistral import MistralParser
from workers.parsing.tool_calls.qwen3_coder import Qwen3CoderParser

TOOL_PARSERS: tuple[ToolParserName, ...] = tuple(ToolParserName)


class ToolParser(Protocol):
    def feed(self, text: str) -> list[OutputEvent]: ...

    def finish(self) -> list[OutputEvent]: ...


N = ToolParserName
_FACTORIES: dict[ToolParserName, Callable[[CallEmitter], ToolParser]] = {
    N.HERMES: HermesParser,
    N.MINIMAX: MinimaxParser,
    N.QWEN3_CODER: Qwen3CoderParser,
    N.MISTRAL: MistralParser,
    N.LLAMA3: Llama3Parser,
}


def make_tool_parser(
    name: str,
    tools: list[dict[str, Any]] | None,
    new_id: Callable[[], str] = new_call_id,
) -> ToolParser:
    if name not in _FACTORIES:
        raise ValueError(f"unknown tool parser {name!r}; expected one of {', '.join(TOOL_PARSERS)}")
    return _FACTORIES[ToolParserName(name)](CallEmitter(tools, new_id))


def detect_tool_parser(chat_template: str | None) -> ToolParserName | None:
    """The tool parser a chat template's own markup calls for, or None."""
    if not chat_template:
        return None
    if "minimax:tool_call" in chat_template:
        return N.MINIMAX
    if "<tool_call>" in chat_template:
        return N.QWEN3_CODER if "<function=" in chat_template else N.HERMES
    if "[TOOL_CALLS]" in chat_template:
        return N.MISTRAL
    if "<|python_tag|>" in chat_template or "ipython" in chat_template:
        return N.LLAMA3
    return None


__all__ = ["TOOL_PARSERS", "ToolParser", "detect_tool_parser", "make_tool_parser", "new_call_id"]
