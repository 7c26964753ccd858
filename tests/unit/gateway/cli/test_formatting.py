"""Sizes, durations and rates as the CLI's tables show them."""

from __future__ import annotations

import pytest

from gateway.cli import formatting as fmt


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (None, "-"),
        (0, "0 B"),
        (512, "512 B"),
        (1024, "1.0 KiB"),
        (103_284_736, "98.5 MiB"),
        (int(1.25 * 1024**3), "1.2 GiB"),
        (3 * 1024**5, "3072.0 TiB"),
    ],
)
def test_size_uses_binary_units(n: int | None, shown: str) -> None:
    assert fmt.size(n) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (0.42, "0.4s"),
        (9.96, "10.0s"),
        (42.9, "42s"),
        (185, "3m 05s"),
        (2 * 3600 + 10 * 60 + 59, "2h 10m"),
        (3 * 86400 + 4 * 3600 + 1, "3d 4h"),
    ],
)
def test_duration_shows_at_most_two_units(seconds: float | None, shown: str) -> None:
    assert fmt.duration(seconds) == shown


def test_rates_millis_and_counts() -> None:
    assert fmt.rate(67.25, "tok") == "67.2 tok/s"
    assert fmt.rate(None, "tok") == "-"
    assert fmt.millis(212.6) == "213 ms"
    assert fmt.count(16384) == "16,384"
    assert fmt.count(None) == "-"
