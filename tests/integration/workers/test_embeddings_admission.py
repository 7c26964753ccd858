"""Embedding requests are admitted, timed and counted like generations: they take a
slot (so /health, memwatch and the gateway see the load), queue behind the limit, get
429 past it and 504 past the deadline."""

from __future__ import annotations

import threading
import time

import httpx

from tests.integration.workers.conftest import RunningWorker, StartScripted

SLOW_EMBEDDING = {"embed_delay_s": 1.0}


def embed(worker: RunningWorker, text: str = "hello") -> httpx.Response:
    return httpx.post(worker.base_url + "/v1/embeddings", json={"input": text}, timeout=30)


def test_embedding_in_flight_shows_in_health_and_fills_the_worker(
    start_scripted: StartScripted,
) -> None:
    worker = start_scripted(SLOW_EMBEDDING, embeddings=True, max_concurrent=1, max_queue=0)
    answers: list[httpx.Response] = []
    first = threading.Thread(target=lambda: answers.append(embed(worker)))
    first.start()
    try:
        deadline = time.monotonic() + 5
        while worker.health()["in_flight"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.health()["in_flight"] == 1
        refused = embed(worker, "second")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
    finally:
        first.join(timeout=10)
    assert answers[0].status_code == 200
    health = worker.health()
    assert health["in_flight"] == 0
    assert health["requests_total"] == 2


def test_embedding_past_the_request_timeout_is_504(start_scripted: StartScripted) -> None:
    worker = start_scripted({"embed_delay_s": 5.0}, embeddings=True, request_timeout_s=0.2)
    started = time.monotonic()
    answer = embed(worker)
    assert answer.status_code == 504
    assert answer.json()["error"]["code"] == "timeout"
    assert time.monotonic() - started < 4.0  # the wait ends at the deadline, not the call
