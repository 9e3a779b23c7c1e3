"""parsec.sinks.slack and parsec.sinks.webhook against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.utils import formatdate

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from parsec.errors import ParsecError
from parsec.sinks import (
    MemoryDLQ,
    Message,
    RetryingSender,
    SinkError,
    SinkRegistry,
    SlackSink,
    WebhookRecipient,
    WebhookSink,
    sign,
    verify_signature,
)
from parsec.sinks._http import parse_retry_after
from parsec.sinks.slack import slack_text

MESSAGE = Message("Build done", "report.pdf is ready", {"job": "42"})
NOW = 1_700_000_000.0
SECRET = "whsec_test_0123"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST and answers the scripted (status, headers) replies, then 200."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    hold: asyncio.Event | None = None

    async def endpoint(self, request: Request) -> Response:
        self.received.append(
            Received(request.url.path, dict(request.headers), await request.body())
        )
        if self.hold is not None:
            await self.hold.wait()
        status, headers = self.script.pop(0) if self.script else (200, {})
        return Response(f"reply {status}", status_code=status, headers=headers)


@asynccontextmanager
async def http_server(receiver: Receiver) -> AsyncIterator[str]:
    """Serve ``receiver`` with uvicorn on a free loopback port; yield its base URL.

    The socket listens before uvicorn starts, so requests made at once queue until
    uvicorn accepts them: no readiness polling is needed.
    """
    app = Starlette(routes=[Route("/{path:path}", receiver.endpoint, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.should_exit = True
        await task
        sock.close()


class Sleeps:
    """A sleep that records the wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def retrying(sink: SlackSink | WebhookSink, sleeps: Sleeps, dlq: MemoryDLQ) -> RetryingSender:
    return RetryingSender(SinkRegistry([sink]), dlq, sleep=sleeps, random=lambda: 0.5)


# -- Slack ----------------------------------------------------------------------------------


async def test_slack_posts_bold_subject_body_and_metadata() -> None:
    """The webhook receives {"text": "*Subject*\\nBody", "metadata": {...}} as JSON."""
    receiver = Receiver()
    async with http_server(receiver) as base:
        await SlackSink("team", webhook_url=f"{base}/services/T1/B2/xyz").send(None, MESSAGE)

    (request,) = receiver.received
    assert request.path == "/services/T1/B2/xyz"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "text": "*Build done*\nreport.pdf is ready",
        "metadata": {"job": "42"},
    }


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (Message("S", "B"), "*S*\nB"),
        (Message("S", ""), "*S*"),
        (Message("", "B"), "B"),
        (Message(), ""),
    ],
)
def test_slack_text_shows_only_what_is_there(message: Message, text: str) -> None:
    """An empty subject or body leaves no stray markup or blank line."""
    assert slack_text(message) == text


async def test_slack_omits_empty_metadata() -> None:
    """A message without metadata posts only text."""
    receiver = Receiver()
    async with http_server(receiver) as base:
        await SlackSink("team", webhook_url=f"{base}/hook").send(None, Message("S", "B"))

    assert receiver.received[0].json() == {"text": "*S*\nB"}


async def test_slack_500_then_429_with_retry_after_then_200_is_delivered() -> None:
    """500 waits the 1 s backoff, 429 waits its Retry-After (5 s > 2 s), then 200 delivers."""
    receiver = Receiver(script=[(500, {}), (429, {"Retry-After": "5"})])
    sleeps, dlq = Sleeps(), MemoryDLQ()
    async with http_server(receiver) as base:
        sink = SlackSink("team", webhook_url=f"{base}/hook")
        outcome = await retrying(sink, sleeps, dlq).send("team", None, MESSAGE)

    assert (outcome.delivered, outcome.attempts) == (True, 3)
    assert sleeps.waits == pytest.approx([1.0, 5.0])
    assert len(receiver.received) == 3
    assert await dlq.count() == 0


async def test_slack_4xx_is_terminal_and_hides_the_webhook_url() -> None:
    """A 400 is dead-lettered after one attempt; the error has the status, not the URL."""
    receiver = Receiver(script=[(400, {})])
    sleeps, dlq = Sleeps(), MemoryDLQ()
    async with http_server(receiver) as base:
        sink = SlackSink("team", webhook_url=f"{base}/services/SECRETPATH")
        outcome = await retrying(sink, sleeps, dlq).send("team", {"anything": 1}, MESSAGE)

    assert (outcome.delivered, outcome.attempts) == (False, 1)
    assert "HTTP 400" in outcome.last_error
    assert "reply 400" in outcome.last_error
    assert "SECRETPATH" not in outcome.last_error
    assert "SECRETPATH" not in repr(sink)
    (item,) = await dlq.items("team")
    assert item.recipient is None


