"""The model library on a running stack: a GGUF file dropped into models_dir is listed
within seconds without a config edit and answers through the real llama.cpp worker; a
removed one goes, its worker stopped first."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.integration.stack import GGUF, Stack, base_config, free_port, running_stack, wait_until

pytestmark = pytest.mark.slow

DROPPED_ID = "smollm2-dropped.q4_1"


def free_port_range(size: int) -> list[int]:
    """`size` consecutive ports free now, for workers.port_range (loopback, bounded tries)."""
    for _ in range(50):
        first = free_port()
        if first + size > 65535:
            continue
        if all(_free(p) for p in range(first, first + size)):
            return [first, first + size - 1]
    raise AssertionError("no run of free ports found")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # no 98 MB copy when both are on one filesystem
    except OSError:
        shutil.copy(source, target)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    if not GGUF.exists():
        pytest.fail("the default model is missing: run ./scripts/fetch-model")
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    config = base_config(
        [], models_dir, workers={"port_range": free_port_range(4)}, routing={"aliases": {}}
    )
    with running_stack(tmp_path, config) as running:
        yield running


def listed(stack: Stack) -> dict[str, dict[str, Any]]:
    with stack.client() as c:
        return {m["id"]: m for m in c.get("/v1/models").json()["data"]}


def test_a_gguf_dropped_in_is_served_and_goes_when_removed(stack: Stack) -> None:
    models_dir = Path(stack.config["models_dir"])
    dropped = models_dir / "owner" / "repo" / "SmolLM2-Dropped.Q4_1.gguf"
    assert DROPPED_ID not in listed(stack)
    link_or_copy(GGUF, dropped)
    entry = wait_until(lambda: listed(stack).get(DROPPED_ID), 15, what="the dropped model")
    assert entry["backend"] == "llama_cpp" and entry["status"] == "unloaded"
    status = stack.status(DROPPED_ID)
    assert status["source"] == "library"
    assert status["path"] == "owner/repo/SmolLM2-Dropped.Q4_1.gguf"
    assert status["size_bytes"] == GGUF.stat().st_size
    assert status["context_length"] == 4096  # its own 8192, capped by workers.context_length
    first, last = stack.config["workers"]["port_range"]

    client = openai.OpenAI(base_url=stack.url + "/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model=DROPPED_ID,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=5,
        temperature=0,
    )
    assert reply.model == DROPPED_ID and reply.choices[0].message.content
    loaded = stack.status(DROPPED_ID)
    assert loaded["status"] == "ready" and first <= loaded["port"] <= last
    pid = loaded["pid"]
    assert pid in stack.worker_pids()

    dropped.unlink()
    wait_until(lambda: DROPPED_ID not in listed(stack), 30, what="the model to go")
    # Dropped from the list only once its worker has stopped.
    assert pid not in stack.worker_pids()
    log = stack.log("gateway")
    assert '"event": "model_removed"' in log and '"event": "unloaded"' in log
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model=DROPPED_ID, messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
