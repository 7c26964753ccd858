"""One peer as this gateway sees it: where it is, the key it takes, whether it answers,
and its models with the states its /v1/models gave last."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway.config.schema import PeerConfig
from gateway.events import log_event
from gateway.peers.hosts import HOP_HEADER
from gateway.proxy.upstream import UpstreamClient, UpstreamError, UpstreamResponse

# A peer that does not answer is looked at again after the refresh interval, then twice
# as long after each failure in a row, up to this (or the interval, if that is longer).
BACKOFF_CAP_S = 60.0


def backoff_s(failures: int, refresh_s: float) -> float:
    """Seconds until the next look at a peer that has failed `failures` times in a row."""
    if failures <= 1:
        return refresh_s
    return min(refresh_s * 2 ** min(failures - 1, 32), max(refresh_s, BACKOFF_CAP_S))


class Link(enum.StrEnum):
    UNKNOWN = "unknown"  # not looked at yet
    UP = "up"
    DOWN = "down"


@dataclass
class PeerState:
    config: PeerConfig
    host: str
    port: int
    base_path: str  # the URL's path, for a gateway behind a reverse proxy's prefix
    link: Link = Link.UNKNOWN
    models: dict[str, str] = field(default_factory=dict)  # id -> status, as last listed
    failures: int = 0
    error: str | None = None
    checked_at: float | None = None  # wall clock, for /admin/status
    next_check_s: float = 0.0  # how long the refresh waits after its last look

    @classmethod
    def of(cls, config: PeerConfig) -> PeerState:
        url = urlsplit(config.url)  # checked when the config loaded
        assert url.hostname is not None
        return cls(config, url.hostname, url.port or 80, url.path.rstrip("/"))

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def up(self) -> bool:
        return self.link is Link.UP

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.base_path}{path}"

    def request_headers(self) -> dict[str, str]:
        """The peer's own key (never the client's), and the mark of a forwarded request."""
        key = self.config.api_key
        auth = {"authorization": f"Bearer {key}"} if key else {}
        return {"content-type": "application/json", HOP_HEADER: "1", **auth}

    async def post(self, client: UpstreamClient, path: str, body: bytes) -> UpstreamResponse:
        """Send a request; a peer that cannot be reached is marked down at once, so the
        next requests do not try it until its refresh finds it again."""
        try:
            return await client.post(
                self.host, self.port, self.base_path + path, body, self.request_headers()
            )
        except UpstreamError as exc:
            self.failed(f"no answer to a request: {exc.message}")
            raise

    def listed(self, models: dict[str, str]) -> None:
        if self.link is not Link.UP:
            log_event("peer_up", peer=self.name, models=sorted(models))
        self.link, self.models, self.failures, self.error = Link.UP, models, 0, None
        self.checked_at = time.time()

    def failed(self, error: str) -> None:
        if self.link is not Link.DOWN:
            log_event("peer_down", peer=self.name, error=error)
        self.link, self.error = Link.DOWN, error
        self.failures += 1
        self.checked_at = time.time()

    def answered(self, model_id: str) -> None:
        """It just answered for `model_id`, so has it loaded (its next list will say)."""
        if model_id in self.models:
            self.models[model_id] = "ready"

    def status_of(self, model_id: str) -> str | None:
        """The model's status on this peer, while the peer answers."""
        return self.models.get(model_id) if self.up else None

    def view(self) -> dict[str, Any]:
        """For /admin/status: never the key."""
        return {
            "name": self.name,
            "url": self.url(""),
            "state": self.link.value,
            "models": [{"id": m, "status": s} for m, s in self.models.items()],
            "error": self.error,
            "failures": self.failures,
            "checked_at": self.checked_at,
            "next_check_s": self.next_check_s,
        }
