"""What counts as a model under models_dir, and what is left out (with why, where a user
would wonder)."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.library.context import native_context
from gateway.library.scan import scan_models
from tests.unit.gateway.library.model_files import write_gguf, write_mlx
from workers.contract.settings import BackendName


def found(models_dir: Path) -> dict[str, BackendName]:
    return {f.path: f.backend for f in scan_models(models_dir).found}


def skipped(models_dir: Path) -> dict[str, str]:
    return {s.path: s.reason for s in scan_models(models_dir).skipped}


def test_gguf_files_and_mlx_folders_at_any_depth_up_to_three(tmp_path: Path) -> None:
    write_gguf(tmp_path / "Top.gguf")
    write_gguf(tmp_path / "owner" / "repo-GGUF" / "model.Q4_K_M.gguf")
    write_mlx(tmp_path / "mlx-community" / "Qwen3-4B-4bit")
    write_gguf(tmp_path / "a" / "b" / "c" / "too-deep.gguf")
    assert found(tmp_path) == {
        "Top.gguf": BackendName.LLAMA_CPP,
        "mlx-community/Qwen3-4B-4bit": BackendName.MLX,
        "owner/repo-GGUF/model.Q4_K_M.gguf": BackendName.LLAMA_CPP,
    }


def test_an_mlx_folder_is_one_model_and_not_searched_inside(tmp_path: Path) -> None:
    folder = write_mlx(tmp_path / "m-mlx")
    write_gguf(folder / "inside.gguf")
    assert found(tmp_path) == {"m-mlx": BackendName.MLX}


def test_projectors_later_shards_hidden_partial_and_scripted_files_are_not_models(
    tmp_path: Path,
) -> None:
    write_gguf(tmp_path / "vlm" / "model.gguf")
    write_gguf(tmp_path / "vlm" / "mmproj-model-f16.gguf")
    for part in (1, 2, 3):
        write_gguf(tmp_path / f"big-0000{part}-of-00003.gguf")
    write_gguf(tmp_path / ".cache" / "huggingface" / "x.gguf")
    write_gguf(tmp_path / "half.gguf.incomplete")
    (tmp_path / "scripted.json").write_text("{}")
    (tmp_path / "folder-without-weights").mkdir()
    (tmp_path / "folder-without-weights" / "config.json").write_text("{}")
    assert found(tmp_path) == {
        "big-00001-of-00003.gguf": BackendName.LLAMA_CPP,
        "vlm/model.gguf": BackendName.LLAMA_CPP,
    }


def test_a_split_gguf_counts_every_part(tmp_path: Path) -> None:
    sizes = [write_gguf(tmp_path / f"big-0000{i}-of-00002.gguf").stat().st_size for i in (1, 2)]
    (only,) = scan_models(tmp_path).found
    assert only.size_bytes == sum(sizes)


def test_incomplete_sets_and_lfs_pointers_are_skipped_saying_why(tmp_path: Path) -> None:
    write_gguf(tmp_path / "split-00001-of-00002.gguf")
    sharded = write_mlx(tmp_path / "sharded")
    (sharded / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "model-00001-of-00002.safetensors",'
        ' "b": "model-00002-of-00002.safetensors"}}'
    )
    (sharded / "model-00001-of-00002.safetensors").write_bytes(b"\0")
    (tmp_path / "pointer.gguf").write_text("version https://git-lfs.github.com/spec/v1\n")
    assert found(tmp_path) == {}
    assert skipped(tmp_path) == {
        "pointer.gguf": "not a GGUF file inside (a Git LFS pointer?)",
        "sharded": "model-00002-of-00002.safetensors is missing "
        "(model.safetensors.index.json lists it)",
        "split-00001-of-00002.gguf": "split GGUF: split-00002-of-00002.gguf is missing",
    }


def test_a_link_out_of_models_dir_is_skipped(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    outside = write_gguf(tmp_path / "elsewhere.gguf")
    os.symlink(outside, models / "escape.gguf")
    os.symlink(write_gguf(models / "real.gguf"), models / "alias.gguf")
    assert found(models) == {
        "alias.gguf": BackendName.LLAMA_CPP,
        "real.gguf": BackendName.LLAMA_CPP,
    }
    assert skipped(models) == {"escape.gguf": "points outside models_dir"}


def test_a_missing_models_dir_has_no_models(tmp_path: Path) -> None:
    assert scan_models(tmp_path / "nowhere").found == ()


def test_native_context_from_gguf_metadata_and_mlx_config(tmp_path: Path) -> None:
    assert native_context(write_gguf(tmp_path / "a.gguf", context_length=32768)) == 32768
    assert native_context(write_gguf(tmp_path / "b.gguf", context_length=None)) is None
    assert native_context(write_mlx(tmp_path / "m", max_position_embeddings=40960)) == 40960
    nested = write_mlx(tmp_path / "vlm", text_config={"max_position_embeddings": 128000})
    assert native_context(nested) == 128000
    assert native_context(write_mlx(tmp_path / "plain")) is None
