"""Real parts for out-of-band delivery tests: an SMTP server, a served Parsec, a subscriber.

* :class:`Mailbox` is an aiosmtpd handler whose answer the test scripts: accept (and keep
  the parsed message), refuse with a reply, or hold every DATA command until ``gate`` opens
  (a slow SMTP server).
* :func:`smtp_server` serves a Mailbox on a free loopback port in the running loop.
* :func:`serving` runs a Parsec (HTTP + WebSocket) on a free loopback port.
* :func:`subscribed` keeps a centrifuge-python client subscribed to a channel and queues
  the publications it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.policy
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Final

import centrifuge
from aiosmtpd.smtp import SMTP, Envelope, Session

from parsec import AuthOptions, Options, Parsec, ServerOptions
from parsec.sinks import EmailSink, RetryPolicy, SinkRegistry
from parsec.testing import free_port

__all__ = [
    "EVENT_TIMEOUT",
    "NO_BACKOFF",
    "SENDER",
    "Mailbox",
    "Served",
    "email_options",
    "serving",
    "smtp_server",
    "subscribed",
]

SENDER: Final = "parsec@example.test"
EVENT_TIMEOUT: Final = 10.0
"""How long a test waits for something that should happen at once (a hang guard)."""
NO_BACKOFF: Final = RetryPolicy(max_attempts=2, base_backoff=0.0, max_backoff=0.0, jitter=0.0)
"""Two attempts, no waiting between them: retries without slowing the tests down."""


class Mailbox:
    """An aiosmtpd handler. Each DATA command is answered with the next of ``replies``
    (SMTP replies such as ``"451 try later"``) while there are any, then refused with
    ``refuse`` while that is set, else accepted. ``gate``, while closed, holds every DATA
    command. Accepted messages are queued in ``received``; ``arrivals`` counts DATA
    commands as they start (before the gate)."""

    def __init__(self) -> None:
        self.replies: list[str] = []
        self.refuse: str | None = None
        self.gate = asyncio.Event()
        self.gate.set()
        self.received: asyncio.Queue[EmailMessage] = asyncio.Queue()
        self.arrivals: asyncio.Queue[None] = asyncio.Queue()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.arrivals.put_nowait(None)
        await self.gate.wait()
        if self.replies:
            return self.replies.pop(0)
        if self.refuse is not None:
            return self.refuse
        assert isinstance(envelope.content, bytes)
        parsed = BytesParser(policy=email.policy.default).parsebytes(envelope.content)
        assert isinstance(parsed, EmailMessage)
        self.received.put_nowait(parsed)
        return "250 OK"

    async def next_message(self) -> EmailMessage:
        """The next accepted message; fails the test when none arrives in time."""
        try:
            return await asyncio.wait_for(self.received.get(), EVENT_TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"no email arrived within {EVENT_TIMEOUT}s") from None

    async def next_arrival(self) -> None:
        """Wait until the next DATA command starts (it may then wait at the gate)."""
        await asyncio.wait_for(self.arrivals.get(), EVENT_TIMEOUT)


@contextlib.asynccontextmanager
async def smtp_server(mailbox: Mailbox) -> AsyncIterator[int]:
    """Serve ``mailbox`` on 127.0.0.1; yields the port. Opens the gate on exit."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(mailbox, hostname="smtp.example.test"), "127.0.0.1", 0
    )
    port: int = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        mailbox.gate.set()
        server.close()
        await server.wait_closed()


def email_options(
    state_dir: Path, smtp_port: int, *, retry: RetryPolicy = NO_BACKOFF, **fields: Any
) -> Options:
    """Options with one email sink ``mail`` sending through 127.0.0.1:``smtp_port``."""
    sink = EmailSink("mail", host="127.0.0.1", port=smtp_port, sender=SENDER, starttls=False)
    return Options(
        auth=AuthOptions(state_dir=state_dir),
        sinks=SinkRegistry([sink]),
        sink_retry=retry,
        **fields,
    )


@dataclasses.dataclass(frozen=True)
class Served:
    """A running Parsec and its WebSocket URL."""

    parsec: Parsec
    url: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/connection/websocket"


@contextlib.asynccontextmanager
async def serving(options: Options, **backends: Any) -> AsyncIterator[Served]:
    """Start ``Parsec(options, **backends)`` and serve it on a free loopback port until
    the block exits; then close it (draining background delivery)."""
    port = free_port()
    options.server = ServerOptions(addr=f"127.0.0.1:{port}")
    async with Parsec(options, **backends) as parsec:
        ready = asyncio.Event()
        task = asyncio.create_task(parsec.run(ready.set))
        await asyncio.wait_for(ready.wait(), EVENT_TIMEOUT)
        try:
            yield Served(parsec, f"http://127.0.0.1:{port}")
        finally:
            await parsec.aclose()
            await task


class _Events:
    """Subscription events the tests wait for."""

    def __init__(self) -> None:
        self.subscribed = asyncio.Event()
        self.publications: asyncio.Queue[Any] = asyncio.Queue()

    async def on_subscribed(self, ctx: Any) -> None:
        self.subscribed.set()

    async def on_publication(self, ctx: Any) -> None:
        self.publications.put_nowait(ctx.pub.data)


@contextlib.asynccontextmanager
async def subscribed(
    served: Served, user: str, channel: str, token: str = ""
) -> AsyncIterator[asyncio.Queue[Any]]:
    """A centrifuge-python client of ``user`` subscribed to ``channel`` (with subscription
    ``token`` when given) for the block; yields the queue of received publication data.
    The server has recorded the subscriber (and its presence) when the block starts."""
    client = centrifuge.Client(served.ws_url, token=served.parsec.issuer.connection_token(user))
    events = _Events()
    subscription = client.new_subscription(channel, token=token)
    subscription.events.on_subscribed = events.on_subscribed
    subscription.events.on_publication = events.on_publication
    try:
        await client.connect()
        await subscription.subscribe()
        await asyncio.wait_for(events.subscribed.wait(), EVENT_TIMEOUT)
        yield events.publications
    finally:
        await client.disconnect()
