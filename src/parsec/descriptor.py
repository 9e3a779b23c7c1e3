"""Descriptor envelopes: the one JSON shape of every CLI ``--json`` output and of ``GET /manifest``.

::

    {"format_version": "1.0", "kind": "parsec.channel.get",
     "generated_at": "2026-01-01T00:00:00Z", "payload": {...}}

``kind`` is one of :data:`KINDS` (parsec-reference.md §5); an envelope of any other kind is a
programming error and raises ``ValueError``. ``generated_at`` is RFC 3339 in UTC with
second precision and a ``Z``, as Go's ``time.RFC3339`` writes it. The payload is stored as
given; the caller keeps it JSON-encodable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol, TypedDict

import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "MANIFEST",
    "Envelope",
    "encode",
    "envelope",
    "manifest_envelope",
    "rfc3339",
]

FORMAT_VERSION: Final = "1.0"

MANIFEST: Final = "parsec.manifest"
KINDS: Final = frozenset(
    {
        MANIFEST,
        "parsec.channels.list",
        "parsec.channel.open",
        "parsec.channel.credentials",
        "parsec.channel.get",
        "parsec.channel.deleted",
        "parsec.publish.ack",
        "parsec.token.refreshed",
        "parsec.token.mgmt",
        "parsec.token.revoked",
        "parsec.token.user_revoked",
        "parsec.keys.list",
        "parsec.key.generated",
        "parsec.key.promoted",
        "parsec.key.retired",
        "parsec.keys.reloaded",
        "parsec.keys.imported",
        "parsec.presence",
        "parsec.dlq.list",
        "parsec.dlq.count",
        "parsec.dlq.discarded",
        "parsec.dlq.replayed",
        "parsec.publish_or_sink",
        "parsec.login.oidc",
        "parsec.db.upgraded",
        "parsec.db.current",
        "parsec.orgs",
        "parsec.org",
        "parsec.org.deleted",
        "parsec.org.transferred",
        "parsec.members.list",
        "parsec.member",
        "parsec.member.removed",
        "parsec.invites.list",
        "parsec.invite",
        "parsec.invite.created",
        "parsec.invite.revoked",
        "parsec.invite.accepted",
        "parsec.invite.declined",
        "parsec.apikey.created",
        "parsec.apikeys.list",
        "parsec.apikey.revoked",
        "parsec.audit.list",
        "parsec.whoami",
    }
)
"""Every envelope kind this build emits."""


class Envelope(TypedDict):
    """A descriptor envelope, as it is encoded."""

    format_version: str
    kind: str
    generated_at: str
    payload: Mapping[str, object]


class ManifestSource(Protocol):
    """What can describe itself in a manifest: the Parsec facade."""

    def manifest(self) -> dict[str, object]: ...


def envelope(
    kind: str, payload: Mapping[str, object], *, clock: Callable[[], float] = time.time
) -> Envelope:
    """Wrap ``payload`` in an envelope of ``kind``, stamped with ``clock()``.

    Raises:
        ValueError: ``kind`` is not one of :data:`KINDS`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown descriptor kind {kind!r}")
    return Envelope(
        format_version=FORMAT_VERSION,
        kind=kind,
        generated_at=rfc3339(clock()),
        payload=payload,
    )


def manifest_envelope(
    source: ManifestSource, *, clock: Callable[[], float] = time.time
) -> Envelope:
    """The ``parsec.manifest`` envelope of ``source.manifest()``."""
    return envelope(MANIFEST, source.manifest(), clock=clock)


def encode(document: Envelope) -> bytes:
    """Compact JSON of ``document``.

    Raises:
        TypeError: the payload holds a value JSON cannot represent.
    """
    try:
        return msgspec.json.encode(document)
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"descriptor payload is not JSON-encodable: {exc}") from None


def rfc3339(moment: float | datetime) -> str:
    """``moment`` (unix seconds or an aware datetime) as RFC 3339 UTC, second precision:
    ``2026-01-01T00:00:00Z``. Fractions of a second are dropped, not rounded."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
