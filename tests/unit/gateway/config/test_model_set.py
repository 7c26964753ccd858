"""The model set: config entries plus library finds, with ids, ports and contexts
settled, and the config's checks over the whole of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.loader import ConfigError, build_config, load_config, read_config_file
from gateway.library.scan import scan_models
from gateway.routing import Router
from tests.unit.gateway.library.model_files import write_gguf, write_mlx
from workers.contract.errors import ApiError


def write(tmp_path: Path, **config: Any) -> Path:
    (tmp_path / "models").mkdir(exist_ok=True)
    path = tmp_path / "lmx.yaml"
    path.write_text(yaml.safe_dump({"models_dir": "models", "models": [], **config}))
    return path


def summary(path: Path) -> dict[str, tuple[str, int, int, str]]:
    config = load_config(path)
    return {
        m.id: (
            m.backend,
            m.port,
            config.worker_settings(m.id).context_length,
            config.source_of(m.id),
        )
        for m in config.models
    }


def test_library_models_get_id_backend_port_and_capped_context(tmp_path: Path) -> None:
    write_gguf(tmp_path / "models" / "Long-Context.Q4.gguf", context_length=131072)
    write_gguf(tmp_path / "models" / "short.gguf", context_length=2048)
    write_mlx(tmp_path / "models" / "owner" / "Qwen3-4B-mlx", max_position_embeddings=40960)
    path = write(tmp_path, workers={"port_range": [20000, 20010]})
    assert summary(path) == {
        "long-context.q4": ("llama_cpp", 20000, 4096, "library"),
        "qwen3-4b-mlx": ("mlx", 20001, 4096, "library"),
        "short": ("llama_cpp", 20002, 2048, "library"),
    }


def test_workers_context_length_is_the_cap_and_the_fallback(tmp_path: Path) -> None:
    write_gguf(tmp_path / "models" / "native.gguf", context_length=32768)
    write_gguf(tmp_path / "models" / "silent.gguf", context_length=None)
    path = write(tmp_path, workers={"context_length": 16384})
    contexts = {m: c for m, (_, _, c, _) in summary(path).items()}
    assert contexts == {"native": 16384, "silent": 16384}


def test_an_entry_naming_a_library_file_by_path_overrides_what_is_derived(tmp_path: Path) -> None:
    write_gguf(tmp_path / "models" / "owner" / "Big.gguf", context_length=131072)
    write_gguf(tmp_path / "models" / "other.gguf")
    entry = {"id": "big", "path": "owner/Big.gguf", "backend": "llama_cpp", "port": 21000,
             "context_length": 32768, "pinned": True}  # fmt: skip
    path = write(tmp_path, models=[entry], workers={"port_range": [20000, 20010]})
    assert summary(path) == {
        "big": ("llama_cpp", 21000, 32768, "config"),
        "other": ("llama_cpp", 20000, 4096, "library"),
    }
    assert load_config(path).model("big").pinned


def test_entries_without_a_port_get_one_from_the_range_skipping_named_ones(
    tmp_path: Path,
) -> None:
    models = [
        {"id": "a", "path": "a.json", "backend": "scripted"},
        {"id": "b", "path": "b.json", "backend": "scripted", "port": 20000},
    ]
    path = write(tmp_path, models=models, gateway={"port": 20001},
                 workers={"port_range": [20000, 20005]})  # fmt: skip
    ports = {m.id: m.port for m in load_config(path).models}
    assert ports == {"a": 20002, "b": 20000}


def test_a_model_keeps_its_port_when_a_new_file_sorts_before_it(tmp_path: Path) -> None:
    write_gguf(tmp_path / "models" / "m.gguf")
    path = write(tmp_path, workers={"port_range": [20000, 20010]})
    first = load_config(path)
    assert first.model("m").port == 20000
    write_gguf(tmp_path / "models" / "a.gguf")
    file = read_config_file(path)
    found = scan_models(tmp_path / "models").found
    again = build_config(file, path, found, previous_ports={"m": 20000})
    assert {m.id: m.port for m in again.models} == {"a": 20001, "m": 20000}
    held = build_config(file, path, found, previous_ports={"m": 20000}, held_ports={20001})
    assert held.model("a").port == 20002  # a worker still stopping holds 20001


def test_a_full_range_skips_library_models_and_refuses_portless_entries(tmp_path: Path) -> None:
    write_gguf(tmp_path / "models" / "a.gguf")
    write_gguf(tmp_path / "models" / "b.gguf")
    path = write(tmp_path, workers={"port_range": [20000, 20000]})
    config = load_config(path)
    assert [m.id for m in config.models] == ["a"]
    assert [(s.path, s.reason) for s in config.model_set.skipped] == [
        ("b.gguf", "no free port left in workers.port_range [20000, 20000]")
    ]
    entry = {"id": "x", "path": "x.json", "backend": "scripted"}
    full = write(tmp_path, models=[entry], workers={"port_range": [20000, 20000]},
                 gateway={"port": 20000})  # fmt: skip
    with pytest.raises(ConfigError, match=r"^models\[0\]\.port: no free port left"):
        load_config(full)


def test_library_ids_avoid_alias_and_entry_names(tmp_path: Path) -> None:
    write_gguf(tmp_path / "models" / "chat.gguf")
    write_gguf(tmp_path / "models" / "x.gguf")
    path = write(tmp_path, models=[{"id": "x", "path": "x.json", "backend": "scripted"}],
                 routing={"aliases": {"chat": ["x"]}})  # fmt: skip
    assert sorted(m.id for m in load_config(path).models) == ["chat-2", "x", "x-2"]


def test_an_alias_may_name_a_library_model_and_must_name_something(tmp_path: Path) -> None:
    write_gguf(tmp_path / "models" / "Local.gguf")
    ok = write(tmp_path, routing={"aliases": {"mine": ["local"]}})
    assert Router(load_config(ok)).resolve("mine").chain == ("local",)
    bad = write(tmp_path, routing={"aliases": {"mine": ["local", "gone"]}})
    with pytest.raises(ConfigError, match=r"^routing\.aliases\.mine\[1\]: unknown model 'gone'"):
        load_config(bad)


def test_when_a_library_model_goes_its_aliases_skip_it(tmp_path: Path) -> None:
    write_gguf(tmp_path / "models" / "a.gguf")
    write_gguf(tmp_path / "models" / "b.gguf")
    path = write(tmp_path, routing={"aliases": {"pair": ["a", "b"], "solo": ["b"]}})
    load_config(path)
    (tmp_path / "models" / "b.gguf").unlink()
    found = scan_models(tmp_path / "models").found
    with pytest.raises(ConfigError, match="unknown model 'b'"):
        build_config(read_config_file(path), path, found)
    router = Router(build_config(read_config_file(path), path, found, strict=False))
    assert router.resolve("pair").chain == ("a",)
    with pytest.raises(ApiError) as info:
        router.resolve("solo")
    assert info.value.status == 404


@pytest.mark.parametrize("port_range", [[20010, 20000], [0, 5], [1, 2, 3], [20000, 70000]])
def test_a_bad_port_range_is_refused_naming_the_key(tmp_path: Path, port_range: list[int]) -> None:
    with pytest.raises(ConfigError, match=r"^workers\.port_range: "):
        load_config(write(tmp_path, workers={"port_range": port_range}))
