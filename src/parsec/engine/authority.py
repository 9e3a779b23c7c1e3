"""The ChannelAuthority contract: who governs managed channels beyond namespace options.

Parsec manages the channels of its ``public`` and ``private`` namespaces: they have a
lifecycle (open, closed, deleted) and bearer access tokens grant verbs on them. The
engine asks an authority, when one is configured, before a subscribe or a publish in a
managed channel, and lets it read tokens that are not Centrifugo subscription tokens.
The engine stays free of Parsec's domain types: an authority answers with engine
values and raises ``ClientError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from parsec.engine.channel import ResolvedChannel
from parsec.engine.revocation import TokenId

__all__ = ["ChannelAuthority", "Grant"]


@dataclass(frozen=True, slots=True)
class Grant:
    """What a bearer token grants on one channel: the subscription it allows lasts
    until ``expires_at`` (unix seconds), and publishing is allowed when ``publish``.
    ``token`` identifies the bearer token, so the subscription ends when it is revoked."""

    expires_at: int | None
    publish: bool
    token: TokenId | None = None


class ChannelAuthority(Protocol):
    """Guarantees: ``check_*`` and ``grant`` raise ``ClientError`` to refuse and never
    anything else for a refusal; they never block on a client."""

    def manages(self, channel: ResolvedChannel) -> bool:
        """Whether this authority governs the channel (cheap; no I/O)."""

    async def check_subscribe(self, channel: str) -> None:
        """Refuse a subscribe to a managed channel that is closed or does not exist."""

    async def check_publish(self, channel: str) -> None:
        """Refuse a publish to a managed channel that is closed or does not exist; a
        successful check counts as activity (it keeps the channel open)."""

    async def grant(self, token: str, channel: str) -> Grant | None:
        """Read ``token`` as a bearer access token for ``channel``.

        None when the token is not one this authority issues (the engine then reads it
        as a Centrifugo subscription token). Raises ClientError 109 when it expired and
        103 when it does not allow subscribing to the channel or was revoked.
        """
