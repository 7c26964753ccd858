"""A stream that waits for a load and whose client leaves: its keepalive writer stops with
it (it used to loop until the gateway exited, writing to a closed connection).

The gateway's ASGI app runs in-process here, with a supervisord stand-in whose program
start never returns: only a stand-in can hold a load open indefinitely on cue.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.app import GatewayApp
from gateway.config.loader import load_config
from gateway.service import Gateway

KEEPALIVE_S = 0.05


class StuckSupervisor:
    """A supervisord whose program start never ends, so a load never finishes."""

    async def add_program(self, name: str) -> None:
        await asyncio.Event().wait()

    async def remove_program(self, name: str) -> None: ...
    async def start(self, name: str) -> None: ...
    async def stop(self, name: str) -> None: ...
    async def info(self, name: str) -> None:
        return None

    async def all_info(self) -> dict[str, Any]:
        return {}

    async def tail_log(self, name: str, length: int = 4000) -> str:
        return ""

    async def log_tail(self, name: str, channel: str, length: int) -> Any: ...
    async def log_read(self, name: str, channel: str, offset: int, length: int) -> str:
        return ""


def gateway_for(tmp_path: Path) -> Gateway:
    models = tmp_path / "models"
    models.mkdir()
    (models / "m.json").write_text(json.dumps({"default": "hi"}))
    config = {
        "models_dir": str(models),
        "run_dir": str(tmp_path / "run"),
        "gateway": {"loading_keepalive_s": KEEPALIVE_S, "watch_config": False},
        "workers": {"watch_models_dir": False},
        "models": [{"id": "m", "path": "m.json", "backend": "scripted", "port": 19999}],
    }
    path = tmp_path / "lmx.yaml"
    path.write_text(yaml.safe_dump(config))
    return Gateway(load_config(path), supervisor=StuckSupervisor())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/chat/completions",
            {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        ),
        (
            "/v1/messages",
            {
                "model": "m",
                "stream": True,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
            },
        ),
    ],
)
def test_a_client_leaving_during_a_load_stops_the_keepalive(
    tmp_path: Path, path: str, body: dict[str, Any]
) -> None:
    async def scenario() -> tuple[int, int]:
        app = GatewayApp(gateway_for(tmp_path))
        sent: list[dict[str, Any]] = []
        left = asyncio.Event()
        messages = [{"type": "http.request", "body": json.dumps(body).encode()}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await left.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 1234),
            "scheme": "http",
            "query_string": b"",
        }
        request = asyncio.create_task(app(scope, receive, send))
        for _ in range(100):  # until the keepalive has written a comment or two
            await asyncio.sleep(KEEPALIVE_S)
            if len(sent) >= 3:
                break
        assert len(sent) >= 3, sent
        left.set()
        await asyncio.wait_for(request, 5)
        at_end = len(sent)
        await asyncio.sleep(KEEPALIVE_S * 6)
        return at_end, len(sent)

    at_end, later = asyncio.run(scenario())
    assert later == at_end, "the keepalive went on writing after the request ended"
