"""notify-or-email: deliver a notice live while the user's browser listens, by email after.

Run it (from the repository root, with the test extra installed)::

    .venv/bin/python examples/notify-or-email/main.py

It embeds Parsec with its default options plus one email sink, starts a local SMTP
server that prints what it receives (or uses ``--smtp HOST:PORT``), and plays:

1. Ana's browser session subscribes to her private channel ``private:shop.user.ana.notices``.
2. ``publish_or_sink`` finds her there: the notice is published and shown live.
3. She closes the tab.
4. ``publish_or_sink`` finds nobody listening: the notice goes out by email.

Each step prints what really happened: a notice the SMTP server refused is reported as
dead-lettered (with the server's reply), not as emailed. Exit status 0 when both notices
arrived the expected way; 1 otherwise (or after 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import email.policy
import socket
import sys
from email.parser import BytesParser
from typing import Any

import centrifuge
from aiosmtpd.smtp import SMTP, Envelope, Session

from parsec import Options, Parsec, ServerOptions, SinkResult
from parsec.sinks import EmailSink, Message, SinkRegistry

CHANNEL = "private:shop.user.ana.notices"
ANA = {"address": "ana@example.com"}
DEADLINE = 30.0


class PrintingMailbox:
    """A local SMTP server's handler: prints each email and hands it to the script."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[str] = asyncio.Queue()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        mail = BytesParser(policy=email.policy.default).parsebytes(envelope.content)
        print(f"[smtp]     email to {mail['To']}: {mail['Subject']!r}")
        self.received.put_nowait(str(mail["Subject"]))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class BrowserTab:
    """Ana's tab: connected with a connection token, subscribed with her channel token,
    showing each notice as it arrives."""

    def __init__(self, url: str, connection_token: str, access_token: str) -> None:
        self.client = centrifuge.Client(url, token=connection_token)
        self.subscription = self.client.new_subscription(CHANNEL, token=access_token)
        self.subscription.events.on_subscribed = self._on_subscribed
        self.subscription.events.on_publication = self._on_publication
        self.subscribed = asyncio.Event()
        self.shown = asyncio.Event()

    async def open(self) -> None:
        await self.client.connect()
        await self.subscription.subscribe()
        await self.subscribed.wait()

    async def close(self) -> None:
        await self.client.disconnect()
        print("[browser]  tab closed")

    async def _on_subscribed(self, ctx: Any) -> None:
        self.subscribed.set()

    async def _on_publication(self, ctx: Any) -> None:
        print(f"[browser]  live notice: {ctx.pub.data}")
        self.shown.set()


async def until_nobody_listens(parsec: Parsec) -> None:
    """The server notices a closed tab a moment after it closes (checked every 50 ms)."""
    for _ in range(100):
        if not await parsec.presence_count(CHANNEL):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{CHANNEL} still has a subscriber after the tab closed")


def what_happened(result: SinkResult) -> str:
    """How a notice went, as ``publish_or_sink`` reports it."""
    if not result.sinked:
        return "published live"
    outcome = result.outcome
    if outcome is None:
        return "queued for email"
    if outcome.delivered:
        return "emailed"
    tries = f"{outcome.attempts} attempt{'s' if outcome.attempts != 1 else ''}"
    return f"NOT emailed, dead-lettered as {outcome.dlq_id} after {tries}: {outcome.last_error}"


async def main(smtp: tuple[str, int] | None) -> int:
    mailbox = PrintingMailbox()
    loop = asyncio.get_running_loop()
    local = None
    if smtp is None:
        local = await loop.create_server(lambda: SMTP(mailbox), "127.0.0.1", 0)
        smtp = ("127.0.0.1", local.sockets[0].getsockname()[1])
        print(f"[smtp]     local server on {smtp[0]}:{smtp[1]}")
    sink = EmailSink("email", host=smtp[0], port=smtp[1], sender="notices@shop.example")
    port = free_port()
    options = Options(server=ServerOptions(addr=f"127.0.0.1:{port}"), sinks=SinkRegistry([sink]))
    async with Parsec(options) as parsec:
        ready = asyncio.Event()
        server = asyncio.create_task(parsec.run(ready.set))
        await ready.wait()
        credentials = await parsec.create_private("ana", CHANNEL)
        url = f"ws://127.0.0.1:{port}/connection/websocket"
        tab = BrowserTab(url, parsec.issuer.connection_token("ana"), credentials.access_token)
        await tab.open()

        first = await parsec.publish_or_sink(
            CHANNEL, {"text": "Your order shipped"}, "email", ANA, Message("Your order shipped")
        )
        print(f"[app]      notice 1: {what_happened(first)}")
        await tab.shown.wait()

        await tab.close()
        await until_nobody_listens(parsec)

        second = await parsec.publish_or_sink(
            CHANNEL,
            {"text": "Your order was delivered"},
            "email",
            ANA,
            Message("Your order was delivered", "It is at your door. Enjoy!"),
        )
        delivered = second.outcome is not None and second.outcome.delivered
        print(f"[app]      notice 2: {what_happened(second)}")
        if local is not None and delivered:
            await mailbox.received.get()
        await parsec.aclose()
        await server
    if local is not None:
        local.close()
        await local.wait_closed()
    ok = not first.sinked and second.sinked and delivered
    if ok:
        print("done: live while listening, email after the tab closed")
    elif second.sinked and not delivered:
        print("failed: the email was not delivered but dead-lettered")
    else:
        print("unexpected result")
    return 0 if ok else 1


def parse_smtp(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smtp",
        type=parse_smtp,
        metavar="HOST:PORT",
        help="an SMTP server to send through instead of the built-in local one",
    )
    args = parser.parse_args()

    async def bounded() -> int:
        async with asyncio.timeout(DEADLINE):
            return await main(args.smtp)

    sys.exit(asyncio.run(bounded()))
