"""What a pull request body may name: repos and files that stay inside models_dir."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from gateway.library.pull_spec import PullSpec, inside
from workers.contract.errors import ApiError


def test_a_file_pull_lands_in_the_repo_folder() -> None:
    spec = PullSpec.parse({"repo": "acme/tiny", "file": "quant/tiny.Q4.gguf"})
    assert spec.revision == "main"
    assert spec.target == PurePosixPath("acme/tiny/quant/tiny.Q4.gguf")


def test_a_snapshot_pull_is_the_folder_itself() -> None:
    spec = PullSpec.parse({"repo": "acme/tiny-mlx", "revision": "v1.0"})
    assert spec.file is None
    assert spec.target == PurePosixPath("acme/tiny-mlx")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"repo": 5},
        {"repo": "tiny"},
        {"repo": "a/b/c"},
        {"repo": "../etc"},
        {"repo": "acme/.."},
        {"repo": "acme/x..y"},
        {"repo": "/acme"},
        {"repo": "acme/tiny", "file": ""},
        {"repo": "acme/tiny", "file": 3},
        {"repo": "acme/tiny", "file": "../../evil.gguf"},
        {"repo": "acme/tiny", "file": "a/../../evil.gguf"},
        {"repo": "acme/tiny", "file": "/etc/passwd"},
        {"repo": "acme/tiny", "file": "a\\..\\evil.gguf"},
        {"repo": "acme/tiny", "file": "C:/evil.gguf"},
        {"repo": "acme/tiny", "file": "a//b.gguf"},
        {"repo": "acme/tiny", "file": "./b.gguf"},
        {"repo": "acme/tiny", "file": "a\x00.gguf"},
        {"repo": "acme/tiny", "revision": ""},
        {"repo": "acme/tiny", "revision": 1},
        {"repo": "acme/tiny", "revision": "main\nX: y"},
    ],
)
def test_bodies_that_could_leave_models_dir_or_make_no_sense_get_400(body: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as refused:
        PullSpec.parse(body)
    assert refused.value.status == 400
    assert refused.value.param in ("repo", "file", "revision")


def test_pulls_overlap_when_one_writes_inside_the_other() -> None:
    snapshot = PullSpec.parse({"repo": "acme/tiny"})
    file = PullSpec.parse({"repo": "acme/tiny", "file": "a.gguf"})
    other = PullSpec.parse({"repo": "acme/tiny", "file": "b.gguf"})
    near = PullSpec.parse({"repo": "acme/tiny2"})
    assert snapshot.overlaps(file) and file.overlaps(snapshot)
    assert not file.overlaps(other)
    assert not snapshot.overlaps(near)


def test_a_symlinked_folder_leading_out_of_models_dir_is_refused(tmp_path: Path) -> None:
    models, outside = tmp_path / "models", tmp_path / "outside"
    models.mkdir()
    outside.mkdir()
    (models / "acme").symlink_to(outside)
    with pytest.raises(ApiError) as refused:
        inside(models, PurePosixPath("acme/tiny"))
    assert (refused.value.status, refused.value.code) == (400, "unsafe_path")
    assert inside(models, PurePosixPath("other/tiny")) == models.resolve() / "other/tiny"
