"""A pull's download, in this process, against the local hub on loopback: resuming,
progress, what is fetched again and what is not, and how failures are told."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub.errors import HfHubHTTPError

from gateway.library.download import STATE_DIR, Cancelled, Download, hub_error
from gateway.library.pull_spec import PullSpec
from tests.integration.hub_server import LocalHub
from tests.integration.stack import free_port
from workers.contract.errors import ApiError

SIZE = 2 * 1024 * 1024
HALF = SIZE // 2


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub() as running:
        yield running


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


def spec(repo: str = "acme/tiny", file: str | None = "tiny.gguf", **fields: Any) -> PullSpec:
    return PullSpec.parse({"repo": repo, "file": file, **fields})


def download(
    hub: LocalHub, models: Path, pull: PullSpec, stop: threading.Event | None = None
) -> tuple[int, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    total = Download(pull, models, events.append, stop or threading.Event(), hub.url).run()
    return total, events


def partials(models: Path) -> list[Path]:
    return sorted(models.rglob("*.partial"))


def test_an_interrupted_pull_continues_from_its_partial_file_with_a_range_request(
    hub: LocalHub, models: Path
) -> None:
    data = os.urandom(SIZE)
    hub.add_repo("acme/tiny", {"tiny.gguf": data})
    hub.cut_at, hub.down_after_cut = HALF, True
    with pytest.raises(Exception) as failed:
        download(hub, models, spec())
    assert hub_error(failed.value, spec(), hub.url).code == "hub_error"  # the 503 after the cut
    [partial] = partials(models)
    assert partial.stat().st_size == HALF
    assert not (models / "acme/tiny/tiny.gguf").exists()

    hub.down = False
    total, events = download(hub, models, spec())
    assert total == SIZE
    assert hub.ranges()[-1] == f"bytes={HALF}-"
    assert events[0]["bytes"] >= HALF  # progress counts the bytes already there
    assert events[-1]["bytes"] == SIZE
    assert (models / "acme/tiny/tiny.gguf").read_bytes() == data
    assert partials(models) == []


def test_a_connection_broken_mid_file_is_resumed_within_the_same_pull(
    hub: LocalHub, models: Path
) -> None:
    data = os.urandom(SIZE)
    hub.add_repo("acme/tiny", {"tiny.gguf": data})
    hub.cut_at = HALF
    total, _ = download(hub, models, spec())
    assert total == SIZE
    assert hub.ranges() == [None, f"bytes={HALF}-"]
    assert (models / "acme/tiny/tiny.gguf").read_bytes() == data


def test_a_hub_that_ignores_range_sends_the_whole_file_and_it_is_not_appended(
    hub: LocalHub, models: Path
) -> None:
    data = os.urandom(SIZE)
    hub.add_repo("acme/tiny", {"tiny.gguf": data})
    hub.cut_at, hub.down_after_cut = HALF, True
    with pytest.raises(HfHubHTTPError):
        download(hub, models, spec())
    hub.down, hub.honour_range = False, False
    download(hub, models, spec())
    assert hub.ranges()[-1] == f"bytes={HALF}-"
    assert (models / "acme/tiny/tiny.gguf").read_bytes() == data


def test_a_partial_file_of_an_older_version_is_dropped(hub: LocalHub, models: Path) -> None:
    data = os.urandom(SIZE)
    hub.add_repo("acme/tiny", {"tiny.gguf": data})
    stale = models / "acme/tiny" / STATE_DIR / "tiny.gguf.0123abcd.partial"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x" * HALF)
    download(hub, models, spec())
    assert not stale.exists()
    assert hub.ranges() == [None]
    assert (models / "acme/tiny/tiny.gguf").read_bytes() == data


def test_a_whole_file_is_not_fetched_again_but_a_changed_one_is(
    hub: LocalHub, models: Path
) -> None:
    hub.add_repo("acme/tiny", {"tiny.gguf": os.urandom(SIZE)})
    download(hub, models, spec())
    total, events = download(hub, models, spec())
    assert total == SIZE
    assert len(hub.ranges()) == 1  # only the first pull fetched bytes
    assert events == [
        {
            "status": "downloading",
            "file": "tiny.gguf",
            "bytes": SIZE,
            "total": SIZE,
            "rate_bytes_s": 0.0,
        }
    ]
    changed = os.urandom(SIZE // 2)
    hub.add_repo("acme/tiny", {"tiny.gguf": changed})
    download(hub, models, spec())
    assert (models / "acme/tiny/tiny.gguf").read_bytes() == changed


def test_progress_events_come_at_most_five_a_second_and_end_at_the_total(
    hub: LocalHub, models: Path
) -> None:
    hub.chunk_size, hub.chunk_delay_s = 32 * 1024, 0.02  # about 1.3 s for the file
    hub.add_repo("acme/tiny", {"tiny.gguf": os.urandom(SIZE)})
    started = time.monotonic()
    _, events = download(hub, models, spec())
    elapsed = time.monotonic() - started
    assert 3 <= len(events) <= elapsed * 5 + 2
    counts = [e["bytes"] for e in events]
    assert counts == sorted(counts) and counts[-1] == SIZE
    assert all(e["total"] == SIZE and e["file"] == "tiny.gguf" for e in events)
    assert all(e["rate_bytes_s"] > 0 for e in events)


def test_a_snapshot_fetches_every_file_from_one_commit_with_config_json_last(
    hub: LocalHub, models: Path
) -> None:
    files = {
        "config.json": b'{"model_type": "llama"}',
        "model.safetensors": os.urandom(SIZE),
        "tokenizer.json": b"{}",
    }
    commit = hub.add_repo("acme/tiny-mlx", files)
    total, events = download(hub, models, spec("acme/tiny-mlx", None))
    assert total == sum(len(d) for d in files.values())
    assert [e["file"] for e in events if e["bytes"] == e["total"]][-1] == "config.json"
    for name, data in files.items():
        assert (models / "acme/tiny-mlx" / name).read_bytes() == data
    heads = hub.requests("HEAD", "/resolve/")
    assert heads and all(f"/resolve/{commit}/" in r.path for r in heads)


def test_a_stop_leaves_the_partial_file_for_the_next_pull(hub: LocalHub, models: Path) -> None:
    hub.chunk_size, hub.chunk_delay_s = 32 * 1024, 0.01
    hub.add_repo("acme/tiny", {"tiny.gguf": os.urandom(SIZE)})
    stop = threading.Event()
    events: list[dict[str, Any]] = []

    def emit(event: dict[str, Any]) -> None:
        events.append(event)
        stop.set()

    with pytest.raises(Cancelled):
        Download(spec(), models, emit, stop, hub.url).run()
    [partial] = partials(models)
    assert 0 < partial.stat().st_size < SIZE


def test_hub_failures_are_told_apart(hub: LocalHub, models: Path) -> None:
    hub.add_repo("acme/tiny", {"tiny.gguf": b"GGUF"})
    cases = {
        "repo_not_found": spec("acme/absent"),
        "file_not_found": spec(file="absent.gguf"),
        "revision_not_found": spec(revision="v9"),
    }
    for code, pull in cases.items():
        with pytest.raises(Exception) as failed:
            download(hub, models, pull)
        error = hub_error(failed.value, pull, hub.url)
        assert (error.status, error.code) == (404, code)
        assert hub.url in error.message


def test_an_unreachable_hub_is_named_in_the_error(models: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Exception) as failed:
        Download(spec(), models, lambda e: None, threading.Event(), endpoint).run()
    error = hub_error(failed.value, spec(), endpoint)
    assert (error.status, error.code) == (503, "hub_unreachable")
    assert endpoint in error.message


def test_a_file_name_from_the_hub_that_would_leave_the_folder_is_refused(
    hub: LocalHub, models: Path
) -> None:
    hub.add_repo("acme/evil", {"../../escaped.txt": b"x", "ok.txt": b"y"})
    with pytest.raises(ApiError) as failed:
        download(hub, models, spec("acme/evil", None))
    assert (failed.value.status, failed.value.code) == (502, "unsafe_path")
    assert not list(models.parent.rglob("escaped.txt"))
    assert hub.requests("HEAD") == []