def test_slack_ignores_the_recipient() -> None:
    """Any recipient decodes and encodes to None."""
    sink = SlackSink("team", webhook_url="https://hooks.slack.test/x")

    assert sink.decode_recipient({"channel": "#ops"}) is None
    assert sink.encode_recipient("whatever") is None


def test_slack_needs_an_http_url() -> None:
    """A webhook_url that is not http(s) is PARSEC_SINK_CONFIG_INVALID."""
    with pytest.raises(ParsecError) as caught:
        SlackSink("team", webhook_url="hooks.slack.test/x")

    assert caught.value.code == "PARSEC_SINK_CONFIG_INVALID"


# -- webhook --------------------------------------------------------------------------------


def webhook(base: str, **kwargs: object) -> WebhookSink:
    return WebhookSink("hook", url=f"{base}/default", clock=lambda: NOW, **kwargs)  # type: ignore[arg-type]


async def test_webhook_posts_json_with_headers_timestamp_and_signature() -> None:
    """Body, configured headers, timestamp and a signature the receiver can verify."""
    receiver = Receiver()
    async with http_server(receiver) as base:
        sink = webhook(base, headers={"Authorization": "Bearer t0k"}, secret=SECRET)
        await sink.send(None, MESSAGE)

    (request,) = receiver.received
    assert request.path == "/default"
    assert request.json() == {
        "subject": "Build done",
        "body": "report.pdf is ready",
        "metadata": {"job": "42"},
    }
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer t0k"
    assert request.headers["x-parsec-timestamp"] == str(int(NOW))
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-parsec-signature"] == f"sha256={expected}"
    assert verify_signature(SECRET, request.body, request.headers["x-parsec-signature"])


async def test_webhook_without_secret_sends_no_signature() -> None:
    """No secret: no X-Parsec-Signature header, the timestamp still goes."""
    receiver = Receiver()
    async with http_server(receiver) as base:
        await webhook(base).send(None, MESSAGE)

    headers = receiver.received[0].headers
    assert "x-parsec-signature" not in headers
    assert headers["x-parsec-timestamp"] == str(int(NOW))


async def test_webhook_omits_empty_fields() -> None:
    """Empty subject and metadata are left out of the JSON body."""
    receiver = Receiver()
    async with http_server(receiver) as base:
        await webhook(base).send(None, Message(body="only a body"))

    assert receiver.received[0].json() == {"body": "only a body"}


async def test_configured_headers_may_replace_the_content_type() -> None:
    """Configured headers are applied after Content-Type."""
    receiver = Receiver()
    async with http_server(receiver) as base:
        await webhook(base, headers={"Content-Type": "application/vnd.parsec+json"}).send(
            None, MESSAGE
        )

    assert receiver.received[0].headers["content-type"] == "application/vnd.parsec+json"


async def test_recipient_url_overrides_the_configured_url() -> None:
    """A recipient {"url": ...} receives the call instead of the sink's URL."""
    receiver = Receiver()
    async with http_server(receiver) as base:
        sink = webhook(base)
        await sink.send({"url": f"{base}/override"}, MESSAGE)
        await sink.send({}, MESSAGE)

    assert [r.path for r in receiver.received] == ["/override", "/default"]


async def test_webhook_500_then_429_with_http_date_then_200_is_delivered() -> None:
    """A Retry-After HTTP date 10 s after the sink's clock is honoured as a 10 s wait."""
    retry_at = formatdate(NOW + 10, usegmt=True)
    receiver = Receiver(script=[(503, {}), (429, {"Retry-After": retry_at})])
    sleeps, dlq = Sleeps(), MemoryDLQ()
    async with http_server(receiver) as base:
        outcome = await retrying(webhook(base, secret=SECRET), sleeps, dlq).send(
            "hook", {"url": f"{base}/x"}, MESSAGE
        )

    assert (outcome.delivered, outcome.attempts) == (True, 3)
    assert sleeps.waits == pytest.approx([1.0, 10.0])
    bodies = {r.body for r in receiver.received}
    assert len(bodies) == 1


async def test_webhook_keeps_failing_5xx_until_exhausted() -> None:
    """Five 500s exhaust the default policy; the DLQ keeps the recipient URL."""
    receiver = Receiver(script=[(500, {})] * 5)
    sleeps, dlq = Sleeps(), MemoryDLQ()
    async with http_server(receiver) as base:
        outcome = await retrying(webhook(base), sleeps, dlq).send(
            "hook", {"url": f"{base}/x"}, MESSAGE
        )

    assert (outcome.delivered, outcome.attempts) == (False, 5)
    assert sleeps.waits == pytest.approx([1.0, 2.0, 4.0, 8.0])
    (item,) = await dlq.items("hook")
    assert item.recipient == {"url": f"{base}/x"}
    assert "HTTP 500" in item.last_error


