"""Per-org NATS accounts: ``AccountPool`` gives every org an account of its own on a
NATS server in operator mode, so org traffic cannot cross at the broker.

::

    async with AccountPool(options.nats, store) as pool:
        account = await pool.get(org_id)          # provisions on first use
        account.connection                        # NatsConnection of the org's server user
        creds = await pool.user_credentials(org_id, "alice", allow_sub=["chat.>"], ttl=3600)
        creds.creds                               # the .creds text native clients read
        await pool.forget(org_id)                 # org deleted: close and evict

``get`` (once per org and pool; concurrent calls for one org coalesce into one):

1. loads the org's account from the :class:`AccountStore` (public key, account JWT,
   signing seed). None yet: a fresh account key and signing key are made, the account
   JWT (signed by the operator, listing the signing key) is saved, then pushed to the
   server's resolver (``$SYS.REQ.CLAIMS.UPDATE`` over a system-account connection).
   Only the account's *public* key is kept: the operator signs its JWT and its signing
   key signs its users, so the account's own seed is never needed and never stored.
2. A stored JWT not signed by the current operator key (the key rotated), or not
   verifiable, is re-signed with the current key, saved and pushed.
3. A server-user (no permission limits inside the account) is minted with the signing
   key and an in-process :class:`NatsConnection` opened for it.
4. Self-healing: when the server refuses that user ("Authorization Violation": it does
   not know the account, or trusts another operator), the account JWT is re-signed,
   saved and pushed, and the connection tried again, once; a second refusal raises
   ``PARSEC_BROKER_INTERNAL`` naming the org. A cached account whose connection is
   refused later is healed the same way at the next ``get``.

Errors: ``PARSEC_BROKER_NOT_READY`` when NATS does not answer in time (nothing is
cached: the next ``get`` tries again), ``PARSEC_BROKER_INTERNAL`` when NATS refuses the
system account's credentials or an account JWT. Seeds are never logged nor put in a
message; :class:`StoredAccount` and :class:`UserCredentials` keep them out of repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol, Self

from nats.aio.client import Client

from parsec.backends.nats import claims
from parsec.backends.nats.connection import (
    CredentialsRefused,
    NatsConnection,
    NatsUser,
    broker_error,
    probe,
    translated,
)
from parsec.backends.nats.keys import KeyRole, NKey

if TYPE_CHECKING:
    from parsec.backends.factory import Backends
    from parsec.options import NatsAccountsOptions, Options

__all__ = [
    "CLAIMS_UPDATE",
    "SYSTEM_REFUSED",
    "AccountBackends",
    "AccountPool",
    "AccountStore",
    "MemoryAccountStore",
    "OrgAccount",
    "StoredAccount",
    "UserCredentials",
    "mint_user",
    "push_account",
    "system_user",
]

log = logging.getLogger("parsec.nats.accounts")

CLAIMS_UPDATE: Final = "$SYS.REQ.CLAIMS.UPDATE"
"""Where a system-account user sends an account JWT for the server's resolver."""
SYSTEM_REFUSED: Final = (
    "nats refuses the system account's credentials: [nats] system_account_seed and "
    "system_account_jwt must be the system account of the operator the server trusts"
)


async def push_account(client: Client, account_jwt: str, within: float) -> None:
    """Send ``account_jwt`` to the server's resolver over ``client``, a connection of a
    system-account user; ``PARSEC_BROKER_INTERNAL`` when the server refuses it."""
    with translated("pushing an account JWT"):
        reply = await client.request(CLAIMS_UPDATE, account_jwt.encode(), timeout=within)
    try:
        answer = json.loads(reply.data)
    except ValueError:
        answer = {"error": {"description": "not JSON"}}
    error = answer.get("error") if isinstance(answer, dict) else {"description": "?"}
    if error:
        raise broker_error(
            "PARSEC_BROKER_INTERNAL",
            f"nats refused an account JWT: {error.get('description', error)}",
        )


def system_user(options: NatsAccountsOptions, *, issued_at: int) -> NatsUser:
    """A user of the system account (signed by the system account's own key): what
    may publish on ``$SYS.REQ.CLAIMS.UPDATE``."""
    system = NKey.from_seed(options.system_account_seed, KeyRole.ACCOUNT)
    return mint_user("parsec accounts", system.public_key, system, issued_at=issued_at)


