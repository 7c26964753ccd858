"""No orphans: after supervisord is killed with SIGKILL (as the OOM killer would), the
gateway, memwatch and every worker exit by themselves, their ports free, and a new start
on the same ports serves."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.integration.stack import base_config, running_stack, scripted_models, wait_until

pytestmark = pytest.mark.slow


def test_killing_supervisord_leaves_no_process_and_a_new_start_serves(tmp_path: Path) -> None:
    models = scripted_models(tmp_path / "models", {"m": {"default": "Still here."}})
    config = base_config(models, tmp_path / "models", auto_load=["m"])
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with running_stack(tmp_path / "first", config) as first:
        wait_until(lambda: first.status("m")["status"] == "ready", 30, what="m ready")
        children = first.pids(lambda cmd: " -m gateway" in cmd or " -m workers" in cmd)
        assert len(children) == 3  # gateway, memwatch, the worker
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        wait_until(lambda: not first.pids(), 15, what="the orphans to exit")
    with running_stack(tmp_path / "second", config) as second:  # the same ports
        with httpx.Client(base_url=second.url, timeout=60) as client:
            answer = client.post("/v1/chat/completions", json=chat)
        assert answer.status_code == 200
        assert answer.json()["choices"][0]["message"]["content"] == "Still here."