async def test_redirects_are_not_followed_and_are_terminal() -> None:
    """A 302 is a terminal failure; the redirect target is never called."""
    receiver = Receiver(script=[(302, {"Location": "/elsewhere"})])
    async with http_server(receiver) as base:
        with pytest.raises(SinkError) as caught:
            await webhook(base).send(None, MESSAGE)

    assert not caught.value.transient
    assert [r.path for r in receiver.received] == ["/default"]


async def test_connection_refused_is_transient_and_hides_the_url() -> None:
    """Nobody listening is transient; the message does not repeat the URL."""
    url = f"http://127.0.0.1:{closed_port()}/secret-token-path"
    with pytest.raises(SinkError) as caught:
        await WebhookSink("hook", url=url).send(None, MESSAGE)

    assert caught.value.transient
    assert "secret-token-path" not in caught.value.message


async def test_slow_receiver_times_out_transiently() -> None:
    """A receiver slower than the timeout is a transient failure."""
    receiver = Receiver(hold=asyncio.Event())
    async with http_server(receiver) as base:
        with pytest.raises(SinkError) as caught:
            await webhook(base, timeout=0.2).send(None, MESSAGE)

    assert caught.value.transient
    assert "timed out" in caught.value.message


async def test_an_injected_client_is_used_and_left_open() -> None:
    """A client passed in carries the request and is still open afterwards."""
    receiver = Receiver()
    async with http_server(receiver) as base, httpx.AsyncClient() as client:
        await webhook(base, client=client).send(None, MESSAGE)
        assert not client.is_closed

    assert len(receiver.received) == 1


def test_signature_verification_rejects_tampering() -> None:
    """verify_signature fails for another body, another secret or a garbled header."""
    body = b'{"body":"x"}'
    header = sign(SECRET, body)

    assert verify_signature(SECRET, body, header)
    assert not verify_signature(SECRET, b'{"body":"y"}', header)
    assert not verify_signature("other", body, header)
    assert not verify_signature(SECRET, body, "sha256=00")


def test_webhook_recipient_forms() -> None:
    """null, {}, {"url": ""} mean the sink's URL; {"url": u} and WebhookRecipient round-trip."""
    sink = WebhookSink("hook", url="https://example.test/a")

    assert sink.decode_recipient(None) == WebhookRecipient()
    assert sink.decode_recipient({"url": ""}) == WebhookRecipient()
    assert sink.encode_recipient(None) == {}
    assert sink.encode_recipient(WebhookRecipient("https://example.test/b")) == {
        "url": "https://example.test/b"
    }


@pytest.mark.parametrize(
    "recipient",
    ["https://example.test", {"url": "ftp://example.test"}, {"url": 3}, {"to": "x"}, [1]],
)
async def test_bad_webhook_recipients_are_invalid_argument(recipient: object) -> None:
    """Anything but null or {"url": http(s) URL} raises PARSEC_INVALID_ARGUMENT."""
    sink = WebhookSink("hook", url=f"http://127.0.0.1:{closed_port()}/")

    with pytest.raises(ParsecError) as caught:
        await sink.send(recipient, MESSAGE)

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"url": "file:///etc/passwd"}, "http"),
        ({"url": "https://"}, "host"),
        ({"headers": {"Bad Name": "v"}}, "header name"),
        ({"headers": {"X-Ok": "a\r\nX-Injected: 1"}}, "control characters"),
    ],
)
def test_bad_webhook_settings_are_sink_config_invalid(
    kwargs: dict[str, object], problem: str
) -> None:
    """Bad URL or headers raise PARSEC_SINK_CONFIG_INVALID saying what is wrong."""
    settings: dict[str, object] = {"url": "https://example.test/", **kwargs}

    with pytest.raises(ParsecError) as caught:
        WebhookSink("hook", **settings)  # type: ignore[arg-type]

    assert caught.value.code == "PARSEC_SINK_CONFIG_INVALID"
    assert problem in caught.value.message


def test_repr_hides_url_and_secret() -> None:
    """The repr says whether requests are signed, never the secret or URL."""
    sink = WebhookSink("hook", url="https://example.test/tok3n", secret=SECRET)

    assert repr(sink) == "WebhookSink('hook', signed=True)"


# -- Retry-After parsing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("-1", None),
        ("inf", None),
        ("soon", None),
        (formatdate(NOW + 30, usegmt=True), 30.0),
        (formatdate(NOW - 30, usegmt=True), 0.0),
        ("Tue, 14 Nov 2023 22:13:50 -0000", 30.0),
    ],
)
def test_retry_after_accepts_seconds_and_http_dates(
    header: str | None, seconds: float | None
) -> None:
    """Delay-seconds or an HTTP date (past dates wait 0); anything else is ignored."""
    assert parse_retry_after(header, NOW) == (
        pytest.approx(seconds) if seconds is not None else None
    )
