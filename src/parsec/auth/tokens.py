"""Connection and subscription JWTs with Centrifugo's claims (centrifuge-protocol.md §3).

:class:`TokenIssuer` signs with the keyring's active key, whatever its ``alg``; the header
is ``{"alg", "kid", "typ": "JWT"}``. :class:`TokenVerifier` accepts (see ``parsec.auth.jws``):

- a token with a ``kid`` header: signed by that key of the ring, with that key's ``alg``
  (HS256, RS256, ES256, ES384 or EdDSA). An unknown or retired ``kid`` is an invalid token;
  active and verify-only keys verify.
- a token without ``kid``: signed with the shared ``hmac_secret`` (HS256, HS384 or HS512), so
  any backend that signs Centrifugo tokens with a shared secret works unchanged.
- with ``signing_keys`` (an identity provider's JWKS, ``[auth] jwks_url``): a token whose
  ``kid`` names no key of the ring, signed by that key of the IdP with the key's ``alg``
  (:mod:`parsec.auth.idp_tokens`). Its user is the ``user_id_claim`` claim (``sub`` by
  default), which must then be a non-empty string. A ``kid`` the IdP's cached keys do not
  hold raises :class:`UnknownSigningKey`; :meth:`TokenVerifier.refresh_keys` fetches them
  again (rate-limited), and the engine then asks once more. The ring's keys win a ``kid``
  both hold.

Checks run in Centrifugo's order: format and signature, then the claims' shape (``aud`` and
``iss`` when configured, ``channel`` absent from connection tokens), then ``exp`` / ``nbf``
against the injected clock. The first two raise :class:`InvalidToken` (the engine closes with
3500); the last raises :class:`TokenExpired` (the engine replies 109). Every error carries a
stable ``code`` for logs, and no message ever contains a secret.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jwt
import msgspec

from parsec.auth import idp_tokens, jws
from parsec.auth.idp_tokens import SigningKeys
from parsec.auth.keyring import KeyRing
from parsec.engine.tokens import (
    MALFORMED,
    ConnectionClaims,
    InvalidToken,
    ServerSubscription,
    SubscriptionClaims,
    SubscriptionOverride,
    TokenError,
    TokenExpired,
    UnknownSigningKey,
)

__all__ = [
    "ConnectionClaims",
    "InvalidToken",
    "MintedToken",
    "ServerSubscription",
    "SubscriptionClaims",
    "SubscriptionOverride",
    "TokenError",
    "TokenExpired",
    "TokenIssuer",
    "TokenVerifier",
    "UnknownSigningKey",
]

_HMAC: Final = jwt.PyJWS().get_algorithm_by_name("HS256")
_OVERRIDE_FIELDS: Final = (
    "presence",
    "join_leave",
    "force_push_join_leave",
    "force_recovery",
    "force_positioning",
)
_ISSUER_CLAIMS: Final = frozenset(
    {"sub", "exp", "iat", "jti", "channels", "info", "expire_at", "channel"}
)


# -- error codes ----------------------------------------------------------------------------


_MALFORMED: Final = MALFORMED
_DENIED: Final = "PARSEC_AUTH_DENIED"
_WRONG_KIND: Final = "PARSEC_AUTH_TYPE_MISMATCH"
_NOT_YET_VALID: Final = "PARSEC_AUTH_NOT_YET_VALID"


# -- verification -----------------------------------------------------------------------------


class TokenVerifier:
    """Verifies connection and subscription tokens; safe to share, it holds no mutable
    state of its own (``signing_keys`` caches the IdP's keys).

    ``clock`` gives the time (unix seconds) that ``exp`` and ``nbf`` are checked against,
    each with ``leeway`` seconds of tolerance.

    Raises:
        ValueError: ``hmac_secret`` is empty or is key material that is not an HMAC secret
            (a PEM, SSH, DER key or a JWK).
    """

    def __init__(
        self,
        keyring: KeyRing | None,
        *,
        hmac_secret: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway: float = 0.0,
        clock: Callable[[], float] = time.time,
        signing_keys: SigningKeys | None = None,
        user_id_claim: str = "sub",
    ) -> None:
        if not user_id_claim:
            raise ValueError("user_id_claim must not be empty")
        self._keyring = keyring
        self._idp = signing_keys
        self._user_claim = user_id_claim
        self._shared_secret = None if hmac_secret is None else _shared_secret(hmac_secret)
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway
        self._clock = clock

    def verify_connection(self, token: str) -> ConnectionClaims:
        """Verify a connection token and return its claims.

        Raises:
            InvalidToken: see the class; also when the token carries a ``channel`` claim
                (a subscription token presented as a connection token).
            TokenExpired: ``exp`` has passed or ``nbf`` is still ahead.
        """
        payload, user = self._verified_payload(token)
        if "channel" in payload:
            raise InvalidToken("a connection token must not have a channel claim", code=_WRONG_KIND)
        _refuse_parsec_token(payload)
        claims = ConnectionClaims(
            user=user,
            exp=_numeric_date(payload, "exp"),
            expire_at=_numeric_date(payload, "expire_at"),
            info=_raw_json(payload, "info"),
            meta=payload.get("meta"),
            subscriptions=_server_subscriptions(payload),
            jti=_optional_str(payload, "jti"),
            iat=_numeric_date(payload, "iat"),
        )
        self._check_time(payload)
        return claims

    def verify_subscription(self, token: str) -> SubscriptionClaims:
        """Verify a subscription token and return its claims.

        Raises:
            InvalidToken: see the class; also when ``channel`` is missing or empty.
            TokenExpired: ``exp`` has passed or ``nbf`` is still ahead.
        """
        payload, user = self._verified_payload(token)
        _refuse_parsec_token(payload)
        channel = _optional_str(payload, "channel")
        if not channel:
            raise InvalidToken(
                "a subscription token needs a non-empty channel claim", code=_WRONG_KIND
            )
        claims = SubscriptionClaims(
            user=user,
            channel=channel,
            exp=_numeric_date(payload, "exp"),
            expire_at=_numeric_date(payload, "expire_at"),
            info=_raw_json(payload, "info"),
            override=_override(payload.get("override"), "override"),
            client=_optional_str(payload, "client"),
            jti=_optional_str(payload, "jti"),
            iat=_numeric_date(payload, "iat"),
        )
        self._check_time(payload)
        return claims

    async def refresh_keys(self) -> bool:
        """Fetch the IdP's keys again (:class:`~parsec.engine.tokens.KeyRefresher`):
        rate-limited by the key source; False without ``signing_keys``."""
        return False if self._idp is None else await self._idp.refresh()

    async def verify_idp_token(self, token: str) -> dict[str, Any]:
        """The claims of an access token the identity provider signed (``signing_keys``),
        with its ``aud`` / ``iss`` and time checked, for a bearer presented to an HTTP
        API (the token broker). A ``kid`` the provider's keys do not hold yet makes one
        refresh of them (rate-limited) before it is refused.

        Raises:
            InvalidToken: no identity provider is configured, the token is not signed by
                it (a local keyring token, a shared-secret token), or it fails a check.
            TokenExpired: ``exp`` has passed or ``nbf`` is still ahead.
        """
        idp = self._idp
        kid = None if idp is None else self._idp_kid(token)
        if idp is None or kid is None:
            raise InvalidToken("not a token of the identity provider", code=_DENIED)
        try:
            payload = idp_tokens.verify(token, kid, idp)
        except UnknownSigningKey:
            await idp.refresh()
            payload = idp_tokens.verify(token, kid, idp)
        self._check_audience(payload)
        self._check_issuer(payload)
        self._check_time(payload)
        return payload

    def _verified_payload(self, token: str) -> tuple[dict[str, Any], str]:
        """The payload and user of a well-formed, correctly signed token whose aud/iss
        match."""
        idp = self._idp
        kid = None if idp is None else self._idp_kid(token)
        if idp is not None and kid is not None:
            payload = idp_tokens.verify(token, kid, idp)
        else:
            _, payload = jws.verify(token, self._keyring, shared_secret=self._shared_secret)
        self._check_audience(payload)
        self._check_issuer(payload)
        if kid is None:
            return payload, _user(payload)
        user = _optional_str(payload, self._user_claim)
        if not user:
            why = f"an identity provider's token needs a {self._user_claim} claim"
            raise InvalidToken(why, code=_MALFORMED)
        return payload, user

    def _idp_kid(self, token: str) -> str | None:
        """The ``kid`` of ``token`` when it is one the ring does not hold (so the IdP's)."""
        kid = jws.unverified_header(token).get("kid")
        if not isinstance(kid, str) or (
            self._keyring is not None and self._keyring.get(kid) is not None
        ):
            return None
        return kid

    def _check_audience(self, payload: dict[str, Any]) -> None:
        if self._audience is None:
            return
        aud = payload.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self._audience not in audiences:
            raise InvalidToken("token aud does not match the configured audience", code=_DENIED)

    def _check_issuer(self, payload: dict[str, Any]) -> None:
        if self._issuer is not None and payload.get("iss") != self._issuer:
            raise InvalidToken("token iss does not match the configured issuer", code=_DENIED)

    def _check_time(self, payload: dict[str, Any]) -> None:
        now = self._clock()
        exp = _numeric_date(payload, "exp")
        if exp is not None and now >= exp + self._leeway:
            raise TokenExpired("token has expired")
        nbf = _numeric_date(payload, "nbf")
        if nbf is not None and now + self._leeway < nbf:
            raise TokenExpired("token is not valid yet (nbf)", code=_NOT_YET_VALID)


def _shared_secret(hmac_secret: str) -> bytes:
    if not hmac_secret:
        raise ValueError("hmac_secret must not be empty")
    try:
        prepared: bytes = _HMAC.prepare_key(hmac_secret)
    except jwt.InvalidKeyError:
        raise ValueError(
            "hmac_secret looks like an asymmetric key or a JWK, not an HMAC secret"
        ) from None
    return prepared


_PARSEC_TYPES: Final = frozenset({"access", "refresh", "mgmt"})


def _refuse_parsec_token(payload: Mapping[str, Any]) -> None:
    """Parsec's access / refresh / mgmt tokens are signed by the same ring but are not
    Centrifugo tokens: one presented as a connection or subscription token is refused,
    so a management token can never open a connection as its subject. (Other issuers'
    ``typ`` values, such as Keycloak's "Bearer", are not Parsec's and pass.)"""
    if payload.get("typ") in _PARSEC_TYPES:
        raise InvalidToken(
            "a Parsec access/refresh/mgmt token is not a Centrifugo token", code=_WRONG_KIND
        )


def _user(payload: Mapping[str, Any]) -> str:
    """``sub``; a missing ``sub`` reads as "" (anonymous), as in Centrifugo."""
    return _optional_str(payload, "sub") or ""


def _optional_str(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidToken(f"claim {name} must be a string", code=_MALFORMED)
    return value


def _numeric_date(payload: Mapping[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken(f"claim {name} must be a number of seconds", code=_MALFORMED)
    return int(value)


def _raw_json(obj: Mapping[str, Any], name: str) -> bytes | None:
    """``name`` as compact JSON bytes; ``b64<name>`` (base64 of JSON) takes precedence."""
    encoded = _optional_str(obj, f"b64{name}")
    if encoded:
        try:
            value = msgspec.json.decode(base64.b64decode(encoded, validate=True))
        except (binascii.Error, msgspec.DecodeError, RecursionError):
            raise InvalidToken(f"claim b64{name} is not base64 of JSON", code=_MALFORMED) from None
        return msgspec.json.encode(value)
    value = obj.get(name)
    return None if value is None else msgspec.json.encode(value)


def _override(value: object, where: str) -> SubscriptionOverride | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidToken(f"{where} must be an object", code=_MALFORMED)
    flags = [_bool_value(value.get(name), f"{where}.{name}") for name in _OVERRIDE_FIELDS]
    return SubscriptionOverride(*flags)


def _bool_value(value: object, where: str) -> bool | None:
    """Centrifugo's BoolValue ``{"value": bool}``; a missing ``value`` is false."""
    if value is None:
        return None
    flag = value.get("value", False) if isinstance(value, dict) else None
    if not isinstance(flag, bool):
        raise InvalidToken(f'{where} must be {{"value": true|false}}', code=_MALFORMED)
    return flag


def _server_subscriptions(payload: Mapping[str, Any]) -> tuple[ServerSubscription, ...]:
    """From ``subs`` when it is non-empty, else from ``channels``; order is kept."""
    subs = payload.get("subs")
    if subs is not None and not isinstance(subs, dict):
        raise InvalidToken("claim subs must be an object", code=_MALFORMED)
    if subs:
        return tuple(_server_subscription(channel, opts) for channel, opts in subs.items())
    channels = payload.get("channels")
    if channels is None:
        return ()
    if not isinstance(channels, list) or not all(
        isinstance(channel, str) and channel for channel in channels
    ):
        raise InvalidToken("claim channels must be a list of channel names", code=_MALFORMED)
    return tuple(
        ServerSubscription(channel, None, None, None) for channel in dict.fromkeys(channels)
    )


def _server_subscription(channel: str, opts: object) -> ServerSubscription:
    where = f"subs[{channel!r}]"
    if not channel:
        raise InvalidToken("claim subs has an empty channel name", code=_MALFORMED)
    if opts is None:
        return ServerSubscription(channel, None, None, None)
    if not isinstance(opts, dict):
        raise InvalidToken(f"{where} must be an object", code=_MALFORMED)
    return ServerSubscription(
        channel=channel,
        info=_raw_json(opts, "info"),
        data=_raw_json(opts, "data"),
        override=_override(opts.get("override"), f"{where}.override"),
    )


# -- issuing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MintedToken:
    """A signed token and the claims it carries."""

    token: str
    claims: Mapping[str, object]


class TokenIssuer:
    """Signs connection and subscription tokens with the keyring's active key.

    Every token has ``sub`` and ``iat``; ``exp`` is ``now + ttl`` (none when ``ttl`` is
    None). ``audience`` and ``issuer``, when given, become every token's ``aud`` and
    ``iss``: give the ``token_audience`` and ``token_issuer`` the verifying server is
    configured with. A token minted here passes :class:`TokenVerifier`'s shape checks.
    """

    def __init__(
        self,
        keyring: KeyRing,
        clock: Callable[[], float] = time.time,
        *,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        self._keyring = keyring
        self._clock = clock
        self._fixed: dict[str, object] = {}
        self.on_issue: Callable[[object], None] | None = None
        """Called with each signed token's ``exp`` claim, None when it has none
        (telemetry counts them)."""
        _put_optional(self._fixed, aud=audience, iss=issuer)

    def connection_token(
        self,
        user: str,
        *,
        ttl: float | None = 3600,
        channels: Sequence[str] = (),
        info: object | None = None,
        expire_at: int | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> str:
        """A connection token for ``user`` ("" for anonymous) with a random ``jti``.

        ``channels`` become server-side subscriptions; ``extra`` adds claims such as
        ``meta``, ``subs`` or ``nbf``, and its ``aud`` or ``iss`` replace the issuer's.

        Raises:
            ValueError: ``extra`` repeats a claim set by a parameter or has ``channel``,
                ``ttl`` is not finite, or a value is not JSON-serialisable.
        """
        return self.mint_connection(
            user, ttl=ttl, channels=channels, info=info, expire_at=expire_at, extra=extra
        ).token

    def mint_connection(
        self,
        user: str,
        *,
        ttl: float | None = 3600,
        channels: Sequence[str] = (),
        info: object | None = None,
        expire_at: int | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> MintedToken:
        """:meth:`connection_token`, returning the claims signed with the token (its
        ``jti``, ``iat``, ``exp``). Raises as :meth:`connection_token`."""
        clashes = sorted(_ISSUER_CLAIMS.intersection(extra or {}))
        if clashes:
            raise ValueError(f"extra claims {clashes} are set by parameters or not allowed")
        claims: dict[str, object] = {**self._base(user, ttl), "jti": secrets.token_hex(16)}
        if channels:
            claims["channels"] = list(channels)
        _put_optional(claims, info=info, expire_at=expire_at)
        signed = {**claims, **(extra or {})}
        return MintedToken(self._sign(signed), signed)

    def subscription_token(
        self,
        user: str,
        channel: str,
        *,
        ttl: float | None = 3600,
        info: object | None = None,
        expire_at: int | None = None,
    ) -> str:
        """A subscription token binding ``user`` to ``channel``, with a random ``jti``.

        Raises:
            ValueError: ``channel`` is empty, ``ttl`` is not finite, or ``info`` is not
                JSON-serialisable.
        """
        if not channel:
            raise ValueError("a subscription token needs a non-empty channel")
        claims: dict[str, object] = {**self._base(user, ttl), "channel": channel}
        claims["jti"] = secrets.token_hex(16)
        _put_optional(claims, info=info, expire_at=expire_at)
        return self._sign(claims)

    def _base(self, user: str, ttl: float | None) -> dict[str, object]:
        now = self._clock()
        claims: dict[str, object] = {"sub": user, "iat": int(now), **self._fixed}
        if ttl is not None:
            if not math.isfinite(ttl):
                raise ValueError("ttl must be a finite number of seconds or None")
            claims["exp"] = int(now + ttl)
        return claims

    def _sign(self, claims: Mapping[str, object]) -> str:
        if self.on_issue is not None:
            self.on_issue(claims.get("exp"))
        return jws.sign(claims, self._keyring.active)


def _put_optional(claims: dict[str, object], **values: object) -> None:
    claims.update({name: value for name, value in values.items() if value is not None})
