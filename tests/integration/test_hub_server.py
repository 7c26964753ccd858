"""The local hub answers huggingface_hub's own download functions as the real hub does,
so tests built on it exercise the client's real behaviour."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.integration.hub_server import LocalHub

FILES = {"tiny.gguf": b"GGUF" + os.urandom(300_000), "README.md": b"# tiny"}


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub() as running:
        running.add_repo("acme/tiny", FILES)
        yield running


def test_hf_hub_download_gets_a_large_file_through_the_cdn_redirect(
    hub: LocalHub, tmp_path: Path
) -> None:
    path = hf_hub_download(
        "acme/tiny", "tiny.gguf", local_dir=tmp_path, endpoint=hub.url, token="t0ken"
    )
    assert Path(path).read_bytes() == FILES["tiny.gguf"]
    [head] = hub.requests("HEAD")
    [get] = hub.requests("GET")
    assert head.headers["authorization"] == "Bearer t0ken"
    assert get.path.startswith("/blobs/") and get.headers["host"].startswith("localhost:")
    assert "authorization" not in get.headers


def test_snapshot_download_gets_every_file(hub: LocalHub, tmp_path: Path) -> None:
    folder = Path(snapshot_download("acme/tiny", local_dir=tmp_path, endpoint=hub.url))
    for name, data in FILES.items():
        assert (folder / name).read_bytes() == data
    assert hub.requests("GET", "/api/models/acme/tiny/tree/")


def test_errors_are_the_clients_own_kinds(hub: LocalHub, tmp_path: Path) -> None:
    cases = [
        (RepositoryNotFoundError, {"repo_id": "acme/absent", "filename": "a"}),
        (RemoteEntryNotFoundError, {"repo_id": "acme/tiny", "filename": "absent"}),
        (
            RevisionNotFoundError,
            {"repo_id": "acme/tiny", "filename": "README.md", "revision": "v9"},
        ),
    ]
    for kind, args in cases:
        with pytest.raises(kind):
            hf_hub_download(**args, local_dir=tmp_path, endpoint=hub.url)
