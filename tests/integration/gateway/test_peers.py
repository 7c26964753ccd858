"""Two whole Opta-LMX stacks on two network stacks: each in its own network namespace
(tests/integration/netns.py), joined by a veth pair, the way two machines on a LAN are.

Gateway A binds its link address with API keys and lists B as a peer; B lists A. A has
`shared` and `a-only`, B has `shared`, `b-only` and `b-slow`. Checked: A lists B's models,
routes to B what only B has (whole, streamed, Anthropic), prefers its own ready model and
B's ready one over a load here, passes B's errors on, sends B its own key, never forwards
a forwarded request, lets a stream on B be listed, cancelled and stopped from A, listens
on nothing but the namespaces' own addresses, and when B's stack stops falls through to
its own model, marks B down and backs off, while its own models stay fast.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.integration.netns import Namespace, listening_pids_here, namespace_pair
from tests.integration.stack import (
    Stack,
    base_config,
    free_port,
    running_stack,
    scripted_models,
    stop_stack,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.slow

KEY_A, KEY_B = "key-of-a", "secret-key-of-b"
ADMIN_A, ADMIN_B = "admin-of-a", "admin-of-b"
GO = [{"role": "user", "content": "go"}]
SCRIPTS_A: dict[str, dict[str, Any]] = {
    "shared": {"default": "Shared, from A."},
    "a-only": {"default": "Only A has this."},
}
SCRIPTS_B: dict[str, dict[str, Any]] = {
    "shared": {"default": "Shared, from B."},
    "b-only": {"default": "Only B has this."},
    # 400 tokens at 50 ms: 20 s when left alone, far longer than any test waits.
    "b-slow": {"default": "tick " * 400, "token_delay_s": 0.05},
}


@dataclass
class Host:
    """One machine: its namespace, its stack, its keys."""

    ns: Namespace
    stack: Stack
    key: str
    admin_key: str
    exits: list[Any] = field(default_factory=list)

    def request(
        self, method: str, path: str, key: str | None = "", timeout: float = 30, **kw: Any
    ) -> httpx.Response:
        """From inside this host's namespace; `key` "" is the host's own, None is none."""
        key = self.key if key == "" else key
        headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **kw.pop("headers", {})}

        def send() -> httpx.Response:
            with httpx.Client(base_url=self.stack.url, timeout=timeout, trust_env=False) as c:
                response = c.request(method, path, headers=headers, **kw)
                response.read()
                return response

        return self.ns.run(send, timeout=timeout + 10)

    def chat(self, model: str, **kw: Any) -> httpx.Response:
        return self.request(
            "POST", "/v1/chat/completions", json={"model": model, "messages": GO}, **kw
        )

    def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.request(method, path, key=self.admin_key, **kw)

    def peer(self, name: str) -> dict[str, Any]:
        peers = self.admin("GET", "/admin/status").json()["peers"]
        return next(p for p in peers if p["name"] == name)

    def model_ids(self) -> list[str]:
        return [m["id"] for m in self.request("GET", "/v1/models").json()["data"]]

    def worker_health(self, model_id: str) -> dict[str, Any]:
        port = next(m["port"] for m in self.stack.config["models"] if m["id"] == model_id)
        url = f"http://127.0.0.1:{port}/health"
        return self.ns.run(lambda: httpx.get(url, timeout=5, trust_env=False).json())

    def stop(self) -> None:
        stop_stack(self.stack)


@dataclass
class Hosts:
    a: Host
    b: Host


def answer(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


@contextlib.contextmanager
def start_host(
    ns: Namespace, tmp: Path, config: dict[str, Any], key: str, admin: str
) -> Iterator[Host]:
    """A whole stack (supervisord, gateway, memwatch, workers) started from inside `ns`,
    so every process of it lives there; stopped in every outcome."""
    context = running_stack(tmp, config)
    stack = ns.run(context.__enter__, timeout=150)
    try:
        yield Host(ns, stack, key, admin)
    finally:
        context.__exit__(None, None, None)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    with namespace_pair() as (ns_a, ns_b):
        port_a, port_b = free_port(), free_port()
        tmp_a, tmp_b = tmp_path_factory.mktemp("host-a"), tmp_path_factory.mktemp("host-b")
        config_a = base_config(
            scripted_models(tmp_a / "models", SCRIPTS_A),
            tmp_a / "models",
            gateway={"host": ns_a.address, "port": port_a, "connect_timeout_s": 2},
            security={"api_keys": [KEY_A], "admin_key": ADMIN_A},
            peers=[{"name": "b", "url": f"http://{ns_b.address}:{port_b}", "api_key": KEY_B}],
            peers_refresh_s=1,
        )
        config_b = base_config(
            scripted_models(tmp_b / "models", SCRIPTS_B),
            tmp_b / "models",
            gateway={"host": ns_b.address, "port": port_b, "connect_timeout_s": 2},
            security={"api_keys": [KEY_B], "admin_key": ADMIN_B},
            peers=[{"name": "a", "url": f"http://{ns_a.address}:{port_a}", "api_key": KEY_A}],
            peers_refresh_s=1,
        )
        with (
            start_host(ns_b, tmp_b, config_b, KEY_B, ADMIN_B) as b,
            start_host(ns_a, tmp_a, config_a, KEY_A, ADMIN_A) as a,
        ):
            wait_until(lambda: "b/b-only" in a.model_ids(), 30, what="A to list B's models")
            yield Hosts(a, b)


# ---- listing and routing ----------------------------------------------------------------


def test_a_lists_b_models_as_peer_slash_id_and_by_plain_id(hosts: Hosts) -> None:
    data = hosts.a.request("GET", "/v1/models").json()["data"]
    by_id: dict[str, list[dict[str, Any]]] = {}
    for entry in data:
        by_id.setdefault(entry["id"], []).append(entry)
    for model in ("b/shared", "b/b-only", "b/b-slow"):
        (entry,) = by_id[model]
        assert entry["peer"] == "b" and entry["status"] in ("unloaded", "ready")
    assert by_id["b-only"][0]["peers"] == ["b"]
    # `shared` is configured here too: one entry, this host's, stands for both.
    assert len(by_id["shared"]) == 1 and "peers" not in by_id["shared"][0]
    assert len(by_id["a-only"]) == 1 and "peers" not in by_id["a-only"][0]
    # B lists its own peer's (A's) models too; those are not A's to take from B.
    assert not [m for m in by_id if m.startswith("b/a")]


def test_a_model_only_b_has_is_answered_by_b_whole_streamed_and_in_anthropic(
    hosts: Hosts,
) -> None:
    a = hosts.a
    whole = a.chat("b-only")
    assert answer(whole) == "Only B has this."
    assert whole.headers["x-lmx-model"] == "b/b-only"
    assert answer(a.chat("b/shared")) == "Shared, from B."

    def streamed() -> str:
        client = openai.OpenAI(base_url=a.stack.url + "/v1", api_key=KEY_A, max_retries=0)
        with client:
            chunks = client.chat.completions.create(
                model="b-only", messages=[{"role": "user", "content": "go"}], stream=True
            )
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    assert a.ns.run(streamed) == "Only B has this."

    def messages() -> str:
        client = anthropic.Anthropic(base_url=a.stack.url, api_key=KEY_A, max_retries=0)
        with client:
            message = client.messages.create(
                model="b/b-only", max_tokens=32, messages=[{"role": "user", "content": "go"}]
            )
            return "".join(b.text for b in message.content if b.type == "text")

    assert a.ns.run(messages) == "Only B has this."


def test_the_client_key_is_checked_here_and_the_peer_gets_its_own_key(hosts: Hosts) -> None:
    a, b = hosts.a, hosts.b
    assert a.chat("b-only", key=None).status_code == 401
    assert a.chat("b-only", key=KEY_B).status_code == 401  # B's key is not one of A's
    # B takes only its own key: A's answer above came with the key of A's peers entry.
    assert b.chat("b-only", key=KEY_A).status_code == 401
    status = a.admin("GET", "/admin/status")
    assert a.peer("b")["state"] == "up"
    assert KEY_B not in status.text
    assert KEY_B not in a.stack.log("gateway")


def test_a_peers_refusal_is_passed_on_unchanged(hosts: Hosts) -> None:
    body = {"model": "b-only", "messages": GO, "temperature": 5}
    response = hosts.a.request("POST", "/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "temperature"
    assert response.headers["x-lmx-error-origin"] == "worker"
    unknown = hosts.a.chat("b/no-such-model")
    assert unknown.status_code == 404
    assert "no model 'no-such-model'" in unknown.json()["error"]["message"]


def status_on(host: Host, peer: str, model_id: str) -> str | None:
    """The model's status on `peer` as `host` last heard it."""
    models = host.peer(peer)["models"]
    return next((m["status"] for m in models if m["id"] == model_id), None)


