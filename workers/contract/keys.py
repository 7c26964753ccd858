"""API keys and the admin key: who may call what. Keys are compared in constant time
and never logged."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import Scope

from workers.contract.errors import ApiError


def presented_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
        elif name == b"x-api-key":
            return value.decode("latin-1").strip()
    return None


def forwarded_auth(scope: Scope) -> dict[str, str]:
    """The client's key, passed on to the worker, which checks the same keys."""
    key = presented_key(scope)
    return {"authorization": f"Bearer {key}"} if key else {}


def _matches(key: str | None, allowed: Iterable[str]) -> bool:
    if key is None:
        return False
    # Check every key, so the time taken does not tell which one nearly matched.
    found = False
    for candidate in allowed:
        found |= hmac.compare_digest(key.encode(), candidate.encode())
    return found


def require_api_key(scope: Scope, api_keys: list[str]) -> None:
    if api_keys and not _matches(presented_key(scope), api_keys):
        raise ApiError(
            401, "a valid API key is required (Authorization: Bearer <key>)", code="invalid_api_key"
        )


def require_admin_key(scope: Scope, admin_key: str | None) -> None:
    if admin_key is not None and not _matches(presented_key(scope), [admin_key]):
        raise ApiError(
            401,
            "admin routes need the admin key (Authorization: Bearer <key>)",
            code="invalid_admin_key",
        )
