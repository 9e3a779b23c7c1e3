"""Between Parsec's objects and ParsecService's messages (:mod:`parsec.api.management_models`).

Protobuf leaves no field unset: 0 and "" stand for "the default" in requests (a TTL of 0
is the server's default, an empty algorithm HS256) and for "none" in responses (a key
never retired has ``retired_at`` "").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import jwt
import msgspec

from parsec import descriptor
from parsec.api.management_models import (
    ChannelStateName,
    ChannelSummary,
    DlqItem,
    KeyRole,
    KeySummary,
    ScopeSpec,
)
from parsec.auth.keyring import ACTIVE, RETIRED, VERIFY_ONLY, Key
from parsec.auth.scopes import Scope
from parsec.channels.store import Channel, ChannelState
from parsec.sinks.dlq import DLQItem

__all__ = [
    "algorithm",
    "channel_summary",
    "dlq_item",
    "key_summary",
    "rfc3339_fraction",
    "scopes",
    "signing_kid",
    "ttl",
]

_ALGORITHM_NAMES: Final = {
    "hs256": "HS256",
    "rs256": "RS256",
    "es256": "ES256",
    "es384": "ES384",
    "eddsa": "EdDSA",
    "ed25519": "EdDSA",
}
_STATES: Final[dict[ChannelState, ChannelStateName]] = {
    ChannelState.OPEN: "open",
    ChannelState.CLOSED: "closed",
    ChannelState.DELETED: "deleted",
}
_ROLES: Final[dict[str, KeyRole]] = {
    ACTIVE: "active",
    VERIFY_ONLY: "verify-only",
    RETIRED: "retired",
}


def ttl(seconds: int) -> float | None:
    """0 (protobuf's unset) means the server's default."""
    return float(seconds) if seconds else None


def scopes(specs: Sequence[ScopeSpec]) -> tuple[Scope, ...]:
    """The scopes ``specs`` describe. Raises ParsecError for one that breaks a rule."""
    result = tuple(Scope(spec.pattern, tuple(spec.verbs), spec.deny) for spec in specs)
    for scope in result:
        scope.validate()
    return result


def algorithm(alg: str) -> str:
    """Canonical spelling of ``alg`` (case-insensitive, ``ed25519`` = EdDSA); "" is HS256.
    Anything else is passed on for the keyring to refuse."""
    if not alg:
        return "HS256"
    return _ALGORITHM_NAMES.get(alg.lower(), alg)


def channel_summary(channel: Channel) -> ChannelSummary:
    return ChannelSummary(
        name=channel.name,
        state=_STATES[channel.state],
        ttl_seconds=int(channel.ttl),
        created_at=descriptor.rfc3339(channel.created_at),
        last_active=descriptor.rfc3339(channel.last_active),
    )


def key_summary(key: Key) -> KeySummary:
    return KeySummary(
        id=key.id,
        role=_ROLES[key.role],
        created_at=descriptor.rfc3339(key.created_at),
        retired_at="" if key.retired_at is None else descriptor.rfc3339(key.retired_at),
        alg=key.alg,
    )


def dlq_item(item: DLQItem) -> DlqItem:
    return DlqItem(
        id=item.id,
        sink=item.sink,
        at=rfc3339_fraction(item.at),
        recipient=msgspec.json.encode(item.recipient),
        subject=item.message.subject,
        body=item.message.body,
        metadata=dict(item.message.metadata),
        attempts=item.attempts,
        last_error=item.last_error,
    )


def rfc3339_fraction(seconds: float) -> str:
    """Unix ``seconds`` as RFC 3339 UTC keeping microseconds, trailing zeros trimmed
    (as Go's RFC3339Nano): ``2026-01-01T00:00:00.25Z``, ``2026-01-01T00:00:00Z``."""
    moment = datetime.fromtimestamp(seconds, UTC)
    fraction = f".{moment.microsecond:06d}".rstrip("0").rstrip(".")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def signing_kid(token: str) -> str:
    """The ``kid`` in ``token``'s header, or "" when it has none."""
    kid = jwt.get_unverified_header(token).get("kid", "")
    return kid if isinstance(kid, str) else ""