def test_here_first_unless_only_the_peer_has_the_model_ready(hosts: Hosts) -> None:
    a, b = hosts.a, hosts.b
    # Ready only on B: B, rather than a load here.
    assert answer(a.chat("b/shared")) == "Shared, from B."
    assert a.admin("POST", "/admin/models/unload", json={"model": "shared"}).status_code == 200
    response = a.chat("shared")
    assert answer(response) == "Shared, from B."
    assert response.headers["x-lmx-model"] == "b/shared"
    # Ready on both: here.
    assert a.admin("POST", "/admin/models/load", json={"model": "shared"}).status_code == 200
    response = a.chat("shared")
    assert answer(response) == "Shared, from A."
    assert response.headers["x-lmx-model"] == "shared"
    # Ready nowhere: loaded here.
    assert b.admin("POST", "/admin/models/unload", json={"model": "shared"}).status_code == 200
    assert a.admin("POST", "/admin/models/unload", json={"model": "shared"}).status_code == 200
    wait_until(lambda: status_on(a, "b", "shared") == "unloaded", 10, what="A to hear of it")
    assert answer(a.chat("shared")) == "Shared, from A."


def test_a_forwarded_request_is_never_forwarded_again(hosts: Hosts) -> None:
    b = hosts.b
    wait_until(lambda: "a/a-only" in b.model_ids(), 30, what="B to list A's models")
    response = b.chat("a-only")
    assert answer(response) == "Only A has this."
    assert response.headers["x-lmx-model"] == "a/a-only"
    hopped = b.chat("a-only", headers={"x-lmx-hop": "1"})
    assert hopped.status_code == 404
    assert hopped.json()["error"]["code"] == "model_not_found"


