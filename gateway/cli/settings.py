"""Where the CLI finds the gateway and the checkout: LMX_URL and the keys from the
environment, else the port in the config file that `./scripts/serve` reads."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# gateway/cli/settings.py -> the checkout holding scripts/serve and config/lmx.yaml.
CHECKOUT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 1234
_ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}


@dataclass(frozen=True)
class Settings:
    url: str
    api_key: str | None
    admin_key: str | None


def from_environment() -> Settings:
    api_key = os.environ.get("LMX_API_KEY") or None
    return Settings(
        url=(os.environ.get("LMX_URL") or configured_url()).rstrip("/"),
        api_key=api_key,
        # One key is often both; a separate admin key wins for /admin/*.
        admin_key=os.environ.get("LMX_ADMIN_KEY") or api_key,
    )


def config_path() -> Path:
    return Path(os.environ.get("LMX_CONFIG") or CHECKOUT / "config" / "lmx.yaml")


def configured_url() -> str:
    """The gateway's address from the config file; the default when it cannot be read."""
    import yaml  # only on this path: LMX_URL set skips the YAML import

    host, port = "127.0.0.1", DEFAULT_PORT
    try:
        section = (yaml.safe_load(config_path().read_text()) or {}).get("gateway") or {}
        host = str(section.get("host", host))
        port = int(section.get("port", port))
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError):
        pass  # a broken config: ./scripts/serve names the mistake, the default is a fair guess
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
