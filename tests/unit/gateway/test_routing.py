import dataclasses
from pathlib import Path

import pytest
import yaml

from gateway.config.loader import Config, load_config
from gateway.config.schema import ConfigFile, PeerConfig
from gateway.peers import Peers
from gateway.routing import Route, Router
from workers.contract.errors import ApiError


@pytest.fixture
def router(tmp_path: Path) -> Router:
    (tmp_path / "models").mkdir()
    config = {
        "models_dir": "models",
        "models": [
            {"id": "big", "path": "big.gguf", "backend": "llama_cpp", "port": 10001},
            {"id": "small", "path": "small.gguf", "backend": "llama_cpp", "port": 10002},
        ],
        "routing": {
            "default": "chat",
            "aliases": {"chat": ["big", "small"], "fast": ["small"]},
            "presets": {
                "coder": {
                    "model": "fast",
                    "system": "You write code.",
                    "params": {"temperature": 0},
                }
            },
        },
    }
    path = tmp_path / "lmx.yaml"
    path.write_text(yaml.safe_dump(config))
    return Router(load_config(path))


def test_model_id_resolves_to_itself(router: Router) -> None:
    assert router.resolve("small").chain == ("small",)


def test_alias_resolves_to_its_fallback_chain(router: Router) -> None:
    assert router.resolve("chat").chain == ("big", "small")


@pytest.mark.parametrize("name", ["default", "auto"])
def test_default_and_auto_mean_routing_default(router: Router, name: str) -> None:
    assert router.resolve(name).chain == ("big", "small")


@pytest.mark.parametrize("name", ["coder", "preset:coder"])
def test_preset_brings_target_params_and_system(router: Router, name: str) -> None:
    route = router.resolve(name)
    assert route.chain == ("small",)
    assert route.params == {"temperature": 0}
    assert route.system == "You write code."


def test_unknown_model_is_404_listing_what_exists(router: Router) -> None:
    with pytest.raises(ApiError) as info:
        router.resolve("gpt-5")
    assert info.value.status == 404
    assert info.value.code == "model_not_found"
    assert "big, small, chat, fast, preset:coder" in info.value.message


@pytest.mark.parametrize("value", [None, 3, ""])
def test_missing_or_non_string_model_is_400(router: Router, value: object) -> None:
    with pytest.raises(ApiError) as info:
        router.resolve(value)
    assert info.value.status == 400
    assert info.value.param == "model"


# ---- routes peers may answer ----------------------------------------------------------


@pytest.fixture
def peers(router: Router) -> Peers:
    """Peer `studio` lists big (same id as here), qwen and chat (an alias name here);
    peer `old` is down and had `mistral`."""
    peers = Peers(Config(ConfigFile(models=[], peers=[STUDIO, OLD]), Path("/x/lmx.yaml")))
    peers.states["studio"].listed({"big": "ready", "qwen": "unloaded", "chat": "ready"})
    peers.states["old"].listed({"mistral": "ready"})
    peers.states["old"].failed("refused")
    return peers


STUDIO = PeerConfig("studio", "http://studio.lan:1234")
OLD = PeerConfig("old", "http://old.lan:1234")


@pytest.mark.parametrize("name", ["big", "chat", "default", "coder", "preset:coder"])
def test_a_name_known_here_keeps_its_meaning_here(router: Router, peers: Peers, name: str) -> None:
    route = router.resolve_anywhere(name, peers)
    assert route == dataclasses.replace(router.resolve(name), anywhere=True)
    assert route.peer is None


def test_peer_slash_model_is_that_peers_model(router: Router, peers: Peers) -> None:
    route = router.resolve_anywhere("studio/big", peers)
    assert (route.chain, route.peer, route.anywhere) == (("big",), "studio", True)
    # Named even when the peer does not list it (it says 404 when asked, gateway.peers).
    assert router.resolve_anywhere("studio/nope", peers).chain == ("nope",)


def test_an_id_only_peers_list_is_theirs_down_ones_included(router: Router, peers: Peers) -> None:
    assert router.resolve_anywhere("qwen", peers) == Route("qwen", ("qwen",), anywhere=True)
    assert router.resolve_anywhere("mistral", peers).chain == ("mistral",)


def test_an_unknown_name_is_404_listing_peer_models_too(router: Router, peers: Peers) -> None:
    with pytest.raises(ApiError) as info:
        router.resolve_anywhere("gpt-5", peers)
    assert info.value.status == 404
    assert info.value.message.endswith(
        "big, small, chat, fast, preset:coder, studio/big, studio/qwen, studio/chat, qwen"
    )
    with pytest.raises(ApiError):  # not a configured peer
        router.resolve_anywhere("nobody/big", peers)


@pytest.mark.parametrize("value", [None, 3, ""])
def test_a_missing_model_is_400_for_routes_peers_may_answer(
    router: Router, peers: Peers, value: object
) -> None:
    with pytest.raises(ApiError) as info:
        router.resolve_anywhere(value, peers)
    assert info.value.status == 400
