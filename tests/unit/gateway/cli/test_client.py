"""The CLI client's errors: the envelope's message, hints for keys, close names for an
unknown model, and the gateway-not-running code (httpx.MockTransport for the answers a
gateway gives; a closed loopback port for the one it cannot)."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from gateway.cli.client import EXIT_ERROR, EXIT_UNREACHABLE, Client, CliError, GatewayError
from gateway.cli.settings import Settings

MODELS = {
    "data": [
        {"id": "smollm2-135m", "status": "ready"},
        {"id": "smollm2-135m-mlx", "status": "unloaded"},
        {"id": "chat", "status": "alias", "targets": ["smollm2-135m"]},
    ]
}


def envelope(status: int, message: str, code: str | None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "type": "x", "code": code}})


def client_for(handler: Any, **keys: str | None) -> Client:
    settings = Settings("http://127.0.0.1:1234", keys.get("api"), keys.get("admin"))
    return Client(settings, transport=httpx.MockTransport(handler))


def test_unknown_model_error_names_the_close_names() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=MODELS)
        return envelope(404, "model 'smolm2-135m' does not exist", "model_not_found")

    with pytest.raises(GatewayError) as caught:
        client_for(handler).post(
            "/admin/models/load", {"model": "smolm2-135m"}, model="smolm2-135m"
        )
    assert caught.value.exit_code == EXIT_ERROR
    assert caught.value.message == (
        "unknown model 'smolm2-135m' (did you mean smollm2-135m or smollm2-135m-mlx?)"
    )


def test_unknown_model_far_from_every_name_lists_them() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=MODELS)
        return envelope(404, "no such model", "model_not_found")

    with pytest.raises(GatewayError, match=r"known: smollm2-135m, smollm2-135m-mlx, chat"):
        client_for(handler).post("/admin/models/unload", {"model": "zzz"}, model="zzz")


def test_error_envelope_message_becomes_the_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return envelope(
            503, "smollm2-135m failed to load: weights are corrupt", "model_load_failed"
        )

    with pytest.raises(GatewayError) as caught:
        client_for(handler).post(
            "/admin/models/load", {"model": "smollm2-135m"}, model="smollm2-135m"
        )
    assert (caught.value.status, caught.value.code) == (503, "model_load_failed")
    assert caught.value.message == "smollm2-135m failed to load: weights are corrupt"


def test_missing_key_names_the_variable_to_set() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return envelope(401, "admin routes need the admin key", "invalid_admin_key")

    with pytest.raises(GatewayError, match=r"; set LMX_ADMIN_KEY$"):
        client_for(handler).get("/admin/status")


def test_keys_go_where_they_belong() -> None:
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.path] = request.headers.get("authorization")
        return httpx.Response(200, json=MODELS if request.url.path == "/v1/models" else {})

    client = client_for(handler, api="api-key", admin="admin-key")
    client.get("/admin/status")
    client.model_names()
    assert seen == {"/admin/status": "Bearer admin-key", "/v1/models": "Bearer api-key"}


def test_a_route_the_gateway_lacks_says_so() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return envelope(404, "no route /admin/benchmark", "not_found")

    with pytest.raises(GatewayError, match=r"does not serve /admin/benchmark \(older than lmx\?\)"):
        client_for(handler).post("/admin/benchmark", {"model": "a"}, model="a")


def test_stream_refusal_is_an_error_before_any_event() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return envelope(400, "`repo` must be owner/name", "invalid_request")

    with (
        pytest.raises(GatewayError, match="`repo` must be owner/name"),
        client_for(handler).stream("POST", "/admin/models/pull", {"repo": "x"}) as events,
    ):
        list(events)


def test_nothing_listening_is_its_own_exit_code() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    client = Client(Settings(f"http://127.0.0.1:{port}", None, None))
    with pytest.raises(CliError) as caught:
        client.get("/healthz")
    assert caught.value.exit_code == EXIT_UNREACHABLE
    assert f"the gateway at http://127.0.0.1:{port} is not running" in caught.value.message
