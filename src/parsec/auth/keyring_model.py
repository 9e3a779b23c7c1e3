"""What a keyring is made of: :class:`Key`, its roles, the :class:`State` snapshot of a
ring and :class:`KeyRingError`, shared by the ring (``parsec.auth.keyring``), its file
(``parsec.auth.keyring_file``) and nothing else.

Guarantees: a :class:`Key` and a :class:`State` are immutable (a change builds a new
one), and neither a key's ``repr`` nor a :class:`KeyRingError` message holds key material.
Import these names from ``parsec.auth.keyring``, which re-exports them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from parsec.auth.key_material import load_private_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = ["ACTIVE", "RETIRED", "ROLES", "VERIFY_ONLY", "Key", "KeyRingError", "State"]

ACTIVE: Final = "active"
VERIFY_ONLY: Final = "verify-only"
RETIRED: Final = "retired"
ROLES: Final = frozenset({ACTIVE, VERIFY_ONLY, RETIRED})


class KeyRingError(Exception):
    """A keyring file that cannot be used, an unknown ``kid`` or an illegal role change.

    The message names the file or key and says what is wrong; it never contains key material.
    ``code`` is the ``PARSEC_*`` code of the failure: ``PARSEC_KEY_NOT_FOUND`` (unknown
    ``kid``), ``PARSEC_KEY_ACTIVE`` (retiring the active key), ``PARSEC_INVALID_ARGUMENT``
    (an unsupported ``alg``, promoting a retired key, an import that is refused) or
    ``PARSEC_INTERNAL`` (the keyring file cannot be read, written or used).
    """

    def __init__(self, message: str, *, code: str = "PARSEC_INTERNAL") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Key:
    """One signing key; its material is kept out of ``repr`` so a logged key leaks nothing.

    An HMAC key (``HS256``) has its ``secret`` and an empty ``private_pem``; an asymmetric
    key has its PKCS#8 ``private_pem`` and an empty ``secret``.
    """

    id: str
    alg: str
    secret: bytes = dataclasses.field(repr=False)
    role: str
    created_at: datetime
    retired_at: datetime | None
    private_pem: bytes = dataclasses.field(default=b"", repr=False)

    @property
    def asymmetric(self) -> bool:
        """Whether the key is a private key (RS256, ES256, ES384, EdDSA), not an HMAC secret."""
        return bool(self.private_pem)

    def private_key(self) -> PrivateKeyTypes:
        """The parsed private key of an asymmetric key; parsed once per process and cached.

        Raises:
            ValueError: the key is an HMAC key.
        """
        if not self.private_pem:
            raise ValueError(f"key {self.id} is {self.alg}: it has no private key")
        return load_private_key(self.private_pem)


@dataclass(frozen=True, slots=True)
class State:
    """An immutable snapshot of a ring; every change builds a new one."""

    active_id: str
    keys: dict[str, Key]
