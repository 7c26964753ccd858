"""Bounded admission (429), client disconnects that stop generation, and timeouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.workers.conftest import RunningWorker, StartScripted

LONG = " ".join(f"word{i}" for i in range(400))  # ~800 tokens: never finishes in a test
SLOW_SCRIPT = {
    "token_delay_s": 0.02,
    "replies": [{"match": "long", "text": LONG}, {"match": "short", "text": "done"}],
}
CLIENT = """
import sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1], api_key="x", max_retries=0)
messages = [{"role": "user", "content": sys.argv[2]}]
if sys.argv[3] == "stream":
    for chunk in client.chat.completions.create(model="m", messages=messages, stream=True):
        print("chunk", flush=True)
else:
    print("sent", flush=True)
    client.chat.completions.create(model="m", messages=messages)
"""


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _client_process(worker: RunningWorker, prompt: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CLIENT, worker.base_url + "/v1", prompt, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _body(prompt: str, stream: bool = False) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": prompt}], "stream": stream}


def test_client_killed_mid_stream_stops_generation(start_scripted: StartScripted) -> None:
    worker = start_scripted(SLOW_SCRIPT)
    client = _client_process(worker, "long", "stream")
    try:
        assert client.stdout is not None
        for _ in range(5):
            assert client.stdout.readline() == "chunk\n"
    finally:
        _kill(client)
    _wait_for(lambda: worker.health()["cancelled_total"] == 1)
    _wait_for(lambda: worker.health()["in_flight"] == 0)
    generated = worker.health()["tokens_generated"]
    time.sleep(0.3)
    assert worker.health()["tokens_generated"] == generated
    assert generated < 100


def test_client_killed_while_queued_leaves_the_queue(start_scripted: StartScripted) -> None:
    worker = start_scripted(SLOW_SCRIPT, max_concurrent=1)
    with (
        httpx.Client(base_url=worker.base_url, timeout=30) as http,
        http.stream("POST", "/v1/chat/completions", json=_body("long", True)) as first,
    ):
        lines = first.iter_lines()  # keep a reference: a dropped iterator closes the stream
        next(lines)
        queued = _client_process(worker, "short", "whole")
        try:
            _wait_for(lambda: worker.health()["queued"] == 1)
        finally:
            _kill(queued)
        _wait_for(lambda: worker.health()["queued"] == 0)
        assert worker.health()["cancelled_total"] == 1
        assert worker.health()["in_flight"] == 1


def test_over_capacity_returns_429_with_retry_after(start_scripted: StartScripted) -> None:
    worker = start_scripted(SLOW_SCRIPT, max_concurrent=1, max_queue=1)
    waiting: list[httpx.Response] = []
    with httpx.Client(base_url=worker.base_url, timeout=30) as http:
        with http.stream("POST", "/v1/chat/completions", json=_body("long", True)) as first:
            lines = first.iter_lines()  # keep a reference: a dropped iterator closes the stream
            next(lines)
            second = threading.Thread(
                target=lambda: waiting.append(
                    httpx.post(worker.base_url + "/v1/chat/completions", json=_body("short"))
                )
            )
            second.start()
            _wait_for(lambda: worker.health()["queued"] == 1)
            refused = http.post("/v1/chat/completions", json=_body("short"))
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["type"] == "rate_limit_error"
        second.join(timeout=30)
    assert waiting[0].status_code == 200
    assert waiting[0].json()["choices"][0]["message"]["content"] == "done"


def test_timeout_returns_504_and_stops_generation(start_scripted: StartScripted) -> None:
    worker = start_scripted(SLOW_SCRIPT, request_timeout_s=0.3)
    whole = httpx.post(worker.base_url + "/v1/chat/completions", json=_body("long"), timeout=30)
    assert whole.status_code == 504
    assert whole.json()["error"]["type"] == "timeout_error"
    streamed = httpx.post(
        worker.base_url + "/v1/chat/completions", json=_body("long", True), timeout=30
    )
    events = [e for e in streamed.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]" and "timed out" in events[-2]
    _wait_for(lambda: worker.health()["in_flight"] == 0)
    assert worker.health()["cancelled_total"] == 0
