"""Parsec's own tokens: access, refresh and management JWTs (parsec-reference.md §4).

Claims on the wire use short keys: ``sub``, ``typ`` (``access`` | ``refresh`` | ``mgmt``),
``chs`` (exact channels, any verb), ``scopes`` (``[{"pat", "v", "deny"?}]``), ``rl``
(per-token rate override), ``jti`` (unique id, on every token Parsec issues), ``fid``
(refresh family: on refresh tokens and the access tokens issued with them), ``iat`` and
``exp`` (unix seconds). Tokens are compact JWS signed by the keyring's active key
(``parsec.auth.jws``).

Lifetimes, all computed from the injected clock:

- access: ``max(access_ttl, 60 s)``, and never past ``not_after`` when given (the refresh
  token it comes with), so a refresh never extends a session past its own expiry;
- refresh: ``min(ttl, max_refresh_ttl)`` where ``ttl`` is the channel's TTL;
- mgmt: ``ttl`` (default ``mgmt_ttl``) clamped to [1 h, 7 d].

:meth:`ParsecTokens.verify` raises ``PARSEC_AUTH_EXPIRED`` once ``exp`` is reached and
``PARSEC_AUTH_DENIED`` for everything else (bad signature, unknown or retired key,
malformed token or claims, ``iat`` in the future, wrong ``typ``). Issuing raises
``PARSEC_CHANNEL_INVALID`` for a bad channel name and ``PARSEC_INVALID_ARGUMENT`` for any
other bad input, such as an unknown verb in a scope.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from parsec.auth import jws
from parsec.auth.keyring import KeyRing
from parsec.auth.scopes import OPERATOR_SCOPES, Scope, authorizes
from parsec.auth.tokens import TokenError
from parsec.channels.names import require_name
from parsec.errors import ParsecError

__all__ = [
    "ACCESS",
    "MAX_MGMT_TTL",
    "MGMT",
    "MIN_ACCESS_TTL",
    "MIN_MGMT_TTL",
    "REFRESH",
    "TYPES",
    "IssuedToken",
    "ParsecClaims",
    "ParsecTokens",
]

ACCESS: Final = "access"
REFRESH: Final = "refresh"
MGMT: Final = "mgmt"
TYPES: Final = (ACCESS, REFRESH, MGMT)

MIN_ACCESS_TTL: Final = 60
MIN_MGMT_TTL: Final = 3600
MAX_MGMT_TTL: Final = 7 * 86400
"""Also the longest any Parsec token lives: stores that outlive tokens keep entries this long."""

_ID_BYTES: Final = 16
_DENIED: Final = "PARSEC_AUTH_DENIED"
_EXPIRED: Final = "PARSEC_AUTH_EXPIRED"
_INVALID: Final = "PARSEC_INVALID_ARGUMENT"


@dataclass(frozen=True, slots=True)
class ParsecClaims:
    """The claims of a Parsec token; ``jti`` / ``fid`` / ``rl`` are None when absent."""

    sub: str
    typ: str
    chs: tuple[str, ...]
    scopes: tuple[Scope, ...]
    jti: str | None
    fid: str | None
    iat: int
    exp: int
    rl: Mapping[str, object] | None

    def authorizes(self, channel: str, verb: str) -> bool:
        """Whether this token allows ``verb`` on ``channel`` (deny wins; see
        :func:`parsec.auth.scopes.authorizes`). Never raises."""
        return authorizes(self.chs, self.scopes, channel, verb)

    def to_payload(self) -> dict[str, object]:
        """The JWT payload: short keys, empty ``chs`` / ``scopes`` and None fields left out."""
        payload: dict[str, object] = {"sub": self.sub, "typ": self.typ}
        if self.chs:
            payload["chs"] = list(self.chs)
        if self.scopes:
            payload["scopes"] = [scope.to_claim() for scope in self.scopes]
        if self.rl is not None:
            payload["rl"] = dict(self.rl)
        if self.jti is not None:
            payload["jti"] = self.jti
        if self.fid is not None:
            payload["fid"] = self.fid
        payload["iat"] = self.iat
        payload["exp"] = self.exp
        return payload


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed token and the claims it carries."""

    token: str
    claims: ParsecClaims


