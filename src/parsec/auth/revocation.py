"""Token revocation (parsec-reference.md §4 "Revocation"): what a node refuses, and how
every node of a cluster comes to refuse the same.

What can be revoked — each entry has an end (``until``) after which it is forgotten,
:data:`~parsec.auth.revocation_store.FOREVER` keeping it for good:

* **one token, by its** ``jti``, whatever its kind: Centrifugo connection and
  subscription tokens, Parsec access, refresh and management tokens;
* **a refresh family, by its** ``fid``: every refresh and access token of the family
  (reuse detection revokes the family of a reused refresh token);
* **a user's tokens issued at or before a cutoff** (``iat <= cutoff``), in a scope:
  every token of the user (:data:`EVERY_TOKEN`, ParsecService ``RevokeUser``), the
  user's connection tokens (:data:`CONNECTION_TOKENS`), or the user's tokens presented to
  subscribe to one channel (:func:`channel_tokens`) — the last two are the server API's
  ``invalidate_user_tokens``. A cutoff only moves forward.

A token without ``jti`` cannot be revoked by id, and one without ``iat`` is not covered
by cutoffs; Parsec's tokens and those :class:`~parsec.auth.tokens.TokenIssuer` mints
carry both.

How the nodes of a cluster agree (:class:`Revocations`, one per node):

* **Checks are local.** Every node holds every live entry in memory and checks tokens
  against that copy: a few dictionary look-ups, no I/O (at connect, subscribe and on a
  management call; never per delivered message).
* **A revocation** is in force on the node that made it when the call returns. It is
  sent to every other node over the Controller (a ``RevokeCommand``: they hold it within
  milliseconds) and written to the shared :class:`RevocationStore`.
* **Following the store.** Every ``check_interval`` (1 s) a node reads the store's
  state and loads it when its version moved, so a lost announcement delays a
  revocation by about a second at most, and a node started later holds what others
  revoked before.
* **A store that lost its data** (Redis flushed, restarted without persistence, the key
  evicted) has no generation, or a new one: every node that notices writes every entry
  it holds back into it, as the shared keyring is seeded again. A node never forgets a
  revocation because the store did.
* **The local file.** With a state directory, a node keeps its entries in
  ``<state_dir>/revocations.json`` too, written after every change and read at start: a
  node that restarts after the store lost its data writes them back, as it writes back
  the keyring from ``keyring.json``.
* **A node starting on a store without a generation** (the NATS broker keeps revocations
  in each node's memory; a Redis that lost its data) also asks every other live node for
  what it holds (a Controller survey) before it serves.
* **Listeners** are called after every change that revoked something new: the engine
  then re-checks its live connections and subscriptions (``Node.revocations_changed``).
* **While the store is unreachable** checks go on against what the node holds; a
  revocation made meanwhile is in force on this node (and sent to the others), the call
  raises ``PARSEC_BROKER_NOT_READY``, and the node writes it to the store once it is back.

The parts, each in its module: the copy a node holds and checks against
(``parsec.auth.revocation_held``), its file (``parsec.auth.revocation_cache``), following
the store (``parsec.auth.revocation_sync``) and telling and asking the other nodes
(``parsec.auth.revocation_peers``). :class:`Revocations` ties them together and calls the
listeners; the names those modules define for others are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from parsec.auth.parsec_tokens import ParsecClaims
from parsec.auth.revocation_cache import FILE_NAME
from parsec.auth.revocation_held import HeldRevocations
from parsec.auth.revocation_peers import SURVEY_TIMEOUT, Peers
from parsec.auth.revocation_store import (
    CONNECTION_TOKENS,
    EVERY_TOKEN,
    FOREVER,
    MemoryRevocationStore,
    Revocation,
    RevocationStore,
    channel_tokens,
    family_key,
    held_token,
    token_key,
    user_key,
)
from parsec.auth.revocation_sync import PRUNE_INTERVAL, StoreSync, store_errors
from parsec.engine.aio import cancel_and_wait
from parsec.engine.controller import RevokeCommand
from parsec.engine.revocation import TokenId, TokenRevocations
from parsec.errors import ParsecError

if TYPE_CHECKING:
    from parsec.engine.controller import Controller

__all__ = [
    "CHECK_INTERVAL",
    "CONNECTION_TOKENS",
    "EVERY_TOKEN",
    "FILE_NAME",
    "FOREVER",
    "PEERS_WAIT",
    "PRUNE_INTERVAL",
    "SETTLE",
    "SURVEY_TIMEOUT",
    "MemoryRevocationStore",
    "RevocationStore",
    "Revocations",
    "channel_tokens",
]

CHECK_INTERVAL: Final = 1.0
"""Seconds between two looks at the store's state."""
SETTLE: Final = 3.0
"""How long a node that starts on a shared store holding no revocations (a new store, or
one that lost its data) refuses management tokens issued before it started: long enough
for the nodes still running to notice and write theirs back (``check_interval`` each)."""
PEERS_WAIT: Final = 1.0
"""How long a starting node whose revocations live in memory only (NATS) waits to hear
of another node before it asks for theirs (a node announces itself when it starts)."""