# ---- streams through a peer: listed, cancelled, stopped --------------------------------


class PeerStream:
    """A stream of B's slow model through A, read on a thread inside A's namespace until
    it ends or `close()` has the client leave."""

    def __init__(self, a: Host) -> None:
        self.lines: list[str] = []
        self._leave = threading.Event()
        self._done = a.ns.submit(self._read, a)

    def _read(self, a: Host) -> None:
        body = {"model": "b-slow", "stream": True, "messages": GO}
        headers = {"Authorization": f"Bearer {KEY_A}"}
        with (
            httpx.Client(base_url=a.stack.url, timeout=30, trust_env=False) as c,
            c.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response,
        ):
            assert response.status_code == 200
            for line in response.iter_lines():
                self.lines.append(line)
                if self._leave.is_set():
                    return

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(x[6:]) for x in list(self.lines) if x.startswith("data: {")]

    def close(self) -> None:
        self._leave.set()
        self.join()

    def join(self) -> None:
        self._done.result(timeout=15)


def b_slow_in_flight(b: Host) -> int:
    return int(b.worker_health("b-slow")["in_flight"])


def requests_on_a(a: Host) -> list[dict[str, Any]]:
    listed = a.admin("GET", "/admin/requests").json()["data"]
    return [r for r in listed if r["model"] == "b/b-slow"]


