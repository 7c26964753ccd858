"""The typed shape of config/lmx.yaml: dataclasses holding every key and its default.

`gateway.config.loader` fills these from YAML once, checking every key and type; code past
that point trusts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GatewaySection:
    host: str = "127.0.0.1"
    port: int = 1234
    max_body_bytes: int = 10 * 1024 * 1024
    connect_timeout_s: float = 5.0
    # Longest silence allowed between two bytes of a worker's answer.
    read_timeout_s: float = 600.0
    # How often a streaming request that waits for a load gets an SSE comment line.
    loading_keepalive_s: float = 3.0
    # Re-read the config file when it changes (as POST /admin/config/reload does).
    watch_config: bool = True


@dataclass(frozen=True)
class WorkersSection:
    host: str = "127.0.0.1"
    load_timeout_s: float = 180.0
    stop_timeout_s: float = 30.0
    health_timeout_s: float = 30.0
    health_interval_s: float = 1.0
    ttl_s: float = 0.0
    max_concurrent: int = 4
    max_queue: int = 16
    request_timeout_s: float = 600.0
    context_length: int = 4096
    # Each worker's prompt cache in RAM; None: 5% of the (presented) memory, at most 4 GiB.
    prompt_cache_gb: float | None = None
    # Its disk tier, per model in a subfolder (relative to run_dir); null: no disk tier.
    prompt_cache_dir: str | None = "prompt-cache"
    prompt_cache_disk_gb: float = 8.0
    # Ports for models that name none (library models, entries without `port`).
    port_range: list[int] = field(default_factory=lambda: [10001, 10999])
    # Follow models_dir: a model dropped in appears, one removed goes (unloaded first).
    watch_models_dir: bool = True


@dataclass(frozen=True)
class MemorySection:
    max_memory_percent: float = 85.0
    auto_evict_lru: bool = True
    runtime_overhead_gb: float = 0.3
    # Present the machine as having this much memory (a cap for LMX); None = all of it.
    total_gb: float | None = None
    # Longest a request waits for memory (models ahead of it to finish and make way)
    # before 503 insufficient_memory. Its model's load, once begun, has load_timeout_s.
    admission_wait_s: float = 300.0
    # A model's turn: once loaded, it keeps its memory this long while in use, even when
    # requests for another model wait. 0: make way as soon as it is idle (a swap per
    # request when two models alternate).
    min_resident_s: float = 10.0


@dataclass(frozen=True)
class SecuritySection:
    admin_key: str | None = None
    api_keys: list[str] = field(default_factory=list)
    # Host names a request may address besides this machine's (a reverse proxy, a LAN name).
    allowed_hosts: list[str] = field(default_factory=list)
    # Browser origins allowed to call the API (with CORS), e.g. http://localhost:3000.
    cors_origins: list[str] = field(default_factory=list)
    # Bind the gateway beyond loopback without API keys: refused unless this says so.
    allow_unauthenticated_network: bool = False


@dataclass(frozen=True)
class ResponsesSection:
    """The /v1/responses store (run_dir/responses.sqlite3): what it keeps, and how long."""

    # Stored responses older than this are deleted (pruned on each write).
    max_age_days: float = 30.0
    # Past this total size the oldest are deleted; the newest response is always kept.
    max_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class LoggingSection:
    """The request history (GET /admin/requests/recent), kept in memory only."""

    # How many finished requests it keeps (the newest).
    history_size: int = 500
    # Sensitive: keep each request's body and whole answers' text in the history.
    capture_bodies: bool = False


@dataclass(frozen=True)
class Preset:
    model: str
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutingSection:
    default: str | None = None
    aliases: dict[str, list[str]] = field(default_factory=dict)
    presets: dict[str, Preset] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    id: str
    path: str
    backend: str
    port: int = 0  # 0: one from workers.port_range
    context_length: int | None = None
    pinned: bool = False
    ttl_s: float | None = None
    max_rss_gb: float | None = None
    # Known footprint; overrides the estimate from file size and KV cache.
    memory_gb: float | None = None
    max_concurrent: int | None = None
    max_queue: int | None = None
    request_timeout_s: float | None = None
    tool_parser: str | None = None
    reasoning_parser: str | None = None
    embeddings: bool = False
    vision: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)
    chat_template: str | None = None
    prompt_cache_gb: float | None = None  # overrides workers.prompt_cache_gb
    # System prompts prefilled into the prompt cache when the model loads.
    warm_prompts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PeerConfig:
    """Another Opta-LMX gateway whose models this one may route to (gateway.peers)."""

    name: str
    url: str  # the gateway's root: http://host:port
    # Sent to the peer instead of the client's key (a secret: never logged or listed).
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ConfigFile:
    """Exactly the keys a user may write, before paths are resolved."""

    models: list[ModelConfig]
    models_dir: str = "../models"
    run_dir: str = "../run"
    gateway: GatewaySection = field(default_factory=GatewaySection)
    workers: WorkersSection = field(default_factory=WorkersSection)
    memory: MemorySection = field(default_factory=MemorySection)
    security: SecuritySection = field(default_factory=SecuritySection)
    routing: RoutingSection = field(default_factory=RoutingSection)
    responses: ResponsesSection = field(default_factory=ResponsesSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    auto_load: list[str] = field(default_factory=list)
    peers: list[PeerConfig] = field(default_factory=list)
    # How often each peer's model list is read again while it answers.
    peers_refresh_s: float = 10.0
