"""An org's traffic shows in the operator's ``/metrics`` (no org label), and the org's
own Parsec neither keeps metrics nor binds ``metrics_addr``."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import httpx
from accounts_fixtures import Tenancy
from db_targets import database_url
from fake_github import FakeGitHub
from metrics_scrape import scrape, total
from served_orgs import Served

from parsec import Options
from parsec.options import ObservabilityOptions
from parsec.testing import free_port, serve_for_tests
from tenancy.conftest import org_options


def metrics_apart(options: Options, addr: str) -> Options:
    return dataclasses.replace(options, observability=ObservabilityOptions(metrics_addr=addr))


async def test_org_publications_and_connections_count_on_the_operators_metrics(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    """Two publications through an org's API and one client on the org's WebSocket: the
    operator's scrape (on its own ``metrics_addr``) counts them; the org started
    although it shares the options that name that address."""
    addr = f"127.0.0.1:{free_port()}"
    async with (
        database_url("sqlite", tmp_path) as url,
        serve_for_tests(metrics_apart(org_options(url, tmp_path, fake_github), addr)) as server,
        httpx.AsyncClient() as scraper,
        contextlib.AsyncExitStack() as stack,
    ):
        org = Served(server, Tenancy(server.parsec, fake_github, stack))
        alice = await org.tenancy.browser("alice")
        token = (await org.exchange(alice))["token"]
        before = await scrape(scraper, f"http://{addr}/metrics")
        async with org.client(org.ws("/orgs/alice/connection/websocket"), token) as (_, events):
            await events.next("connected")
            for n in range(2):
                published = await alice.post(
                    "/api/v1/orgs/alice/publish", json={"channel": "chat:room", "data": {"n": n}}
                )
                assert published.status_code == 200, published.text
            during = await scrape(scraper, f"http://{addr}/metrics")

    ok = {"result": "ok"}
    publishes = "parsec_publishes_total"
    assert total(during, publishes, ok) - total(before, publishes, ok) == 2
    assert total(during, "parsec_connections", {"transport": "websocket"}) == 1
    assert not any("org" in labels for _, labels, _ in during)
