"""The Slack sink: one POST to a Slack incoming webhook per delivery.

The body is ``{"text": "*Subject*\\nBody"}`` (just the subject in bold, or just the
body, when the other is empty) plus ``"metadata"`` when the message has any. The
recipient is ignored (the webhook decides the channel): its JSON form is ``null`` and
any recipient is accepted. HTTP failures follow :mod:`parsec.sinks._http`. The webhook
URL is a secret: it appears in no error message or repr.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx

from parsec.errors import ParsecError
from parsec.sinks import _checks, _http
from parsec.sinks.base import Message, validate_sink_name

__all__ = ["SlackSink", "slack_text"]


class SlackSink:
    """Posts each message to one Slack incoming webhook.

    ``client`` is used when given and never closed here; otherwise each send makes and
    closes its own. Raises ``ParsecError("PARSEC_SINK_CONFIG_INVALID", …)`` when
    ``webhook_url`` is not an http(s) URL.
    """

    def __init__(
        self,
        name: str,
        *,
        webhook_url: str,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = validate_sink_name(name)
        try:
            self._url = _checks.http_url(webhook_url)
        except ValueError as e:
            raise ParsecError(
                "PARSEC_SINK_CONFIG_INVALID", f"slack sink {name!r}: webhook_url {e}"
            ) from None
        self._timeout = timeout
        self._client = client
        self._clock = clock

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"SlackSink({self._name!r})"

    async def send(self, recipient: object, message: Message) -> None:
        """Post ``message`` to the webhook; ``recipient`` is ignored."""
        payload: dict[str, object] = {"text": slack_text(message)}
        if message.metadata:
            payload["metadata"] = dict(message.metadata)
        await _http.post(
            self._url,
            json.dumps(payload, ensure_ascii=False).encode(),
            {"Content-Type": "application/json"},
            client=self._client,
            request_timeout=self._timeout,
            what=f"slack sink {self._name!r}",
            clock=self._clock,
        )

    def decode_recipient(self, data: object) -> object:
        """Always None: a Slack webhook has a fixed destination."""
        return None

    def encode_recipient(self, recipient: object) -> object:
        """Always None (JSON ``null``)."""
        return None


def slack_text(message: Message) -> str:
    """``*Subject*\\nBody``; only the part that is non-empty when one is empty."""
    subject = f"*{message.subject}*" if message.subject else ""
    return "\n".join(part for part in (subject, message.body) if part)
