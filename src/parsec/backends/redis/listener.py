"""SupervisedListener: one Redis pub/sub channel, listened to until closed.

When the connection drops (Redis restarts, CLIENT KILL) it reconnects with backoff
(0.1 s doubling to 5 s) and subscribes again; messages published while it was cut off
are lost (at-most-once, as Redis pub/sub is). Each message's data is handed to the
callback; a failing callback is logged and never stops the listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from parsec.backends.redis.client import RedisClient, prepare_pubsub
from parsec.engine.aio import cancel_and_wait

__all__ = ["SupervisedListener"]

log = logging.getLogger("parsec.redis")

MAX_BACKOFF = 5.0
START_TIMEOUT = 10.0


class SupervisedListener:
    def __init__(
        self,
        client: RedisClient,
        channel: str,
        on_message: Callable[[bytes], Awaitable[None]],
    ) -> None:
        self._client = client
        self._channel = channel
        self._on_message = on_message
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    @property
    def subscribed(self) -> bool:
        """Whether the channel is subscribed right now."""
        return self._subscribed.is_set()

    async def start(self) -> None:
        """Start listening; returns once subscribed (TimeoutError after START_TIMEOUT)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"redis-listen:{self._channel}")
        async with asyncio.timeout(START_TIMEOUT):
            await self._subscribed.wait()

    async def wait_subscribed(self) -> None:
        """Return once the channel is subscribed (at once when it is)."""
        await self._subscribed.wait()

    async def aclose(self) -> None:
        """Stop listening. Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await prepare_pubsub(self._client)
                await pubsub.subscribe(self._channel)
                self._subscribed.set()
                delay = 0.1
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._deliver(message["data"])
            except (RedisError, OSError) as exc:
                log.warning("%s lost (%s); reconnecting in %.1fs", self._channel, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
            except Exception:  # a client bug must not end listening for good
                log.exception("%s failed; reconnecting in %.1fs", self._channel, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
            finally:
                self._subscribed.clear()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]

    async def _deliver(self, data: bytes) -> None:
        try:
            await self._on_message(data)
        except Exception:
            log.exception("a message on %s could not be handled", self._channel)
