"""Token checks: how a session accepts a client's token, and what each command answers
for each way a token can fail.

A token is checked the same way wherever it is presented: the verifier
(:class:`~parsec.engine.tokens.Verifier`) accepts it, it was issued for this user (and,
for a subscription token, this channel and, when it names one, this client), it is not
revoked, and its expiry is not already past. What differs is the answer, by command:

================  =========  ============  ==========  =========  =========
failure           connect    refresh       subscribe   sub_refresh
================  =========  ============  ==========  =========  =========
expired           109        3005          109         3006
invalid           3500 (*)   3500          103 (*)     3500
not theirs        —          3500          3500        3500
revoked           109        3005          109         3006
expiry past       110        3005          109         3006
================  =========  ============  ==========  =========  =========

(*) also counted and logged as a client fault (:mod:`parsec.engine.faults`). A reply
error (1xx) leaves the connection open; a disconnect (3xxx) closes it. Each column is
a :class:`Refusals` value below, so a call site is one line.

The checks are synchronous. When the verifier raises
:class:`~parsec.engine.tokens.UnknownSigningKey` and can refresh its keys
(:class:`~parsec.engine.tokens.KeyRefresher`), a check raises :class:`StaleKeys`
instead: the call site awaits ``stale.retry()``, which refreshes the keys and checks the
token once more. A key still unknown after a fetch that succeeded is refused as invalid;
one still unknown because no fetch could run (the verifier's rate limit, or the key
source is down) is answered with a temporary error (100, ``temporary: true``), which the
SDKs retry with backoff, so a client holding a token of freshly rotated keys gets in once
the keys can be fetched instead of being told its token is invalid. A token signed by a
key the verifier holds never awaits.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from parsec.engine import faults
from parsec.engine.auth_log import reason_of
from parsec.engine.codes import disconnects, errors
from parsec.engine.revocation import TokenId
from parsec.engine.tokens import (
    ConnectionClaims,
    InvalidToken,
    SubscriptionClaims,
    TokenExpired,
    UnknownSigningKey,
    Verifier,
)

if TYPE_CHECKING:
    from parsec.engine.node import Node
    from parsec.engine.session import Session

__all__ = [
    "ON_CONNECT",
    "ON_REFRESH",
    "ON_SUBSCRIBE",
    "ON_SUB_REFRESH",
    "Refusals",
    "StaleKeys",
    "connection_token",
    "subscription_token",
    "ttl",
]


T = TypeVar("T")


class StaleKeys(Exception, Generic[T]):
    """The token names a signing key the verifier does not hold yet and may fetch:
    ``await retry()`` refreshes the verifier's keys (rate-limited by the verifier) and
    runs the check once more, returning what it returns or raising what it raises."""

    def __init__(self, refresh: Callable[[], Awaitable[bool]], check: Callable[[bool], T]) -> None:
        super().__init__("the token's signing key is not known yet")
        self._refresh = refresh
        self._check = check

    async def retry(self) -> T:
        """Refresh the keys, then check again (told whether a fetch succeeded)."""
        fetched = await self._refresh()
        return self._check(fetched)


def _stale_keys(verifier: Verifier, exc: InvalidToken, check: Callable[[bool], Any]) -> None:
    """Raise :class:`StaleKeys` when ``exc`` is an unknown key ``verifier`` can fetch."""
    refresh = getattr(verifier, "refresh_keys", None)
    if refresh is not None and isinstance(exc, UnknownSigningKey):
        raise StaleKeys(refresh, check) from None


def _keys_unavailable(exc: InvalidToken, fetched: bool) -> None:
    """Raise the temporary error for a key still unknown because no fetch ran."""
    if not fetched and isinstance(exc, UnknownSigningKey):
        raise errors.INTERNAL(
            message="the token's signing key is not known yet, try again", temporary=True
        ) from None


@dataclass(frozen=True, slots=True)
class Refusals:
    """What one command raises for each way a token can fail: a ClientError class (an
    error reply; the connection stays open) or a Disconnect class (it closes)."""

    expired: type[Exception]
    """The verifier says the token is not valid now (``exp`` / ``nbf``)."""
    invalid: Callable[[str], Exception]
    """Any other refusal of the verifier; given the channel ("" for a connection)."""
    not_theirs: type[Exception]
    """Valid, but issued for another user (channel, client)."""
    revoked: type[Exception]
    lapsed: type[Exception]
    """Valid, but its expiry (``expire_at`` when present, else ``exp``) is past."""
    report_invalid: bool = False
    """Whether an invalid token is also counted and logged as a client fault."""


def _close_invalid(channel: str) -> Exception:
    return disconnects.INVALID_TOKEN()


def _deny_subscribe(channel: str) -> Exception:
    return errors.PERMISSION_DENIED(message=f"permission denied: subscribe to {channel!r}")


ON_CONNECT = Refusals(
    expired=errors.TOKEN_EXPIRED,
    invalid=_close_invalid,
    not_theirs=disconnects.INVALID_TOKEN,
    revoked=errors.TOKEN_REVOKED,
    lapsed=errors.EXPIRED,
    report_invalid=True,
)
ON_REFRESH = Refusals(
    expired=disconnects.EXPIRED,
    invalid=_close_invalid,
    not_theirs=disconnects.INVALID_TOKEN,
    revoked=disconnects.TOKEN_REVOKED,
    lapsed=disconnects.EXPIRED,
)
ON_SUBSCRIBE = Refusals(
    expired=errors.TOKEN_EXPIRED,
    invalid=_deny_subscribe,
    not_theirs=disconnects.INVALID_TOKEN,
    revoked=errors.TOKEN_REVOKED,
    lapsed=errors.TOKEN_EXPIRED,
    report_invalid=True,
)
ON_SUB_REFRESH = Refusals(
    expired=disconnects.SUBSCRIPTION_EXPIRED,
    invalid=_close_invalid,
    not_theirs=disconnects.INVALID_TOKEN,
    revoked=disconnects.SUBSCRIPTION_TOKEN_REVOKED,
    lapsed=disconnects.SUBSCRIPTION_EXPIRED,
)


def connection_token(
    session: Session,
    token: str,
    refusals: Refusals,
    *,
    user: str | None = None,
    refresh: bool = True,
    fetched: bool = True,
) -> tuple[ConnectionClaims, TokenId]:
    """The claims and id of a connection token ``session`` presents, checked for
    ``user`` (any user when None: the token names the user at connect); raises what
    ``refusals`` says for a token that fails, or :class:`StaleKeys` (only when
    ``refresh``) for a key the verifier may fetch; ``fetched`` False: the keys could
    not be fetched since the first check (an unknown key is then a temporary error)."""
    node = session.node
    try:
        claims = node.verifier.verify_connection(token)
    except TokenExpired as exc:
        _verified(node, "connection", "expired")
        _failed(session, "connection", reason_of(exc.code))
        raise refusals.expired from None
    except InvalidToken as exc:
        if refresh:

            def again(fetched: bool) -> tuple[ConnectionClaims, TokenId]:
                return connection_token(
                    session, token, refusals, user=user, refresh=False, fetched=fetched
                )

            _stale_keys(node.verifier, exc, again)
        _keys_unavailable(exc, fetched)
        _verified(node, "connection", "invalid")
        if refusals.report_invalid:
            node.client_faults.report(
                faults.INVALID_TOKEN,
                session,
                "invalid connection token from client %s: %s",
                session.client_id,
                exc,
            )
        _failed(session, "connection", reason_of(exc.code))
        raise refusals.invalid("") from None
    _verified(node, "connection", "ok")
    if user is not None and claims.user != user:
        _failed(session, "connection", "mismatch")
        raise refusals.not_theirs
    token_id = TokenId(claims.user, claims.jti, claims.iat)
    revocations = node.revocations
    if revocations is not None and revocations.connection_revoked(token_id):
        _failed(session, "connection", "revoked")
        raise refusals.revoked
    _check_expiry(session, "connection", claims.expires_at, refusals)
    return claims, token_id


def subscription_token(
    session: Session,
    token: str,
    channel: str,
    refusals: Refusals,
    *,
    refresh: bool = True,
    fetched: bool = True,
) -> tuple[SubscriptionClaims, TokenId]:
    """The claims and id of a subscription token ``session`` presents for ``channel``,
    checked for the session's user and its client id when the token names one; raises
    what ``refusals`` says for a token that fails, or :class:`StaleKeys` (only when
    ``refresh``) for a key the verifier may fetch (``fetched``: as for
    :func:`connection_token`)."""
    node = session.node
    try:
        claims = node.verifier.verify_subscription(token)
    except TokenExpired as exc:
        _verified(node, "subscription", "expired")
        _failed(session, "subscription", reason_of(exc.code), channel)
        raise refusals.expired from None
    except InvalidToken as exc:
        if refresh:

            def again(fetched: bool) -> tuple[SubscriptionClaims, TokenId]:
                return subscription_token(
                    session, token, channel, refusals, refresh=False, fetched=fetched
                )

            _stale_keys(node.verifier, exc, again)
        _keys_unavailable(exc, fetched)
        _verified(node, "subscription", "invalid")
        if refusals.report_invalid:
            node.client_faults.report(
                faults.INVALID_TOKEN,
                session,
                "invalid subscription token for %r from client %s: %s",
                channel,
                session.client_id,
                exc,
            )
        _failed(session, "subscription", reason_of(exc.code), channel)
        raise refusals.invalid(channel) from None
    _verified(node, "subscription", "ok")
    if (
        claims.channel != channel
        or claims.user != session.user
        or (claims.client and claims.client != session.client_id)
    ):
        _failed(session, "subscription", "mismatch", channel)
        raise refusals.not_theirs
    token_id = TokenId(claims.user, claims.jti, claims.iat)
    revocations = node.revocations
    if revocations is not None and revocations.subscription_revoked(token_id, channel):
        _failed(session, "subscription", "revoked", channel)
        raise refusals.revoked
    _check_expiry(session, "subscription", claims.expires_at, refusals, channel)
    return claims, token_id


def _verified(node: Node, kind: str, result: str) -> None:
    if node.observer is not None:
        node.observer.token_verified(kind, result)


def _check_expiry(
    session: Session, kind: str, expires_at: int | None, refusals: Refusals, channel: str = ""
) -> None:
    if expires_at is not None and expires_at <= time.time():
        _failed(session, kind, "expired", channel)
        raise refusals.lapsed


def _failed(session: Session, kind: str, reason: str, channel: str = "") -> None:
    """The ``auth_failure`` line of a token ``session`` presented (never the token)."""
    fields: dict[str, object] = {"client": session.client_id, "transport": session.transport.name}
    if session.user:
        fields["user"] = session.user
    if channel:
        fields["channel"] = channel
    session.node.auth_failures.report(kind, reason, **fields)


def ttl(expires_at: int) -> int:
    """The ``ttl`` a reply announces for an expiry: whole seconds left, at least 1."""
    return max(int(expires_at - time.time()), 1)
