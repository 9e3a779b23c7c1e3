"""The webhook sink: one JSON POST per delivery, signed when a secret is set.

Request:

* Body: ``{"subject", "body", "metadata"}`` as compact UTF-8 JSON, empty fields omitted.
* Headers: ``Content-Type: application/json``, then the configured ``headers`` (which may
  replace it), then ``X-Parsec-Timestamp`` (unix seconds) and, with a ``secret``,
  ``X-Parsec-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body under the secret.
  Receivers check it with :func:`verify_signature`.
* URL: the configured ``url``, or the recipient's ``{"url": …}`` when it gives one.

HTTP failures follow :mod:`parsec.sinks._http`. The URL, headers and secret appear in no
error message or repr.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from parsec.errors import ParsecError
from parsec.sinks import _checks, _http
from parsec.sinks.base import Message, validate_sink_name

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookRecipient",
    "WebhookSink",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Parsec-Signature"
TIMESTAMP_HEADER = "X-Parsec-Timestamp"


@dataclass(frozen=True, slots=True)
class WebhookRecipient:
    """Where a webhook call goes: ``url``, or the sink's URL when None."""

    url: str | None = None


def sign(secret: str, body: bytes) -> str:
    """The ``X-Parsec-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """True when ``header`` is the signature of ``body`` under ``secret`` (constant time)."""
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


class WebhookSink:
    """POSTs each message as JSON to a URL.

    ``client`` is used when given and never closed here; otherwise each send makes and
    closes its own. Raises ``ParsecError("PARSEC_SINK_CONFIG_INVALID", …)`` for a URL
    that is not http(s), a bad header name or a header value with control characters.
    """

    def __init__(
        self,
        name: str,
        *,
        url: str,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = validate_sink_name(name)
        try:
            self._url = _checks.http_url(url)
            self._headers = {
                _checks.header_name(k): _checks.header_value(v) for k, v in (headers or {}).items()
            }
        except ValueError as e:
            raise ParsecError("PARSEC_SINK_CONFIG_INVALID", f"webhook sink {name!r}: {e}") from None
        self._secret = secret
        self._timeout = timeout
        self._client = client
        self._clock = clock

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"WebhookSink({self._name!r}, signed={self._secret is not None})"

    async def send(self, recipient: object, message: Message) -> None:
        """POST ``message`` to the recipient's URL, else the configured one."""
        target = self.decode_recipient(recipient)
        body = webhook_body(message)
        headers = {"Content-Type": "application/json", **self._headers}
        headers[TIMESTAMP_HEADER] = str(int(self._clock()))
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        await _http.post(
            target.url or self._url,
            body,
            headers,
            client=self._client,
            request_timeout=self._timeout,
            what=f"webhook sink {self._name!r}",
            clock=self._clock,
        )

    def decode_recipient(self, data: object) -> WebhookRecipient:
        """``null``, ``{}``, ``{"url": "https://…"}`` or a WebhookRecipient. Raises
        ParsecError ``PARSEC_INVALID_ARGUMENT`` for anything else."""
        if isinstance(data, WebhookRecipient):
            url: object = data.url
        elif data is None:
            url = None
        elif isinstance(data, Mapping) and set(data) <= {"url"}:
            url = data.get("url")
        else:
            raise self._bad_recipient('expected null or {"url": "https://…"}')
        if url is None or url == "":
            return WebhookRecipient()
        if not isinstance(url, str):
            raise self._bad_recipient("the url must be a string")
        try:
            return WebhookRecipient(_checks.http_url(url))
        except ValueError as e:
            raise self._bad_recipient(f"url {e}") from None

    def encode_recipient(self, recipient: object) -> dict[str, str]:
        """``{"url": …}``, or ``{}`` for the sink's own URL."""
        url = self.decode_recipient(recipient).url
        return {"url": url} if url else {}

    def _bad_recipient(self, problem: str) -> ParsecError:
        return ParsecError(
            "PARSEC_INVALID_ARGUMENT", f"webhook sink {self._name!r}: bad recipient: {problem}"
        )


def webhook_body(message: Message) -> bytes:
    """The request body for ``message``: compact JSON, empty fields omitted."""
    fields = {"subject": message.subject, "body": message.body, "metadata": dict(message.metadata)}
    payload = {k: v for k, v in fields.items() if v}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
