"""Where each org's NATS account is kept: the ``nats_*`` columns of its ``orgs`` row.

:class:`SqlAccountStore` is the :class:`~parsec.backends.nats.accounts.AccountStore` of
a Parsec with ``[accounts]``: ``load`` reads ``nats_account_public_key``,
``nats_account_jwt`` and ``nats_signing_seed``, ``save`` writes the three in one
transaction with an audit event (``org.nats_account_provisioned`` the first time,
``org.nats_account_resigned`` after, actor ``system``, the account's public key as
target; never the seed). An org that does not exist raises
:class:`UnknownOrg` on both.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from parsec.backends.nats.accounts import StoredAccount
from parsec.db.schema import AuditEvent, Org

if TYPE_CHECKING:
    from parsec.db import Database

__all__ = ["SqlAccountStore", "UnknownOrg"]


class UnknownOrg(LookupError):
    """No org has that id."""


class SqlAccountStore:
    """The orgs' NATS accounts on Parsec's database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def load(self, org_id: uuid.UUID) -> StoredAccount | None:
        async with self._database.session() as session:
            org = await session.get(Org, org_id)
            if org is None:
                raise UnknownOrg(f"no org {org_id}")
            if not (org.nats_account_public_key and org.nats_account_jwt):
                return None
            if not org.nats_signing_seed:
                return None
            return StoredAccount(
                org.nats_account_public_key, org.nats_account_jwt, org.nats_signing_seed
            )

    async def save(self, org_id: uuid.UUID, account: StoredAccount) -> None:
        async with self._database.transaction() as session:
            org = await session.get(Org, org_id)
            if org is None:
                raise UnknownOrg(f"no org {org_id}")
            replaced = org.nats_account_public_key is not None
            org.nats_account_public_key = account.public_key
            org.nats_account_jwt = account.jwt
            org.nats_signing_seed = account.signing_seed
            session.add(
                AuditEvent(
                    org_id=org_id,
                    actor_kind="system",
                    actor_id=None,
                    action="org.nats_account_resigned"
                    if replaced
                    else "org.nats_account_provisioned",
                    target=account.public_key,
                )
            )
