"""parsec.sinks.email against real aiosmtpd SMTP servers on loopback."""

from __future__ import annotations

import asyncio
import datetime
import email.policy
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from parsec.errors import ParsecError
from parsec.sinks import (
    EmailRecipient,
    EmailSink,
    MemoryDLQ,
    Message,
    RetryingSender,
    SinkError,
    SinkRegistry,
)

SENDER = "noreply@parsec.test"
TO = {"address": "ada@example.test"}
MESSAGE = Message("Your download is ready", "report.pdf can be fetched now.", {"job": "7"})
FIXED_NOW = 1_700_000_000.0


class Mailbox:
    """An aiosmtpd handler: answers the scripted replies first, then accepts."""

    def __init__(self, data_replies: Iterable[str] = (), rcpt_replies: Iterable[str] = ()) -> None:
        self.data_replies = list(data_replies)
        self.rcpt_replies = list(rcpt_replies)
        self.envelopes: list[Envelope] = []
        self.logins: list[tuple[str, str]] = []
        self.in_data = asyncio.Event()
        self.gate: asyncio.Event | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.in_data.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.data_replies:
            return self.data_replies.pop(0)
        self.envelopes.append(envelope)
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        ok = (data.login, data.password) == (b"parsec", b"s3cret")
        return AuthResult(success=ok, handled=False)

    def messages(self) -> list[EmailMessage]:
        parser = BytesParser(policy=email.policy.default)
        parsed = []
        for envelope in self.envelopes:
            assert isinstance(envelope.content, bytes)
            message = parser.parsebytes(envelope.content)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed


@asynccontextmanager
async def smtp_server(
    mailbox: Mailbox, *, ssl_context: ssl.SSLContext | None = None, **options: Any
) -> AsyncIterator[int]:
    """Serve ``mailbox`` on a free loopback port (implicit TLS with ``ssl_context``)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(mailbox, hostname="mx.test", loop=loop, **options),
        "127.0.0.1",
        0,
        ssl=ssl_context,
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def sink(port: int, **kwargs: Any) -> EmailSink:
    return EmailSink(
        "mail", host="127.0.0.1", port=port, sender=SENDER, clock=lambda: FIXED_NOW, **kwargs
    )


class Sleeps:
    """A sleep that records the wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def sender_for(email_sink: EmailSink, sleeps: Sleeps, dlq: MemoryDLQ) -> RetryingSender:
    return RetryingSender(SinkRegistry([email_sink]), dlq, sleep=sleeps, random=lambda: 0.5)


# -- delivery -------------------------------------------------------------------------------


async def test_accepting_server_receives_a_proper_mime_message() -> None:
    """The server receives one message with Subject, From, To, Date, Message-ID and body."""
    mailbox = Mailbox()
    async with smtp_server(mailbox) as port:
        await sink(port).send(TO, MESSAGE)

    (envelope,) = mailbox.envelopes
    assert (envelope.mail_from, envelope.rcpt_tos) == (SENDER, ["ada@example.test"])
    (message,) = mailbox.messages()
    assert message["Subject"] == "Your download is ready"
    assert message["From"] == SENDER
    assert message["To"] == "ada@example.test"
    assert parsedate_to_datetime(message["Date"]) == datetime.datetime.fromtimestamp(
        FIXED_NOW, datetime.UTC
    )
    assert message["Message-ID"].startswith("<")
    assert message["Message-ID"].endswith("@parsec.test>")
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == "report.pdf can be fetched now."


async def test_message_ids_are_unique() -> None:
    """Two sends carry two different Message-IDs."""
    mailbox = Mailbox()
    async with smtp_server(mailbox) as port:
        await sink(port).send(TO, MESSAGE)
        await sink(port).send(TO, MESSAGE)

    first, second = mailbox.messages()
    assert first["Message-ID"] != second["Message-ID"]


async def test_non_ascii_subject_and_body_arrive_intact() -> None:
    """Unicode in subject and body survives MIME encoding."""
    mailbox = Mailbox()
    async with smtp_server(mailbox) as port:
        await sink(port).send(TO, Message("Rapport prêt ✓", "Grüße, 世界"))

    (message,) = mailbox.messages()
    assert message["Subject"] == "Rapport prêt ✓"
    assert message.get_content().strip() == "Grüße, 世界"


async def test_line_breaks_in_the_subject_cannot_inject_headers() -> None:
    """A subject with CR/LF is folded to one line; no extra header appears."""
    mailbox = Mailbox()
    async with smtp_server(mailbox) as port:
        await sink(port).send(TO, Message("Hello\r\nBcc: victim@example.test", "x"))

    (message,) = mailbox.messages()
    assert message["Subject"] == "Hello Bcc: victim@example.test"
    assert message["Bcc"] is None


