"""memwatch's decisions, with a small fake supervisord and a presented machine: the case a
real machine cannot be made to produce on cue (memory pressure). The real listener is
tested end to end in test_memory_lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.config.loader import load_config
from gateway.fleet.programs import write_program
from gateway.memory.probe import GB, SystemMemory
from gateway.memwatch.listener import FollowedConfig, MemWatch
from workers.contract.health import Health, ModelState
from workers.contract.settings import BackendName, WorkerSettings


class FakeRpc:
    def __init__(self, running: dict[str, int]) -> None:
        self.running = running
        self.calls: list[tuple[str, str]] = []

    def getAllProcessInfo(self) -> list[dict[str, Any]]:
        return [
            {"name": f"worker-{m}", "statename": "RUNNING", "pid": pid}
            for m, pid in self.running.items()
        ]

    def stopProcess(self, name: str, wait: bool) -> bool:
        self.calls.append(("stop", name))
        return True

    def startProcess(self, name: str, wait: bool) -> bool:
        self.calls.append(("start", name))
        return True


class Machine:
    def __init__(self, total: int, used: int, rss: dict[int, int]) -> None:
        self.total, self.used, self.rss = total, used, rss

    def system(self) -> SystemMemory:
        return SystemMemory(self.total, self.total - self.used)

    def tree_rss(self, pid: int) -> int:
        return self.rss.get(pid, 0)


def config(tmp_path: Path) -> Any:
    models = [
        {"id": "a", "path": "a.gguf", "backend": "llama_cpp", "port": 10001, "max_rss_gb": 1.0},
        {"id": "b", "path": "b.gguf", "backend": "llama_cpp", "port": 10002},
        {"id": "c", "path": "c.gguf", "backend": "llama_cpp", "port": 10003, "pinned": True},
    ]
    (tmp_path / "models").mkdir()
    path = tmp_path / "lmx.yaml"
    path.write_text(yaml.safe_dump({"models_dir": "models", "run_dir": "run", "models": models,
                                    "memory": {"max_memory_percent": 80}}))  # fmt: skip
    return load_config(path)


def health_table(table: dict[int, dict[str, Any]]) -> Any:
    return lambda port: worker_health(**table[port]) if port in table else None


def worker_health(in_flight: int, last_request_at: float) -> Health:
    return Health(
        status=ModelState.READY, model="m", backend="llama_cpp", pid=1, port=1,
        context_length=4096, rss_bytes=GB, accelerator_bytes=None, in_flight=in_flight,
        queued=0, requests_total=1, tokens_generated=1, cancelled_total=0,
        last_request_at=last_request_at, ready_at=1.0, load_seconds=1.0, error=None,
        prompt_cache=None,
    )  # fmt: skip


def test_worker_over_its_rss_cap_is_restarted_through_supervisord(tmp_path: Path) -> None:
    rpc = FakeRpc({"a": 11, "b": 12})
    machine = Machine(16 * GB, 4 * GB, {11: 2 * GB, 12: GB})
    logged: list[dict[str, Any]] = []
    watch = MemWatch(config(tmp_path), rpc, machine, health_table({}), logged.append)
    actions = watch.tick()
    assert rpc.calls == [("stop", "worker-a"), ("start", "worker-a")]
    assert actions == [
        {"event": "restart_over_rss", "model": "a", "rss_bytes": 2 * GB, "max_rss_gb": 1.0}
    ]
    assert {"event": "rss", "model": "b", "pid": 12, "rss_bytes": GB} in logged


def test_over_threshold_stops_least_recently_used_idle_unpinned(tmp_path: Path) -> None:
    rpc = FakeRpc({"a": 11, "b": 12, "c": 13})
    machine = Machine(10 * GB, 9 * GB, {11: GB // 2, 12: GB // 2, 13: GB // 2})
    health = health_table({
        10001: {"in_flight": 1, "last_request_at": 100.0},   # busy: never
        10002: {"in_flight": 0, "last_request_at": 200.0},   # idle: the victim
        10003: {"in_flight": 0, "last_request_at": 50.0},    # oldest but pinned
    })  # fmt: skip
    watch = MemWatch(config(tmp_path), rpc, machine, health, lambda e: None)
    actions = watch.tick()
    assert rpc.calls == [("stop", "worker-b")]
    assert actions[0]["event"] == "stop_lru_over_threshold" and actions[0]["model"] == "b"
    assert actions[0]["limit_bytes"] == 8 * GB


def test_under_threshold_nothing_is_stopped(tmp_path: Path) -> None:
    rpc = FakeRpc({"b": 12})
    machine = Machine(10 * GB, 5 * GB, {12: GB})
    watch = MemWatch(config(tmp_path), rpc, machine, health_table({}), lambda e: None)
    assert watch.tick() == []
    assert rpc.calls == []


def test_a_library_worker_is_watched_on_the_port_its_settings_file_names(tmp_path: Path) -> None:
    watched = config(tmp_path)
    # The gateway's settings file for a model found in models_dir, which the config
    # (as memwatch read it) does not list.
    path = tmp_path / "models" / "lib.gguf"
    write_program(watched, WorkerSettings("lib", BackendName.LLAMA_CPP, path, port=20001))
    rpc = FakeRpc({"lib": 14, "b": 12})
    machine = Machine(10 * GB, 9 * GB, {14: GB, 12: GB})
    health = health_table({
        20001: {"in_flight": 0, "last_request_at": 10.0},    # the least recently used
        10002: {"in_flight": 0, "last_request_at": 200.0},
    })  # fmt: skip
    MemWatch(watched, rpc, machine, health, lambda e: None).tick()
    assert rpc.calls == [("stop", "worker-lib")]


def test_memwatch_follows_the_config_file_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    followed = FollowedConfig(config(tmp_path))
    path = tmp_path / "lmx.yaml"
    path.write_text(path.read_text().replace("max_memory_percent: 80", "max_memory_percent: 60"))
    assert followed.current().file.memory.max_memory_percent == 60
    path.write_text(path.read_text().replace("max_memory_percent: 60", "max_memory_percnt: 50"))
    assert followed.current().file.memory.max_memory_percent == 60
