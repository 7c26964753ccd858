"""A /metrics scrape read with Prometheus's own parser, its samples looked up by name
and exact labels.

A request is recorded once its last byte went out, so a client can have its whole answer
a moment before the gateway counts it: tests wait for the count (`settled`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.stack import wait_until

Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Scrape:
    samples: dict[Key, float]

    def value(self, name: str, **labels: str) -> float:
        """A sample's value; 0 for one not (yet) in the scrape, as Prometheus reads it."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def delta(self, before: Scrape, name: str, **labels: str) -> float:
        return self.value(name, **labels) - before.value(name, **labels)

    def total(self, name: str) -> float:
        """A sample's sum over all its label values."""
        return sum(value for (n, _), value in self.samples.items() if n == name)

    def label_values(self) -> set[str]:
        return {value for _, labels in self.samples for _, value in labels}


def scrape(text: str) -> Scrape:
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return Scrape(samples)


def settled(read: Callable[[], Scrape], before: Scrape, requests: int) -> Scrape:
    """The first scrape that counts `requests` more requests than `before`."""
    wanted = before.total("lmx_requests_total") + requests

    def counted() -> Scrape | None:
        now = read()
        return now if now.total("lmx_requests_total") >= wanted else None

    result: Scrape = wait_until(counted, 10, what=f"{requests} requests counted")
    return result
