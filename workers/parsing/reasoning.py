"""Separating a model's `<think>...</think>` reasoning from its answer, streaming.

One reasoning block, at the start of the output: either the model opens it (`<think>`
first, after optional whitespace) or the chat template already did (starts_in_reasoning,
and then a repeated `<think>` is dropped). Once the answer has begun, `<think>` and
`</think>` are ordinary text: an answer (or a tool argument) may well contain them.
Whitespace just inside the block and just after it is layout and is dropped. A block
that never closes (max_tokens) stays reasoning.
"""

from __future__ import annotations

import enum

from workers.contract.settings import ReasoningParserName
from workers.parsing.events import OutputEvent, ReasoningDelta, TextDelta
from workers.parsing.tool_calls.text import MarkerSet, Trimmer
from workers.prompt.template import generation_prompt

REASONING_PARSERS: tuple[ReasoningParserName, ...] = tuple(ReasoningParserName)
OPEN = "<think>"
CLOSE = "</think>"
_CLOSE = MarkerSet(CLOSE)


class _State(enum.Enum):
    OPENING = "opening"  # before anything but whitespace: does a <think> come?
    REASONING = "reasoning"
    AFTER = "after"  # just after </think>: dropping whitespace
    ANSWER = "answer"


class ReasoningSplitter:
    """Turns raw text into ReasoningDelta and (answer) TextDelta events."""

    def __init__(self, *, starts_in_reasoning: bool = False) -> None:
        self._starts_in_reasoning = starts_in_reasoning
        self._state = _State.OPENING
        self._pending = ""
        self._trim = Trimmer(strip_leading=True)

    def feed(self, text: str) -> list[OutputEvent]:
        out: list[OutputEvent] = []
        if self._state is _State.OPENING:
            text = self._open(text)
        if self._state is _State.REASONING and text:
            text = self._reason(text, out)
        if self._state is _State.AFTER and text:
            text = text.lstrip()
            if text:
                self._state = _State.ANSWER
        if self._state is _State.ANSWER and text:
            out.append(TextDelta(text))
        return out

    def finish(self) -> list[OutputEvent]:
        pending, self._pending = self._pending, ""
        out: list[OutputEvent] = []
        if self._state is _State.OPENING and not self._starts_in_reasoning:
            if pending:
                out.append(TextDelta(pending))
        elif self._state in (_State.OPENING, _State.REASONING):
            # An unclosed block's trailing whitespace is layout, like a closed one's.
            reasoning = self._trim.push(pending)
            if reasoning:
                out.append(ReasoningDelta(reasoning))
        self._state = _State.ANSWER
        return out

    def _open(self, text: str) -> str:
        """Decide whether the output starts with reasoning; return the text to go on with."""
        buf = self._pending + text
        head = buf.lstrip()
        if len(head) < len(OPEN) and OPEN.startswith(head):
            self._pending = buf
            return ""
        self._pending = ""
        if head.startswith(OPEN):
            self._state = _State.REASONING
            return head[len(OPEN) :]
        self._state = _State.REASONING if self._starts_in_reasoning else _State.ANSWER
        return buf

    def _reason(self, text: str, out: list[OutputEvent]) -> str:
        buf = self._pending + text
        found = _CLOSE.find(buf)
        end = found[0] if found else _CLOSE.held_start(buf)
        reasoning = self._trim.push(buf[:end])
        if reasoning:
            out.append(ReasoningDelta(reasoning))
        if found is None:
            self._pending = buf[end:]
            return ""
        self._pending = ""
        self._state = _State.AFTER
        return buf[end + len(CLOSE) :]


def detect_reasoning_parser(chat_template: str | None) -> tuple[str | None, bool]:
    """("think", starts_in_reasoning) for a template that knows <think>, else (None, False).

    starts_in_reasoning: the template's generation prompt itself ends inside an open
    think block (QwQ, DeepSeek-R1, MiniMax-M2), so the output begins as reasoning.
    """
    if not chat_template or (OPEN not in chat_template and CLOSE not in chat_template):
        return None, False
    prompt = generation_prompt(chat_template)
    if prompt is None:
        return ReasoningParserName.THINK, _appends_think_by_reading(chat_template)
    return ReasoningParserName.THINK, _opens_think(prompt)


def _opens_think(text: str) -> bool:
    start = text.rfind(OPEN)
    return start >= 0 and CLOSE not in text[start:]


def _appends_think_by_reading(chat_template: str) -> bool:
    # Fallback for templates that need more than a plain user message to render: read
    # the part after the last add_generation_prompt test, where the prompt is appended.
    at = chat_template.rfind("add_generation_prompt")
    if at < 0:
        return False
    tail = chat_template[at:]
    start = tail.find(OPEN)
    while start >= 0:
        if CLOSE not in tail[start : start + len(OPEN) + 24]:
            return True
        start = tail.find(OPEN, start + 1)
    return False