def mint_user(
    name: str,
    account: str,
    signer: NKey,
    *,
    issued_at: int,
    reinstate: Callable[[], Awaitable[None]] | None = None,
) -> NatsUser:
    """A fresh server user of ``account`` (any subject of it), signed by ``signer``:
    the account's own key or one of its signing keys; ``reinstate`` pushes the
    account again when the server refuses the user (:class:`NatsUser`)."""
    key = NKey.create(KeyRole.USER)
    user = claims.user_claims(key.public_key, name=name, account=account)
    if signer.public_key == account:
        del user["nats"]["issuer_account"]
    return NatsUser(claims.encode(user, signer, issued_at=issued_at), key, reinstate)


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """What is kept of an org's account between runs (the orgs table's
    ``nats_account_public_key``, ``nats_account_jwt``, ``nats_signing_seed``)."""

    public_key: str
    jwt: str
    signing_seed: str = field(repr=False)


class AccountStore(Protocol):
    """Where each org's account is kept. ``save`` replaces what ``load`` returns for
    that org; both may raise for an org the store does not know."""

    async def load(self, org_id: uuid.UUID) -> StoredAccount | None:
        """The org's account, None when it has none yet."""

    async def save(self, org_id: uuid.UUID, account: StoredAccount) -> None:
        """Keep ``account`` as the org's account."""


class MemoryAccountStore:
    """An :class:`AccountStore` in a dict (tests; one process)."""

    def __init__(self) -> None:
        self.accounts: dict[uuid.UUID, StoredAccount] = {}
        self.saves = 0
        """How many times ``save`` was called (tests count provisionings)."""

    async def load(self, org_id: uuid.UUID) -> StoredAccount | None:
        return self.accounts.get(org_id)

    async def save(self, org_id: uuid.UUID, account: StoredAccount) -> None:
        self.saves += 1
        self.accounts[org_id] = account


@dataclass(frozen=True, slots=True)
class UserCredentials:
    """A NATS user in an org's account: its JWT (signed by the org's signing key) and
    seed; ``creds`` is the standard ``.creds`` file text."""

    account: str
    public_key: str
    jwt: str
    seed: str = field(repr=False)
    expires_at: int
    """Unix seconds after which the server refuses the JWT."""

    @property
    def creds(self) -> str:
        return claims.creds_file(self.jwt, self.seed)


@dataclass(eq=False, slots=True)
class OrgAccount:
    """An org's provisioned account as the pool holds it: its public key, JWT,
    signing key, and the connection of its server user (owned by the pool: users of
    it must not close it, e.g. a broker built on it with ``release_connection=False``)."""

    org_id: uuid.UUID
    public_key: str
    jwt: str
    signing_key: NKey
    connection: NatsConnection

    @property
    def client(self) -> Client:
        """The nats-py client, connected now (``PARSEC_BROKER_NOT_READY`` otherwise)."""
        return self.connection.client_now()


