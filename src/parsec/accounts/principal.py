"""Who is calling the accounts API: a :class:`Principal`, and how a bearer is told
apart before any database lookup.

Three kinds of credential reach ``/api/v1``:

- the session cookie of a browser login (``parsec_session``) → a user;
- a user access token from the device flow (``Authorization: Bearer psu_…``) → a user;
- an API key (``Authorization: Bearer psk_…``) → the key itself, a service account of
  its org with the key's scopes (never its creator).

:func:`bearer_kind` looks only at the prefix, so a token that is neither costs no
database round trip and an API key is never checked as a signed token or the other way
round.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "API_KEY_PREFIX",
    "USER_TOKEN_PREFIX",
    "BearerKind",
    "Principal",
    "bearer_kind",
]

USER_TOKEN_PREFIX: Final = "psu_"
"""A user access token (device flow): signed, stateless, expires."""
API_KEY_PREFIX: Final = "psk_"
"""An API key: ``psk_<lookup prefix>_<secret>``, stored hashed."""


class BearerKind(enum.Enum):
    USER_TOKEN = "user_token"
    API_KEY = "api_key"
    UNKNOWN = "unknown"


def bearer_kind(token: str) -> BearerKind:
    """What ``token`` is, from its prefix alone."""
    if token.startswith(USER_TOKEN_PREFIX):
        return BearerKind.USER_TOKEN
    if token.startswith(API_KEY_PREFIX):
        return BearerKind.API_KEY
    return BearerKind.UNKNOWN


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    ``kind`` ``"user"``: ``id`` is the user's id, ``org_id`` and ``scopes`` are None
    (a user acts in any org they belong to, with their role there).
    ``kind`` ``"api_key"``: ``id`` is the key's id, ``org_id`` its org (the only org it
    can act in), ``scopes`` what it may do there; ``user_id`` is None: a key is not its
    creator.
    """

    kind: Literal["user", "api_key"]
    id: uuid.UUID
    org_id: uuid.UUID | None = None
    scopes: frozenset[str] | None = None

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.id if self.kind == "user" else None

    @property
    def actor_kind(self) -> str:
        """``actor_kind`` of the audit events this principal causes."""
        return self.kind

    @property
    def actor_id(self) -> str:
        return str(self.id)

    @classmethod
    def user(cls, user_id: uuid.UUID) -> Principal:
        return cls("user", user_id)
