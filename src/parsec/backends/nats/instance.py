"""The instance account: the NATS account of the operator's own Parsec — the instance
that serves the accounts, not an org's — when its broker is the operator-mode NATS of
``[nats]`` (``broker.url`` is ``[nats] url``: ``parsec.backends.factory.operator_nats``).

In operator mode every connection authenticates as a user of some account, the
instance's own broker connection too. Its account is derived from the system
account's seed (:meth:`NKey.derived`), so every node of a cluster derives the same one
and nothing has to be stored or shared; it is signed by the operator and pushed to the
server's resolver when a node starts (:func:`provision`), before the node's broker
connects. Each node connects as a server user of it that it minted itself
(:func:`user`); a server that forgets the account (its resolver directory lost) is
given it again when it refuses that user. The system account seed survives an operator key rotation
(``operator.bootstrap(…, system_account_seed=…)``), so the instance keeps its account:
a node restarted with the new ``[nats]`` values re-signs and pushes it.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Final

from parsec.backends.nats import claims
from parsec.backends.nats.accounts import SYSTEM_REFUSED, mint_user, push_account, system_user
from parsec.backends.nats.connection import (
    CredentialsRefused,
    NatsConnection,
    NatsUser,
    broker_error,
    probe,
)
from parsec.backends.nats.keys import KeyRole, NKey

if TYPE_CHECKING:
    from parsec.options import NatsAccountsOptions

__all__ = ["NAME", "account_key", "provision", "user"]

NAME: Final = "parsec instance"
"""The instance account's name in its JWT (and the server's monitoring)."""


def account_key(options: NatsAccountsOptions) -> NKey:
    """The instance account's key: the same on every node with these ``[nats]``."""
    system = NKey.from_seed(options.system_account_seed, KeyRole.ACCOUNT)
    return NKey.derived(system, NAME, KeyRole.ACCOUNT)


def user(options: NatsAccountsOptions, name: str) -> NatsUser:
    """A fresh server user of the instance account (any subject of it), named ``name``
    in the server's monitoring; refused, it has the account provisioned again."""
    account = account_key(options)
    return mint_user(
        name,
        account.public_key,
        account,
        issued_at=int(time.time()),
        reinstate=functools.partial(provision, options),
    )


async def provision(options: NatsAccountsOptions, *, within: float = 10.0) -> None:
    """Sign the instance account with the operator key and push it to the resolver of
    the NATS at ``options.url``, over a connection of its own, closed after.

    Raises ``PARSEC_BROKER_NOT_READY`` when NATS does not answer within ``within``
    seconds, ``PARSEC_BROKER_INTERNAL`` when it refuses the system account's
    credentials or the account JWT."""
    assert options.url is not None
    operator = NKey.from_seed(options.operator_seed, KeyRole.OPERATOR)
    account = account_key(options)
    jwt = claims.encode(
        claims.account_claims(account.public_key, name=NAME),
        operator,
        issued_at=int(time.time()),
    )
    system = system_user(options, issued_at=int(time.time()))
    try:
        await probe(options.url, system, within)
    except CredentialsRefused:
        raise broker_error("PARSEC_BROKER_INTERNAL", SYSTEM_REFUSED) from None
    connection = NatsConnection(options.url, name="parsec instance (system)", user=system)
    connection.open()
    try:
        await push_account(await connection.wait_accepted(within), jwt, within)
    finally:
        await connection.aclose()
