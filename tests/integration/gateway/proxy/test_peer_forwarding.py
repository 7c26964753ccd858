"""The proxy in front of peers, against small real servers on loopback standing in for
peer gateways: what a peer is sent (its key, never the client's; the hop mark; the model
as the peer names it), which failures move on to the next host and which answers pass
through unchanged, and a peer that refuses the connection marked down."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.config.loader import Config
from gateway.config.schema import ConfigFile, PeerConfig
from gateway.peers import PeerModel, Peers
from gateway.proxy.forward import Proxy
from gateway.routing import Route
from tests.integration.gateway.proxy.test_upstream import Server, answer, client, read_request
from tests.integration.stack import free_port
from workers.contract.errors import ApiError

CLIENT_AUTH = {"authorization": "Bearer client-key"}


class Peer:
    """A loopback server answering every request with one status and body, recording what
    it was sent."""

    def __init__(self, status: bytes = b"200 OK", body: dict[str, Any] | None = None) -> None:
        self.status = status
        self.body = json.dumps(body or {"answer": "ok"}).encode()
        self.requests: list[bytes] = []
        self.server = Server(self._serve)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests.append(await read_request(reader))
        writer.write(answer(self.body, self.status))
        await writer.drain()


def peers_at(*ports: int, ready: tuple[bool, ...] = ()) -> Peers:
    """Peers p0, p1, ... on loopback `ports`, each up and listing model `m`."""
    configs = [
        PeerConfig(f"p{i}", f"http://127.0.0.1:{port}", api_key=f"key-{i}")
        for i, port in enumerate(ports)
    ]
    peers = Peers(Config(ConfigFile(models=[], peers=configs), Path("/x/lmx.yaml")))
    for i, state in enumerate(peers.states.values()):
        is_ready = ready[i] if i < len(ready) else False
        state.listed({"m": "ready" if is_ready else "unloaded"})
    return peers


async def ask(peers: Peers, name: str = "m", peer: str | None = None) -> tuple[str, int, bytes]:
    """The model that answered, its status and body bytes."""
    proxy = Proxy(SimpleNamespace(workers={}), client(), peers)  # type: ignore[arg-type]
    model_id = name.partition("/")[2] if peer else name
    route = Route(name, (model_id,), anywhere=True, peer=peer)
    body = json.dumps({"model": name, "messages": []}).encode()
    payload = json.loads(body)
    try:
        async with proxy.open(route, "/v1/chat/completions", payload, body, CLIENT_AUTH) as up:
            return up.worker.id, up.response.status_code, await up.response.aread()
    finally:
        await proxy.client.aclose()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_a_peer_is_sent_its_own_key_the_hop_mark_and_its_name_for_the_model() -> None:
    peer = Peer()

    async def main() -> tuple[str, int, bytes]:
        async with peer.server:
            return await ask(peers_at(peer.server.port), "p0/m", peer="p0")

    assert run(main()) == ("p0/m", 200, b'{"answer": "ok"}')
    (request,) = peer.requests
    head, _, body = request.partition(b"\r\n\r\n")
    head += b"\r\n"
    assert b"authorization: Bearer key-0\r\n" in head
    assert b"client-key" not in request
    assert b"x-lmx-hop: 1\r\n" in head
    assert json.loads(body)["model"] == "m"


@pytest.mark.parametrize(
    "status",
    [
        b"502 Bad Gateway",
        b"503 Service Unavailable",
        b"504 Gateway Timeout",
        b"401 Unauthorized",
        b"404 Not Found",
    ],
)
def test_a_failing_peer_moves_on_to_the_next_host(status: bytes) -> None:
    failing = Peer(status, {"error": {"message": "no", "code": "x"}})
    good = Peer(body={"answer": "from p1"})

    async def main() -> tuple[str, int, bytes]:
        async with failing.server, good.server:
            return await ask(peers_at(failing.server.port, good.server.port))

    assert run(main()) == ("p1/m", 200, b'{"answer": "from p1"}')
    assert len(failing.requests) == 1


@pytest.mark.parametrize(
    "status", [b"400 Bad Request", b"422 Unprocessable", b"429 Too Many Requests"]
)
def test_a_peers_other_4xx_is_its_answer_passed_through(status: bytes) -> None:
    refusing = Peer(status, {"error": {"message": "bad temperature", "param": "temperature"}})
    other = Peer()

    async def main() -> tuple[str, int, bytes]:
        async with refusing.server, other.server:
            return await ask(peers_at(refusing.server.port, other.server.port))

    model, code, body = run(main())
    assert (model, code) == ("p0/m", int(status[:3]))
    assert json.loads(body)["error"]["param"] == "temperature"
    assert other.requests == []


def test_a_peer_that_refuses_the_connection_is_marked_down_and_skipped() -> None:
    good = Peer()
    closed_port = free_port()

    async def main() -> tuple[Peers, tuple[str, int, bytes]]:
        async with good.server:
            peers = peers_at(closed_port, good.server.port)
            return peers, await ask(peers)

    peers, result = run(main())
    assert result[:2] == ("p1/m", 200)
    down = peers.states["p0"]
    assert not down.up and down.failures == 1
    assert down.error is not None
    assert down.error.startswith("no answer to a request: cannot connect: [Errno 111]")
    assert peers.holders("m") == [PeerModel("p1", "m", ready=True)]  # answered: ready


def test_the_last_hosts_failure_is_what_the_client_gets() -> None:
    cases = {
        b"503 Service Unavailable": (502, "peer_error", "peer p0 failed: busy"),
        b"401 Unauthorized": (502, "peer_refused_key", "peer p0 refused the api_key"),
        b"404 Not Found": (404, "model_not_found", "busy"),
    }
    for status, (code, error_code, message) in cases.items():
        peer = Peer(status, {"error": {"message": "busy", "code": "model_not_found"}})

        async def main(peer: Peer = peer) -> None:
            async with peer.server:
                await ask(peers_at(peer.server.port))

        with pytest.raises(ApiError) as info:
            run(main())
        assert (info.value.status, info.value.code) == (code, error_code)
        assert info.value.message.startswith(message)


def test_a_ready_peer_is_asked_before_one_that_would_load() -> None:
    loading, ready = Peer(body={"from": "p0"}), Peer(body={"from": "p1"})

    async def main() -> tuple[str, int, bytes]:
        async with loading.server, ready.server:
            return await ask(peers_at(loading.server.port, ready.server.port, ready=(False, True)))

    assert run(main())[0] == "p1/m"
    assert loading.requests == []
