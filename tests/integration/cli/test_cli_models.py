"""`lmx` as a subprocess against a real stack (supervisord, gateway, scripted workers):
the listings and their JSON, load and unload, errors and exit codes."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.cli.runner import ADMIN_KEY, error_line, lmx
from tests.integration.stack import (
    Stack,
    base_config,
    running_stack,
    scripted_models,
    wait_until,
)

pytestmark = pytest.mark.slow

SCRIPTS = {
    "alpha": {"default": "Hello from alpha."},
    "alpine": {"default": "Alpine here."},
    "beta": {"default": "Beta answers."},
    "broken": {"fail_load": "weights file is corrupt (test)"},
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("cli-models")
    models = scripted_models(tmp / "models", SCRIPTS, {"beta": {"ttl_s": 600}})
    config = base_config(
        models,
        tmp / "models",
        routing={"aliases": {"fast": ["alpha"], "either": ["alpha", "beta"]}},
        security={"admin_key": ADMIN_KEY},
    )
    with running_stack(tmp, config) as running:
        yield running


@pytest.fixture(autouse=True)
def nothing_loaded_after(stack: Stack) -> Iterator[None]:
    yield
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=stack.url, headers=headers, timeout=60, trust_env=False) as c:
        for m in c.get("/admin/status").json()["models"]:
            if m["status"] not in ("unloaded", "failed"):
                c.post("/admin/models/unload", json={"model": m["id"]})


def row(table: str, model_id: str) -> list[str]:
    """The cells of the table row that starts with `model_id` (cells are two or more
    spaces apart; a cell such as `12 B` or `fast, either` holds single spaces)."""
    for line in table.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] == model_id:
            return cells
    raise AssertionError(f"no row for {model_id} in:\n{table}")


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


# ---- listings ----------------------------------------------------------------------------


def test_ls_lists_every_model_with_backend_state_and_aliases(stack: Stack) -> None:
    result = lmx(stack, "ls")
    assert result.returncode == 0, result.stderr
    assert row(result.stdout, "ID")[:6] == ["ID", "BACKEND", "SIZE", "CONTEXT", "STATE", "ALIASES"]
    alpha = row(result.stdout, "alpha")
    assert alpha[1] == "scripted" and alpha[4] == "unloaded"
    assert alpha[2].endswith(" B") and alpha[3] == "4,096"  # its file's size; the default context
    assert alpha[5] == "fast, either"
    assert row(result.stdout, "beta")[5] == "either"
    assert row(result.stdout, "alpine")[5] == "-"


def test_ls_json_is_the_same_listing_for_scripts(stack: Stack) -> None:
    lmx(stack, "load", "beta")
    result = lmx(stack, "ls", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert set(rows) == set(SCRIPTS)
    assert rows["alpha"]["aliases"] == ["fast", "either"]
    assert rows["alpha"]["backend"] == "scripted"
    assert rows["beta"]["state"] == "ready"
    assert rows["beta"]["port"] == next(
        m["port"] for m in stack.config["models"] if m["id"] == "beta"
    )


def test_status_says_the_gateway_is_up_with_memory_and_loaded_models(stack: Stack) -> None:
    lmx(stack, "load", "alpha")
    text = lmx(stack, "status")
    assert text.returncode == 0, text.stderr
    assert f"{stack.url} up" in text.stdout
    assert "used of" in text.stdout and "available" in text.stdout
    assert f"1 loaded of {len(SCRIPTS)}" in text.stdout
    assert "alpha (ready" in text.stdout

    report = json.loads(lmx(stack, "status", "--json").stdout)
    assert report["up"] is True and report["url"] == stack.url
    assert report["memory"]["total_bytes"] > 0
    assert [m["id"] for m in report["models"] if m["status"] == "ready"] == ["alpha"]


# ---- load, ps, unload --------------------------------------------------------------------


def test_load_with_ttl_then_ps_shows_the_process_and_its_ttl(stack: Stack) -> None:
    loaded = lmx(stack, "load", "alpha", "--ttl", "300")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("Loaded alpha in ")
    status = stack.status("alpha")
    assert status["status"] == "ready" and status["ttl_s"] == 300

    again = lmx(stack, "load", "fast")  # an alias: its model
    assert again.returncode == 0 and "alpha was already loaded" in again.stdout

    (proc,) = json.loads(lmx(stack, "ps", "--json").stdout)
    assert proc["id"] == "alpha" and proc["state"] == "ready"
    assert proc["pid"] == status["pid"] and proc["pid"] in stack.worker_pids()
    assert proc["port"] == status["port"]
    assert proc["rss_bytes"] > 0
    assert proc["ttl_s"] == 300 and 0 < proc["ttl_left_s"] <= 300

    table = lmx(stack, "ps")
    cells = row(table.stdout, "alpha")
    assert cells[1:4] == ["ready", str(status["pid"]), str(status["port"])]
    assert re.fullmatch(r"4m [0-5]\ds", cells[-1]), cells  # TTL left, under 5m


def test_ttl_from_load_unloads_the_idle_model(stack: Stack) -> None:
    assert lmx(stack, "load", "alpine", "--ttl", "1").returncode == 0
    wait_until(lambda: stack.status("alpine")["status"] == "unloaded", 15, what="the TTL")


def test_load_route_refuses_a_ttl_that_is_not_seconds(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=stack.url, headers=headers, trust_env=False) as c:
        response = c.post("/admin/models/load", json={"model": "alpha", "ttl_s": "soon"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "ttl_s"
    assert stack.status("alpha")["status"] == "unloaded"


def test_ps_says_so_when_nothing_is_loaded(stack: Stack) -> None:
    result = lmx(stack, "ps")
    assert result.returncode == 0 and result.stdout.strip() == "No model is loaded."
    assert json.loads(lmx(stack, "ps", "--json").stdout) == []


def test_unload_one_then_all(stack: Stack) -> None:
    lmx(stack, "load", "alpha")
    lmx(stack, "load", "beta")
    one = lmx(stack, "unload", "alpha")
    assert one.returncode == 0 and one.stdout.startswith("Unloaded alpha in ")
    assert stack.status("alpha")["status"] == "unloaded"
    assert stack.status("beta")["status"] == "ready"

    every = lmx(stack, "unload", "--all", "--json")
    assert every.returncode == 0, every.stderr
    assert [r["id"] for r in json.loads(every.stdout)] == ["beta"]
    assert stack.status("beta")["status"] == "unloaded"
    assert lmx(stack, "unload", "--all").stdout.strip() == "No model is loaded."


# ---- errors and exit codes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["load", "alpah"], ["unload", "alpah"], ["run", "alpah", "hi"]]
)
def test_unknown_model_is_one_line_with_the_close_names(stack: Stack, command: list[str]) -> None:
    result = lmx(stack, *command)
    assert result.returncode == 1
    assert error_line(result).startswith("lmx: unknown model 'alpah' (did you mean alpha")


def test_failed_load_says_why_and_exits_1(stack: Stack) -> None:
    result = lmx(stack, "load", "broken")
    assert result.returncode == 1
    assert "weights file is corrupt (test)" in error_line(result)


def test_bad_arguments_are_usage_errors(stack: Stack) -> None:
    assert lmx(stack, "load", "alpha", "--ttl", "-1").returncode == 2
    assert lmx(stack, "unload").returncode == 2  # neither a model nor --all
    assert lmx(stack, "unload", "alpha", "--all").returncode == 2
    assert lmx(stack, "no-such-command").returncode == 2


def test_missing_admin_key_says_which_variable_to_set(stack: Stack) -> None:
    result = lmx(stack, "ps", admin_key=None)
    assert result.returncode == 1
    assert error_line(result).endswith("; set LMX_ADMIN_KEY")


def test_rm_asks_first_and_a_no_deletes_nothing(stack: Stack, tmp_path: Path) -> None:
    result = lmx(stack, "rm", "alpha", input="n\n")
    assert result.returncode == 1
    assert "Delete alpha and its files from disk?" in result.stderr
    assert (Path(stack.config["models_dir"]) / "alpha.json").exists()


@pytest.mark.parametrize(
    "command", [["status"], ["ls"], ["ps", "--json"], ["load", "alpha"], ["run", "alpha", "hi"]]
)
def test_gateway_not_running_has_its_own_exit_code(command: list[str]) -> None:
    url = closed_port_url()
    result = lmx(url, *command)
    assert result.returncode == 3
    assert error_line(result) == (
        f"lmx: the gateway at {url} is not running (start it with `lmx serve` or ./scripts/serve)"
    )