class ParsecTokens:
    """Issues and verifies Parsec tokens with a keyring; holds no mutable state.

    Raises:
        ParsecError: ``PARSEC_INVALID_ARGUMENT`` when a TTL is not a positive number.
    """

    def __init__(
        self,
        keyring: KeyRing,
        *,
        clock: Callable[[], float] = time.time,
        access_ttl: float = 300,
        max_refresh_ttl: float = 3600,
        mgmt_ttl: float = 86400,
    ) -> None:
        self._keyring = keyring
        self._clock = clock
        self._access_seconds = max(_seconds(access_ttl, "access_ttl"), MIN_ACCESS_TTL)
        self._max_refresh_seconds = _seconds(max_refresh_ttl, "max_refresh_ttl")
        self._mgmt_seconds = _seconds(mgmt_ttl, "mgmt_ttl")
        self.on_issue: Callable[[int], None] | None = None
        """Called with each issued token's ``exp`` (telemetry counts them)."""

    def now(self) -> int:
        """The current time of the injected clock in whole unix seconds (what ``iat`` gets)."""
        return math.floor(self._clock())

    def refresh_horizon(self) -> int:
        """The latest ``exp`` a refresh token issued until now can have, plus a minute of
        margin for rotations racing with this call: how long a revoked family is kept."""
        return self.now() + self._max_refresh_seconds + MIN_ACCESS_TTL

    # -- issuing ------------------------------------------------------------------------------

    def issue_access(
        self,
        sub: str,
        channels: Sequence[str],
        scopes: Sequence[Scope] = (),
        *,
        not_after: int | None = None,
        fid: str | None = None,
    ) -> IssuedToken:
        """An access token for exact ``channels`` plus ``scopes``, in refresh family
        ``fid`` when given (revoking the family revokes it too).

        It lives ``max(access_ttl, 60 s)``, cut short at ``not_after`` when given.

        Raises:
            ParsecError: ``PARSEC_CHANNEL_INVALID`` for a channel that is not a valid name;
                ``PARSEC_INVALID_ARGUMENT`` for an invalid scope; ``PARSEC_AUTH_EXPIRED``
                when ``not_after`` is not in the future (what it derives from has expired).
        """
        chs = tuple(_channel(channel) for channel in channels)
        checked = _validated(scopes)
        iat = self.now()
        exp = iat + self._access_seconds
        if not_after is not None:
            if not_after <= iat:
                raise ParsecError(_EXPIRED, "cannot issue an access token: its source expired")
            exp = min(exp, not_after)
        return self._issue(ParsecClaims(sub, ACCESS, chs, checked, _new_id(), fid, iat, exp, None))

    def issue_refresh(
        self,
        sub: str,
        channel: str,
        scopes: Sequence[Scope] = (),
        *,
        ttl: float,
        fid: str | None = None,
    ) -> IssuedToken:
        """A refresh token for ``channel`` living ``min(ttl, max_refresh_ttl)``, with a new
        ``jti``, in family ``fid`` (a new family when None).

        Raises:
            ParsecError: ``PARSEC_CHANNEL_INVALID`` for a bad channel name;
                ``PARSEC_INVALID_ARGUMENT`` for a bad scope, ``ttl`` or ``fid``.
        """
        checked = _validated(scopes)
        seconds = min(_seconds(ttl, "ttl"), self._max_refresh_seconds)
        if fid is not None and not fid:
            raise ParsecError(_INVALID, "a refresh family id must not be empty")
        iat = self.now()
        claims = ParsecClaims(
            sub=sub,
            typ=REFRESH,
            chs=(_channel(channel),),
            scopes=checked,
            jti=_new_id(),
            fid=fid or _new_id(),
            iat=iat,
            exp=iat + seconds,
            rl=None,
        )
        return self._issue(claims)

    def issue_mgmt(
        self, sub: str, *, ttl: float | None = None, scopes: Sequence[Scope] | None = None
    ) -> IssuedToken:
        """A management token for operator ``sub``.

        ``ttl`` (default ``mgmt_ttl``) is clamped to [1 h, 7 d]; ``scopes`` None gives
        :data:`~parsec.auth.scopes.OPERATOR_SCOPES`.

        Raises:
            ParsecError: ``PARSEC_INVALID_ARGUMENT`` for an empty ``sub``, a ``ttl`` that is
                not a positive number, or an invalid scope.
        """
        if not sub:
            raise ParsecError(_INVALID, "a management token needs a subject")
        seconds = self._mgmt_seconds if ttl is None else _seconds(ttl, "ttl")
        seconds = min(max(seconds, MIN_MGMT_TTL), MAX_MGMT_TTL)
        checked = OPERATOR_SCOPES if scopes is None else _validated(scopes)
        iat = self.now()
        claims = ParsecClaims(sub, MGMT, (), checked, _new_id(), None, iat, iat + seconds, None)
        return self._issue(claims)

    def _issue(self, claims: ParsecClaims) -> IssuedToken:
        if self.on_issue is not None:
            self.on_issue(claims.exp)
        return IssuedToken(jws.sign(claims.to_payload(), self._keyring.active), claims)

    # -- verifying ----------------------------------------------------------------------------

    def verify(self, token: str, typ: str | None = None) -> ParsecClaims:
        """The claims of ``token`` if it is a valid Parsec token (of type ``typ`` if given).

        Checks, in order: signature by a non-retired ring key with that key's alg; claims
        well-formed; ``exp`` not reached; ``iat`` not in the future; ``typ``.

        Raises:
            ParsecError: ``PARSEC_AUTH_EXPIRED`` once ``exp`` is reached;
                ``PARSEC_AUTH_DENIED`` for any other failure.
        """
        try:
            header, payload = jws.verify(token, self._keyring)
        except TokenError as exc:
            raise ParsecError(_DENIED, f"token rejected: {exc}") from None
        if header.get("typ", "JWT") != "JWT":
            raise ParsecError(_DENIED, "token rejected: header typ is not JWT")
        claims = _claims(payload)
        now = self._clock()
        if now >= claims.exp:
            raise ParsecError(_EXPIRED, f"{claims.typ} token expired")
        if claims.iat > now:
            raise ParsecError(_DENIED, "token rejected: issued in the future")
        if typ is not None and claims.typ != typ:
            raise ParsecError(_DENIED, f"token rejected: a {claims.typ} token, not {typ}")
        return claims