class AccountPool:
    """The per-org account registry over one NATS server or cluster in operator mode
    (``options``: ``[nats]``; ``store``: where accounts are kept). An async context
    manager; ``aclose`` closes every connection and is idempotent.

    ``clock`` gives the time JWTs are issued at (Unix seconds); ``within`` bounds, in
    seconds, each wait for NATS (a connection, a push)."""

    def __init__(
        self,
        options: NatsAccountsOptions,
        store: AccountStore,
        *,
        clock: Callable[[], float] = time.time,
        within: float = 10.0,
    ) -> None:
        if options.url is None:
            raise ValueError("[nats] url is not set (and the broker is not NATS)")
        self._url = options.url
        self._options = options
        self._operator = NKey.from_seed(options.operator_seed, KeyRole.OPERATOR)
        self._store = store
        self._clock = clock
        self._within = within
        self._accounts: dict[uuid.UUID, OrgAccount] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._system_connection: NatsConnection | None = None
        self._system_lock = asyncio.Lock()
        self._closed = False

    @property
    def url(self) -> str:
        """The NATS the accounts live on (``[nats] url``), for native clients too."""
        return self._url

    @property
    def operator_public_key(self) -> str:
        """The key account JWTs are signed with."""
        return self._operator.public_key

    async def __aenter__(self) -> Self:
        if self._closed:
            raise RuntimeError("a closed AccountPool cannot be reopened; make a new one")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def get(self, org_id: uuid.UUID) -> OrgAccount:
        """The org's account, provisioned and connected on first use (see the module
        docstring for the steps, the healing and the errors)."""
        self._check_open()
        account = self._accounts.get(org_id)
        if account is not None and not account.connection.refused:
            return account
        async with self._locks.setdefault(org_id, asyncio.Lock()):
            account = self._accounts.get(org_id)
            if account is not None and account.connection.refused:
                log.warning("nats refuses org %s's account now; re-provisioning", org_id)
                del self._accounts[org_id]
                await account.connection.aclose()
                account = await self._open(org_id, heal=True)
            elif account is None:
                account = await self._open(org_id, heal=False)
            if self._closed:
                await account.connection.aclose()
                raise RuntimeError("the account pool was closed meanwhile")
            self._accounts[org_id] = account
            return account

    def held(self, org_id: uuid.UUID) -> OrgAccount | None:
        """The org's account if the pool holds it now (nothing is provisioned)."""
        return self._accounts.get(org_id)

    async def user_credentials(
        self,
        org_id: uuid.UUID,
        name: str,
        *,
        allow_pub: Sequence[str] = (),
        allow_sub: Sequence[str] = (),
        ttl: float,
    ) -> UserCredentials:
        """A new NATS user in the org's account (provisioned first if need be), signed
        by the org's signing key, named ``name`` (shown in the server's monitoring),
        allowed to publish to ``allow_pub`` and subscribe to ``allow_sub`` (subjects or
        wildcards; empty: any subject of the account), valid ``ttl`` seconds."""
        if ttl <= 0:
            raise ValueError(f"ttl must be more than 0 seconds, got {ttl}")
        for subject in (*allow_pub, *allow_sub):
            if not subject or any(c.isspace() for c in subject):
                raise ValueError(f"not a NATS subject: {subject!r}")
        account = await self.get(org_id)
        user = NKey.create(KeyRole.USER)
        now = self._clock()
        expires_at = int(now + ttl)
        jwt = claims.encode(
            claims.user_claims(
                user.public_key,
                name=name,
                account=account.public_key,
                allow_pub=allow_pub,
                allow_sub=allow_sub,
                expires_at=expires_at,
            ),
            account.signing_key,
            issued_at=int(now),
        )
        return UserCredentials(account.public_key, user.public_key, jwt, user.seed, expires_at)

    async def forget(self, org_id: uuid.UUID) -> None:
        """Close the org's connection and evict it (org deletion); the stored account
        stays. A later ``get`` opens it again. Nothing happens for an org not held."""
        async with self._locks.setdefault(org_id, asyncio.Lock()):
            account = self._accounts.pop(org_id, None)
        if account is not None:
            await account.connection.aclose()

    async def aclose(self) -> None:
        """Close every org's connection and the system connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        accounts, self._accounts = list(self._accounts.values()), {}
        for account in accounts:
            await account.connection.aclose()
        system, self._system_connection = self._system_connection, None
        if system is not None:
            await system.aclose()

    # --- provisioning ------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the account pool is closed")

    async def _open(self, org_id: uuid.UUID, *, heal: bool) -> OrgAccount:
        stored = await self._store.load(org_id)
        if stored is None:
            stored = self._signed(org_id, NKey.create(KeyRole.ACCOUNT).public_key, None)
            await self._keep(org_id, stored, "provisioned")
        elif heal or not self._signed_by_us(stored):
            stored = await self._resign(org_id, stored)
        signing = NKey.from_seed(stored.signing_seed, KeyRole.ACCOUNT)
        try:
            connection = await self._connect(org_id, stored, signing)
        except CredentialsRefused:
            log.warning("nats refused org %s's account; re-provisioning it once", org_id)
            stored = await self._resign(org_id, stored)
            try:
                connection = await self._connect(org_id, stored, signing)
            except CredentialsRefused as exc:
                raise broker_error(
                    "PARSEC_BROKER_INTERNAL",
                    f"nats refuses org {org_id}'s account {stored.public_key} even after "
                    f"re-provisioning it ({exc}): does the server trust operator "
                    f"{self._operator.public_key} ([nats] operator_jwt)?",
                ) from None
        return OrgAccount(org_id, stored.public_key, stored.jwt, signing, connection)

    def _signed(
        self, org_id: uuid.UUID, public_key: str, signing_seed: str | None
    ) -> StoredAccount:
        signing = (
            NKey.create(KeyRole.ACCOUNT)
            if signing_seed is None
            else NKey.from_seed(signing_seed, KeyRole.ACCOUNT)
        )
        jwt = claims.encode(
            claims.account_claims(public_key, name=str(org_id), signing_keys=[signing.public_key]),
            self._operator,
            issued_at=int(self._clock()),
        )
        return StoredAccount(public_key, jwt, signing.seed)

    def _signed_by_us(self, stored: StoredAccount) -> bool:
        try:
            found = claims.decode(stored.jwt)
        except claims.InvalidJWT:
            return False
        return found.get("iss") == self._operator.public_key and found.get("sub") == (
            stored.public_key
        )

    async def _resign(self, org_id: uuid.UUID, stored: StoredAccount) -> StoredAccount:
        fresh = self._signed(org_id, stored.public_key, stored.signing_seed)
        await self._keep(org_id, fresh, "re-signed")
        return fresh

    async def _keep(self, org_id: uuid.UUID, stored: StoredAccount, what: str) -> None:
        """Save, then push: a push that fails leaves a saved JWT the next try pushes."""
        await self._store.save(org_id, stored)
        await self._push(stored.jwt)
        log.info("nats account %s of org %s %s", stored.public_key, org_id, what)

    async def _connect(
        self, org_id: uuid.UUID, stored: StoredAccount, signing: NKey
    ) -> NatsConnection:
        user = mint_user(
            f"parsec org {org_id}",
            stored.public_key,
            signing,
            issued_at=int(self._clock()),
            reinstate=functools.partial(self._reinstate, org_id),
        )
        await probe(self._url, user, self._within)
        connection = NatsConnection(self._url, name=f"parsec org {org_id}", user=user)
        connection.open()
        try:
            await connection.wait_accepted(self._within)
        except BaseException:
            await connection.aclose()
            raise
        return connection

    async def _reinstate(self, org_id: uuid.UUID) -> None:
        """Sign the org's stored account again and push it (the server refuses the
        org's connection: it lost the account, say); the connection then gets in."""
        async with self._locks.setdefault(org_id, asyncio.Lock()):
            stored = None if self._closed else await self._store.load(org_id)
            if stored is not None:
                await self._resign(org_id, stored)

    # --- the system account ------------------------------------------------------

    async def _push(self, account_jwt: str) -> None:
        await push_account(await self._system_client(), account_jwt, self._within)

    async def _system_client(self) -> Client:
        async with self._system_lock:
            self._check_open()
            if self._system_connection is None:
                user = system_user(self._options, issued_at=int(self._clock()))
                try:
                    await probe(self._url, user, self._within)
                except CredentialsRefused:
                    raise broker_error("PARSEC_BROKER_INTERNAL", SYSTEM_REFUSED) from None
                self._system_connection = NatsConnection(
                    self._url, name="parsec accounts (system)", user=user
                )
                self._system_connection.open()
            connection = self._system_connection
        try:
            return await connection.wait_accepted(self._within)
        except CredentialsRefused:
            with contextlib.suppress(Exception):
                await self._drop_system(connection)
            raise broker_error("PARSEC_BROKER_INTERNAL", SYSTEM_REFUSED) from None

    async def _drop_system(self, connection: NatsConnection) -> None:
        async with self._system_lock:
            if self._system_connection is connection:
                self._system_connection = None
        await connection.aclose()


class AccountBackends:
    """Each org's Parsec on its org's account (a tenancy ``OrgBackends``): its broker
    and controller run on the connection ``pool`` holds for the org, borrowed (the
    pool closes it). A tenant whose connection the server refused, or that the pool
    replaced (healed), is stale: it restarts on the pool's current connection."""

    def __init__(self, pool: AccountPool) -> None:
        self._pool = pool
        self._given: dict[uuid.UUID, NatsConnection] = {}

    async def backends(self, org_id: uuid.UUID, options: Options, node_id: str) -> Backends:
        from parsec.backends.factory import nats_backends_on

        account = await self._pool.get(org_id)
        self._given[org_id] = account.connection
        return nats_backends_on(
            account.connection, key_prefix=options.broker.key_prefix, node_id=node_id
        )

    def stale(self, org_id: uuid.UUID) -> bool:
        given = self._given.get(org_id)
        if given is None:
            return False
        held = self._pool.held(org_id)
        return given.refused or held is None or held.connection is not given
