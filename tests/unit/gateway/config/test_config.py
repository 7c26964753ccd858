from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.loader import ConfigError, load_config

REPO = Path(__file__).resolve().parents[4]


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    (tmp_path / "models").mkdir(exist_ok=True)
    path = tmp_path / "config" / "lmx.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def two_models(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "models": [
            {"id": "a", "path": "a.gguf", "backend": "llama_cpp", "port": 10001},
            {"id": "b", "path": "b-mlx", "backend": "mlx", "port": 10002},
        ]
    }
    config.update(changes)
    return config


def error_for(tmp_path: Path, config: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, config))
    return str(info.value)


def test_default_config_loads_with_both_backends_and_aliases() -> None:
    config = load_config(REPO / "config" / "lmx.yaml")
    assert [(m.id, m.backend, m.port) for m in config.models] == [
        ("smollm2-135m", "llama_cpp", 10001),
        ("smollm2-135m-mlx", "mlx", 10002),
    ]
    assert config.file.gateway.host == "127.0.0.1"
    assert config.file.gateway.port == 1234
    assert config.file.routing.aliases["chat"] == ["smollm2-135m", "smollm2-135m-mlx"]
    assert config.models_dir == REPO / "models"


def test_duplicate_port_names_both_models(tmp_path: Path) -> None:
    config = two_models()
    config["models"][1]["port"] = 10001
    assert error_for(tmp_path, config) == "models[1].port: 10001 is already used by models[0]"


def test_port_clash_with_gateway_is_reported(tmp_path: Path) -> None:
    config = two_models()
    config["models"][0]["port"] = 1234
    assert "models[0].port: 1234 is already used by gateway.port" in error_for(tmp_path, config)


def test_duplicate_id_is_reported(tmp_path: Path) -> None:
    config = two_models()
    config["models"][1]["id"] = "a"
    assert error_for(tmp_path, config) == "models[1].id: 'a' is already used by models[0]"


def test_unknown_key_names_its_dotted_path(tmp_path: Path) -> None:
    message = error_for(tmp_path, two_models(gateway={"prot": 1}))
    assert message.startswith("gateway.prot: unknown key")


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    config = two_models()
    config["models"][0]["port"] = "ten"
    assert error_for(tmp_path, config) == "models[0].port: expected int, got str 'ten'"


def test_path_outside_models_dir_is_refused(tmp_path: Path) -> None:
    config = two_models()
    config["models"][0]["path"] = "../../etc/passwd"
    assert "models[0].path" in error_for(tmp_path, config)
    assert "outside the models directory" in error_for(tmp_path, config)


def test_symlink_out_of_models_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "escape.gguf").symlink_to(tmp_path / "secret.gguf")
    config = two_models()
    config["models"][0]["path"] = "escape.gguf"
    assert "outside the models directory" in error_for(tmp_path, config)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")


def test_alias_to_unknown_model_is_reported(tmp_path: Path) -> None:
    message = error_for(tmp_path, two_models(routing={"aliases": {"chat": ["a", "zzz"]}}))
    assert message == "routing.aliases.chat[1]: unknown model 'zzz'"


def test_unknown_backend_is_reported(tmp_path: Path) -> None:
    config = two_models()
    config["models"][0]["backend"] = "vllm"
    assert error_for(tmp_path, config).startswith("models[0].backend: 'vllm' is not one of")


def test_missing_required_model_key(tmp_path: Path) -> None:
    config = two_models()
    del config["models"][0]["backend"]  # `port` is optional now: workers.port_range
    assert error_for(tmp_path, config) == "models[0].backend: required key is missing"


def test_worker_settings_merge_model_and_worker_defaults(tmp_path: Path) -> None:
    config = two_models(workers={"max_queue": 3, "context_length": 1024})
    config["models"][0]["max_concurrent"] = 2
    loaded = load_config(write(tmp_path, config))
    settings = loaded.worker_settings("a")
    assert settings.max_concurrent == 2
    assert settings.max_queue == 3
    assert settings.context_length == 1024
    assert settings.path == tmp_path / "models" / "a.gguf"


