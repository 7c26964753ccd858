"""What a web page can make of Opta-LMX through the user's browser, on the real gateway
and on a real worker's own port: a rebinding Host, a cross-site Origin and a text/plain
form post are refused in the envelope; a configured origin gets CORS and preflights."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.stack import Stack, base_config, running_stack, scripted_models, wait_until

pytestmark = pytest.mark.slow

ALLOWED_ORIGIN = "http://localhost:3000"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("guard")
    models = scripted_models(tmp / "models", {"m": {"default": "Hello."}})
    config = base_config(
        models,
        tmp / "models",
        auto_load=["m"],
        security={"cors_origins": [ALLOWED_ORIGIN], "allowed_hosts": ["lmx.lan"]},
    )
    with running_stack(tmp, config) as running:
        wait_until(lambda: running.status("m")["status"] == "ready", 30, what="m ready")
        yield running


def ports(stack: Stack) -> list[int]:
    """The gateway's port and the worker's."""
    return [stack.port, stack.config["models"][0]["port"]]


def post(port: int, path: str, **options: object) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{port}{path}", timeout=30, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:1234", "127.0.0.1.evil.example"])
def test_a_rebinding_host_is_refused_by_gateway_and_worker(stack: Stack, host: str) -> None:
    for port in ports(stack):
        response = post(port, "/v1/chat/completions", json=CHAT, headers={"host": host})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "host_not_allowed"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:{port}", "[::1]:{port}", "lmx.lan"])
def test_this_machines_names_and_allowed_hosts_are_served(stack: Stack, host: str) -> None:
    for port in ports(stack):
        headers = {"host": host.format(port=port)}
        response = post(port, "/v1/chat/completions", json=CHAT, headers=headers)
        assert response.status_code == 200, response.text


def test_a_cross_site_form_post_cannot_unload_or_generate(stack: Stack) -> None:
    form = {"content": b'{"model": "m"}', "headers": {"origin": "http://evil.example"}}
    form["headers"]["content-type"] = "text/plain"  # type: ignore[index]
    unload = post(stack.port, "/admin/models/unload", **form)
    assert unload.status_code == 403
    assert unload.json()["error"]["code"] == "origin_not_allowed"
    assert stack.status("m")["status"] == "ready"
    for port in ports(stack):
        chat = post(port, "/v1/chat/completions", **form)
        assert chat.status_code == 403


def test_a_text_plain_post_without_origin_is_415(stack: Stack) -> None:
    for port in ports(stack):
        response = post(
            port, "/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"}
        )
        assert response.status_code == 415
        assert response.json()["error"]["code"] == "unsupported_media_type"


def test_refusals_on_v1_messages_come_in_anthropics_envelope(stack: Stack) -> None:
    response = post(
        stack.port, "/v1/messages", content=b"{}", headers={"origin": "http://evil.example"}
    )
    assert response.status_code == 403
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "permission_error"


def test_an_allowed_origin_gets_preflights_and_cors_headers(stack: Stack) -> None:
    preflight = httpx.options(
        stack.url + "/v1/chat/completions",
        headers={
            "origin": ALLOWED_ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    allowed = preflight.headers["access-control-allow-headers"]
    assert {"authorization", "x-api-key", "content-type"} <= {h.strip() for h in allowed.split(",")}
    assert "POST" in preflight.headers["access-control-allow-methods"]
    answer = post(stack.port, "/v1/chat/completions", json=CHAT, headers={"origin": ALLOWED_ORIGIN})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-lmx-model" in answer.headers["access-control-expose-headers"]


def test_a_refused_origins_preflight_is_403(stack: Stack) -> None:
    preflight = httpx.options(
        stack.url + "/v1/chat/completions",
        headers={"origin": "http://evil.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers


def test_the_servers_own_origin_is_same_site(stack: Stack) -> None:
    own = f"http://127.0.0.1:{stack.port}"
    response = post(stack.port, "/v1/chat/completions", json=CHAT, headers={"origin": own})
    assert response.status_code == 200
