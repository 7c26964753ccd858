"""Pulls and deletes through the real gateway under real supervisord, from a local hub
that huggingface_hub talks to as to the real one (HF_ENDPOINT, inherited by the stack)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.hub_server import LocalHub
from tests.integration.stack import Stack, base_config, running_stack, scripted_models, wait_until

pytestmark = pytest.mark.slow

KEY = "sesame"
TOKEN = "hf_test_token_not_for_logs"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    with LocalHub() as running:
        yield running


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, hub: LocalHub) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("pulls")
    models_dir = tmp / "models"
    models = scripted_models(models_dir, {"resident": {"default": "Resident."}})
    models += [
        {"id": "pulled", "path": "acme/scripted/model.json", "backend": "scripted"},
        {"id": "folder", "path": "acme/delete-me", "backend": "mlx"},
        {"id": "busy", "path": "acme/busy/big.gguf", "backend": "llama_cpp"},
        {"id": "escapee", "path": "links/escape.json", "backend": "scripted"},
    ]
    config = base_config(models, models_dir, security={"admin_key": KEY})
    with contextlib.ExitStack() as cleanup:
        # The stack inherits this process's environment when it starts; nothing else does.
        with pytest.MonkeyPatch.context() as env:
            env.setenv("HF_ENDPOINT", hub.url)
            env.setenv("HF_TOKEN", TOKEN)
            env.delenv("HF_HUB_OFFLINE", raising=False)
            running = cleanup.enter_context(running_stack(tmp, config))
        yield running


@pytest.fixture
def paced(hub: LocalHub) -> Iterator[LocalHub]:
    """A hub slow enough (about 3 MiB/s) for progress events and for a second client."""
    hub.chunk_size, hub.chunk_delay_s = 32 * 1024, 0.01
    try:
        yield hub
    finally:
        hub.chunk_size, hub.chunk_delay_s = 64 * 1024, 0.0


def models_dir(stack: Stack) -> Path:
    return Path(stack.config["models_dir"])


def admin(stack: Stack, key: str | None = KEY) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=stack.url, headers=headers, timeout=60, trust_env=False)


def events_of(response: httpx.Response) -> Iterator[dict[str, Any]]:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


def pull(stack: Stack, body: dict[str, Any]) -> list[dict[str, Any]]:
    with admin(stack) as c, c.stream("POST", "/admin/models/pull", json=body) as response:
        return list(events_of(response))


def blob_gets(hub: LocalHub, data: bytes) -> int:
    return len(hub.requests("GET", f"/blobs/{_sha256(data)}"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gguf(size: int) -> bytes:
    return b"GGUF" + os.urandom(size - 4)


# ---- pulling ------------------------------------------------------------------------------


def test_pull_of_a_gguf_file_streams_progress_then_success(stack: Stack, paced: LocalHub) -> None:
    data = gguf(4 * MiB)
    paced.add_repo("acme/tiny-gguf", {"tiny.gguf": data, "README.md": b"# tiny"})
    events = pull(stack, {"repo": "acme/tiny-gguf", "file": "tiny.gguf"})
    *progress, last = events
    assert last == {
        "status": "success",
        "repo": "acme/tiny-gguf",
        "path": "acme/tiny-gguf/tiny.gguf",
        "bytes": len(data),
        "id": "tiny",  # the library's id for it, served from the moment the pull ends
    }
    with stack.client() as c:
        listed = {m["id"]: m for m in c.get("/v1/models").json()["data"]}
    assert listed["tiny"]["backend"] == "llama_cpp"
    assert len(progress) >= 3
    assert all(e["status"] == "downloading" and e["file"] == "tiny.gguf" for e in progress)
    assert all(e["total"] == len(data) and e["rate_bytes_s"] > 0 for e in progress)
    counts = [e["bytes"] for e in progress]
    assert counts == sorted(counts) and counts[0] < len(data) == counts[-1]
    assert (models_dir(stack) / "acme/tiny-gguf/tiny.gguf").read_bytes() == data
    assert not (models_dir(stack) / "acme/tiny-gguf/README.md").exists()


def test_pull_of_a_snapshot_fetches_the_folder_and_keeps_the_token_on_the_hub(
    stack: Stack, hub: LocalHub
) -> None:
    files = {
        "config.json": b'{"model_type": "llama"}',
        "model.safetensors": os.urandom(MiB),
        "tokenizer.json": b'{"version": "1.0"}',
    }
    hub.add_repo("acme/tiny-mlx", files)
    *progress, last = pull(stack, {"repo": "acme/tiny-mlx"})
    assert last["status"] == "success" and last["path"] == "acme/tiny-mlx"
    assert last["id"] == "tiny-mlx"  # the folder is an MLX model in the library
    assert stack.status("tiny-mlx")["source"] == "library"
    assert last["bytes"] == sum(len(d) for d in files.values())
    assert {e["file"] for e in progress} == set(files)
    for name, data in files.items():
        assert (models_dir(stack) / "acme/tiny-mlx" / name).read_bytes() == data
    # The token goes to the hub (API and resolve), not to the CDN host, and not into the log.
    to_hub = hub.requests(path_part="acme/tiny-mlx")
    assert to_hub and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in to_hub)
    to_cdn = hub.requests("GET", f"/blobs/{_sha256(files['model.safetensors'])}")
    assert to_cdn and all("authorization" not in r.headers for r in to_cdn)
    assert TOKEN not in stack.log("gateway")


def test_an_interrupted_pull_is_resumed_by_the_next_one_with_a_range_request(
    stack: Stack, hub: LocalHub
) -> None:
    data = gguf(4 * MiB)
    hub.add_repo("acme/resume", {"big.gguf": data})
    body = {"repo": "acme/resume", "file": "big.gguf"}
    hub.cut_at, hub.down_after_cut = 2 * MiB, True
    try:
        failed = pull(stack, body)
    finally:
        hub.down, hub.down_after_cut = False, False
    assert failed[-1]["status"] == "error"
    assert failed[-1]["error"]["code"] == "hub_error"  # the 503 after the cut
    assert set(failed[-1]["error"]) >= {"message", "type", "code"}
    assert not (models_dir(stack) / "acme/resume/big.gguf").exists()

    *progress, last = pull(stack, body)
    assert last["status"] == "success" and last["bytes"] == len(data)
    assert hub.ranges()[-1] == f"bytes={2 * MiB}-"
    assert progress[0]["bytes"] >= 2 * MiB
    assert (models_dir(stack) / "acme/resume/big.gguf").read_bytes() == data


def test_hub_errors_arrive_as_an_error_event(stack: Stack, hub: LocalHub) -> None:
    hub.add_repo("acme/errors", {"a.gguf": b"GGUF"})
    cases = [
        ({"repo": "acme/absent"}, "repo_not_found"),
        ({"repo": "acme/errors", "file": "absent.gguf"}, "file_not_found"),
        ({"repo": "acme/errors", "revision": "v9"}, "revision_not_found"),
    ]
    for body, code in cases:
        [event] = pull(stack, body)
        assert event["status"] == "error"
        assert event["error"]["code"] == code and event["error"]["type"] == "not_found_error"
    hub.down = True
    try:
        [event] = pull(stack, {"repo": "acme/errors", "file": "a.gguf"})
    finally:
        hub.down = False
    assert event["error"]["code"] == "hub_error" and "503" in event["error"]["message"]


def test_names_that_would_leave_models_dir_get_400_before_anything_is_fetched(
    stack: Stack, hub: LocalHub, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (models_dir(stack) / "evil").symlink_to(outside)
    bodies = [
        {"repo": "../escape"},
        {"repo": "acme/.."},
        {"repo": "acme/tiny", "file": "../../escape.gguf"},
        {"repo": "acme/tiny", "file": "/etc/passwd"},
        {"repo": "acme/tiny", "file": "..\\escape.gguf"},
        {"repo": "evil/tiny", "file": "a.gguf"},  # a symlinked folder leading out
        {"file": "a.gguf"},
    ]
    before = len(hub.received)
    with admin(stack) as c:
        for body in bodies:
            response = c.post("/admin/models/pull", json=body)
            assert response.status_code == 400, body
            error = response.json()["error"]
            assert error["message"] and error["type"] == "invalid_request_error", body
    assert len(hub.received) == before
    assert list(outside.iterdir()) == []


def test_the_same_pull_twice_downloads_once_and_an_overlapping_pull_gets_409(
    stack: Stack, paced: LocalHub
) -> None:
    data = gguf(4 * MiB)
    paced.add_repo("acme/busy", {"big.gguf": data})
    body = {"repo": "acme/busy", "file": "big.gguf"}
    with (
        admin(stack) as c,
        c.stream("POST", "/admin/models/pull", json=body) as first,
        c.stream("POST", "/admin/models/pull", json=body) as second,
    ):
        first_events, second_events = events_of(first), events_of(second)
        assert next(first_events)["status"] == "downloading"
        assert next(second_events)["status"] == "downloading"
        overlapping = c.post("/admin/models/pull", json={"repo": "acme/busy"})
        deleting = c.delete("/admin/models/busy")
        rest, second_rest = list(first_events), list(second_events)
    assert rest[-1] == second_rest[-1]
    assert rest[-1]["status"] == "success" and rest[-1]["path"] == "acme/busy/big.gguf"
    assert blob_gets(paced, data) == 1
    for refused in (overlapping, deleting):
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "pull_in_progress"


def test_a_client_that_leaves_does_not_stop_the_pull(stack: Stack, paced: LocalHub) -> None:
    data = gguf(4 * MiB)
    paced.add_repo("acme/leaver", {"big.gguf": data})
    body = {"repo": "acme/leaver", "file": "big.gguf"}
    with admin(stack) as c, c.stream("POST", "/admin/models/pull", json=body) as response:
        assert next(events_of(response))["status"] == "downloading"
    path = models_dir(stack) / "acme/leaver/big.gguf"
    wait_until(lambda: path.exists(), 30, what="the pull to finish without its client")
    assert path.read_bytes() == data
    wait_until(lambda: '"pull_finished"' in stack.log("gateway"), 5, what="pull_finished")
    # Pulling it again finds it whole: no second download.
    *progress, last = pull(stack, body)
    assert last["status"] == "success"
    assert progress == [
        {
            "status": "downloading",
            "file": "big.gguf",
            "bytes": len(data),
            "total": len(data),
            "rate_bytes_s": 0.0,
        }
    ]
    assert blob_gets(paced, data) == 1


# ---- deleting -----------------------------------------------------------------------------


def test_delete_unloads_the_model_then_removes_its_files(stack: Stack, hub: LocalHub) -> None:
    script = {"default": "Pulled and served."}
    hub.add_repo("acme/scripted", {"model.json": json.dumps(script).encode()})
    assert pull(stack, {"repo": "acme/scripted", "file": "model.json"})[-1]["status"] == "success"
    with admin(stack) as c:
        chat = {"model": "pulled", "messages": [{"role": "user", "content": "hi"}]}
        answer = c.post("/v1/chat/completions", json=chat).json()
        assert answer["choices"][0]["message"]["content"] == "Pulled and served."
        pid = stack.status("pulled")["pid"]
        response = c.delete("/admin/models/pulled")
    assert response.status_code == 200
    assert response.json() == {"id": "pulled", "deleted": ["acme/scripted/model.json"]}
    assert stack.status("pulled")["status"] == "unloaded"
    assert pid not in stack.worker_pids()
    assert not (models_dir(stack) / "acme/scripted").exists()


def test_delete_removes_a_pulled_folder(stack: Stack, hub: LocalHub) -> None:
    hub.add_repo("acme/delete-me", {"config.json": b"{}", "model.safetensors": os.urandom(1000)})
    assert pull(stack, {"repo": "acme/delete-me"})[-1]["status"] == "success"
    with admin(stack) as c:
        response = c.delete("/admin/models/folder")
    assert response.json() == {"id": "folder", "deleted": ["acme/delete-me"]}
    assert not (models_dir(stack) / "acme/delete-me").exists()


def test_delete_refuses_unknown_ids_and_files_outside_models_dir(
    stack: Stack, tmp_path: Path
) -> None:
    precious = tmp_path / "precious.json"
    precious.write_text("{}")
    link = models_dir(stack) / "links/escape.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(precious)
    with admin(stack) as c:
        unknown = c.delete("/admin/models/nope")
        escaping = c.delete("/admin/models/escapee")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert escaping.status_code == 403 and escaping.json()["error"]["code"] == "unsafe_path"
    assert precious.exists()


def test_pull_and_delete_need_the_admin_key(stack: Stack) -> None:
    for key in (None, "wrong"):
        with admin(stack, key) as c:
            pulled = c.post("/admin/models/pull", json={"repo": "acme/tiny-gguf"})
            deleted = c.delete("/admin/models/resident")
        for response in (pulled, deleted):
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "invalid_admin_key"
    assert (models_dir(stack) / "resident.json").exists()
