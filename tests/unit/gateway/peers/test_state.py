"""A peer's state: its back-off, up and down, what it sends, and never its key shown."""

import pytest

from gateway.config.schema import PeerConfig
from gateway.peers.state import BACKOFF_CAP_S, Link, PeerState, backoff_s

KEY = "peer-secret"


def peer(url: str = "http://10.0.0.2:1234") -> PeerState:
    return PeerState.of(PeerConfig("b", url, api_key=KEY))


def test_backoff_doubles_from_the_refresh_interval_up_to_a_cap() -> None:
    assert [backoff_s(n, 1.0) for n in range(0, 9)] == [1, 1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_s(10_000, 1.0) == BACKOFF_CAP_S  # no overflow after a long outage


def test_backoff_never_looks_sooner_than_the_refresh_interval() -> None:
    assert backoff_s(0, 600.0) == 600.0
    assert backoff_s(5, 600.0) == 600.0  # an interval above the cap stays the interval


def test_a_peer_is_unknown_then_up_then_down_then_up_again() -> None:
    state = peer()
    assert state.link is Link.UNKNOWN and state.status_of("m") is None
    state.listed({"m": "ready"})
    assert state.up and state.status_of("m") == "ready"
    state.failed("refused")
    state.failed("refused")
    assert state.link is Link.DOWN and state.failures == 2 and state.error == "refused"
    assert state.status_of("m") is None  # a down peer answers for nothing
    assert state.models == {"m": "ready"}  # but what it had is remembered
    state.listed({"m": "unloaded"})
    assert state.up and state.failures == 0 and state.error is None


def test_an_answer_from_a_peer_marks_its_model_ready() -> None:
    state = peer()
    state.listed({"m": "unloaded"})
    state.answered("m")
    state.answered("gone")
    assert state.models == {"m": "ready"}


def test_requests_carry_the_peers_key_and_the_hop_mark() -> None:
    assert peer().request_headers() == {
        "content-type": "application/json",
        "x-lmx-hop": "1",
        "authorization": f"Bearer {KEY}",
    }
    keyless = PeerState.of(PeerConfig("b", "http://h:1"))
    assert "authorization" not in keyless.request_headers()


@pytest.mark.parametrize(
    ("url", "host", "port", "listing"),
    [
        ("http://10.0.0.2:1234", "10.0.0.2", 1234, "http://10.0.0.2:1234/v1/models"),
        ("http://studio.lan", "studio.lan", 80, "http://studio.lan:80/v1/models"),
        ("http://[fd00::2]:9/lmx/", "fd00::2", 9, "http://[fd00::2]:9/lmx/v1/models"),
    ],
)
def test_the_url_gives_host_port_and_path_prefix(
    url: str, host: str, port: int, listing: str
) -> None:
    state = peer(url)
    assert (state.host, state.port, state.url("/v1/models")) == (host, port, listing)


def test_the_status_view_never_shows_the_key() -> None:
    state = peer()
    state.listed({"m": "ready"})
    view = state.view()
    assert view["state"] == "up" and view["models"] == [{"id": "m", "status": "ready"}]
    assert KEY not in repr(view) and KEY not in repr(state)
