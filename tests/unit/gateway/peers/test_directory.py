"""The set of peers: the hosts a route goes to (or why none), the listings, and reloads
that add, drop, change and re-time peers while their refreshes run (httpx.MockTransport)."""

import asyncio
import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config.loader import Config
from gateway.config.schema import ConfigFile, PeerConfig
from gateway.peers import PeerModel, Peers
from gateway.routing import Route
from workers.contract.errors import ApiError


def config(*peers: PeerConfig, refresh_s: float = 1.0) -> Config:
    file = ConfigFile(models=[], peers=list(peers), peers_refresh_s=refresh_s)
    return Config(file, Path("/nowhere/lmx.yaml"))


B = PeerConfig("b", "http://b.lan:1", api_key="kb")
C = PeerConfig("c", "http://c.lan:1")


def two_peers(b: dict[str, str] | None, c: dict[str, str] | None) -> Peers:
    """Peers b and c; a dict lists its models (up), None leaves it down."""
    peers = Peers(config(B, C))
    for name, models in (("b", b), ("c", c)):
        if models is None:
            peers.states[name].failed("refused")
            peers.states[name].next_check_s = 4
        else:
            peers.states[name].listed(models)
    return peers


def route(name: str, peer: str | None = None) -> Route:
    model_id = name.partition("/")[2] if peer else name
    return Route(name, (model_id,), anywhere=True, peer=peer)


def test_a_model_on_both_peers_goes_to_the_ready_one_first() -> None:
    peers = two_peers({"m": "unloaded"}, {"m": "ready"})
    assert peers.plan(route("m"), {}) == [PeerModel("c", "m", True), PeerModel("b", "m")]


def test_a_model_configured_here_and_ready_here_stays_here_first() -> None:
    peers = two_peers({"m": "ready"}, {})
    assert peers.plan(route("m"), {"m": True}) == ["m", PeerModel("b", "m", True)]


def test_a_down_peer_is_never_planned() -> None:
    peers = two_peers(None, {"m": "unloaded"})
    assert peers.plan(route("m"), {"m": False}) == ["m", PeerModel("c", "m")]


def test_peer_slash_model_goes_to_that_peer_only() -> None:
    peers = two_peers({"m": "unloaded"}, {"m": "ready"})
    assert peers.plan(route("b/m", peer="b"), {"m": True}) == [PeerModel("b", "m")]


def test_peer_slash_model_on_a_down_peer_is_503_with_retry_after() -> None:
    peers = two_peers(None, {})
    with pytest.raises(ApiError) as info:
        peers.plan(route("b/m", peer="b"), {})
    assert info.value.status == 503 and info.value.code == "peer_unreachable"
    assert (
        info.value.message
        == "peer 'b' cannot be reached now (refused); it is looked at again within 4s"
    )
    assert info.value.headers == {"Retry-After": "4"}


def test_peer_slash_model_the_peer_does_not_have_is_404_listing_its_models() -> None:
    peers = two_peers({"m": "ready", "n": "unloaded"}, {})
    with pytest.raises(ApiError) as info:
        peers.plan(route("b/x", peer="b"), {})
    assert info.value.status == 404
    assert info.value.message == "peer 'b' has no model 'x'; its models: m, n"


def test_a_model_only_on_a_down_peer_is_503_and_one_gone_everywhere_is_404() -> None:
    peers = two_peers({"m": "ready"}, {"n": "ready"})
    peers.states["b"].failed("refused")
    with pytest.raises(ApiError) as down:
        peers.plan(route("m"), {})
    assert down.value.status == 503 and "peer 'b'" in down.value.message
    with pytest.raises(ApiError) as gone:
        peers.plan(route("x"), {})
    assert gone.value.status == 404


def test_listing_names_each_peer_model_and_plain_ids_that_mean_nothing_here() -> None:
    peers = two_peers({"m": "unloaded", "here": "ready"}, {"m": "ready"})
    entries = {e["id"]: e for e in peers.model_entries(taken={"here"})}
    assert set(entries) == {"b/m", "b/here", "c/m", "m"}
    assert entries["b/m"]["peer"] == "b" and entries["b/m"]["status"] == "unloaded"
    assert entries["m"]["peers"] == ["b", "c"] and entries["m"]["status"] == "ready"
    assert peers.names(taken={"here"}) == ["b/m", "b/here", "c/m", "m"]


def test_a_down_peers_models_are_not_listed() -> None:
    peers = two_peers(None, {"n": "ready"})
    assert [e["id"] for e in peers.model_entries(taken=set())] == ["c/n", "n"]


class FakePeers:
    """What each peer's /v1/models answers, and how often it was asked."""

    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()
        self.up = {"b.lan", "c.lan", "d.lan"}

    def handler(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.asked[host] += 1
        if host not in self.up:
            raise httpx.ConnectError("Connection refused", request=request)
        return httpx.Response(200, json={"data": [{"id": f"{host[0]}-model", "status": "ready"}]})


async def settle(until: Any, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not until():
            await asyncio.sleep(0.01)


def test_reloads_add_drop_and_change_peers_while_they_are_followed() -> None:
    fake = FakePeers()

    async def go() -> None:
        peers = Peers(config(B, C, refresh_s=3600), httpx.MockTransport(fake.handler))
        peers.start()
        try:
            await settle(lambda: peers.states["b"].up and peers.states["c"].up)
            d = PeerConfig("d", "http://d.lan:1")
            peers.apply(config(dataclasses.replace(B, api_key="new"), d, refresh_s=3600))
            assert set(peers.states) == {"b", "d"}  # c dropped
            await settle(lambda: peers.states["b"].up and peers.states["d"].up)
            assert fake.asked["b.lan"] == 2  # its key changed: it starts over
            assert peers.states["b"].config.api_key == "new"
            asked_c = fake.asked["c.lan"]
            # A new interval has every peer looked at at once.
            peers.apply(config(dataclasses.replace(B, api_key="new"), d, refresh_s=1))
            await settle(lambda: fake.asked["b.lan"] == 3 and fake.asked["d.lan"] == 2)
            assert fake.asked["c.lan"] == asked_c  # a dropped peer is not asked again
        finally:
            await peers.stop()

    asyncio.run(go())


def test_a_peer_that_goes_down_is_looked_at_with_growing_waits() -> None:
    fake = FakePeers()
    fake.up = set()

    async def go() -> list[float]:
        peers = Peers(config(B, refresh_s=1), httpx.MockTransport(fake.handler))
        state = peers.states["b"]
        peers.start()
        try:
            await settle(lambda: state.failures == 2, timeout=5)
            assert state.error == "no answer: ConnectError: Connection refused"
            return [state.next_check_s]
        finally:
            await peers.stop()

    assert asyncio.run(go()) == [2.0]