def with_model_options(**options: Any) -> dict[str, Any]:
    config = two_models()
    config["models"][1].update(options)
    return config


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"tool_parser": "hermse"}, "models[1].tool_parser: 'hermse' is not one of hermes,"),
        ({"reasoning_parser": "thnik"}, "models[1].reasoning_parser: 'thnik' is not one of think"),
        ({"defaults": {"temprature": 0.2}}, "models[1].defaults.temprature: not a request field"),
        ({"defaults": {"temperature": "hot"}}, "models[1].defaults.temperature: expected int or"),
        (
            {"defaults": {"max_tokens": True}},
            "models[1].defaults.max_tokens: expected int, got True",
        ),
    ],
)
def test_model_options_are_checked_at_load_naming_the_key(
    tmp_path: Path, options: dict[str, Any], expected: str
) -> None:
    assert expected in error_for(tmp_path, with_model_options(**options))


def test_known_parsers_and_defaults_load(tmp_path: Path) -> None:
    options = {
        "tool_parser": "qwen3_coder",
        "reasoning_parser": "none",
        "defaults": {"temperature": 0.2, "stop": ["\n\n"], "seed": 7},
    }
    config = load_config(write(tmp_path, with_model_options(**options)))
    settings = config.worker_settings("b")
    assert settings.tool_parser == "qwen3_coder"
    assert dict(settings.defaults) == options["defaults"]


def test_without_lmx_config_the_repo_config_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    # What ./scripts/serve and memwatch rely on: no LMX_CONFIG means config/lmx.yaml.
    monkeypatch.delenv("LMX_CONFIG", raising=False)
    config = load_config()
    assert config.source == REPO / "config" / "lmx.yaml"
    assert config.run_dir == REPO / "run"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_a_network_bind_without_api_keys_is_refused_saying_why(tmp_path: Path, host: str) -> None:
    message = error_for(tmp_path, two_models(gateway={"host": host}))
    assert message.startswith(f"gateway.host: {host!r} would let anyone on the network")
    assert "security.api_keys" in message


def test_a_network_bind_is_allowed_with_keys_or_when_said_explicitly(tmp_path: Path) -> None:
    keys = two_models(gateway={"host": "0.0.0.0"}, security={"api_keys": ["k"]})
    assert load_config(write(tmp_path, keys)).file.gateway.host == "0.0.0.0"
    said = two_models(gateway={"host": "0.0.0.0"}, security={"allow_unauthenticated_network": True})
    assert load_config(write(tmp_path, said)).file.security.allow_unauthenticated_network


def test_workers_must_stay_on_loopback(tmp_path: Path) -> None:
    message = error_for(tmp_path, two_models(workers={"host": "0.0.0.0"}))
    assert message.startswith("workers.host: '0.0.0.0' is not a loopback address")


def test_responses_store_limits_load_and_are_checked(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, two_models(responses={"max_age_days": 7})))
    assert config.file.responses.max_age_days == 7.0
    assert config.file.responses.max_bytes == 256 * 1024 * 1024
    message = error_for(tmp_path, two_models(responses={"max_age_days": 0}))
    assert message == "responses.max_age_days: must be more than 0"
    message = error_for(tmp_path, two_models(responses={"max_bytes": 0}))
    assert message == "responses.max_bytes: must be at least 1"


def test_logging_keys_load_and_are_checked(tmp_path: Path) -> None:
    default = load_config(write(tmp_path, two_models()))
    assert default.file.logging.history_size == 500
    assert default.file.logging.capture_bodies is False
    config = load_config(
        write(tmp_path, two_models(logging={"history_size": 20, "capture_bodies": True}))
    )
    assert config.file.logging.history_size == 20 and config.file.logging.capture_bodies
    message = error_for(tmp_path, two_models(logging={"history_size": 0}))
    assert message == "logging.history_size: must be between 1 and 100000"
    message = error_for(tmp_path, two_models(logging={"capture_bodies": "yes"}))
    assert message.startswith("logging.capture_bodies: expected bool")


def test_scheduler_memory_settings_load_and_are_checked(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, two_models(memory={"min_resident_s": 0})))
    assert config.file.memory.min_resident_s == 0.0
    assert config.file.memory.admission_wait_s == 300.0
    message = error_for(tmp_path, two_models(memory={"admission_wait_s": 0}))
    assert message == "memory.admission_wait_s: must be more than 0"
    message = error_for(tmp_path, two_models(memory={"min_resident_s": -1}))
    assert message == "memory.min_resident_s: must be 0 or more"
    message = error_for(tmp_path, two_models(memory={"min_resident_s": 30, "admission_wait_s": 20}))
    assert message.startswith("memory.min_resident_s: 30 must be less than memory.admission_wait_s")