# -- helpers ----------------------------------------------------------------------------------


def _seconds(ttl: float, what: str) -> int:
    """``ttl`` rounded up to whole seconds. Raises ParsecError unless positive and finite."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl < math.inf:
        raise ParsecError(_INVALID, f"{what} must be a positive number of seconds")
    return math.ceil(ttl)


def _channel(channel: str) -> str:
    return str(require_name(channel))


def _validated(scopes: Sequence[Scope]) -> tuple[Scope, ...]:
    for scope in scopes:
        scope.validate()
    return tuple(scopes)


def _new_id() -> str:
    return secrets.token_hex(_ID_BYTES)


def _claims(payload: dict[str, Any]) -> ParsecClaims:
    """Decode a verified payload. Raises ParsecError ``PARSEC_AUTH_DENIED`` if malformed."""
    typ = payload.get("typ")
    if typ not in TYPES:
        raise _malformed("typ is not access, refresh or mgmt")
    sub = payload.get("sub")
    if not isinstance(sub, str):
        raise _malformed("sub is not a string")
    rl = payload.get("rl")
    if rl is not None and not isinstance(rl, dict):
        raise _malformed("rl is not an object")
    return ParsecClaims(
        sub=sub,
        typ=typ,
        chs=_strings(payload.get("chs", [])),
        scopes=_scopes(payload.get("scopes", [])),
        jti=_optional_id(payload, "jti"),
        fid=_optional_id(payload, "fid"),
        iat=_timestamp(payload, "iat"),
        exp=_timestamp(payload, "exp"),
        rl=rl,
    )


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _malformed("chs is not a list of strings")
    return tuple(value)


def _scopes(value: object) -> tuple[Scope, ...]:
    if not isinstance(value, list):
        raise _malformed("scopes is not a list")
    try:
        return tuple(Scope.from_claim(item) for item in value)
    except ParsecError as exc:
        raise _malformed(exc.message) from None


def _optional_id(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _malformed(f"{name} is not a non-empty string")
    return value


def _timestamp(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _malformed(f"{name} is not an integer")
    return value


def _malformed(reason: str) -> ParsecError:
    return ParsecError(_DENIED, f"token rejected: malformed claims: {reason}")