async def test_login_with_username_and_password() -> None:
    """With credentials configured, the sink authenticates before sending."""
    mailbox = Mailbox()
    async with smtp_server(
        mailbox, authenticator=mailbox.authenticate, auth_require_tls=False
    ) as port:
        await sink(port, username="parsec", password="s3cret").send(TO, MESSAGE)

    assert mailbox.logins == [("parsec", "s3cret")]
    assert len(mailbox.envelopes) == 1


# -- failures and retries -------------------------------------------------------------------


async def test_server_answering_4xx_then_accepting_is_retried_until_delivered() -> None:
    """A 451 on DATA is transient: the retrying sender waits 1 s and delivers on attempt 2."""
    mailbox = Mailbox(data_replies=["451 4.3.0 Try again later"])
    sleeps, dlq = Sleeps(), MemoryDLQ()
    async with smtp_server(mailbox) as port:
        outcome = await sender_for(sink(port), sleeps, dlq).send("mail", TO, MESSAGE)

    assert (outcome.delivered, outcome.attempts) == (True, 2)
    assert sleeps.waits == pytest.approx([1.0])
    assert len(mailbox.messages()) == 1
    assert await dlq.count("mail") == 0


async def test_refusing_server_is_terminal_and_dead_lettered() -> None:
    """A 554 on DATA is terminal: one attempt, then a DLQ item naming the reply."""
    mailbox = Mailbox(data_replies=["554 5.7.1 Message rejected"] * 5)
    sleeps, dlq = Sleeps(), MemoryDLQ()
    async with smtp_server(mailbox) as port:
        outcome = await sender_for(sink(port), sleeps, dlq).send("mail", TO, MESSAGE)

    assert (outcome.delivered, outcome.attempts) == (False, 1)
    assert sleeps.waits == []
    (item,) = await dlq.items("mail")
    assert item.recipient == TO
    assert item.message == MESSAGE
    assert "554" in item.last_error
    assert "Message rejected" in item.last_error


async def test_refused_recipient_5xx_is_terminal() -> None:
    """A 550 on RCPT raises a terminal SinkError naming the reply."""
    mailbox = Mailbox(rcpt_replies=["550 5.1.1 No such user"])
    async with smtp_server(mailbox) as port:
        with pytest.raises(SinkError) as caught:
            await sink(port).send(TO, MESSAGE)

    assert not caught.value.transient
    assert "550" in caught.value.message


async def test_refused_recipient_4xx_is_transient() -> None:
    """A 450 on RCPT (mailbox busy) raises a transient SinkError."""
    mailbox = Mailbox(rcpt_replies=["450 4.2.1 Mailbox busy"])
    async with smtp_server(mailbox) as port:
        with pytest.raises(SinkError) as caught:
            await sink(port).send(TO, MESSAGE)

    assert caught.value.transient


async def test_wrong_password_is_terminal() -> None:
    """Authentication refused (535) is terminal and the message holds no password."""
    mailbox = Mailbox()
    async with smtp_server(
        mailbox, authenticator=mailbox.authenticate, auth_require_tls=False
    ) as port:
        with pytest.raises(SinkError) as caught:
            await sink(port, username="parsec", password="wrong-pw").send(TO, MESSAGE)

    assert not caught.value.transient
    assert "535" in caught.value.message
    assert "wrong-pw" not in caught.value.message
    assert mailbox.envelopes == []


async def test_connection_refused_is_transient() -> None:
    """Nobody listening on the port is a transient failure."""
    with pytest.raises(SinkError) as caught:
        await sink(closed_port(), timeout=5.0).send(TO, MESSAGE)

    assert caught.value.transient


async def test_required_starttls_missing_on_the_server_is_terminal() -> None:
    """starttls=True against a server without STARTTLS fails terminally, sending nothing."""
    mailbox = Mailbox()
    async with smtp_server(mailbox) as port:
        with pytest.raises(SinkError) as caught:
            await sink(port, starttls=True).send(TO, MESSAGE)

    assert not caught.value.transient
    assert mailbox.envelopes == []


async def test_cancelled_send_drops_the_connection_at_once() -> None:
    """Cancelling a send stuck on a silent server returns at once, without waiting for
    the (hour-long) timeout or a QUIT reply."""
    mailbox = Mailbox()
    mailbox.gate = asyncio.Event()
    async with smtp_server(mailbox) as port:
        task = asyncio.create_task(sink(port, timeout=3600.0).send(TO, MESSAGE))
        await mailbox.in_data.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        mailbox.gate.set()

    assert task.cancelled()


