"""The TokenRevocations contract: which tokens the engine must stop honouring.

A session remembers the token it connected with, and each subscription the token it was
authorised by (a Centrifugo subscription token or a bearer access token), as a
:class:`TokenId`. The engine asks its ``TokenRevocations``, when one is configured:

* at ``connect`` and ``refresh`` whether the connection token is revoked (connect is
  answered 109 "token revoked", refresh closes the connection with 3005);
* at ``subscribe`` and ``sub_refresh`` whether the subscription token is revoked (109;
  3006 on sub_refresh);
* after every change of the revocations (``Node.revocations_changed``), for each live
  connection and subscription: a connection holding a revoked token is closed with 3005
  "token revoked", a client-side subscription is ended with unsubscribe 2501 "token
  revoked" (the SDK resubscribes and, for a Centrifugo token, fetches a new one).

Guarantees an implementation gives: the checks are synchronous, do no I/O and never
raise (they run at connect and on every change, never per delivered message); a token
lacking a claim is not covered by the revocations keyed on it (no ``jti``: not revocable
by id; no ``iat``: not covered by a user's cutoff).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from parsec.engine.controller import RevokeCommand

__all__ = ["REVOCATIONS_SURVEY", "TokenId", "TokenRevocations"]

REVOCATIONS_SURVEY = "revocations"
"""The survey a node answers with every revocation it holds (a starting node asks it)."""


@dataclass(frozen=True, slots=True)
class TokenId:
    """What identifies a token for revocation: its subject, and its ``jti``, ``iat`` and
    refresh family (``fid``) when it carries them."""

    user: str
    jti: str | None = None
    iat: int | None = None
    family: str | None = None


class TokenRevocations(Protocol):
    def connection_revoked(self, token: TokenId) -> bool:
        """Whether a connection token is revoked."""

    def subscription_revoked(self, token: TokenId, channel: str) -> bool:
        """Whether a token authorising a subscription to ``channel`` is revoked."""

    async def handle_command(self, command: RevokeCommand) -> None:
        """Take in revocations another node made (they came over the Controller)."""

    def survey_answer(self) -> bytes:
        """Every revocation this node holds, for a node that starts (the
        :data:`REVOCATIONS_SURVEY` survey)."""
