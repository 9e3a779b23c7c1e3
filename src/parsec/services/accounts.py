"""Accounts and tenancy as a service of the facade (``[accounts]``): the database, the
logins (GitHub's OAuth today), session cookies and the caller's organisations.

``parsec.accounts`` (:class:`AccountsService`) owns its parts: ``start`` opens the
database and migrates it (``parsec serve`` runs the migrations; a schema newer than
this code stops the start), makes the GitHub client; ``aclose`` (idempotent) closes
them in reverse.

The GitHub login (seed 002): :meth:`github_start` mints a one-time OAuth ``state`` (its
nonce claimed in the database, so any worker or node may serve the callback, and only
once) carrying a safe ``next``; :meth:`github_callback` consumes the state, exchanges
the code, reads the user, logs them in (:class:`~parsec.accounts.directory.Directory`:
the first login creates the user and a personal org named after the GitHub login) and
answers the session cookie and where to go.

The OpenID Connect login (``[accounts.oidc]``, :mod:`parsec.accounts.oidc_login`) is the
same shape: :meth:`oidc_start` / :meth:`oidc_callback`, the identity
``("oidc:<issuer>", sub)``; the provider is discovered by ``start`` (an undiscoverable
one stops it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from parsec.accounts.access import OrgAccess
from parsec.accounts.api_keys import ApiKeys
from parsec.accounts.csrf import CsrfTokens
from parsec.accounts.device_flow import DeviceFlow
from parsec.accounts.directory import Directory, Membership
from parsec.accounts.errors import (
    FORBIDDEN,
    GITHUB_NOT_CONFIGURED,
    INVALID_ARGUMENT,
    OIDC_NOT_CONFIGURED,
    ORG_NOT_FOUND,
    AccountsError,
    GitHubError,
    InvalidSession,
    OIDCLoginError,
    Unauthenticated,
)
from parsec.accounts.github import GitHubOAuth, callback_error
from parsec.accounts.oauth_state import OAuthStates
from parsec.accounts.oidc_login import OIDCLogin
from parsec.accounts.oidc_login import callback_error as oidc_callback_error
from parsec.accounts.principal import BearerKind, Principal, bearer_kind
from parsec.accounts.session_cookie import SessionCookies
from parsec.accounts.sql_ledger import SQLStateLedger
from parsec.accounts.user_tokens import UserTokens
from parsec.backends.factory import operator_nats
from parsec.channels.options import Namespace
from parsec.config import ConfigError, build_org_namespaces
from parsec.db.open import open_database
from parsec.db.schema import AuditEvent, Org
from parsec.engine.aio import cancel_and_wait

if TYPE_CHECKING:
    from parsec.backends.nats.accounts import AccountPool, UserCredentials
    from parsec.db import Database
    from parsec.options import AccountsOptions, Options
    from parsec.services.tenancy import Tenant, Tenants

__all__ = ["CALLBACK_PATH", "OIDC_CALLBACK_PATH", "AccountsService", "Exchanged", "SignedIn"]

log = logging.getLogger("parsec.accounts")

TENANT_CHECK_INTERVAL: Final = 5.0
"""Seconds between two checks of the orgs running on this node against the database
(:meth:`AccountsService.check_tenants`): an org deleted on another node stops here,
and one whose namespaces changed there restarts here, within about that long."""
CALLBACK_PATH: Final = "/auth/github/callback"
OIDC_CALLBACK_PATH: Final = "/auth/oidc/callback"
GITHUB: Final = "github"


@dataclass(frozen=True, slots=True)
class Exchanged:
    """A connection token of an org, for its caller."""

    token: str
    subject: str
    expires_at: int
    nats: UserCredentials | None = None
    """A user of the org's NATS account (``[nats]``), for native NATS clients."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A finished login: the session cookie's value and where the browser goes next."""

    cookie: str
    next: str
    user_id: uuid.UUID
    created: bool


class AccountsService:
    """The accounts of one Parsec instance (see the module)."""

    def __init__(self, options: Options, *, tenants: Tenants[Any] | None = None) -> None:
        if options.accounts is None:
            raise ValueError("AccountsService needs [accounts]")
        self.options: AccountsOptions = options.accounts
        self._all_options = options
        self.cookies = SessionCookies(
            self.options.session_key.encode(),
            base_url=self.options.base_url,
            ttl=int(self.options.session_ttl),
        )
        self.user_tokens = UserTokens(
            self.options.session_key.encode(), ttl=int(self.options.token_ttl)
        )
        self.nats_accounts: AccountPool | None = None
        """Each org's NATS account (``[nats]``, operator mode), once started."""
        self.tenants = tenants
        """Each org's own Parsec (:mod:`parsec.services.tenancy`); None: no tenancy
        (the service alone, as some tests build it)."""
        self._parsed: dict[uuid.UUID, tuple[str, list[Namespace]]] = {}
        """Each org's namespaces as last parsed, by the JSON they were parsed from."""
        self.csrf = CsrfTokens(self.options.session_key.encode())
        self._stack = contextlib.AsyncExitStack()
        self._db: Database | None = None
        self._device_flow: DeviceFlow | None = None
        self._directory: Directory | None = None
        self._states: OAuthStates | None = None
        self._github: GitHubOAuth | None = None
        self._oidc: OIDCLogin | None = None
        self._api_keys: ApiKeys | None = None

    # --- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Discover the OpenID provider when configured; open and migrate the database;
        make the GitHub client when configured.

        Raises:
            parsec.auth.oidc.DiscoveryError: the ``[accounts.oidc]`` provider cannot be
                discovered (``setting`` ``accounts.oidc.issuer``).
            parsec.db.DatabaseError: the database is misconfigured, unreachable or
                newer than this code.
        """
        oidc = self.options.oidc
        if oidc is not None:  # discovered first: a bad issuer stops before the database
            self._oidc = await self._stack.enter_async_context(
                OIDCLogin(
                    oidc.issuer,
                    oidc.client_id,
                    key=self.options.session_key.encode(),
                    client_secret=oidc.client_secret,
                    scopes=oidc.scopes,
                    username_claim=oidc.username_claim,
                )
            )
        db = await open_database(self._all_options)
        self._stack.push_async_callback(db.aclose)
        self._db = db
        self._directory = Directory(db)
        self._states = OAuthStates(self.options.session_key.encode(), SQLStateLedger(db))
        self._device_flow = DeviceFlow(db)
        self._api_keys = ApiKeys(db)
        nats = self._all_options.nats
        if nats is not None:  # NATS loads only for per-org accounts
            from parsec.accounts.nats_accounts import SqlAccountStore
            from parsec.backends.nats.accounts import AccountPool

            self.nats_accounts = await self._stack.enter_async_context(
                AccountPool(nats, SqlAccountStore(db))
            )
            if self.tenants is not None and operator_nats(self._all_options) is not None:
                from parsec.backends.nats.accounts import AccountBackends

                self.tenants.org_backends = AccountBackends(self.nats_accounts)
        if self.tenants is not None:  # closed before the accounts' NATS connections
            self._stack.push_async_callback(self.tenants.aclose)
            watch = asyncio.create_task(self._watch_tenants(), name="parsec-accounts-tenants")
            self._stack.push_async_callback(cancel_and_wait, watch)
        github = self.options.github
        if github is not None:
            self._github = await self._stack.enter_async_context(
                GitHubOAuth(
                    github.client_id,
                    github.client_secret,
                    authorize_url=github.authorize_url,
                    token_url=github.token_url,
                    user_url=github.user_url,
                )
            )

    async def aclose(self) -> None:
        """Close what ``start`` opened, in reverse. Idempotent."""
        await self._stack.aclose()

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("the accounts service is not started")
        return self._db

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            raise RuntimeError("the accounts service is not started")
        return self._directory

    @property
    def device_flow(self) -> DeviceFlow:
        """The device authorizations of ``parsec login`` (RFC 8628)."""
        if self._device_flow is None:
            raise RuntimeError("the accounts service is not started")
        return self._device_flow

    @property
    def api_keys(self) -> ApiKeys:
        if self._api_keys is None:
            raise RuntimeError("the accounts service is not started")
        return self._api_keys

    # --- GitHub login -----------------------------------------------------------

    @property
    def github_enabled(self) -> bool:
        return self.options.github is not None

    def redirect_uri(self) -> str:
        return self.options.base_url.rstrip("/") + CALLBACK_PATH

    def github_start(self, next_path: str | None) -> str:
        """Where to send the browser to log in with GitHub, back to ``next_path`` (made
        safe) afterwards."""
        github, states = self._github, self._states
        if github is None or states is None:
            raise GitHubError(GITHUB_NOT_CONFIGURED, "GitHub login is not configured here")
        return github.authorize_url_for(states.mint(next_path), self.redirect_uri())

    async def github_callback(self, params: Mapping[str, str]) -> SignedIn:
        """Finish a GitHub login from the callback's query parameters.

        Raises:
            InvalidOAuthState: a state that is not one of ours, expired or used (it is
                consumed before anything else, so a declined login uses it up too).
            GitHubError: the user declined, or GitHub refused or could not be read.
        """
        github, states = self._github, self._states
        if github is None or states is None:
            raise GitHubError(GITHUB_NOT_CONFIGURED, "GitHub login is not configured here")
        consumed = await states.consume(params.get("state"))
        code = params.get("code")
        if "error" in params or not code:
            raise callback_error(params.get("error"))
        access_token = await github.exchange(code, self.redirect_uri())
        user = await github.user(access_token)
        login = await self.directory.login(
            GITHUB, str(user.id), username=user.login, email=user.email, name=user.name
        )
        cookie = self.cookies.sign(str(login.user_id))
        return SignedIn(cookie, consumed.next, login.user_id, login.created)

    # --- OpenID Connect login ---------------------------------------------------

    @property
    def oidc_name(self) -> str | None:
        """The OpenID provider's label on the login page; None: not offered."""
        return None if self.options.oidc is None else self.options.oidc.name

    def oidc_redirect_uri(self) -> str:
        return self.options.base_url.rstrip("/") + OIDC_CALLBACK_PATH

    def oidc_start(self, next_path: str | None) -> str:
        """Where to send the browser to log in with the OpenID provider, back to
        ``next_path`` (made safe) afterwards."""
        oidc, states = self._oidc, self._states
        if oidc is None or states is None:
            raise OIDCLoginError(OIDC_NOT_CONFIGURED, "OpenID Connect login is not configured")
        return oidc.authorize_url_for(states.mint(next_path), self.oidc_redirect_uri())

    async def oidc_callback(self, params: Mapping[str, str]) -> SignedIn:
        """Finish an OpenID Connect login from the callback's query parameters.

        Raises:
            InvalidOAuthState: a state that is not one of ours, expired or used (it is
                consumed before anything else).
            OIDCLoginError: the user declined, the provider refused or could not be
                read, or its ID token does not verify.
        """
        oidc, states = self._oidc, self._states
        if oidc is None or states is None:
            raise OIDCLoginError(OIDC_NOT_CONFIGURED, "OpenID Connect login is not configured")
        state = params.get("state")
        consumed = await states.consume(state)
        code = params.get("code")
        if "error" in params or not code or state is None:
            raise oidc_callback_error(params.get("error"))
        who = await oidc.finish(code, state, self.oidc_redirect_uri())
        login = await self.directory.login(
            oidc.provider, who.subject, username=who.username, email=who.email, name=who.name
        )
        cookie = self.cookies.sign(str(login.user_id))
        return SignedIn(cookie, consumed.next, login.user_id, login.created)

    # --- sessions and orgs ------------------------------------------------------

    async def session_user(self, cookie: str | None) -> uuid.UUID:
        """The user a session cookie names, who still exists.

        Raises:
            InvalidSession: any bad cookie, or a user that is gone.
        """
        payload = self.cookies.verify(cookie)
        try:
            user_id = uuid.UUID(payload.user_id)
        except ValueError:
            raise InvalidSession from None
        if not await self.directory.user_exists(user_id):
            raise InvalidSession
        return user_id

    # --- who is calling, and in which org --------------------------------------

    async def authenticate(self, *, cookie: str | None, bearer: str | None) -> Principal:
        """The caller of an ``/api/v1`` request: its bearer (``Authorization: Bearer``,
        told apart by prefix: :mod:`parsec.accounts.principal`) when it sends one,
        else its session cookie.

        Raises:
            Unauthenticated: neither, or a bearer that is not valid (one error for any
                reason).
            InvalidSession: a cookie that is not valid.
        """
        if bearer is not None:
            kind = bearer_kind(bearer)
            if kind is BearerKind.USER_TOKEN:
                return await self._user_token_principal(bearer)
            if kind is BearerKind.API_KEY:
                return await self._api_key_principal(bearer)
            raise Unauthenticated("this bearer is not a Parsec user token or API key")
        if cookie is None:
            raise Unauthenticated
        return Principal.user(await self.session_user(cookie))

    async def _user_token_principal(self, token: str) -> Principal:
        payload = self.user_tokens.verify(token)
        try:
            user_id = uuid.UUID(payload.user_id)
        except ValueError:
            raise Unauthenticated("invalid or expired access token") from None
        if not await self.directory.user_exists(user_id):
            raise Unauthenticated("invalid or expired access token")
        return Principal.user(user_id)

    async def _api_key_principal(self, token: str) -> Principal:
        key = await self.api_keys.verify(token)
        return Principal("api_key", key.id, org_id=key.org_id, scopes=frozenset(key.scopes))

    async def org_access(self, principal: Principal, slug: str | None) -> OrgAccess:
        """``principal`` acting in org ``slug`` (None: its default org — an API key's
        own org, a user's personal org, else their first by slug).

        Raises:
            AccountsError: ``PARSEC_ORG_NOT_FOUND`` (404) for an org that does not
                exist or that the caller does not belong to (one answer for both).
        """
        if principal.kind == "api_key":
            org = await self.directory.org_by_id(principal.org_id) if principal.org_id else None
            if org is None or (slug is not None and org.slug != slug):
                raise AccountsError(f"no organisation {slug!r}", code=ORG_NOT_FOUND)
            return OrgAccess(principal, org.id, org.slug, org.name, org.personal, None)
        user_id = principal.id
        if slug is None:
            mine = await self.directory.memberships(user_id)
            if not mine:
                raise AccountsError("you belong to no organisation", code=ORG_NOT_FOUND)
            # their own personal org (a personal org they merely joined is not theirs)
            chosen = next((m for m in mine if m.personal and m.role == "owner"), mine[0])
            return OrgAccess(
                principal, chosen.org_id, chosen.slug, chosen.name, chosen.personal, chosen.role
            )
        membership = await self.directory.membership(user_id, slug)
        if membership is None:
            raise AccountsError(f"no organisation {slug!r}", code=ORG_NOT_FOUND)
        return OrgAccess(
            principal,
            membership.org_id,
            membership.slug,
            membership.name,
            membership.personal,
            membership.role,
        )

    async def chosen_org(self, principal: Principal, slug: str | None) -> OrgAccess:
        """The org a caller picked with ``?org=`` (or its default org without one): as
        :meth:`org_access`, but naming an org the caller is not in is 403
        ``PARSEC_PERMISSION_DENIED`` — the caller asked to act there, not to see it."""
        try:
            return await self.org_access(principal, slug)
        except AccountsError as exc:
            if slug is None or exc.code != ORG_NOT_FOUND:
                raise
            raise AccountsError(f"you are not a member of {slug!r}", code=FORBIDDEN) from None

    # --- tenancy ----------------------------------------------------------------

    async def check_tenants(self) -> None:
        """Bring the orgs running on this node in line with the database: the Parsec of
        an org deleted (on any node) stops, its clients disconnected; one whose
        namespaces changed restarts with the new ones."""
        tenants = self.tenants
        if tenants is None:
            return
        running = tenants.running_ids()
        orgs = await self.directory.orgs_by_id(running)
        for org_id in running:
            org = orgs.get(org_id)
            if org is None:
                log.info("org %s is gone; stopping its Parsec on this node", org_id)
                await self.forget_org(org_id)
            else:
                await tenants.get(org_id, self.namespaces_of(org))

    async def forget_org(self, org_id: uuid.UUID) -> None:
        """Stop the Parsec of a deleted org on this node (its clients disconnected)
        and close its NATS account's connection, if they run here."""
        if self.tenants is not None:
            await self.tenants.forget(org_id)
        if self.nats_accounts is not None:
            await self.nats_accounts.forget(org_id)
        self._parsed.pop(org_id, None)

    async def _watch_tenants(self) -> None:
        while True:
            await asyncio.sleep(TENANT_CHECK_INTERVAL)
            try:
                await self.check_tenants()
            except Exception as exc:  # the database is down, say: the next check retries
                log.warning("checking the orgs running on this node failed: %s", exc)

    async def tenant(self, org_id: uuid.UUID) -> Tenant:
        """The running Parsec of org ``org_id`` (started on first use, with the org's
        namespaces as they are now)."""
        org = await self.directory.org_by_id(org_id)
        if org is None:
            raise AccountsError("no such organisation", code=ORG_NOT_FOUND)
        return await self.tenant_of(org)

    async def tenant_of(self, org: Org) -> Tenant:
        """:meth:`tenant` for an org row just read."""
        if self.tenants is None:
            raise RuntimeError("this accounts service has no tenants")
        tenant: Tenant = await self.tenants.get(org.id, self.namespaces_of(org))
        return tenant

    def namespaces_of(self, org: Org) -> list[Namespace] | None:
        """The org's own namespaces (None: the operator's). Stored ones that the server's
        configuration no longer allows are logged and replaced by the operator's."""
        raw = org.namespaces
        if raw is None:
            return None
        key = json.dumps(raw, sort_keys=True)
        cached = self._parsed.get(org.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            namespaces = build_org_namespaces(raw, self._all_options)
        except ConfigError as exc:
            log.warning("org %s: its namespaces no longer fit this server (%s)", org.slug, exc)
            return None
        self._parsed[org.id] = (key, namespaces)
        return namespaces

    def operator_namespaces(self) -> list[Namespace]:
        """The namespaces of an org without its own: the operator's."""
        return list(self._all_options.namespaces)

    async def set_namespaces(self, access: OrgAccess, raw: list[Any] | None) -> Tenant:
        """Replace the org's namespaces with ``raw`` (``[[namespaces]]`` tables; None:
        back to the operator's) and restart its tenant here. Admins, or keys with
        ``org:write``. Audited (``org.namespaces_changed``).

        Raises:
            AccountsError: PARSEC_INVALID_ARGUMENT naming the first bad key.
        """
        access.require("admin", "org:write")
        if raw is not None:
            try:
                build_org_namespaces(raw, self._all_options)
            except ConfigError as exc:
                raise AccountsError(str(exc), code=INVALID_ARGUMENT) from None
        async with self.db.transaction() as session:
            org = await session.get(Org, access.org_id)
            if org is None:
                raise AccountsError("no such organisation", code=ORG_NOT_FOUND)
            org.namespaces = raw
            principal = access.principal
            session.add(
                AuditEvent(
                    org_id=org.id,
                    actor_kind=principal.actor_kind,
                    actor_id=principal.actor_id,
                    action="org.namespaces_changed",
                    target=org.slug,
                    detail={"namespaces": [n.get("name") for n in raw or []]},
                )
            )
        return await self.tenant(access.org_id)

    async def exchange(
        self, access: OrgAccess, *, ttl: int, channels: Sequence[str] = ()
    ) -> Exchanged:
        """A connection token of ``access``'s org for its caller (``sub``: the user's
        id, or ``apikey:<id>`` for an API key), signed by the org's own keyring, valid
        ``ttl`` seconds; ``channels`` become server-side subscriptions. Audited
        (``token.exchanged``, with the token's ``jti``)."""
        access.require("member", "tokens:issue")
        tenant = await self.tenant(access.org_id)
        principal = access.principal
        subject = str(principal.id) if principal.kind == "user" else f"apikey:{principal.id}"
        minted = tenant.issuer.mint_connection(subject, ttl=ttl, channels=channels)
        expires_at = int(cast(int, minted.claims["exp"]))
        nats = None
        if self.nats_accounts is not None:
            nats = await self.nats_accounts.user_credentials(
                access.org_id, f"{subject}@{access.slug}", ttl=ttl
            )
        async with self.db.transaction() as session:
            session.add(
                AuditEvent(
                    org_id=access.org_id,
                    actor_kind=principal.actor_kind,
                    actor_id=principal.actor_id,
                    action="token.exchanged",
                    target=subject,
                    detail={"jti": minted.claims["jti"], "ttl": ttl, "channels": list(channels)},
                )
            )
        return Exchanged(minted.token, subject, expires_at, nats)

    async def orgs(self, user_id: uuid.UUID) -> list[Membership]:
        return await self.directory.memberships(user_id)

    async def org(self, user_id: uuid.UUID, slug: str) -> Membership | None:
        return await self.directory.membership(user_id, slug)