def test_a_client_leaving_a_stream_through_a_stops_bs_worker(hosts: Hosts) -> None:
    a, b = hosts.a, hosts.b
    stream = PeerStream(a)
    wait_until(lambda: len(stream.events()) >= 3, 30, what="the first tokens from B")
    (listed,) = requests_on_a(a)
    assert listed["state"] == "running" and listed["stream"] is True
    assert b_slow_in_flight(b) == 1
    stream.close()
    wait_until(lambda: b_slow_in_flight(b) == 0, 10, what="B's worker to stop generating")
    wait_until(lambda: not requests_on_a(a), 5, what="A to drop the request")


def test_an_operator_cancel_on_a_ends_the_stream_and_stops_bs_worker(hosts: Hosts) -> None:
    a, b = hosts.a, hosts.b
    stream = PeerStream(a)
    wait_until(lambda: len(stream.events()) >= 3, 30, what="the first tokens from B")
    (listed,) = requests_on_a(a)
    assert a.admin("DELETE", f"/admin/requests/{listed['id']}").status_code == 200
    stream.join()
    assert stream.events()[-1]["error"]["code"] == "request_cancelled"
    wait_until(lambda: b_slow_in_flight(b) == 0, 10, what="B's worker to stop generating")


# ---- addresses ----------------------------------------------------------------------------


def test_nothing_listens_outside_the_namespaces_own_addresses(hosts: Hosts) -> None:
    for host in (hosts.a, hosts.b):
        listening = host.ns.listening()
        assert host.ns.address in listening  # the gateway, on the link
        assert set(listening) <= {"127.0.0.1", "::1", host.ns.address}, listening
    ours = set(hosts.a.stack.pids()) | set(hosts.b.stack.pids())
    assert ours and not ours & listening_pids_here()


# ---- B goes away ------------------------------------------------------------------------


def reload_a(a: Host, **changes: Any) -> None:
    a.stack.config.update(changes)
    write_config(a.stack.root, a.stack.config)
    response = a.admin("POST", "/admin/config/reload", json={})
    assert response.status_code == 200, response.text


def timed(fn: Any) -> tuple[float, Any]:
    started = time.monotonic()
    result = fn()
    return time.monotonic() - started, result


def test_when_bs_stack_stops_a_falls_through_marks_it_down_and_backs_off(hosts: Hosts) -> None:
    a, b = hosts.a, hosts.b
    # A's view: B has `shared` ready, A would have to load it; so B comes first.
    assert answer(a.chat("b/shared")) == "Shared, from B."
    a.admin("POST", "/admin/models/unload", json={"model": "shared"})
    # Look at B only once an hour: A still thinks B is up when the next request comes.
    reload_a(a, peers_refresh_s=3600)
    wait_until(lambda: a.peer("b")["next_check_s"] == 3600, 10, what="A's look at B")

    b.stop()
    took, response = timed(lambda: a.chat("shared"))
    assert answer(response) == "Shared, from A."  # B refused the connection: next host
    assert took < 15
    assert a.peer("b")["state"] == "down"
    # Marked down by that request's failure, not by a look at B (one an hour now).
    assert '"event": "peer_down", "peer": "b", "error": "no answer to a request' in a.stack.log(
        "gateway"
    )

    took, response = timed(lambda: a.chat("a-only"))
    assert answer(response) == "Only A has this." and took < 3
    took, refused = timed(lambda: a.chat("b-only"))
    assert refused.status_code == 503 and took < 3
    assert refused.json()["error"]["code"] == "peer_unreachable"
    assert int(refused.headers["retry-after"]) >= 1

    # Looked at every second again: each failure doubles the wait.
    reload_a(a, peers_refresh_s=1)
    waits: list[float] = []

    def backed_off() -> bool:
        took, response = timed(lambda: a.chat("a-only"))
        assert answer(response) == "Only A has this." and took < 3  # never slowed
        waits.append(a.peer("b")["next_check_s"])
        return waits[-1] >= 4

    wait_until(backed_off, 30, interval=0.3, what="A to back off from B")
    assert 2 in waits and a.peer("b")["failures"] >= 3
