"""Live configuration on a running stack (scripted workers: the backend does not matter
here): POST /admin/config/reload, SIGHUP and the file watch re-read config/lmx.yaml;
aliases and keys apply at once, a changed model restarts, a removed one is unloaded, and a
config with a mistake is refused whole while the running one keeps serving."""

from __future__ import annotations

import copy
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.integration.stack import (
    Stack,
    base_config,
    running_stack,
    scripted_models,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.slow

SCRIPTS: dict[str, dict[str, Any]] = {
    "alpha": {"default": "I am alpha."},
    "beta": {"default": "I am beta."},
    "gamma": {"default": "I am gamma."},
    "stream": {"default": "tick " * 200, "token_delay_s": 0.02},
    "slow": {"default": "Loaded slowly.", "load_delay_s": 1.5},
}
ADMIN = {"Authorization": "Bearer sesame"}


def initial_config(tmp: Path, watch: bool) -> dict[str, Any]:
    return base_config(
        scripted_models(tmp / "models", SCRIPTS),
        tmp / "models",
        gateway={"watch_config": watch},
        routing={"aliases": {"pick": ["alpha"]}},
        security={"admin_key": "sesame"},
    )


@pytest.fixture(scope="module")
def posted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose config changes only when a test asks (no file watch)."""
    tmp = tmp_path_factory.mktemp("live")
    with running_stack(tmp, initial_config(tmp, watch=False)) as running:
        yield running


@pytest.fixture
def stack(posted: Stack) -> Iterator[Stack]:
    """Each test leaves the initial config in force (tests write only edited copies)."""
    yield posted
    write_config(posted.root, posted.config)
    assert reload(posted).status_code == 200


def edit(stack: Stack, change: Any) -> None:
    """Write the running config changed by `change(config)` to the stack's file."""
    config = copy.deepcopy(stack.config)
    change(config)
    write_config(stack.root, config)


def reload(stack: Stack, headers: dict[str, str] | None = None) -> httpx.Response:
    with stack.client() as c:
        # A JSON content type, as on every POST: the browser guard refuses form posts.
        return c.post(
            "/admin/config/reload", json={}, headers=ADMIN if headers is None else headers
        )


def ask(stack: Stack, model: str, key: str = "unused") -> str:
    client = openai.OpenAI(base_url=stack.url + "/v1", api_key=key, max_retries=0)
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=20
    )
    return reply.choices[0].message.content or ""


def listed(stack: Stack, key: str | None = None) -> dict[str, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with stack.client() as c:
        return {m["id"]: m for m in c.get("/v1/models", headers=headers).json()["data"]}


def stream_into(lines: list[str], stack: Stack, model: str, max_tokens: int) -> None:
    with stack.stream_chat(model, max_tokens=max_tokens) as response:
        lines.extend(response.iter_lines())


def gateway_pid(stack: Stack) -> int:
    (pid,) = stack.pids(lambda cmd: cmd.endswith("-m gateway"))
    return pid


def set_alias(target: str) -> Any:
    return lambda config: config["routing"]["aliases"].update(pick=[target])


def model_entry(config: dict[str, Any], model_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(m for m in config["models"] if m["id"] == model_id)
    return entry


def test_post_reload_applies_an_alias_change_at_once(stack: Stack) -> None:
    assert ask(stack, "pick") == "I am alpha."
    edit(stack, set_alias("beta"))
    response = reload(stack)
    assert response.status_code == 200
    assert response.json() == {
        "status": "reloaded",
        "models": {"added": [], "removed": [], "restarted": [], "updated": []},
        "sections_changed": ["routing"],
        "needs_restart": [],
    }
    assert ask(stack, "pick") == "I am beta."
    assert listed(stack)["pick"]["targets"] == ["beta"]
    assert '"event": "config_reloaded"' in stack.log("gateway")


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (lambda c: c["models"][1].update(port="ten"), "models[1].port", "expected int"),
        (set_alias("nobody"), "routing.aliases.pick[0]", "unknown model 'nobody'"),
        (lambda c: c["workers"].update(max_concurent=3), "workers.max_concurent", "unknown key"),
    ],
)
def test_a_bad_config_is_refused_naming_the_key_and_the_running_one_stays(
    stack: Stack, change: Any, key: str, message: str
) -> None:
    edit(stack, change)
    response = reload(stack)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == key and error["code"] == "invalid_config"
    assert error["message"].startswith(f"config refused, the running one stays: {key}: ")
    assert message in error["message"]
    assert ask(stack, "pick") == "I am alpha."
    assert set(SCRIPTS) <= set(listed(stack))
    assert f'"key": "{key}"' in stack.log("gateway")  # config_refused names it too


def test_broken_yaml_is_refused_as_a_whole_file_error(stack: Stack) -> None:
    (stack.root / "config" / "lmx.yaml").write_text("models: [unclosed\n")
    response = reload(stack)
    assert response.status_code == 400
    assert "not valid YAML" in response.json()["error"]["message"]
    assert ask(stack, "pick") == "I am alpha."


def test_reload_needs_the_admin_key(stack: Stack) -> None:
    response = reload(stack, headers={})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_admin_key"


