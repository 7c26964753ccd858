"""A streamed answer's bytes: the template path for plain text (Answer.stream) frames
exactly what the general path (feed, then sse_events) frames."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from workers.answers.answer import AnswerId, Usage
from workers.answers.chat import ChatAnswer
from workers.answers.completion import CompletionAnswer
from workers.backends.base import Token
from workers.contract.sse import SLOT, EventTemplate, sse_event, sse_events
from workers.generation.bridge import Chunk, Outcome
from workers.parsing.output import OutputParser

PIECES = [
    " plain",
    "",
    "é 你好 🙂",
    'quote " and \\ backslash',
    "nul \x00 tab \t newline \n",
    "separators \u2028 \u2029",
    "<tool_call>",
    '{"name": "f", "arguments": {"a": 1}}',
    "</tool_call>",
    " after",
    "<thi",
    "nk> not reasoning here",
    "   ",
]
ANSWER_ID = AnswerId("smollm2", "chatcmpl", id="chatcmpl-fixed", created=1700000000)


def _ids() -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"call_{next(counter)}"


def _chat(tool_parser: str | None, reasoning: str | None, logprobs: bool) -> ChatAnswer:
    parser = OutputParser(
        tool_parser=tool_parser, reasoning_parser=reasoning, tools=None, new_id=_ids()
    )
    return ChatAnswer(ANSWER_ID, parser, logprobs=logprobs)


def _chunk(index: int, text: str) -> Chunk:
    return Chunk(text, (Token(text, index, -0.5, {text: -0.5}),))


@pytest.mark.parametrize("tool_parser", [None, "hermes"])
@pytest.mark.parametrize("reasoning", [None, "think"])
@pytest.mark.parametrize("logprobs", [False, True])
def test_chat_stream_frames_what_feed_frames(
    tool_parser: str | None, reasoning: str | None, logprobs: bool
) -> None:
    streamed, fed = (_chat(tool_parser, reasoning, logprobs) for _ in range(2))
    for index, text in enumerate(PIECES):
        chunk = _chunk(index, text)
        assert streamed.stream(chunk) == sse_events(fed.feed(chunk)), repr(text)


def test_chat_stream_keeps_the_whole_message_too() -> None:
    streamed, fed = _chat("hermes", None, False), _chat("hermes", None, False)
    for index, text in enumerate(PIECES):
        streamed.stream(_chunk(index, text))
        fed.feed(_chunk(index, text))
    usage, outcome = Usage(5, len(PIECES)), Outcome()
    assert streamed.finish(outcome) == fed.finish(outcome)
    assert streamed.whole(outcome, usage) == fed.whole(outcome, usage)


@pytest.mark.parametrize("logprobs", [False, True])
def test_completion_stream_frames_what_feed_frames(logprobs: bool) -> None:
    answer_id = AnswerId("smollm2", "cmpl", id="cmpl-fixed", created=1700000000)
    streamed, fed = CompletionAnswer(answer_id, logprobs), CompletionAnswer(answer_id, logprobs)
    for index, text in enumerate(PIECES):
        chunk = _chunk(index, text)
        assert streamed.stream(chunk) == sse_events(fed.feed(chunk)), repr(text)


def test_an_event_template_matches_the_encoder_for_any_text() -> None:
    payload = {"id": "x", "choices": [{"delta": {"content": SLOT}, "finish_reason": None}]}
    template = EventTemplate(payload)
    for text in PIECES:
        expected = {"id": "x", "choices": [{"delta": {"content": text}, "finish_reason": None}]}
        assert template.event(text) == sse_event(expected)


def test_an_event_template_needs_its_slot_once() -> None:
    with pytest.raises(ValueError):
        EventTemplate({"content": "no slot"})
    with pytest.raises(ValueError):
        EventTemplate({"a": SLOT, "b": SLOT})
