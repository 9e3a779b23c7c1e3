"""Tenancy: each organisation gets a Parsec of its own — its own channel space, signing
keys, engine node and broker namespace — started on first use.

Isolation is structural, not a filter: org A's tenant has no name for anything of org
B. Its channels live in its own engine node; its keyring is its own (in
``<state_dir>/orgs/<org id>/``, or under its own prefix in Redis), so a token signed for
A does not verify on B; on Redis and NATS its keys and subjects carry the prefix
``<broker.key_prefix>-org-<org id>``, so even the broker keeps the two apart (and with
per-org NATS accounts, a separate account: the tenant's broker then runs on the
connection :class:`OrgBackends` gives it). What every tenant shares is the operator's
configuration: namespaces, client limits, the broker's address.

A tenant has no sinks, no token broker, no server API key and no accounts of its own:
those belong to the operator's instance. Nor does it trust what the operator's instance
trusts besides its own keyring: no ``token_hmac_secret``, no identity provider
(``jwks_url``, ``[auth.oidc]``), no anonymous connections.

Guarantees of :class:`Tenants`: ``get`` starts a tenant once however many callers ask at
the same time, and again when the org's namespaces changed (each node notices at its
next request for that org, or its next check: ``AccountsService.check_tenants``) or
what ``org_backends`` gave it went stale; a tenant that fails to start is not kept (the
next ``get`` tries again); ``forget`` closes one; ``aclose`` (idempotent) closes them
all and refuses later ``get``\\ s.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar

from parsec.channels.options import Namespace
from parsec.options import ApiOptions, Options, TokenBrokerOptions
from parsec.services.quota import PublishQuota

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from parsec.auth.tokens import TokenIssuer
    from parsec.backends.factory import Backends
    from parsec.engine.node import Node
    from parsec.engine.types import StreamPosition

__all__ = ["ORG_PREFIX_TAG", "OrgBackends", "Tenant", "Tenants", "tenant_options"]

log = logging.getLogger("parsec.accounts")

ORG_PREFIX_TAG: Final = "-org-"
ORGS_DIR: Final = "orgs"


class Tenant(Protocol):
    """What the accounts need of a tenant (a :class:`parsec.Parsec` in practice)."""

    @property
    def issuer(self) -> TokenIssuer:
        """Signs the org's connection tokens with its keyring's active key."""
        ...

    @property
    def node(self) -> Node:
        """The org's engine: its channels, history and presence."""
        ...

    async def publish(self, channel: str, data: Any) -> StreamPosition: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    def asgi_app(self) -> Starlette: ...


_T = TypeVar("_T", bound=Tenant)


class OrgBackends(Protocol):
    """Where each org's Parsec runs its broker and controller, when not on the
    operator's broker under a prefix of its own (per-org NATS accounts:
    ``parsec.backends.nats.accounts.AccountBackends``)."""

    async def backends(self, org_id: uuid.UUID, options: Options, node_id: str) -> Backends:
        """The backends of org ``org_id``'s tenant (``options``), whose controller
        knows the node as ``node_id``; closing them is the tenant's."""
        ...

    def stale(self, org_id: uuid.UUID) -> bool:
        """Whether what the org's running tenant was given went bad since (its
        account's connection was refused or replaced): the tenant restarts at the
        next ``get``."""
        ...


def tenant_options(
    base: Options, org_id: uuid.UUID, namespaces: Sequence[Namespace] | None = None
) -> Options:
    """The options of org ``org_id``'s tenant: ``base`` with a broker prefix and a state
    directory of its own, the org's own ``namespaces`` when it has some, and without
    what belongs to the operator only."""
    state_dir = base.auth.state_dir
    return dataclasses.replace(
        base,
        namespaces=list(base.namespaces if namespaces is None else namespaces),
        auth=dataclasses.replace(
            base.auth,
            state_dir=None if state_dir is None else Path(state_dir) / ORGS_DIR / org_id.hex,
            # only the org's own keys sign for it: no operator-wide secret, identity
            # provider or anonymous access reaches into an org
            token_hmac_secret=None,
            jwks_url=None,
            allow_anonymous=False,
            oidc=None,
        ),
        broker=dataclasses.replace(
            base.broker, key_prefix=f"{base.broker.key_prefix}{ORG_PREFIX_TAG}{org_id.hex}"
        ),
        api=ApiOptions(),
        token_broker=TokenBrokerOptions(),
        accounts=None,
        nats=None,
        sinks=None,
        node_name=f"{base.node_name}{ORG_PREFIX_TAG}{org_id.hex[:8]}",
        # the operator's instance has the metrics (and their address); see Parsec._tenant
        observability=dataclasses.replace(base.observability, metrics=False),
    )


