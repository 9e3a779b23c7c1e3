"""Scraping a real server and reading the exposition."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

from parsec import Namespace

__all__ = ["CHAT", "Samples", "parse", "scrape", "total"]

CHAT = Namespace(
    name="chat",
    allow_subscribe_for_client=True,
    allow_publish_for_client=True,
)

Samples = list[tuple[str, dict[str, str], float]]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition: (name, labels, value)."""
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


async def scrape(http: httpx.AsyncClient, url: str = "/metrics", **headers: str) -> Samples:
    reply = await http.get(url, headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return parse(reply.text)


def total(samples: Samples, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = dict(labels or {})
    return sum(
        value
        for sample, got, value in samples
        if sample == name and all(got.get(k) == v for k, v in wanted.items())
    )
