"""The sink contract: out-of-band delivery of a :class:`Message` to a recipient.

::

    Sink                     one delivery channel (an SMTP server, a Slack webhook, …)
     ├─ name                 the registry key, the DLQ's per-sink key
     ├─ send(recipient, m)   one attempt; raises SinkError (transient or terminal)
     ├─ decode_recipient     JSON (as the API sends it, as the DLQ stores it) -> recipient
     └─ encode_recipient     recipient -> JSON
    SinkRegistry             sinks by name
    SinkError                a failed attempt: ``transient`` says whether a retry may help

Guarantees every sink keeps:

* ``send`` makes at most one delivery attempt and never retries by itself (retries are
  :class:`parsec.sinks.retry.RetryingSender`'s job).
* A failed attempt raises :class:`SinkError`. A recipient the sink cannot use raises
  ``ParsecError("PARSEC_INVALID_ARGUMENT", …)`` from ``send``, ``decode_recipient`` and
  ``encode_recipient`` alike, before anything is sent.
* ``decode_recipient(encode_recipient(r))`` is a recipient equal to ``r``; both accept a
  recipient in either form (typed or JSON), so callers may pass what they have.
* Error messages and reprs never carry secrets (passwords, webhook secrets or URLs).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

from parsec.errors import ParsecError

__all__ = [
    "Message",
    "Sink",
    "SinkError",
    "SinkRegistry",
    "classify_error",
    "validate_sink_name",
]

log = logging.getLogger("parsec.sinks")

_MAX_ERROR_TEXT: Final = 500
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True, slots=True)
class Message:
    """What a sink delivers. Empty fields are allowed; a sink renders what is there."""

    subject: str = ""
    body: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """``{"subject", "body", "metadata"}``: every field, defaults included."""
        return {"subject": self.subject, "body": self.body, "metadata": dict(self.metadata)}

    @classmethod
    def from_json(cls, data: object) -> Message:
        """The message in ``data`` (a JSON object with optional ``subject``, ``body``
        and ``metadata`` of string values). Raises ``ParsecError`` with code
        ``PARSEC_INVALID_ARGUMENT`` for any other shape; unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise _invalid("a message must be a JSON object")
        unknown = sorted(str(k) for k in data if k not in ("subject", "body", "metadata"))
        if unknown:
            raise _invalid(f"unknown message field {unknown[0]!r}")
        subject = data.get("subject", "")
        body = data.get("body", "")
        if not isinstance(subject, str) or not isinstance(body, str):
            raise _invalid("message subject and body must be strings")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise _invalid("message metadata must be an object of string values")
        return cls(subject, body, dict(metadata))


class SinkError(Exception):
    """One delivery attempt failed.

    ``transient`` is True when trying again may succeed (network errors, timeouts,
    HTTP 429 / 5xx, SMTP 4xx); ``retry_after`` is the delay in seconds the receiver
    asked for, if it did. The message never carries secrets.
    """

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after = retry_after

    def __repr__(self) -> str:
        kind = "transient" if self.transient else "terminal"
        return f"SinkError({self.message!r}, {kind}, retry_after={self.retry_after!r})"


def classify_error(error: BaseException) -> SinkError:
    """``error`` as a SinkError: a SinkError stays as it is; a ParsecError is terminal;
    ``TimeoutError`` and other ``OSError`` (refused, reset, broken pipe) are transient;
    anything else is terminal."""
    if isinstance(error, SinkError):
        return error
    if isinstance(error, ParsecError):
        return SinkError(error.message, transient=False)
    text = str(error)[:_MAX_ERROR_TEXT]
    described = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return SinkError(described, transient=isinstance(error, OSError | TimeoutError))


@runtime_checkable
class Sink(Protocol):
    """One out-of-band delivery channel. See the module docstring for the guarantees."""

    @property
    def name(self) -> str:
        """The sink's registry name."""
        ...

    async def send(self, recipient: object, message: Message) -> None:
        """Deliver ``message`` to ``recipient`` in one attempt, or raise SinkError."""
        ...

    def decode_recipient(self, data: object) -> object:
        """The recipient in ``data`` (its JSON form). ParsecError INVALID_ARGUMENT if bad."""
        ...

    def encode_recipient(self, recipient: object) -> object:
        """The JSON form of ``recipient``. ParsecError INVALID_ARGUMENT if bad."""
        ...


def validate_sink_name(name: str) -> str:
    """``name`` if it is a usable sink name (1-64 of ``A-Z a-z 0-9 _ - .``), else
    ``ParsecError("PARSEC_SINK_CONFIG_INVALID", …)``."""
    if not 0 < len(name) <= 64 or not set(name) <= _NAME_CHARS:
        raise ParsecError(
            "PARSEC_SINK_CONFIG_INVALID",
            f"invalid sink name {name!r}: use 1-64 letters, digits, '_', '-' or '.'",
        )
    return name


class SinkRegistry:
    """Sinks by name. Names are unique; registration order does not matter."""

    def __init__(self, sinks: Iterable[Sink] = ()) -> None:
        self._sinks: dict[str, Sink] = {}
        for sink in sinks:
            self.add(sink)

    def add(self, sink: Sink) -> None:
        """Register ``sink``. Raises ParsecError ``PARSEC_SINK_CONFIG_INVALID`` for an
        invalid or already registered name."""
        name = validate_sink_name(sink.name)
        if name in self._sinks:
            raise ParsecError("PARSEC_SINK_CONFIG_INVALID", f"sink {name!r} is already registered")
        self._sinks[name] = sink

    def get(self, name: str) -> Sink:
        """The sink called ``name``. Raises ParsecError ``PARSEC_SINK_CONFIG_INVALID``
        naming it when there is none (and logs at INFO which sinks there are)."""
        try:
            return self._sinks[name]
        except KeyError:
            log.info(
                "unknown sink %r; configured sinks: %s", name, ", ".join(self.names()) or "none"
            )
            raise ParsecError(
                "PARSEC_SINK_CONFIG_INVALID",
                f"unknown sink {name!r}: no sink of that name is configured ([sinks.<name>])",
            ) from None

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._sinks)

    def __contains__(self, name: object) -> bool:
        return name in self._sinks

    def __iter__(self) -> Iterator[Sink]:
        return iter([self._sinks[name] for name in self.names()])

    def __len__(self) -> int:
        return len(self._sinks)

    def __repr__(self) -> str:
        return f"SinkRegistry({self.names()!r})"


def _invalid(message: str) -> ParsecError:
    return ParsecError("PARSEC_INVALID_ARGUMENT", message)
