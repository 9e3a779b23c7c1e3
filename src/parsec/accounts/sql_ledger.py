"""The OAuth-state ledger on Parsec's database (table ``oauth_states``): one ledger for
every worker and node that shares the database, so a ``state`` is accepted once however
many processes serve the callback.

A claim is one INSERT of the nonce (the primary key): the row is written by exactly one
of any number of concurrent claims, the database deciding; the others meet the unique
violation and are told False. Rows whose state has expired (plus ``grace`` seconds, for
nodes whose clocks run a little behind) are deleted now and then, by whichever claim
comes after ``purge_every`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from parsec.db.schema import OAuthState

if TYPE_CHECKING:
    from parsec.db import Database

__all__ = ["SQLStateLedger"]

GRACE: Final = 60.0
PURGE_EVERY: Final = 300.0


class SQLStateLedger:
    """:class:`~parsec.accounts.oauth_state.StateLedger` on ``db`` (open, migrated).

    A database that cannot be reached raises (the login fails; it never passes)."""

    def __init__(
        self,
        db: Database,
        *,
        grace: float = GRACE,
        purge_every: float = PURGE_EVERY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._grace = grace
        self._purge_every = purge_every
        self._clock = clock
        self._purged_at = clock()

    async def claim(self, nonce: str, expires_at: float) -> bool:
        await self._purge_now_and_then()
        row = OAuthState(nonce=nonce, expires_at=datetime.fromtimestamp(expires_at, UTC))
        try:
            async with self._db.transaction() as session:
                session.add(row)
        except IntegrityError:
            return False
        return True

    async def _purge_now_and_then(self) -> None:
        now = self._clock()
        if now - self._purged_at < self._purge_every:
            return
        self._purged_at = now
        horizon = datetime.fromtimestamp(now - self._grace, UTC)
        async with self._db.transaction() as session:
            await session.execute(delete(OAuthState).where(OAuthState.expires_at < horizon))
