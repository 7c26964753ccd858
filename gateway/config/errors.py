"""The config's one error: a sentence that starts with the key it is about."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config problem, its message naming the key (`models[1].port: ...`)."""

    @property
    def key(self) -> str | None:
        """The dotted key the message starts with; None for a whole-file problem."""
        head, sep, _ = str(self).partition(": ")
        return head if sep and "/" not in head and " " not in head else None
