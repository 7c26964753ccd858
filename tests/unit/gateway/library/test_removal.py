"""Deleting a model's files: only inside models_dir, with what a pull kept beside them and
the folders left empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.library.download import STATE_DIR
from gateway.library.removal import remove_model_files
from workers.contract.errors import ApiError


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


def test_a_pulled_file_goes_with_its_record_and_its_empty_folders(models: Path) -> None:
    repo = models / "acme/tiny"
    (repo / "quant").mkdir(parents=True)
    (repo / "quant/tiny.gguf").write_bytes(b"GGUF")
    (repo / STATE_DIR / "quant").mkdir(parents=True)
    (repo / STATE_DIR / "quant/tiny.gguf.etag").write_text("abc")
    assert remove_model_files(repo / "quant/tiny.gguf", models) == ["acme/tiny/quant/tiny.gguf"]
    assert list(models.iterdir()) == []


def test_a_file_beside_other_models_leaves_them(models: Path) -> None:
    repo = models / "acme/tiny"
    repo.mkdir(parents=True)
    (repo / "a.gguf").write_bytes(b"a")
    (repo / "b.gguf").write_bytes(b"b")
    remove_model_files(repo / "a.gguf", models)
    assert sorted(p.name for p in repo.iterdir()) == ["b.gguf"]


def test_a_folder_goes_whole(models: Path) -> None:
    repo = models / "acme/tiny-mlx"
    (repo / STATE_DIR).mkdir(parents=True)
    (repo / "config.json").write_text("{}")
    (repo / "model.safetensors").write_bytes(b"x")
    assert remove_model_files(repo, models) == ["acme/tiny-mlx"]
    assert not (models / "acme").exists()


def test_nothing_outside_models_dir_is_deleted(models: Path, tmp_path: Path) -> None:
    outside = tmp_path / "precious.gguf"
    outside.write_bytes(b"keep")
    (models / "link.gguf").symlink_to(outside)
    for path in (models / "link.gguf", outside, models, models / ".."):
        with pytest.raises(ApiError) as refused:
            remove_model_files(path, models)
        assert (refused.value.status, refused.value.code) == (403, "unsafe_path")
    assert outside.read_bytes() == b"keep"


def test_missing_files_are_404(models: Path) -> None:
    with pytest.raises(ApiError) as refused:
        remove_model_files(models / "absent.gguf", models)
    assert refused.value.status == 404
