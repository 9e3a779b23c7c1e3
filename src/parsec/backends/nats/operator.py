"""A NATS operator and its system account, made from scratch.

What ``nsc`` (or the seed's ``ppz-natsbootstrap``) makes once per deployment, for
operators who do not use ``nsc`` and for the tests: :func:`bootstrap` returns the four
values of the ``[nats]`` section (docs/nats-accounts.md) — the operator's seed and JWT,
the system account's seed and JWT — and :func:`server_config` the part of
``nats-server.conf`` that trusts them. :func:`problem` checks that the four values of
a ``[nats]`` section fit together (``parsec.config`` calls it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parsec.backends.nats import claims
from parsec.backends.nats.keys import InvalidKey, KeyRole, NKey

if TYPE_CHECKING:
    from parsec.options import NatsAccountsOptions

__all__ = ["OperatorSetup", "bootstrap", "problem", "server_config"]


@dataclass(frozen=True, slots=True)
class OperatorSetup:
    """An operator and its system account. The seeds are secrets (not in repr)."""

    operator_seed: str = field(repr=False)
    operator_jwt: str
    system_account_seed: str = field(repr=False)
    system_account_jwt: str

    @property
    def operator_public_key(self) -> str:
        return claims.subject(self.operator_jwt)

    @property
    def system_account_public_key(self) -> str:
        return claims.subject(self.system_account_jwt)


def bootstrap(
    name: str = "parsec",
    *,
    issued_at: int | None = None,
    system_account_seed: str | None = None,
) -> OperatorSetup:
    """A fresh operator named ``name`` with a system account ``SYS`` it signed.

    Give ``system_account_seed`` to keep an existing system account under the new
    operator (a rotation of the operator key)."""
    now = int(time.time()) if issued_at is None else issued_at
    operator = NKey.create(KeyRole.OPERATOR)
    system = (
        NKey.create(KeyRole.ACCOUNT)
        if system_account_seed is None
        else NKey.from_seed(system_account_seed, KeyRole.ACCOUNT)
    )
    operator_jwt = claims.encode(
        claims.operator_claims(operator.public_key, name=name, system_account=system.public_key),
        operator,
        issued_at=now,
    )
    system_jwt = claims.encode(
        claims.account_claims(system.public_key, name="SYS"), operator, issued_at=now
    )
    return OperatorSetup(operator.seed, operator_jwt, system.seed, system_jwt)


def server_config(setup: OperatorSetup, resolver_dir: Path) -> str:
    """The ``nats-server.conf`` lines that trust ``setup``'s operator and keep account
    JWTs pushed at run time (``$SYS.REQ.CLAIMS.UPDATE``) in ``resolver_dir``."""
    system = setup.system_account_public_key
    return (
        f"operator: {setup.operator_jwt}\n"
        f"system_account: {system}\n"
        "resolver: {\n"
        "  type: full\n"
        f"  dir: {json.dumps(str(resolver_dir))}\n"
        "  allow_delete: false\n"
        "}\n"
        f"resolver_preload: {{\n  {system}: {setup.system_account_jwt}\n}}\n"
    )


def problem(options: NatsAccountsOptions) -> tuple[str, str] | None:
    """The first thing wrong with ``options`` (``[nats]``) as ``(field, message)``,
    None when the four values fit together: two seeds of the right roles, an operator
    JWT whose key (or one of its signing keys) is the operator seed's, and a system
    account JWT issued by that operator for the system account seed's key. Messages
    never show a seed."""
    try:
        operator = NKey.from_seed(options.operator_seed, KeyRole.OPERATOR)
    except InvalidKey as exc:
        return "operator_seed", str(exc)
    try:
        system = NKey.from_seed(options.system_account_seed, KeyRole.ACCOUNT)
    except InvalidKey as exc:
        return "system_account_seed", str(exc)
    try:
        operator_claims = _claims_of(options.operator_jwt, "operator")
    except ValueError as exc:
        return "operator_jwt", str(exc)
    operator_keys = {operator_claims.get("sub"), *operator_claims["nats"].get("signing_keys", ())}
    if operator.public_key not in operator_keys:
        return "operator_seed", (
            f"is the seed of {operator.public_key}, which is neither operator_jwt's operator "
            f"({operator_claims.get('sub')}) nor one of its signing keys"
        )
    try:
        system_claims = _claims_of(options.system_account_jwt, "account")
    except ValueError as exc:
        return "system_account_jwt", str(exc)
    if system_claims.get("iss") not in operator_keys:
        return "system_account_jwt", "is not signed by operator_jwt's operator"
    if system_claims.get("sub") != system.public_key:
        return "system_account_seed", (
            f"is the seed of {system.public_key}, not of the account of system_account_jwt "
            f"({system_claims.get('sub')})"
        )
    declared = operator_claims["nats"].get("system_account")
    if declared and declared != system.public_key:
        return "system_account_jwt", (
            f"is the account {system.public_key}, but operator_jwt names {declared} as its "
            "system account"
        )
    return None


def _claims_of(token: str, kind: str) -> dict[str, Any]:
    try:
        found = claims.decode(token)
    except claims.InvalidJWT as exc:
        raise ValueError(f"not a NATS JWT: {exc}") from None
    nats = found.get("nats")
    if not isinstance(nats, dict) or nats.get("type") != kind:
        raise ValueError(f"not an {kind} JWT (its nats.type is not {kind!r})")
    return found
