"""The `peers` section: each peer's name and URL checked with the key named, the refresh
interval bounded, and a peer's key kept out of every printed form of the config."""

from pathlib import Path
from typing import Any

import pytest

from gateway.config.loader import load_config
from tests.unit.gateway.config.test_config import error_for, two_models, write

PEER = {"name": "studio", "url": "http://192.168.1.20:1234", "api_key": "s3cret"}


def with_peers(*peers: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return two_models(peers=list(peers), **changes)


def test_peers_load_with_their_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, with_peers(PEER, {"name": "laptop", "url": "http://l:1"})))
    studio, laptop = config.file.peers
    assert (studio.name, studio.url, studio.api_key) == ("studio", PEER["url"], "s3cret")
    assert laptop.api_key is None
    assert config.file.peers_refresh_s == 10.0
    assert load_config(write(tmp_path, two_models())).file.peers == []


def test_a_peers_key_is_not_in_the_configs_printed_form(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, with_peers(PEER)))
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ({"name": "", "url": "http://h:1"}, "peers[0].name: '' must be letters"),
        ({"name": "a/b", "url": "http://h:1"}, "peers[0].name: 'a/b' must be letters"),
        ({"name": "p", "url": "https://h:1"}, "peers[0].url: 'https://h:1' must be http://"),
        ({"name": "p", "url": "h:1"}, "peers[0].url: 'h:1' must be http://"),
        ({"name": "p", "url": "http://:1"}, "peers[0].url: 'http://:1' must be http://"),
        ({"name": "p", "url": "http://h:port"}, "peers[0].url: 'http://h:port' is not a URL"),
        ({"name": "p", "url": "http://k@h:1"}, "a key goes in peers[...].api_key"),
        ({"name": "p", "url": "http://h:1/?x=1"}, "must be only scheme, host, port and path"),
        ({"name": "p", "url": "http://h:1/v1"}, "must be the gateway's root, without /v1"),
        ({"name": "p"}, "peers[0].url: required key is missing"),
        ({"name": "p", "url": "http://h:1", "key": "x"}, "peers[0].key: unknown key"),
    ],
)
def test_a_bad_peer_is_refused_naming_its_key(
    tmp_path: Path, peer: dict[str, Any], expected: str
) -> None:
    assert expected in error_for(tmp_path, with_peers(peer))


def test_two_peers_cannot_share_a_name(tmp_path: Path) -> None:
    message = error_for(tmp_path, with_peers(PEER, {**PEER, "url": "http://other:1"}))
    assert message == "peers[1].name: 'studio' is already used by peers[0]"


@pytest.mark.parametrize("seconds", [0, 0.5, 3601])
def test_the_refresh_interval_is_bounded(tmp_path: Path, seconds: float) -> None:
    message = error_for(tmp_path, with_peers(PEER, peers_refresh_s=seconds))
    assert message == "peers_refresh_s: must be between 1 and 3600 seconds"


def test_a_peer_url_may_carry_a_path_prefix(tmp_path: Path) -> None:
    peer = {"name": "p", "url": "http://proxy.lan:8080/lmx/"}
    assert load_config(write(tmp_path, with_peers(peer))).file.peers[0].url == peer["url"]
