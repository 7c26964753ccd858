"""Reading a peer's models: GET /v1/models with its key, within a short deadline.

A peer lists its own models with their states (`ready`, `unloaded`, ...), its aliases,
and the models of its own peers (marked `peer`/`peers`). Only its own models are taken:
what its peers serve is theirs to route, one hop from them, not two from here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gateway.peers.state import PeerState


class PeerUnreadable(Exception):
    """The peer did not answer, refused our key, or sent something that is not a list."""


async def read_models(http: httpx.AsyncClient, peer: PeerState, timeout_s: float) -> dict[str, str]:
    headers = {k: v for k, v in peer.request_headers().items() if k != "content-type"}
    try:
        async with asyncio.timeout(timeout_s):
            response = await http.get(peer.url("/v1/models"), headers=headers, timeout=timeout_s)
            document = response.json() if response.status_code == 200 else None
    except TimeoutError:
        raise PeerUnreadable(f"no answer in {timeout_s:g}s (gateway.connect_timeout_s)") from None
    except httpx.HTTPError as exc:
        raise PeerUnreadable(f"no answer: {type(exc).__name__}: {exc}") from None
    except ValueError:
        raise PeerUnreadable("its /v1/models is not JSON") from None
    if response.status_code in (401, 403):
        raise PeerUnreadable(f"HTTP {response.status_code}: it refused our key (api_key)")
    if document is None:
        raise PeerUnreadable(f"HTTP {response.status_code} on /v1/models")
    return own_models(document)


def own_models(document: Any) -> dict[str, str]:
    """Model id -> status, for the peer's own models in a /v1/models document."""
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise PeerUnreadable("its /v1/models is not a model list")
    models: dict[str, str] = {}
    for entry in data:
        if not isinstance(entry, dict) or "peer" in entry or "peers" in entry:
            continue
        model_id, status = entry.get("id"), entry.get("status")
        if isinstance(model_id, str) and _plain_id(model_id) and status != "alias":
            models[model_id] = status if isinstance(status, str) else "unknown"
    return models


def _plain_id(value: str) -> bool:
    """An id as this gateway's own are written (so `peer/id` stays unambiguous)."""
    return 0 < len(value) <= 200 and all(c.isalnum() or c in "-_." for c in value)