class Tenants(Generic[_T]):
    """The running tenants of one Parsec instance, made by ``make(options, node_id=…,
    backends=…)`` (``backends`` None: the ones ``options`` name); ``org_backends``,
    when set, gives each tenant its backends."""

    def __init__(self, options: Options, make: Callable[..., _T]) -> None:
        self._options = options
        self._make = make
        self.org_backends: OrgBackends | None = None
        accounts = options.accounts
        self._publish_rate = 0.0 if accounts is None else accounts.org_max_publications_per_second
        self._running: dict[uuid.UUID, _T] = {}
        self._starting: dict[uuid.UUID, asyncio.Future[_T]] = {}
        self._namespaces: dict[uuid.UUID, tuple[Namespace, ...] | None] = {}
        """The namespaces each running tenant started with."""
        self._closed = False

    def __len__(self) -> int:
        return len(self._running)

    def running_ids(self) -> list[uuid.UUID]:
        """The orgs whose tenant runs here now."""
        return list(self._running)

    def running(self, org_id: uuid.UUID) -> _T | None:
        """The tenant of ``org_id`` if it runs, without starting it."""
        return self._running.get(org_id)

    async def get(self, org_id: uuid.UUID, namespaces: Sequence[Namespace] | None = None) -> _T:
        """The running tenant of ``org_id`` with the org's ``namespaces`` (None: the
        operator's), started on first use — and started anew when the org's namespaces
        changed since it started (its clients are disconnected and reconnect).

        Raises:
            RuntimeError: the tenants are closed.
            Exception: whatever starting the tenant raised (it is not kept).
        """
        wanted = None if namespaces is None else tuple(namespaces)
        found = self._running.get(org_id)
        if found is not None and self._namespaces.get(org_id) == wanted and not self._stale(org_id):
            return found
        if self._closed:
            raise RuntimeError("the tenants are closed")
        starting = self._starting.get(org_id)
        if starting is None:
            starting = asyncio.ensure_future(self._restart(org_id, wanted))
            self._starting[org_id] = starting
        # shield: one caller giving up must not cancel the start the others wait for
        return await asyncio.shield(starting)

    def _stale(self, org_id: uuid.UUID) -> bool:
        return self.org_backends is not None and self.org_backends.stale(org_id)

    async def _restart(self, org_id: uuid.UUID, namespaces: tuple[Namespace, ...] | None) -> _T:
        try:
            old = self._running.pop(org_id, None)
            if old is not None:
                log.info("org %s: its namespaces or its broker changed; restarting", org_id)
                await old.aclose()
            options = tenant_options(self._options, org_id, namespaces)
            node_id = str(uuid.uuid4())
            backends = None
            if self.org_backends is not None:
                backends = await self.org_backends.backends(org_id, options, node_id)
            tenant = self._make(options, node_id=node_id, backends=backends)
            if self._publish_rate > 0:
                tenant.node.publish_gate = PublishQuota(self._publish_rate)
            await tenant.start()
            if self._closed:
                await tenant.aclose()
                raise RuntimeError("the tenants were closed while one was starting")
            self._running[org_id] = tenant
            self._namespaces[org_id] = namespaces
            log.info("tenant of org %s started", org_id)
            return tenant
        finally:
            self._starting.pop(org_id, None)

    async def forget(self, org_id: uuid.UUID) -> None:
        """Close the tenant of ``org_id`` (its clients are disconnected), if it runs."""
        tenant = self._running.pop(org_id, None)
        self._namespaces.pop(org_id, None)
        if tenant is not None:
            await tenant.aclose()

    async def aclose(self) -> None:
        """Close every tenant (and wait for the ones starting). Idempotent."""
        self._closed = True
        starting = list(self._starting.values())
        for task in starting:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        running, self._running = self._running, {}
        for org_id, tenant in running.items():
            try:
                await tenant.aclose()
            except Exception:
                log.exception("closing the tenant of org %s failed", org_id)
