"""The email sink: one MIME message per delivery over SMTP (aiosmtplib).

The message carries ``Subject`` (line breaks folded into spaces), ``From``, ``To``,
``Date`` (RFC 5322, GMT), ``Message-ID`` (at the sender's domain) and the body as UTF-8
``text/plain``. The recipient is :class:`EmailRecipient`, JSON ``{"address": "…"}``
(a bare address string is accepted on input too).

Connection security: ``tls=True`` speaks TLS from the start (port 465 by default);
``starttls=True`` requires STARTTLS (587 by default), ``False`` never uses it, and
``None`` (the default) upgrades when the server offers it (port 25 by default). With a
``username``, the sink logs in with ``password`` after any upgrade.

Failures: SMTP 4xx replies, disconnects, timeouts and network errors are transient;
other replies (5xx, authentication refused), TLS certificate failures and a server
lacking a required extension are terminal.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from parsec.errors import ParsecError
from parsec.sinks import _checks
from parsec.sinks.base import Message, SinkError, validate_sink_name

__all__ = ["EmailRecipient", "EmailSink"]


@dataclass(frozen=True, slots=True)
class EmailRecipient:
    """Where an email goes: one bare address (``user@domain``)."""

    address: str


class EmailSink:
    """Sends each message as an email through one SMTP server.

    Raises ``ParsecError("PARSEC_SINK_CONFIG_INVALID", …)`` for a bad setting: an empty
    host, a port outside 1-65535, a sender that is not an address, a username without a
    password (or the reverse), or both ``tls`` and ``starttls``.
    """

    def __init__(
        self,
        name: str,
        *,
        host: str,
        sender: str,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        starttls: bool | None = None,
        tls: bool = False,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = validate_sink_name(name)
        try:
            self._host = _checks.host(host)
            self._port = _checks.port(port if port is not None else _default_port(tls, starttls))
            self._sender = _checks.email_address(sender)
        except ValueError as e:
            raise _config_error(name, str(e)) from None
        if (username is None) != (password is None):
            raise _config_error(name, "username and password go together")
        if tls and starttls:
            raise _config_error(name, "tls and starttls exclude each other")
        self._username = username
        self._password = password
        self._starttls = starttls
        self._tls = tls
        self._timeout = timeout
        self._tls_context = tls_context
        self._clock = clock

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"EmailSink({self._name!r}, host={self._host!r}, port={self._port})"

    async def send(self, recipient: object, message: Message) -> None:
        """Send ``message`` to ``recipient`` in one SMTP transaction."""
        mime = self.compose(self.decode_recipient(recipient), message)
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._tls,
            start_tls=self._starttls,
            timeout=self._timeout,
            tls_context=self._tls_context,
        )
        try:
            await _transmit(client, mime)
        except (aiosmtplib.SMTPException, OSError) as e:
            raise _smtp_error(self._name, e) from None
        finally:
            client.close()  # at once, also when cancelled: no QUIT waits on a stuck server

    def compose(self, recipient: EmailRecipient, message: Message) -> EmailMessage:
        """The MIME message ``send`` delivers to ``recipient``."""
        mime = EmailMessage()
        mime["Subject"] = " ".join(message.subject.splitlines())
        mime["From"] = self._sender
        mime["To"] = recipient.address
        mime["Date"] = formatdate(self._clock(), usegmt=True)
        mime["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2])
        mime.set_content(message.body)
        return mime

    def decode_recipient(self, data: object) -> EmailRecipient:
        """``{"address": "user@domain"}``, a bare address string or an EmailRecipient.
        Raises ParsecError ``PARSEC_INVALID_ARGUMENT`` for anything else."""
        if isinstance(data, EmailRecipient):
            address: object = data.address
        elif isinstance(data, str):
            address = data
        elif isinstance(data, Mapping) and set(data) == {"address"}:
            address = data["address"]
        else:
            raise _bad_recipient(self._name, 'expected {"address": "user@domain"}')
        if not isinstance(address, str):
            raise _bad_recipient(self._name, "the address must be a string")
        try:
            return EmailRecipient(_checks.email_address(address))
        except ValueError as e:
            raise _bad_recipient(self._name, str(e)) from None

    def encode_recipient(self, recipient: object) -> dict[str, str]:
        """``{"address": …}`` for ``recipient`` in any form ``decode_recipient`` takes."""
        return {"address": self.decode_recipient(recipient).address}


async def _transmit(client: aiosmtplib.SMTP, mime: EmailMessage) -> None:
    await client.connect()  # greeting, EHLO, STARTTLS and login as configured
    await client.send_message(mime)
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit()  # the message is accepted: a failed goodbye changes nothing


def _default_port(tls: bool, starttls: bool | None) -> int:
    if tls:
        return 465
    return 587 if starttls else 25


def _smtp_error(name: str, error: aiosmtplib.SMTPException | OSError) -> SinkError:
    what = f"email sink {name!r}"
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in error.recipients]
        replies = "; ".join(f"{r.code} {r.message}" for r in error.recipients)
        transient = bool(codes) and all(400 <= code < 500 for code in codes)
        return SinkError(f"{what}: recipient refused: SMTP {replies}", transient=transient)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        transient = 400 <= error.code < 500
        return SinkError(f"{what}: SMTP {error.code} {error.message}", transient=transient)
    if isinstance(error, aiosmtplib.SMTPNotSupported) or _certificate_failure(error):
        return SinkError(f"{what}: {type(error).__name__}: {error}", transient=False)
    return SinkError(
        f"{what}: {type(error).__name__}: {error}",
        transient=isinstance(error, OSError),
    )


def _certificate_failure(error: BaseException) -> bool:
    """Whether ``error`` is, or was caused by, a failed TLS certificate check."""
    current: BaseException | None = error
    visited: set[int] = set()
    while current is not None and id(current) not in visited:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        visited.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _config_error(name: str, problem: str) -> ParsecError:
    return ParsecError("PARSEC_SINK_CONFIG_INVALID", f"email sink {name!r}: {problem}")


def _bad_recipient(name: str, problem: str) -> ParsecError:
    return ParsecError("PARSEC_INVALID_ARGUMENT", f"email sink {name!r}: bad recipient: {problem}")
