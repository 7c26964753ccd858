"""The CLI's SSE reader: payloads of data lines, comments skipped, [DONE] ends."""

from __future__ import annotations

import pytest

from gateway.cli.sse import MalformedEvent, sse_payloads


def test_payloads_skip_comments_and_blank_lines_and_stop_at_done() -> None:
    lines = [
        ": loading smollm2-135m 3",
        "",
        'data: {"choices": [{"delta": {"content": "Hel"}}]}',
        "",
        "event: ignored-name",
        'data:{"choices": [{"delta": {"content": "lo"}}]}',
        "data: [DONE]",
        'data: {"after": "done"}',
    ]
    payloads = list(sse_payloads(lines))
    assert [p["choices"][0]["delta"]["content"] for p in payloads] == ["Hel", "lo"]


def test_stream_without_done_ends_with_its_lines() -> None:
    assert list(sse_payloads(['data: {"line": "a"}', 'data: {"line": "b"}'])) == [
        {"line": "a"},
        {"line": "b"},
    ]


def test_payload_that_is_not_json_is_named() -> None:
    with pytest.raises(MalformedEvent, match="not JSON"):
        list(sse_payloads(["data: {oops"]))
