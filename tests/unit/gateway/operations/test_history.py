"""The request history's ring: bounded, newest first, resized keeping the newest."""

from __future__ import annotations

import dataclasses

from gateway.operations.history import RequestHistory
from gateway.operations.outcome import FinishedRequest


def done(n: int) -> FinishedRequest:
    return FinishedRequest(
        id=f"req_{n}",
        model="m",
        requested="m",
        route="/v1/chat/completions",
        status=200,
        stream=False,
        client=None,
        started=1000.0 + n,
        duration_s=0.5,
        ttft_s=None,
        prompt_tokens=3,
        completion_tokens=4,
        error=None,
    )


def ids(history: RequestHistory, limit: int) -> list[str]:
    return [entry["id"] for entry in history.recent(limit)]


def test_the_ring_keeps_the_newest_and_lists_them_newest_first() -> None:
    history = RequestHistory(3)
    assert history.recent(10) == []
    for n in range(5):
        history.add(done(n))
    assert ids(history, 10) == ["req_4", "req_3", "req_2"]
    assert ids(history, 2) == ["req_4", "req_3"]


def test_captured_bodies_can_be_forgotten() -> None:
    history = RequestHistory(2)
    history.add(dataclasses.replace(done(1), request_body="{}", answer="secret"))
    assert history.recent(1)[0]["answer"] == "secret"
    history.forget_bodies()
    assert "answer" not in history.recent(1)[0] and history.size == 2


def test_resizing_keeps_the_newest_entries() -> None:
    history = RequestHistory(4)
    for n in range(4):
        history.add(done(n))
    history.resize(2)
    assert history.size == 2 and ids(history, 5) == ["req_3", "req_2"]
    history.resize(3)
    history.add(done(9))
    assert ids(history, 5) == ["req_9", "req_3", "req_2"]
