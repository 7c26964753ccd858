"""Model ids derived from names: safe, lowercase, distinct, and the same for the same
set of files whatever order they are listed in."""

from __future__ import annotations

import pytest

from gateway.library.naming import assign_ids, slug


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SmolLM2-135M-Instruct.Q4_1", "smollm2-135m-instruct.q4_1"),
        ("Qwen3 8B (instruct)", "qwen3-8b-instruct"),
        ("--weird__name..", "weird__name"),
        ("模型", "model"),
        ("x" * 100, "x" * 64),
    ],
)
def test_slug_keeps_only_safe_lowercase_characters(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_ids_come_from_file_stems_and_folder_names() -> None:
    ids = assign_ids(
        ["SmolLM2-135M-Instruct.Q4_1.gguf", "owner/repo/big-00001-of-00003.gguf", "mlx/Qwen3-4B"],
        taken=(),
    )
    assert ids == {
        "SmolLM2-135M-Instruct.Q4_1.gguf": "smollm2-135m-instruct.q4_1",
        "owner/repo/big-00001-of-00003.gguf": "big",
        "mlx/Qwen3-4B": "qwen3-4b",
    }


def test_a_shared_name_is_qualified_by_the_nearest_folder_that_tells_them_apart() -> None:
    paths = ["bartowski/Qwen-GGUF/qwen.Q4.gguf", "unsloth/Qwen-GGUF/qwen.Q4.gguf", "solo.gguf"]
    assert assign_ids(paths, taken=()) == {
        "bartowski/Qwen-GGUF/qwen.Q4.gguf": "bartowski-qwen-gguf-qwen.q4",
        "unsloth/Qwen-GGUF/qwen.Q4.gguf": "unsloth-qwen-gguf-qwen.q4",
        "solo.gguf": "solo",
    }
    assert assign_ids(list(reversed(paths)), taken=()) == assign_ids(paths, taken=())


def test_a_name_taken_by_the_config_is_qualified_or_numbered() -> None:
    ids = assign_ids(["chat.gguf", "sub/chat.gguf", "default.gguf"], taken={"chat", "default"})
    assert ids == {"chat.gguf": "chat-2", "sub/chat.gguf": "sub-chat", "default.gguf": "default-2"}


def test_names_differing_only_in_case_get_numbers_in_path_order() -> None:
    ids = assign_ids(["Model.gguf", "model.gguf", "MODEL.gguf"], taken=())
    assert ids == {"MODEL.gguf": "model", "Model.gguf": "model-2", "model.gguf": "model-3"}
    assert len(set(ids.values())) == 3
