"""Tools for models whose chat template cannot show them.

Such a template drops `tools` silently, so the model would never learn they exist. As
LM Studio does, the worker then describes the tools in the system message and asks for
Hermes-style <tool_call> markup, which the hermes parser reads back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

FALLBACK_TOOL_PARSER = "hermes"

_INSTRUCTIONS = (
    "You can call functions. Their signatures are inside <tools></tools>:\n"
    "<tools>\n{tools}\n</tools>\n"
    "To call one, reply with only this, once per call:\n"
    '<tool_call>\n{{"name": <function-name>, "arguments": <arguments-object>}}\n</tool_call>'
)


def with_tool_instructions(
    messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]
) -> tuple[dict[str, Any], ...]:
    listing = "\n".join(json.dumps(tool["function"], ensure_ascii=False) for tool in tools)
    instructions = _INSTRUCTIONS.format(tools=listing)
    if messages and messages[0]["role"] in ("system", "developer"):
        first = messages[0]
        merged = {**first, "content": f"{first['content']}\n\n{instructions}".lstrip()}
        return (merged, *messages[1:])
    return ({"role": "system", "content": instructions}, *messages)
