from pathlib import Path

import pytest
import yaml

from gateway.config.loader import load_config
from gateway.routing import Router
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