log = logging.getLogger("parsec.auth")

_DENIED: Final = "PARSEC_AUTH_DENIED"
_INVALID: Final = "PARSEC_INVALID_ARGUMENT"


class Revocations:
    """One node's revocations, kept in step with ``store`` and the other nodes (see the
    module docstring). :meth:`start` begins following the store, :meth:`aclose` stops.

    ``cache`` is the file this node keeps its entries in (None: none). The store is
    borrowed: its owner closes it.

    Raises:
        ValueError: ``check_interval`` is not a positive number of seconds.
    """

    def __init__(
        self,
        store: RevocationStore,
        *,
        clock: Callable[[], float] = time.time,
        cache: Path | None = None,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        if not check_interval > 0:
            raise ValueError(
                f"check_interval must be a positive number of seconds, not {check_interval!r}"
            )
        self._store = store
        self._clock = clock
        self._interval = check_interval
        self._held = HeldRevocations(clock, cache, on_change=self._changed)
        self._store_sync = StoreSync(store, self._held, clock)
        self._peers = Peers(self._held)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failure: str | None = None
        self._settle_until = 0.0
        self._settle_before = 0
        self._state: Literal["new", "running", "closed"] = "new"
        self.listeners: list[Callable[[], None]] = []
        """Called (on the event loop; they must not block) after every change that
        revoked something this node did not hold yet."""

    def __len__(self) -> int:
        """How many entries this node holds (expired ones until pruned)."""
        return len(self._held.entries)

    @property
    def store(self) -> RevocationStore:
        return self._store

    # --- checks (synchronous, no I/O) -------------------------------------------

    def token_revoked(self, jti: str) -> bool:
        """Whether the token ``jti`` is revoked."""
        return self._held.live(token_key(jti)) is not None

    def family_revoked(self, fid: str) -> bool:
        """Whether the refresh family ``fid`` is revoked."""
        return self._held.live(family_key(fid)) is not None

    def user_cutoff(self, user: str, scope: str = EVERY_TOKEN) -> int | None:
        """The cutoff of ``user`` in ``scope``; None when there is none."""
        entry = self._held.live(user_key(user, scope))
        return None if entry is None else entry.level

    def check(
        self, claims: ParsecClaims, *, channel: str | None = None, once: bool = False
    ) -> None:
        """Refuse a Parsec token that is revoked: its ``jti``, its family, every token of
        its subject up to its ``iat``, or — when it is used to subscribe to ``channel`` —
        the subject's tokens for that channel.

        ``once`` is for a use that is never checked again (a management call: nothing
        can undo it once this node learns of a revocation). Such a use of a token issued
        before this node started is refused while the node cannot tell yet whether the
        token is revoked (see :meth:`start`'s ``settle``).

        Raises:
            ParsecError: ``PARSEC_AUTH_DENIED`` when the token is revoked;
                ``PARSEC_BROKER_NOT_READY`` for a ``once`` use this node cannot decide yet.
        """
        if once and self._settle_until and self._undecided(claims.iat):
            raise ParsecError(
                "PARSEC_BROKER_NOT_READY",
                "this node is restoring the revocations of a store that lost them; "
                "tokens issued before it started are refused for a few seconds",
            )
        if not self._held.entries:
            return
        if claims.jti is not None and (
            self.token_revoked(claims.jti) or self._cut(claims.sub, held_token(claims.jti), 0)
        ):
            raise ParsecError(_DENIED, "token has been revoked")
        if claims.fid is not None and self.family_revoked(claims.fid):
            raise ParsecError(_DENIED, f"{claims.typ} token family is revoked")
        if self._cut(claims.sub, EVERY_TOKEN, claims.iat):
            raise ParsecError(_DENIED, "tokens of this user issued so far are revoked")
        if channel is not None and self._cut(claims.sub, channel_tokens(channel), claims.iat):
            raise ParsecError(_DENIED, "tokens of this user for this channel are revoked")

    def connection_revoked(self, token: TokenId) -> bool:
        """Whether a connection token is revoked (by id — for everyone, or by its user —
        or by a cutoff of its user for every token or for connection tokens)."""
        if not self._held.entries:
            return False
        return (
            self._id_revoked(token)
            or self._cut(token.user, EVERY_TOKEN, token.iat)
            or self._cut(token.user, CONNECTION_TOKENS, token.iat)
        )

    def subscription_revoked(self, token: TokenId, channel: str) -> bool:
        """Whether a token authorising a subscription to ``channel`` is revoked (by id,
        by family, or by a cutoff of its user for every token or for that channel)."""
        if not self._held.entries:
            return False
        return (
            self._id_revoked(token)
            or (token.family is not None and self.family_revoked(token.family))
            or self._cut(token.user, EVERY_TOKEN, token.iat)
            or self._cut(token.user, channel_tokens(channel), token.iat)
        )

    def _id_revoked(self, token: TokenId) -> bool:
        """Whether the token's id is revoked for everyone, or by its user."""
        jti = token.jti
        return jti is not None and (
            self.token_revoked(jti) or self._cut(token.user, held_token(jti), 0)
        )

    def _undecided(self, iat: int) -> bool:
        if self._clock() >= self._settle_until:
            self._settle_until = 0.0
            return False
        return iat < self._settle_before

    def _cut(self, user: str, scope: str, iat: int | None) -> bool:
        if iat is None:
            return False
        entry = self._held.live(user_key(user, scope))
        return entry is not None and iat <= entry.level

    # --- revoking ---------------------------------------------------------------

    async def revoke_token(self, jti: str, *, until: int, user: str = "", reason: str = "") -> None:
        """Revoke the token ``jti`` until ``until``.

        Raises:
            ParsecError: ``PARSEC_INVALID_ARGUMENT`` for an empty ``jti``;
                ``PARSEC_BROKER_NOT_READY`` / ``PARSEC_BROKER_INTERNAL`` when the store
                failed (the revocation is in force on this node all the same).
        """
        if not jti:
            raise ParsecError(_INVALID, "a token id to revoke must not be empty")
        log.info("revoking token %s%s", jti, _audit(user, reason))
        await self._revoke({token_key(jti): Revocation(until, until)})

    async def revoke_held_token(self, user: str, jti: str, *, until: int, reason: str = "") -> None:
        """Revoke the token ``jti`` if it is ``user``'s (its subject), until ``until``:
        what a user may do without knowing whose token an id is. Another user's token
        with that id stays valid.

        Raises:
            ParsecError: ``PARSEC_INVALID_ARGUMENT`` for an empty ``user`` or ``jti``;
                otherwise as :meth:`revoke_token`.
        """
        if not jti:
            raise ParsecError(_INVALID, "a token id to revoke must not be empty")
        await self.revoke_user(
            user, cutoff=until, until=until, scope=held_token(jti), reason=reason
        )

    async def revoke_family(self, fid: str, *, until: int) -> None:
        """Revoke every refresh and access token of family ``fid`` until ``until``.

        Raises:
            ParsecError: as :meth:`revoke_token`.
        """
        if not fid:
            raise ParsecError(_INVALID, "a refresh family to revoke must not be empty")
        log.info("revoking refresh family %s", fid)
        await self._revoke({family_key(fid): Revocation(until, until)})

    async def revoke_user(
        self, user: str, *, cutoff: int, until: int, scope: str = EVERY_TOKEN, reason: str = ""
    ) -> None:
        """Refuse the tokens of ``user`` in ``scope`` issued at or before ``cutoff``;
        the cutoff is kept until ``until``. A cutoff earlier than the current one
        changes nothing.

        Raises:
            ParsecError: ``PARSEC_INVALID_ARGUMENT`` for an empty ``user``; otherwise
                as :meth:`revoke_token`.
        """
        if not user:
            raise ParsecError(_INVALID, "a user to revoke must not be empty")
        log.info(
            "revoking the tokens of %s (%s) issued until %d%s",
            user,
            scope,
            cutoff,
            _audit("", reason),
        )
        await self._revoke({user_key(user, scope): Revocation(cutoff, until)})

    async def _revoke(self, entries: dict[str, Revocation]) -> None:
        self._held.take(entries)
        self._store_sync.pending(entries)
        await self._peers.broadcast(entries)
        async with self._store_sync.lock:
            with store_errors():
                await self._store_sync.write_unsynced()

    # --- the cluster ------------------------------------------------------------

    async def handle_command(self, command: RevokeCommand) -> None:
        """Take in revocations another node made."""
        self._held.take({key: Revocation(*value) for key, value in command.entries.items()})

    def survey_answer(self) -> bytes:
        """Every live entry this node holds, for a node that starts."""
        return self._peers.answer()

    # --- lifecycle --------------------------------------------------------------

    async def start(
        self,
        controller: Controller | None = None,
        *,
        peers_wait: float = 0.0,
        settle: float = 0.0,
    ) -> None:
        """Load the local file and the store, ask the other nodes when the store has no
        generation, write back what the store lacks, then follow the store.

        With ``peers_wait`` (for a store no other node shares: NATS keeps revocations in
        each node's memory) the node first waits up to that many seconds for the
        Controller to list another node, since a node that has just started hears of
        the others a moment later.

        With ``settle`` (for a store other nodes share: Redis), a store without a
        generation — new, or it lost its data and the nodes still running have not
        written theirs back yet — leaves this node unable to tell, for a moment, which
        tokens are revoked: for ``settle`` seconds it refuses the ``once`` uses (see
        :meth:`check`) of tokens issued before it started. Connections and
        subscriptions need no such wait: they are checked again when the revocations
        arrive.

        Raises:
            ParsecError: the local file is not a revocations file (``PARSEC_INTERNAL``),
                or the store cannot be reached (``PARSEC_BROKER_NOT_READY``).
            RuntimeError: started twice, or after :meth:`aclose`.
        """
        if self._state != "new":
            raise RuntimeError(f"revocations start once; these are {self._state}")
        self._state = "running"
        self._peers.controller = controller
        self._held.load_cache()
        async with self._store_sync.lock:
            with store_errors():
                stored = await self._store.load()
            self._held.take(stored.entries)
            if stored.state.generation is None and controller is not None:
                await self._peers.ask(controller, peers_wait)
            if stored.state.generation is None and settle > 0:
                now = self._clock()
                self._settle_until, self._settle_before = now + settle, int(now)
                log.info(
                    "revocations: %s holds none (new, or it lost its data); for %gs this "
                    "node refuses management calls with tokens issued before it started",
                    self._store.where,
                    settle,
                )
            with store_errors():
                await self._store_sync.catch_up(stored)
        if self._held.entries:
            log.info("revocations: %d held (%s)", len(self._held.entries), self._store.where)
        self._task = asyncio.create_task(self._follow(), name="parsec-revocations")

    async def sync(self) -> None:
        """Look at the store now (the follower does every ``check_interval``): write what
        it lacks, write everything back if it lost its data, load what others added,
        prune when due.

        Raises:
            ParsecError: the store failed (``PARSEC_BROKER_NOT_READY`` / ``_INTERNAL``).
        """
        async with self._store_sync.lock:
            with store_errors():
                await self._store_sync.sync()

    async def aclose(self) -> None:
        """Stop following the store; waits for the follower to end. Idempotent."""
        self._state = "closed"
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    async def _follow(self) -> None:
        """Look at the store every interval until closed (the loop also ends on the closed
        state, not only on cancellation: see ``SharedKeyRing._follow``)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            if self._state == "closed":
                return
            await self._peers.resend()
            try:
                await self.sync()
            except ParsecError as exc:
                self._failed(exc)
            except Exception:
                log.exception("revocations: looking at %s failed", self._store.where)
            else:
                self._recovered()

    def _failed(self, error: ParsecError) -> None:
        message = str(error)
        if message != self._failure:
            self._failure = message
            log.warning(
                "revocations: checking against the %d held here: %s",
                len(self._held.entries),
                message,
            )

    def _recovered(self) -> None:
        if self._failure is not None:
            self._failure = None
            log.info("revocations: following %s again", self._store.where)

    # --- listeners --------------------------------------------------------------

    def _changed(self) -> None:
        """The held entries revoked something new: call the listeners."""
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:
                log.exception("revocations: a listener failed")


def _audit(user: str, reason: str) -> str:
    parts = [f"user {user}" if user else "", f"reason: {reason}" if reason else ""]
    text = ", ".join(part for part in parts if part)
    return f" ({text})" if text else ""


_checks: type[TokenRevocations] = Revocations
