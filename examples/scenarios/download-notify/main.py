"""Scenario 1, download-notify: a download finishes after the user closed the tab, so the
notice goes by email.

Run it (from the repository root, with the test extra installed)::

    .venv/bin/python examples/scenarios/download-notify/main.py

It embeds Parsec with its default options plus one email sink, starts a local SMTP
server that prints what it receives (or uses ``--smtp HOST:PORT``), and plays:

1. User u42 asks for an export; their tab subscribes to ``private:webapp.user.u42.downloads``.
2. The export job publishes its progress there; the tab shows it.
3. At 60 % the user closes the tab.
4. The job finishes and calls ``publish_or_sink(..., wait=False)``: nobody listens any more,
   so the "ready" notice is queued for email and the job returns at once; a background
   worker delivers it (retrying, or dead-lettering it if the SMTP server keeps failing).

Exit status 0 when the email arrived and nothing was dead-lettered; 1 otherwise (or
after 30 s).
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

from parsec import Options, Parsec, ServerOptions
from parsec.sinks import EmailSink, Message, SinkRegistry

USER = "u42"
CHANNEL = f"private:webapp.user.{USER}.downloads"
USER_EMAIL = {"address": "u42@example.com"}
DEADLINE = 30.0


class PrintingMailbox:
    """A local SMTP server's handler: prints each email and hands it to the script."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[str] = asyncio.Queue()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        mail = BytesParser(policy=email.policy.default).parsebytes(envelope.content)
        body = mail.get_body()
        text = body.get_content().strip() if body is not None else ""
        print(f"[smtp]     email to {mail['To']}: {mail['Subject']!r}: {text}")
        self.received.put_nowait(str(mail["Subject"]))
        return "250 OK"


class Tab:
    """The user's browser tab, subscribed to their downloads channel."""

    def __init__(self, url: str, connection_token: str, access_token: str) -> None:
        self.client = centrifuge.Client(url, token=connection_token)
        self.subscription = self.client.new_subscription(CHANNEL, token=access_token)
        self.subscription.events.on_subscribed = self._on_subscribed
        self.subscription.events.on_publication = self._on_publication
        self.subscribed = asyncio.Event()
        self.progress: asyncio.Queue[int] = asyncio.Queue()

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
        print(f"[browser]  progress {ctx.pub.data['percent']}%")
        self.progress.put_nowait(ctx.pub.data["percent"])


class ExportJob:
    """The app's export job: progress goes to the channel; the final notice goes to the
    channel if the user still listens, else by email."""

    def __init__(self, parsec: Parsec) -> None:
        self.parsec = parsec

    async def report(self, percent: int) -> None:
        await self.parsec.publish(CHANNEL, {"status": "running", "percent": percent})

    async def finish(self, url: str) -> bool:
        """Announce the finished download; True when it was handed to the email sink."""
        notice = Message(
            "Your download is ready",
            f"Your export is ready: {url}",
            {"user": USER},
        )
        result = await self.parsec.publish_or_sink(
            CHANNEL, {"status": "ready", "url": url}, "email", USER_EMAIL, notice, wait=False
        )
        print(f"[job]      finished: {'queued for email' if result.sinked else 'shown live'}")
        return result.sinked


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def until_nobody_listens(parsec: Parsec) -> None:
    """The server notices a closed tab a moment after it closes (checked every 50 ms)."""
    for _ in range(100):
        if not await parsec.presence_count(CHANNEL):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{CHANNEL} still has a subscriber after the tab closed")


async def main(smtp: tuple[str, int] | None) -> int:
    mailbox = PrintingMailbox()
    local = None
    if smtp is None:
        loop = asyncio.get_running_loop()
        local = await loop.create_server(lambda: SMTP(mailbox), "127.0.0.1", 0)
        smtp = ("127.0.0.1", local.sockets[0].getsockname()[1])
        print(f"[smtp]     local server on {smtp[0]}:{smtp[1]}")
    sink = EmailSink("email", host=smtp[0], port=smtp[1], sender="downloads@webapp.example")
    port = free_port()
    options = Options(server=ServerOptions(addr=f"127.0.0.1:{port}"), sinks=SinkRegistry([sink]))
    async with Parsec(options) as parsec:
        ready = asyncio.Event()
        server = asyncio.create_task(parsec.run(ready.set))
        await ready.wait()
        credentials = await parsec.create_private(USER, CHANNEL)
        tab = Tab(
            f"ws://127.0.0.1:{port}/connection/websocket",
            parsec.issuer.connection_token(USER),
            credentials.access_token,
        )
        await tab.open()

        job = ExportJob(parsec)
        for percent in (20, 40, 60):
            await job.report(percent)
            await tab.progress.get()
        await tab.close()
        await until_nobody_listens(parsec)
        sinked = await job.finish("https://webapp.example/downloads/u42/export.zip")

        if local is not None:
            await mailbox.received.get()  # the background worker delivered it
        await parsec.aclose()  # drains background delivery
        dead = await parsec.dlq_count()
        await server
    if local is not None:
        local.close()
        await local.wait_closed()
    print(f"[app]      dead letters: {dead}")
    ok = sinked and dead == 0
    print("done: the download notice went by email" if ok else "unexpected result")
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