# -- TLS ------------------------------------------------------------------------------------


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh certificate for 127.0.0.1, and a client trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


async def test_starttls_upgrades_before_login(tmp_path: Path) -> None:
    """starttls=True upgrades the connection; the server then accepts AUTH and the message."""
    server_ctx, client_ctx = self_signed(tmp_path)
    mailbox = Mailbox()
    async with smtp_server(
        mailbox, tls_context=server_ctx, require_starttls=True, authenticator=mailbox.authenticate
    ) as port:
        await sink(
            port, starttls=True, tls_context=client_ctx, username="parsec", password="s3cret"
        ).send(TO, MESSAGE)

    assert mailbox.logins == [("parsec", "s3cret")]
    assert len(mailbox.messages()) == 1


async def test_implicit_tls(tmp_path: Path) -> None:
    """tls=True speaks TLS from the first byte."""
    server_ctx, client_ctx = self_signed(tmp_path)
    mailbox = Mailbox()
    async with smtp_server(mailbox, ssl_context=server_ctx) as port:
        await sink(port, tls=True, tls_context=client_ctx).send(TO, MESSAGE)

    assert len(mailbox.messages()) == 1


async def test_untrusted_certificate_is_terminal(tmp_path: Path) -> None:
    """A certificate the client does not trust fails terminally."""
    server_ctx, _ = self_signed(tmp_path)
    mailbox = Mailbox()
    async with smtp_server(mailbox, ssl_context=server_ctx) as port:
        with pytest.raises(SinkError) as caught:
            await sink(port, tls=True, tls_context=ssl.create_default_context()).send(TO, MESSAGE)

    assert not caught.value.transient
    assert mailbox.envelopes == []


# -- recipients and settings ----------------------------------------------------------------


def test_recipient_forms_decode_to_one_value() -> None:
    """A JSON object, a bare string and an EmailRecipient all decode alike."""
    mail = sink(25)
    expected = EmailRecipient("ada@example.test")

    assert mail.decode_recipient({"address": "ada@example.test"}) == expected
    assert mail.decode_recipient("ada@example.test") == expected
    assert mail.decode_recipient(expected) == expected
    assert mail.encode_recipient("ada@example.test") == {"address": "ada@example.test"}


@pytest.mark.parametrize(
    "recipient",
    [
        None,
        {},
        {"address": 5},
        {"address": "ada@example.test", "cc": "x"},
        {"address": "not-an-address"},
        {"address": "Ada <ada@example.test>"},
        "ada@example.test\r\nBcc: victim@example.test",
        ["ada@example.test"],
    ],
)
async def test_bad_recipients_are_invalid_argument(recipient: object) -> None:
    """A recipient that is not one bare address raises PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as caught:
        await sink(closed_port()).send(recipient, MESSAGE)

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"host": ""}, "host"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"sender": "nobody"}, "email address"),
        ({"username": "u"}, "username and password"),
        ({"password": "p"}, "username and password"),
        ({"tls": True, "starttls": True}, "exclude"),
    ],
)
def test_bad_settings_are_sink_config_invalid(kwargs: dict[str, Any], problem: str) -> None:
    """Bad constructor settings raise PARSEC_SINK_CONFIG_INVALID saying what is wrong."""
    settings: dict[str, Any] = {"host": "127.0.0.1", "sender": SENDER, **kwargs}

    with pytest.raises(ParsecError) as caught:
        EmailSink("mail", **settings)

    assert caught.value.code == "PARSEC_SINK_CONFIG_INVALID"
    assert problem in caught.value.message


@pytest.mark.parametrize(
    ("kwargs", "port"),
    [({}, 25), ({"starttls": True}, 587), ({"tls": True}, 465), ({"port": 2525}, 2525)],
)
def test_default_ports_follow_the_security_mode(kwargs: dict[str, Any], port: int) -> None:
    """25 by default, 587 with required STARTTLS, 465 with TLS, unless a port is given."""
    assert repr(EmailSink("mail", host="smtp.test", sender=SENDER, **kwargs)) == (
        f"EmailSink('mail', host='smtp.test', port={port})"
    )


def test_repr_hides_the_password() -> None:
    """The repr names the sink and server, never the credentials."""
    mail = EmailSink("mail", host="smtp.test", sender=SENDER, username="u", password="hunter2")

    assert "hunter2" not in repr(mail)
