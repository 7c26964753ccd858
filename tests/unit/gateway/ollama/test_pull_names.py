"""Which repo and file an Ollama pull name means."""

from __future__ import annotations

import pytest

from gateway.ollama.pull import parse_name, pick_file

FILES = [
    "README.md",
    "model-Q4_K_M.gguf",
    "model-Q8_0.gguf",
    "model-Q8_0-00002-of-00002.gguf",
    "mmproj-model-f16.gguf",
]


@pytest.mark.parametrize(
    ("name", "repo", "tag"),
    [
        ("hf.co/acme/model-GGUF:Q8_0", "acme/model-GGUF", "Q8_0"),
        ("huggingface.co/acme/model-GGUF", "acme/model-GGUF", None),
        ("acme/model-GGUF:latest", "acme/model-GGUF", None),
        ("acme/model-mlx", "acme/model-mlx", None),
    ],
)
def test_names_give_the_repo_and_tag(name: str, repo: str, tag: str | None) -> None:
    assert parse_name(name) == (repo, tag)


@pytest.mark.parametrize("name", ["llama3.2", "llama3.2:1b", "hf.co/acme", "a/b/c", "/x"])
def test_names_without_an_owner_and_a_repo_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="owner/name"):
        parse_name(name)


def test_no_tag_picks_q4_k_m_as_ollama_does() -> None:
    assert pick_file(FILES, None) == "model-Q4_K_M.gguf"


def test_a_quant_tag_picks_its_file_never_a_later_shard_or_projector() -> None:
    assert pick_file(FILES, "q8_0") == "model-Q8_0.gguf"
    with pytest.raises(LookupError):  # only the projector holds "f16"
        pick_file(FILES, "f16")


def test_a_file_tag_is_that_file() -> None:
    assert pick_file(FILES, "model-Q8_0.gguf") == "model-Q8_0.gguf"


def test_without_q4_k_m_the_first_gguf_is_taken() -> None:
    assert pick_file(["b-Q5.gguf", "a-Q6.gguf"], None) == "a-Q6.gguf"


def test_a_repo_without_gguf_files_is_pulled_whole() -> None:
    assert pick_file(["config.json", "model.safetensors"], None) is None


def test_a_tag_no_file_matches_is_an_error_listing_the_files() -> None:
    with pytest.raises(LookupError, match=r"model-Q4_K_M\.gguf"):
        pick_file(FILES, "Q2_K")
    with pytest.raises(LookupError):
        pick_file(["config.json"], "Q4_K_M")