def test_a_changed_model_setting_drains_then_restarts_the_loaded_model(stack: Stack) -> None:
    assert ask(stack, "stream").startswith("tick")
    before = stack.status("stream")["pid"]
    lines: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        streaming = pool.submit(stream_into, lines, stack, "stream", 80)
        wait_until(lambda: len(lines) > 5, 10, what="the stream to start")
        edit(stack, lambda c: model_entry(c, "stream").update(context_length=2048))
        response = reload(stack)
        streaming.result(30)
    assert response.json()["models"]["restarted"] == ["stream"]
    # The request in flight finished on the old worker, whole.
    assert lines[-1] == "data: [DONE]" or lines[-2] == "data: [DONE]"
    assert not any('"error"' in line for line in lines)
    wait_until(lambda: stack.status("stream")["pid"] not in (None, before), 30, what="restart")
    wait_until(lambda: stack.status("stream")["status"] == "ready", 30, what="ready again")
    assert stack.status("stream")["context_length"] == 2048
    assert before not in stack.worker_pids()


def test_settings_changed_again_during_a_restart_end_in_force(stack: Stack) -> None:
    assert ask(stack, "slow") == "Loaded slowly."

    def context(length: int) -> Any:
        return lambda c: model_entry(c, "slow").update(context_length=length)

    edit(stack, context(2048))
    assert reload(stack).json()["models"]["restarted"] == ["slow"]
    wait_until(lambda: stack.status("slow")["status"] == "loading", 10, what="the restart's load")
    edit(stack, context(3072))
    assert reload(stack).json()["models"]["restarted"] == ["slow"]

    def worker_context() -> int | None:
        status = stack.status("slow")
        if status["status"] != "ready":
            return None
        health = httpx.get(f"http://127.0.0.1:{status['port']}/health", timeout=5).json()
        return int(health["context_length"])

    wait_until(lambda: worker_context() == 3072, 30, what="the worker on the latest settings")


def test_a_removed_model_finishes_its_request_then_is_unloaded_and_gone(stack: Stack) -> None:
    assert ask(stack, "stream").startswith("tick")
    pid = stack.status("stream")["pid"]
    lines: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        streaming = pool.submit(stream_into, lines, stack, "stream", 150)
        wait_until(lambda: len(lines) > 5, 10, what="the stream to start")
        edit(stack, lambda c: c["models"].remove(model_entry(c, "stream")))
        first = reload(stack).json()
        assert stack.status("stream")["status"] == "draining"  # listed until it has stopped
        with pytest.raises(openai.NotFoundError):  # but new requests are refused at once
            ask(stack, "stream")
        again = reload(stack).json()
        streaming.result(30)
    assert first["models"]["removed"] == ["stream"]
    assert first["sections_changed"] == ["models"]
    assert again["models"]["removed"] == []  # reported once
    assert lines[-1] == "data: [DONE]" or lines[-2] == "data: [DONE]"
    assert not any('"error"' in line for line in lines)
    wait_until(lambda: "stream" not in listed(stack), 30, what="the model to go")
    assert pid not in stack.worker_pids()


def test_keys_apply_at_once_and_loaded_workers_restart_with_them(stack: Stack) -> None:
    ask(stack, "alpha")
    port = stack.status("alpha")["port"]
    edit(stack, lambda c: c["security"].update(api_keys=["k1"]))
    response = reload(stack)
    assert response.json()["sections_changed"] == ["security"]
    assert "alpha" in response.json()["models"]["restarted"]
    with pytest.raises(openai.AuthenticationError):
        ask(stack, "alpha")
    assert ask(stack, "alpha", key="k1") == "I am alpha."
    # The worker's own port refuses the old way in too: it was restarted with the key.
    direct = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10)
    assert direct.status_code == 401


def test_a_new_gateway_port_waits_for_a_restart(stack: Stack) -> None:
    edit(stack, lambda c: c["gateway"].update(port=c["gateway"]["port"] + 1))
    body = reload(stack).json()
    assert body["needs_restart"] == ["gateway.port"]
    assert body["sections_changed"] == []  # what applied now; the port waits
    assert ask(stack, "pick") == "I am alpha."  # still on the port it started on


def test_sighup_reloads_and_a_bad_config_by_sighup_is_refused(stack: Stack) -> None:
    pid = gateway_pid(stack)
    edit(stack, set_alias("beta"))
    stack.ctl("signal", "HUP", "gateway")  # what the README tells operators to type
    wait_until(lambda: listed(stack)["pick"]["targets"] == ["beta"], 10, what="SIGHUP reload")
    assert ask(stack, "pick") == "I am beta."
    refusals = stack.log("gateway").count('"event": "config_refused"')
    edit(stack, lambda c: c["models"][0].update(backend="vllm"))
    os.kill(pid, signal.SIGHUP)
    wait_until(
        lambda: stack.log("gateway").count('"event": "config_refused"') > refusals,
        10,
        what="the refusal logged",
    )
    assert '"key": "models[0].backend"' in stack.log("gateway")
    assert ask(stack, "pick") == "I am beta."
    assert gateway_pid(stack) == pid  # SIGHUP no longer ends the gateway


def test_an_edited_config_file_is_applied_by_the_watch(tmp_path: Path) -> None:
    config = initial_config(tmp_path, watch=True)
    del config["gateway"]["watch_config"]  # on by default
    with running_stack(tmp_path, config) as stk:
        assert ask(stk, "pick") == "I am alpha."
        edit(stk, set_alias("gamma"))
        wait_until(lambda: listed(stk)["pick"]["targets"] == ["gamma"], 10, what="the watch")
        assert ask(stk, "pick") == "I am gamma."
        edit(stk, lambda c: c["routing"].update(default="nobody"))
        wait_until(lambda: "config_refused" in stk.log("gateway"), 10, what="the refusal")
        assert '"key": "routing.default"' in stk.log("gateway")
        assert ask(stk, "pick") == "I am gamma."  # the last good version still rules
