"""Llama 3.x JSON calls: the whole output is the call, optionally after <|python_tag|>.

    <|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}

Several calls may follow each other, separated by `;`. There is no marker a model
could not also write as an answer, so text counts as a call only when it starts the
output, parses, and names one of the request's tools; anything else is text. Text
after the calls stays text.
"""

from __future__ import annotations

import enum
import json

from workers.parsing.events import OutputEvent, TextDelta
from workers.parsing.tool_calls.arguments import CallEmitter, call_from_json
from workers.parsing.tool_calls.jsonscan import JsonValueEnd
from workers.parsing.tool_calls.text import Trimmer

TAG = "<|python_tag|>"


class _Phase(enum.Enum):
    DECIDING = "deciding"  # at the start, or after a call: a call or text next?
    JSON = "json"  # inside an object that may be a call
    TEXT = "text"  # plain text to the end


class Llama3Parser:
    def __init__(self, emitter: CallEmitter) -> None:
        self._emitter = emitter
        self._phase = _Phase.DECIDING if emitter.has_tools else _Phase.TEXT
        self._after_call = False
        self._undecided = ""
        self._text_before = ""  # what goes out as text if the object is not a call
        self._parts: list[str] = []
        self._scan = JsonValueEnd()
        self._trim = Trimmer()

    def feed(self, text: str) -> list[OutputEvent]:
        out: list[OutputEvent] = []
        while text:
            if self._phase is _Phase.TEXT:
                self._text(text, out)
                text = ""
            elif self._phase is _Phase.DECIDING:
                text = self._decide(text, out)
            else:
                text = self._read_object(text, out)
        return out

    def finish(self) -> list[OutputEvent]:
        out: list[OutputEvent] = []
        if self._phase is _Phase.DECIDING:
            self._text(self._as_text(self._undecided, self._strip_separators(self._undecided)), out)
        elif self._phase is _Phase.JSON:
            self._text(self._text_before + "".join(self._parts), out)
        self._phase = _Phase.TEXT
        flushed = self._trim.flush()
        if flushed:
            out.append(TextDelta(flushed))
        return out

    def _decide(self, text: str, out: list[OutputEvent]) -> str:
        buf = self._undecided + text
        rest = self._strip_separators(buf)
        if TAG.startswith(rest):  # nothing yet, or part of a tag
            self._undecided = buf
            return ""
        self._undecided = ""
        self._phase = _Phase.JSON if rest.startswith("{") else _Phase.TEXT
        if self._phase is _Phase.JSON:
            self._text_before = self._as_text(buf[: len(buf) - len(rest)], "")
            return rest
        self._text(self._as_text(buf, rest), out)
        return ""

    def _strip_separators(self, buf: str) -> str:
        """What follows the whitespace and tags (and, between calls, `;`) at the start."""
        chars = " \t\r\n;" if self._after_call else " \t\r\n"
        rest = buf.lstrip(chars)
        while rest.startswith(TAG):
            rest = rest[len(TAG) :].lstrip(chars)
        return rest

    def _as_text(self, raw: str, stripped: str) -> str:
        """The text a non-call gives: separators after a call are dropped, tags always."""
        return stripped if self._after_call else raw.replace(TAG, "")

    def _read_object(self, text: str, out: list[OutputEvent]) -> str:
        self._parts.append(text)
        end = self._scan.scan(text)
        if end is None:
            return ""
        whole = "".join(self._parts)
        cut = len(whole) - len(text) + end
        self._parts = []
        self._scan = JsonValueEnd()
        self._close_object(whole[:cut], out)
        return whole[cut:]

    def _close_object(self, source: str, out: list[OutputEvent]) -> None:
        try:
            call = call_from_json(json.loads(source))
        except ValueError:
            call = None
        if call is None or not self._emitter.knows(call.name):
            self._phase = _Phase.TEXT
            self._text(self._text_before + source, out)
            return
        self._trim.boundary()
        out.extend(self._emitter.emit(call))
        self._after_call = True
        self._phase = _Phase.DECIDING

    def _text(self, text: str, out: list[OutputEvent]) -> None:
        text = self._trim.push(text)
        if text:
            out.append(TextDelta(text))
