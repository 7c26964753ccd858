"""The operator's routes on real supervisord, gateway and scripted workers: requests in
flight and their cancel (the worker really stops), the programs' logs followed through
supervisord, benchmarks and their validation, and the admin key on all of them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.integration.stack import Stack, base_config, running_stack, scripted_models, wait_until

pytestmark = pytest.mark.slow

KEY = "opensesame"
SCRIPTS: dict[str, dict[str, Any]] = {
    # 400 tokens at 50 ms: 20 s when left alone, far longer than any test waits.
    "slow": {"default": "tick " * 400, "token_delay_s": 0.05},
    "steady": {"default": "tock " * 60, "token_delay_s": 0.02},
    "quick": {"default": "Quick answer."},
    "late": {"default": "Loaded late.", "load_delay_s": 3},
    "bench": {"default": "word " * 40, "token_delay_s": 0.005},
    "never": {"default": "Never loaded by these tests."},
}
GO = [{"role": "user", "content": "go"}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("operations")
    models = scripted_models(tmp / "models", SCRIPTS)
    config = base_config(models, tmp / "models", security={"admin_key": KEY})
    with running_stack(tmp, config) as running:
        yield running


def admin(stack: Stack, timeout: float = 60) -> httpx.Client:
    return httpx.Client(
        base_url=stack.url,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=timeout,
        trust_env=False,
    )


def in_flight(stack: Stack, model_id: str) -> list[dict[str, Any]]:
    with admin(stack) as c:
        listed = c.get("/admin/requests").json()["data"]
    return [r for r in listed if r["model"] == model_id]


def worker_health(stack: Stack, model_id: str) -> dict[str, Any]:
    port = next(m["port"] for m in stack.config["models"] if m["id"] == model_id)
    return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5, trust_env=False).json()


class StreamReader:
    """A streamed request read on a thread, its lines and when it ended."""

    def __init__(self, stack: Stack, path: str, body: dict[str, Any]) -> None:
        self.lines: list[str] = []
        self.status = 0
        self.ended_at: float | None = None
        self._thread = threading.Thread(target=self._read, args=(stack, path, body), daemon=True)
        self._thread.start()

    def _read(self, stack: Stack, path: str, body: dict[str, Any]) -> None:
        try:
            with stack.client() as c, c.stream("POST", path, json=body) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    self.lines.append(line)
        finally:
            self.ended_at = time.monotonic()

    def data_events(self) -> list[dict[str, Any]]:
        return [json.loads(x[6:]) for x in self.lines if x.startswith("data: {")]

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the stream did not end"


def chat_stream(stack: Stack, model_id: str) -> StreamReader:
    body = {"model": model_id, "stream": True, "messages": GO}
    return StreamReader(stack, "/v1/chat/completions", body)


def cancel(stack: Stack, request_id: str) -> httpx.Response:
    with admin(stack) as c:
        return c.delete(f"/admin/requests/{request_id}")


def the_one_request(stack: Stack, model_id: str, **wanted: Any) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        listed = in_flight(stack, model_id)
        matching = [r for r in listed if all(r[k] == v for k, v in wanted.items())]
        return matching[0] if len(matching) == 1 else None

    result: dict[str, Any] = wait_until(found, 10, what=f"one request for {model_id}")
    return result


# ---- requests in flight ---------------------------------------------------------------


def test_a_stream_in_flight_is_listed_with_its_model_route_client_and_tokens(
    stack: Stack,
) -> None:
    reader = chat_stream(stack, "slow")
    wait_until(lambda: len(reader.data_events()) >= 5, 30, what="the first tokens")
    entry = the_one_request(stack, "slow")
    assert entry["id"].startswith("req_")
    assert entry["route"] == "/v1/chat/completions"
    assert entry["state"] == "running"
    assert entry["stream"] is True
    assert entry["tokens"] >= 5
    assert entry["age_s"] > 0
    host, _, port = entry["client"].rpartition(":")
    assert host == "127.0.0.1" and port.isdigit()
    assert cancel(stack, entry["id"]).status_code == 200
    reader.join(10)
    wait_until(lambda: not in_flight(stack, "slow"), 5, what="the request to leave the list")


def test_cancelled_stream_ends_with_an_error_event_and_the_worker_stops(stack: Stack) -> None:
    reader = chat_stream(stack, "slow")
    steady = chat_stream(stack, "steady")  # in flight at the same time; must not be touched
    wait_until(lambda: len(reader.data_events()) >= 3, 30, what="the first tokens")
    entry = the_one_request(stack, "slow")
    before = worker_health(stack, "slow")
    assert before["in_flight"] == 1

    response = cancel(stack, entry["id"])
    cancelled_at = time.monotonic()
    assert response.status_code == 200
    assert response.json() == {"id": entry["id"], "cancelled": True}

    reader.join(10)
    assert reader.ended_at is not None and reader.ended_at - cancelled_at < 3
    errors = [e["error"] for e in reader.data_events() if "error" in e]
    assert len(errors) == 1 and errors[0]["code"] == "request_cancelled"
    assert [x for x in reader.lines if x][-1] == "data: [DONE]"
    # The worker saw its client go, as on a disconnect, and generates no more.
    wait_until(lambda: worker_health(stack, "slow")["in_flight"] == 0, 5, what="the worker idle")
    after = worker_health(stack, "slow")
    assert after["cancelled_total"] == before["cancelled_total"] + 1
    time.sleep(0.5)
    assert worker_health(stack, "slow")["tokens_generated"] == after["tokens_generated"]
    assert after["tokens_generated"] - before["tokens_generated"] < 100  # of 400
    # The other stream went on to its end, untouched.
    steady.join(30)
    assert not any("error" in e for e in steady.data_events())
    assert [x for x in steady.lines if x][-1] == "data: [DONE]"
    content = "".join(
        e["choices"][0]["delta"].get("content") or "" for e in steady.data_events() if e["choices"]
    )
    assert content == SCRIPTS["steady"]["default"]


def test_cancelled_whole_request_is_a_499_request_cancelled(stack: Stack) -> None:
    client = openai.OpenAI(base_url=stack.url + "/v1", api_key="unused", max_retries=0)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.chat.completions.create, model="slow", messages=GO, timeout=60)
        entry = the_one_request(stack, "slow", state="running")
        assert entry["stream"] is False and entry["tokens"] == 0
        wait_until(lambda: worker_health(stack, "slow")["in_flight"] == 1, 5, what="generating")
        assert cancel(stack, entry["id"]).status_code == 200
        with pytest.raises(openai.APIStatusError) as info:
            answer.result(10)
    assert info.value.status_code == 499
    assert info.value.code == "request_cancelled"
    wait_until(lambda: worker_health(stack, "slow")["in_flight"] == 0, 5, what="the worker idle")


def test_cancelled_anthropic_stream_ends_with_an_error_event(stack: Stack) -> None:
    body = {"model": "slow", "max_tokens": 1000, "stream": True, "messages": GO}
    reader = StreamReader(stack, "/v1/messages", body)
    wait_until(lambda: len(reader.lines) > 12, 30, what="the first deltas")
    entry = the_one_request(stack, "slow", route="/v1/messages")
    assert entry["stream"] is True and entry["tokens"] > 0
    assert cancel(stack, entry["id"]).status_code == 200
    reader.join(10)
    named = [x for x in reader.lines if x.startswith("event: ")]
    assert named[-1] == "event: error"
    last = json.loads([x for x in reader.lines if x.startswith("data: ")][-1][6:])
    assert last["type"] == "error" and "cancelled" in last["error"]["message"]


def test_cancelled_anthropic_whole_request_raises_in_the_sdk(stack: Stack) -> None:
    client = anthropic.Anthropic(base_url=stack.url, api_key="unused", max_retries=0)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            client.messages.create, model="slow", max_tokens=1000, messages=GO, timeout=60
        )
        entry = the_one_request(stack, "slow", route="/v1/messages", state="running")
        assert cancel(stack, entry["id"]).status_code == 200
        with pytest.raises(anthropic.APIStatusError) as info:
            answer.result(10)
    assert info.value.status_code == 499
    assert "cancelled" in str(info.value)


def test_request_waiting_for_a_load_is_listed_and_can_be_cancelled(stack: Stack) -> None:
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            lambda: stack.client().post(
                "/v1/chat/completions", json={"model": "late", "messages": GO}
            )
        )
        entry = the_one_request(stack, "late")
        assert entry["state"] == "waiting_for_load"
        assert cancel(stack, entry["id"]).status_code == 200
        response = answer.result(10)
    assert response.status_code == 499
    assert response.json()["error"]["code"] == "request_cancelled"
    # The load it was waiting for goes on for the requests that come next.
    wait_until(lambda: stack.status("late")["status"] == "ready", 20, what="the load to finish")


def test_cancelling_an_unknown_or_finished_request_is_404(stack: Stack) -> None:
    with stack.client() as c:
        assert c.post("/v1/chat/completions", json={"model": "quick", "messages": GO}).is_success
    assert in_flight(stack, "quick") == []
    response = cancel(stack, "req_0000000000000000")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "request_not_found"


# ---- logs -----------------------------------------------------------------------------


class LogFollower:
    """`GET /admin/logs/stream` read on a thread."""

    def __init__(self, stack: Stack, program: str, lines: int = 0) -> None:
        self.lines: list[str] = []
        self.comments = 0
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._client = admin(stack)
        query = {"program": program, "lines": lines}
        self._thread = threading.Thread(target=self._read, args=(query,), daemon=True)
        self._thread.start()

    def _read(self, query: dict[str, Any]) -> None:
        try:
            with self._client.stream("GET", "/admin/logs/stream", params=query) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.lines.append(json.loads(line[6:])["line"])
                    if self._stop.is_set():
                        return
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def close(self) -> None:
        self._stop.set()
        self._client.close()
        self._thread.join(10)

    def wait_for(self, predicate: Callable[[str], bool], what: str) -> str:
        line: str = wait_until(
            lambda: next((x for x in self.lines if predicate(x)), None), 10, what=what
        )
        return line


def test_a_workers_log_stream_shows_a_new_requests_line(stack: Stack) -> None:
    with stack.client() as c:
        c.post("/v1/chat/completions", json={"model": "quick", "messages": GO})
        follower = LogFollower(stack, "worker-quick")
        try:
            time.sleep(1)  # the follow has started: what comes now is new
            seen = len(follower.lines)
            c.post("/v1/chat/completions", json={"model": "quick", "messages": GO})
            follower.wait_for(
                lambda x: "POST /v1/chat/completions 200" in x and follower.lines.index(x) >= seen,
                "the new request's line",
            )
        finally:
            follower.close()


def test_the_gateway_log_stream_shows_a_cancel_and_starts_with_the_tail(stack: Stack) -> None:
    follower = LogFollower(stack, "gateway", lines=5)
    try:
        wait_until(lambda: len(follower.lines) >= 5, 10, what="the tail")
        assert follower.lines[:5] == stack.log("gateway").splitlines()[-5:]
        reader = chat_stream(stack, "slow")
        entry = the_one_request(stack, "slow")
        cancel(stack, entry["id"])
        line = follower.wait_for(lambda x: entry["id"] in x, "the cancel's event line")
        assert json.loads(line[line.index("{") :])["event"] == "request_cancelled"
        reader.join(10)
    finally:
        follower.close()


def test_logs_tail_returns_the_last_lines(stack: Stack) -> None:
    with admin(stack) as c:
        gateway = c.get("/admin/logs", params={"program": "gateway", "lines": 3}).json()
        default = c.get("/admin/logs", params={"program": "gateway"}).json()
        memwatch = c.get("/admin/logs", params={"program": "memwatch", "lines": 5})
    assert gateway["program"] == "gateway"
    assert 1 <= len(gateway["lines"]) <= 3
    assert default["lines"][-len(gateway["lines"]) :] == gateway["lines"]
    full = stack.log("gateway").splitlines()
    assert len(default["lines"]) == min(100, len(full))
    assert memwatch.status_code == 200  # its log is stderr: an event listener's stdout is taken
    assert memwatch.json()["lines"] == stack.log("memwatch").splitlines()[-5:]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"program": "../../etc/passwd"}, "program"),
        ({"program": "supervisord"}, "program"),
        ({"program": "worker-nope"}, "program"),
        ({}, "program"),
        ({"program": "gateway", "lines": "lots"}, "lines"),
        ({"program": "gateway", "lines": "-1"}, "lines"),
        ({"program": "gateway", "lines": "100000"}, "lines"),
    ],
)
def test_logs_refuse_anything_but_a_known_program(
    stack: Stack, query: dict[str, str], param: str
) -> None:
    with admin(stack) as c:
        for path in ("/admin/logs", "/admin/logs/stream"):
            response = c.get(path, params=query)
            assert response.status_code == 400
            error = response.json()["error"]
            assert error["param"] == param
            if param == "program":
                assert "gateway, memwatch, worker-slow" in error["message"]


def test_log_of_a_configured_worker_that_never_ran_is_404(stack: Stack) -> None:
    with admin(stack) as c:
        response = c.get("/admin/logs", params={"program": "worker-never"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "program_not_running"


# ---- benchmark ------------------------------------------------------------------------


def test_benchmark_runs_through_the_gateway_and_is_kept(stack: Stack) -> None:
    with admin(stack) as c:
        response = c.post(
            "/admin/benchmark",
            json={"model": "bench", "max_tokens": 20, "runs": 3, "concurrency": 2},
        )
        assert response.status_code == 200, response.text
        result = response.json()
        listed = c.get("/admin/benchmark").json()["data"]
    assert result["id"].startswith("bench_") and result["model"] == "bench"
    assert result["prompt_tokens"] > 0
    assert len(result["runs"]) == 3
    for run in result["runs"]:
        assert run["tokens"] == 20
        assert 0 < run["ttft_ms"] < run["duration_ms"]
        assert run["tokens_per_s"] > 0
    summary = result["summary"]
    assert summary["ttft_ms_max"] >= summary["ttft_ms_p50"] > 0
    assert summary["tokens_per_s_mean"] > 0 and summary["total_tokens_per_s"] > 0
    assert listed[0] == result
    stored = json.loads((stack.root / "run" / "benchmarks.json").read_text())
    assert stored[0] == result


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "model"),
        ({"model": 7}, "model"),
        ({"model": "bench", "prompt": ""}, "prompt"),
        ({"model": "bench", "runs": 0}, "runs"),
        ({"model": "bench", "runs": "3"}, "runs"),
        ({"model": "bench", "runs": 1000}, "runs"),
        ({"model": "bench", "max_tokens": True}, "max_tokens"),
        ({"model": "bench", "concurrency": 99}, "concurrency"),
        ({"model": "bench", "rnus": 2}, "rnus"),
    ],
)
def test_benchmark_bad_fields_are_400_naming_the_field(
    stack: Stack, body: dict[str, Any], param: str
) -> None:
    with admin(stack) as c:
        response = c.post("/admin/benchmark", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_benchmark_of_an_unknown_model_is_the_chat_routes_404(stack: Stack) -> None:
    with admin(stack) as c:
        bench = c.post("/admin/benchmark", json={"model": "gpt-9"})
        chat = c.post("/v1/chat/completions", json={"model": "gpt-9", "messages": GO})
    assert bench.status_code == chat.status_code == 404
    assert bench.json() == chat.json()


# ---- the admin key --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/logs?program=gateway"),
        ("GET", "/admin/logs/stream?program=gateway"),
        ("GET", "/admin/requests"),
        ("DELETE", "/admin/requests/req_0000000000000000"),
        ("GET", "/admin/benchmark"),
        ("POST", "/admin/benchmark"),
    ],
)
def test_operations_need_the_admin_key(stack: Stack, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        with stack.client() as c:
            response = c.request(method, path, headers=headers, json={"model": "bench"})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_admin_key"


# ---- shutdown -------------------------------------------------------------------------


def test_a_gateway_restart_ends_log_streams_and_keeps_benchmarks(stack: Stack) -> None:
    with admin(stack) as c:
        kept = c.post("/admin/benchmark", json={"model": "bench", "max_tokens": 4, "runs": 1})
        assert kept.status_code == 200
    follower = LogFollower(stack, "gateway")
    try:
        time.sleep(0.5)
        started = time.monotonic()
        stack.ctl("restart", "gateway")
        assert follower.ended.wait(10)
        # uvicorn waits for open responses: the follow ended at once, not at stopwaitsecs.
        assert time.monotonic() - started < 8
    finally:
        follower.close()
    wait_until(lambda: _healthy(stack), 30, what="the gateway back")
    with admin(stack) as c:
        listed = c.get("/admin/benchmark").json()["data"]
    assert listed[0] == kept.json()


def _healthy(stack: Stack) -> bool:
    try:
        with stack.client(timeout=2) as c:
            return c.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False
