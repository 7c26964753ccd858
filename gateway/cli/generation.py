"""One streamed chat answer, printed as it arrives: the `lmx run` and `lmx chat` core.

Text deltas go to stdout as they come. Reasoning (`reasoning_content`) is dimmed on a
terminal; when stdout is a pipe or a file it goes to stderr, so `lmx run m "q" > a.txt`
holds only the answer. A final dim line on stderr gives tokens and speed. Ctrl-C closes
the stream (the gateway sees the client go and the worker stops generating) and returns
what had arrived, marked as stopped.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from gateway.cli import output
from gateway.cli.client import Client, CliError

CHAT_PATH = "/v1/chat/completions"


@dataclass
class Answer:
    content: list[str] = field(default_factory=list)
    completion_tokens: int | None = None
    started: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    ended: float | None = None
    stopped: bool = False  # Ctrl-C ended it

    @property
    def text(self) -> str:
        return "".join(self.content)

    def summary(self) -> str:
        ended = self.ended or time.monotonic()
        tokens = self.completion_tokens
        if tokens is None:
            parts = ["tokens not reported"]
        else:
            parts = [f"{tokens} token" + ("" if tokens == 1 else "s")]
        if self.first_token_at is not None:
            decode = ended - self.first_token_at
            if tokens and tokens > 1 and decode > 0:
                parts.append(f"{(tokens - 1) / decode:.1f} tok/s")
            parts.append(f"first token {self.first_token_at - self.started:.2f}s")
        parts.append(f"total {ended - self.started:.2f}s")
        return ", ".join(parts)


class Printer:
    """Where deltas go: content to stdout, reasoning dimmed there on a terminal (else to
    stderr); each write is flushed, so a reader sees every piece as it comes."""

    def __init__(self) -> None:
        self._terminal = sys.stdout.isatty()
        self._in_reasoning = False

    def content(self, text: str) -> None:
        if self._in_reasoning:
            self._end_reasoning()
        _write(output.out(), text)

    def reasoning(self, text: str) -> None:
        self._in_reasoning = True
        _write(output.out() if self._terminal else output.err(), text, style="dim")

    def finish(self) -> None:
        if self._in_reasoning:
            self._end_reasoning()
        _write(output.out(), "\n")

    def _end_reasoning(self) -> None:
        self._in_reasoning = False
        _write(output.out() if self._terminal else output.err(), "\n\n")


def _write(console: Console, text: str, style: str | None = None) -> None:
    console.print(text, end="", style=style, markup=False, highlight=False, soft_wrap=True)
    console.file.flush()


def stream_answer(
    client: Client, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
) -> Answer:
    """Send the conversation, print the answer as it streams, then a summary line (not
    after Ctrl-C, which stops it: the caller says what that means)."""
    body = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        **params,
    }
    answer, printer = Answer(), Printer()
    try:
        with client.stream("POST", CHAT_PATH, body, model=model) as events:
            for event in events:
                _take(event, answer, printer)
    except KeyboardInterrupt:
        answer.stopped = True  # the stream was closed on the way out of the block
    finally:
        answer.ended = time.monotonic()
        printer.finish()
    if not answer.stopped:
        output.note_err(answer.summary())
    return answer


def _take(event: dict[str, Any], answer: Answer, printer: Printer) -> None:
    if "error" in event:
        error = event["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise CliError(f"the answer failed: {message}")
    usage = event.get("usage")
    if usage:
        answer.completion_tokens = usage.get("completion_tokens")
    for choice in event.get("choices") or []:
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning or delta.get("content"):
            answer.first_token_at = answer.first_token_at or time.monotonic()
        if reasoning:
            printer.reasoning(reasoning)
        if delta.get("content"):
            answer.content.append(delta["content"])
            printer.content(delta["content"])
