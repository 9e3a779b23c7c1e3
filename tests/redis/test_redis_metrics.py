"""The broker's metrics on Redis: connection state and reconnects, scraped from a real
server whose private redis-server stops and starts again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from metrics_scrape import scrape, total
from redis_helpers import RedisServer
from waiting import until

from parsec import Options
from parsec.options import BrokerOptions
from parsec.testing import serve_for_tests


async def test_broker_state_and_reconnects_follow_redis(
    redis_server: Callable[[bool], Awaitable[RedisServer]],
) -> None:
    backend = await redis_server(False)
    options = Options(broker=BrokerOptions(url=backend.url))
    async with serve_for_tests(options) as server, httpx.AsyncClient(base_url=server.url) as http:
        broker = server.parsec.node.broker
        up = await scrape(http)
        await backend.stop()
        await until(lambda: not getattr(broker, "connected", True))
        down = await scrape(http)
        await backend.start()
        await until(lambda: bool(getattr(broker, "connected", False)))
        back = await scrape(http)

    labels = {"backend": "redis"}
    assert total(up, "parsec_broker_connected", labels) == 1
    assert total(down, "parsec_broker_connected", labels) == 0
    assert total(back, "parsec_broker_connected", labels) == 1
    assert total(up, "parsec_broker_reconnects_total", labels) == 0
    assert total(back, "parsec_broker_reconnects_total", labels) == 1
