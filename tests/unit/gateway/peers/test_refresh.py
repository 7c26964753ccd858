"""Reading a peer's /v1/models (over httpx.MockTransport): its own models only, and every
failure a sentence that says what went wrong, never with the key in it."""

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.config.schema import PeerConfig
from gateway.peers.refresh import PeerUnreadable, own_models, read_models
from gateway.peers.state import PeerState

KEY = "peer-secret"


def read(handler: Callable[[httpx.Request], httpx.Response], timeout_s: float = 2) -> Any:
    async def go() -> dict[str, str]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            peer = PeerState.of(PeerConfig("b", "http://b.lan:1234/lmx", api_key=KEY))
            return await read_models(http, peer, timeout_s)

    return asyncio.run(go())


def test_the_list_is_asked_for_with_the_peers_key_and_the_hop_mark() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [{"id": "m", "status": "ready"}]})

    assert read(handler) == {"m": "ready"}
    (request,) = seen
    assert str(request.url) == "http://b.lan:1234/lmx/v1/models"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["x-lmx-hop"] == "1"


def test_only_the_peers_own_models_are_taken() -> None:
    document = {
        "object": "list",
        "data": [
            {"id": "m", "status": "ready"},
            {"id": "n", "status": "unloaded"},
            {"id": "odd"},
            {"id": "chat", "status": "alias", "targets": ["m"]},
            {"id": "c/x", "status": "ready", "peer": "c"},  # its peer's
            {"id": "x", "status": "ready", "peers": ["c"]},  # its peer's, by plain id
            {"id": "bad id\r\n", "status": "ready"},
            {"id": 7, "status": "ready"},
            "junk",
        ],
    }
    assert own_models(document) == {"m": "ready", "n": "unloaded", "odd": "unknown"}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(401, json={}), "HTTP 401: it refused our key (api_key)"),
        (httpx.Response(500, text="boom"), "HTTP 500 on /v1/models"),
        (httpx.Response(200, text="<html>"), "its /v1/models is not JSON"),
        (httpx.Response(200, json={"data": 3}), "its /v1/models is not a model list"),
    ],
)
def test_a_peer_that_answers_wrong_is_unreadable_saying_why(
    response: httpx.Response, expected: str
) -> None:
    with pytest.raises(PeerUnreadable) as info:
        read(lambda request: response)
    assert str(info.value) == expected


def test_a_peer_that_cannot_be_reached_is_unreadable_without_the_key() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with pytest.raises(PeerUnreadable) as info:
        read(refuse)
    assert str(info.value) == "no answer: ConnectError: Connection refused"
    assert KEY not in str(info.value)


def test_a_peer_that_stays_silent_is_given_up_on_in_time() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json={"data": []})

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            peer = PeerState.of(PeerConfig("b", "http://b.lan:1234"))
            await read_models(http, peer, 0.2)

    with pytest.raises(PeerUnreadable) as info:
        asyncio.run(asyncio.wait_for(go(), 5))
    assert str(info.value) == "no answer in 0.2s (gateway.connect_timeout_s)"
