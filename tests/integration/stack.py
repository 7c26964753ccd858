"""A whole Opta-LMX process tree for tests: the repo's own supervisor.conf, run by real
supervisord in a temporary folder, with a config the test writes.

The folder mirrors the repo's layout (supervisor.conf, .venv, config/, run/), which is
what `./scripts/serve` runs, so the tests exercise the same files a user does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent
GGUF = REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
MLX_DIR = REPO / "models" / "SmolLM2-135M-Instruct-mlx"


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Ports free now, all different: each is held until every one is picked (ports asked
    for one at a time can come back the same, and a config naming one twice is refused)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            s = held.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


def wait_until(predicate: Any, timeout: float, interval: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


@dataclass
class Stack:
    root: Path
    config: dict[str, Any]
    process: subprocess.Popen[bytes]

    @property
    def port(self) -> int:
        return int(self.config["gateway"]["port"])

    @property
    def url(self) -> str:
        host = str(self.config["gateway"]["host"])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout, trust_env=False)

    @contextlib.contextmanager
    def stream_chat(self, model_id: str, **fields: Any) -> Iterator[httpx.Response]:
        """A streamed chat request through the gateway, as raw SSE lines to read."""
        body = {"model": model_id, "stream": True, "messages": [{"role": "user", "content": "go"}]}
        with (
            self.client() as c,
            c.stream("POST", "/v1/chat/completions", json={**body, **fields}) as response,
        ):
            yield response

    def ctl(self, *args: str) -> str:
        result = subprocess.run(
            [str(VENV / "bin" / "supervisorctl"), "-c", str(self.root / "supervisor.conf"), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout + result.stderr

    @property
    def admin_headers(self) -> dict[str, str]:
        key = self.config.get("security", {}).get("admin_key")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def status(self, model_id: str) -> dict[str, Any]:
        with self.client() as c:
            models = c.get("/admin/status", headers=self.admin_headers).json()["models"]
        return next(m for m in models if m["id"] == model_id)

    def worker_pids(self) -> list[int]:
        """Every live process running a worker of this stack."""
        return self.pids(lambda cmd: "-m workers" in cmd)

    def pids(self, match: Any = lambda cmd: True) -> list[int]:
        """Live processes of this stack (their command line names its folder)."""
        marker = str(self.root)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            cmd = " ".join(proc.info["cmdline"] or [])
            if marker in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE and match(cmd):
                found.append(proc.info["pid"])
        return found

    def log(self, name: str) -> str:
        path = self.root / "run" / "logs" / f"{name}.log"
        return path.read_text() if path.exists() else ""


def write_config(root: Path, config: dict[str, Any]) -> Path:
    path = root / "config" / "lmx.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def scripted_models(
    models_dir: Path,
    scripts: dict[str, dict[str, Any]],
    options: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Write each script as models_dir/<name>.json; the model entries that serve them."""
    models_dir.mkdir(parents=True, exist_ok=True)
    models = []
    for name, script in scripts.items():
        (models_dir / f"{name}.json").write_text(json.dumps(script))
        extra = (options or {}).get(name, {})
        models.append({"id": name, "path": f"{name}.json", "backend": "scripted", **extra})
    return models


def base_config(models: list[dict[str, Any]], models_dir: Path, **sections: Any) -> dict[str, Any]:
    gateway_port, *ports = free_ports(len(models) + 1)
    config: dict[str, Any] = {
        "models_dir": str(models_dir),
        "run_dir": "../run",
        "gateway": {"host": "127.0.0.1", "port": gateway_port},
        "workers": {"health_interval_s": 0.5, "load_timeout_s": 120, "stop_timeout_s": 10},
        "models": [{"port": port, **m} for port, m in zip(ports, models, strict=True)],
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


@contextlib.contextmanager
def running_stack(tmp: Path, config: dict[str, Any], timeout: float = 60.0) -> Iterator[Stack]:
    root = tmp / "lmx"
    (root / "run" / "logs").mkdir(parents=True)
    (root / "run" / "workers").mkdir()
    shutil.copy(REPO / "supervisor.conf", root / "supervisor.conf")
    (root / ".venv").symlink_to(VENV)
    config_path = write_config(root, config)
    env = {**os.environ, "LMX_CONFIG": str(config_path), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [str(VENV / "bin" / "supervisord"), "-c", str(root / "supervisor.conf")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    stack = Stack(root, config, process)
    try:
        wait_until(lambda: _healthy(stack), timeout, what="the gateway's /healthz")
        yield stack
    finally:
        stop_stack(stack)


def _healthy(stack: Stack) -> bool:
    if stack.process.poll() is not None:
        raise AssertionError(f"supervisord exited: {stack.log('supervisord')[-2000:]}")
    try:
        with stack.client(timeout=2) as c:
            return c.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def stop_stack(stack: Stack) -> list[int]:
    """SIGTERM supervisord (as Ctrl-C on ./scripts/serve would); return and kill leftovers."""
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGTERM)
        try:
            stack.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(stack.process.pid, signal.SIGKILL)
            stack.process.wait(timeout=10)
    leftovers = stack.pids()
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return leftovers
