"""`ollama pull` through the real gateway: the ollama client's pull, onto the model
library's pull from a local hub (HF_ENDPOINT, inherited by the stack), progress as
Ollama's status lines, and the pulled model served under the library's id."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import ollama
import pytest

from tests.integration.hub_server import LocalHub
from tests.integration.stack import Stack, base_config, running_stack, scripted_models

pytestmark = pytest.mark.slow

KEY = "sesame"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    with LocalHub(chunk_size=64 * 1024, chunk_delay_s=0.005) as running:
        yield running


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, hub: LocalHub) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("ollama-pull")
    models_dir = tmp / "models"
    models = scripted_models(models_dir, {"resident": {"default": "Resident."}})
    config = base_config(models, models_dir, security={"admin_key": KEY})
    with contextlib.ExitStack() as cleanup:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("HF_ENDPOINT", hub.url)
            env.delenv("HF_HUB_OFFLINE", raising=False)
            running = cleanup.enter_context(running_stack(tmp, config))
        yield running


@pytest.fixture
def client(stack: Stack) -> Iterator[ollama.Client]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with ollama.Client(host=stack.url, timeout=60, headers=headers) as sdk:
        yield sdk


def gguf(size: int) -> bytes:
    return b"GGUF" + os.urandom(size - 4)


def test_pull_streams_ollama_progress_and_the_model_is_served(
    stack: Stack, hub: LocalHub, client: ollama.Client
) -> None:
    quant = gguf(2 * MiB)
    hub.add_repo(
        "acme/tiny-GGUF",
        {"tiny-Q8_0.gguf": quant, "tiny-Q4_K_M.gguf": gguf(MiB), "README.md": b"# tiny"},
    )
    lines = list(client.pull("hf.co/acme/tiny-GGUF:Q8_0", stream=True))
    statuses = [line.status for line in lines]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    progress = [line for line in lines if line.status == "pulling tiny-Q8_0.gguf"]
    assert progress and all(line.total == len(quant) for line in progress)
    done = [line.completed or 0 for line in progress]
    assert done == sorted(done) and done[-1] == len(quant)
    path = Path(stack.config["models_dir"]) / "acme/tiny-GGUF/tiny-Q8_0.gguf"
    assert path.read_bytes() == quant
    assert not (path.parent / "tiny-Q4_K_M.gguf").exists()  # only the file the tag named
    assert "tiny-q8_0:latest" in {m.model for m in client.list().models}


def test_pull_without_a_tag_takes_q4_k_m_and_stream_false_answers_once(
    stack: Stack, hub: LocalHub, client: ollama.Client
) -> None:
    hub.add_repo("acme/other-GGUF", {"other-Q4_K_M.gguf": gguf(MiB), "other-Q2_K.gguf": b"x"})
    answer = client.pull("acme/other-GGUF", stream=False)
    assert answer.status == "success"
    models_dir = Path(stack.config["models_dir"])
    assert (models_dir / "acme/other-GGUF/other-Q4_K_M.gguf").exists()
    assert not (models_dir / "acme/other-GGUF/other-Q2_K.gguf").exists()


def test_pull_of_a_quant_the_repo_lacks_is_a_404_naming_its_files(
    hub: LocalHub, client: ollama.Client
) -> None:
    hub.add_repo("acme/few-GGUF", {"few-Q4_K_M.gguf": gguf(MiB)})
    with pytest.raises(ollama.ResponseError) as caught:
        client.pull("hf.co/acme/few-GGUF:Q2_K")
    assert caught.value.status_code == 404
    assert "few-Q4_K_M.gguf" in caught.value.error


def test_pull_of_an_unknown_repo_ends_with_an_error_line(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        list(client.pull("acme/nothing-here", stream=True))
    assert "acme/nothing-here" in caught.value.error


def test_pull_needs_the_admin_key(stack: Stack) -> None:
    with (
        ollama.Client(host=stack.url, timeout=30) as anonymous,
        pytest.raises(ollama.ResponseError) as caught,
    ):
        anonymous.pull("acme/tiny-GGUF")
    assert caught.value.status_code == 401
