"""What a finished request came to, read from what the hot path left on its ticket: the
status it ended with, why it failed, the worker's token counts and the time to its first
token. The tickets here are filled as the relays fill them; the integration tests
(tests/integration/gateway/test_metrics.py) fill them with real traffic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.operations.outcome import CAPTURE_LIMIT, finished_request
from gateway.operations.requests import RequestTicket, cancelled_error
from workers.contract.errors import ApiError
from workers.contract.sse import DONE, sse_error, sse_event
from workers.contract.trailer import StreamTrailer

CHAT = "/v1/chat/completions"


def ticket(status: int = 200, **fields: Any) -> RequestTicket:
    t = RequestTicket("req_1", {"path": CHAT, "client": ("127.0.0.1", 5555)}, None)
    t.model, t.requested, t.status = "m", "alias", status
    for name, value in fields.items():
        setattr(t, name, value)
    return t


def whole_answer(text: str, prompt: int = 9, completion: int = 5) -> bytes:
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": 14},
    }
    return json.dumps(answer, separators=(",", ":")).encode()


def test_a_whole_answer_counts_its_usage_found_from_the_end() -> None:
    # Text that looks like the key, in the answer itself, is escaped JSON and not taken.
    t = ticket(answer=whole_answer('say "usage": {"prompt_tokens": 99}'))
    done = finished_request(t, t.started + 2.0, capture=False)
    assert (done.status, done.error) == (200, None)
    assert (done.prompt_tokens, done.completion_tokens) == (9, 5)
    assert done.ttft_s is None and done.inter_token_s is None
    assert done.tokens_per_s == pytest.approx(2.5)
    entry = done.view()
    assert entry["duration_ms"] == 2000.0 and entry["client"] == "127.0.0.1:5555"
    assert entry["model"] == "m" and entry["requested"] == "alias"
    assert "request_body" not in entry and "answer" not in entry


def test_capture_keeps_the_body_and_a_whole_answers_text_bounded() -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "x" * (2 * CAPTURE_LIMIT)}]})
    t = ticket(answer=whole_answer("Paris."), body=body.encode())
    entry = finished_request(t, t.started + 1.0, capture=True).view()
    assert entry["answer"] == "Paris."
    assert len(entry["request_body"]) == CAPTURE_LIMIT
    assert entry["request_body"].startswith('{"messages"')


def test_a_stream_takes_tokens_and_first_output_from_the_workers_trailer() -> None:
    trailer = StreamTrailer(
        prompt_tokens=20, completion_tokens=11, cached_tokens=0, first_output_s=0.3
    )
    t = ticket(stream=True)
    t.sent = t.started + 0.2  # after a short load
    t.tail = sse_event({"choices": []}) + trailer.frame() + DONE
    done = finished_request(t, t.started + 1.5, capture=True)
    assert (done.prompt_tokens, done.completion_tokens) == (20, 11)
    assert done.ttft_s == pytest.approx(0.5)
    assert done.inter_token_s == pytest.approx(1.0 / 10)
    assert done.tokens_per_s == pytest.approx(11)
    assert done.view()["answer"] is None  # a stream's text is not gathered


def test_a_stream_read_back_event_by_event_has_its_trailer_from_the_comment() -> None:
    t = ticket(stream=True)
    t.sent = t.started
    t.comment(StreamTrailer(5, 6, 0, 9.0).frame().decode().strip())
    done = finished_request(t, t.started + 2.0, capture=False)
    assert done.completion_tokens == 6
    assert done.ttft_s == pytest.approx(2.0)  # never more than the whole request


def test_a_workers_error_event_after_the_head_is_a_502_with_its_message() -> None:
    t = ticket(stream=True, tail=sse_event({"choices": []}) + sse_error(ApiError(500, "boom")))
    done = finished_request(t, t.started + 1, capture=False)
    assert (done.status, done.error) == (502, "boom")
    assert done.completion_tokens is None


def test_a_workers_refusal_relayed_as_it_came_keeps_its_status_and_message() -> None:
    refusal = json.dumps(ApiError(429, "queue is full").body()).encode()
    done = finished_request(ticket(429, answer=refusal), 0.0, capture=False)
    assert (done.status, done.error) == (429, "queue is full")
    garbled = finished_request(ticket(503, tail=b"<html>"), 0.0, capture=False)
    assert (garbled.status, garbled.error) == (503, "HTTP 503")


def test_a_client_that_closes_after_done_had_its_whole_answer() -> None:
    trailer = StreamTrailer(
        prompt_tokens=4, completion_tokens=3, cached_tokens=0, first_output_s=0.1
    )
    t = ticket(stream=True, client_left=True)
    t.sent = t.started
    t.tail = sse_event({"choices": []}) + trailer.frame() + DONE
    done = finished_request(t, t.started + 1, capture=False)
    assert (done.status, done.error, done.completion_tokens) == (200, None, 3)
    cut = ticket(stream=True, client_left=True, tail=sse_event({"choices": []}))
    assert finished_request(cut, 0.0, capture=False).status == 499


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"error": ApiError(404, "model 'x' not found")}, 404, "model 'x' not found"),
        ({"error": cancelled_error()}, 499, "the request was cancelled by an operator"),
        ({"client_left": True}, 499, "the client closed the connection before the answer ended"),
        ({"status": 0}, 499, "the client closed the connection before the answer ended"),
    ],
)
def test_the_status_a_request_ended_with(fields: dict[str, Any], status: int, message: str) -> None:
    # An error after a 200 head (a stream) counts as the error, not as the head.
    done = finished_request(ticket(**{"status": 200, **fields}), 0.0, capture=False)
    assert (done.status, done.error) == (status, message)
