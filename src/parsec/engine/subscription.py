"""Subscription: one session's membership in one channel, and its delivery rules."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from parsec.engine.types import EMPTY_RAW

if TYPE_CHECKING:
    from parsec.engine.authority import Grant
    from parsec.engine.channel import ResolvedChannel
    from parsec.engine.revocation import TokenId
    from parsec.engine.session import Session

__all__ = ["Subscription"]


class Subscription:
    """A session's subscription to a channel.

    While ``pending`` is a list the subscribe reply has not been written yet: messages
    for the channel are held there and delivered, in order and de-duplicated, right
    after the reply (``release``). For positioned subscriptions, ``offset`` / ``epoch``
    track the last publication delivered; a publication that does not follow it
    directly means the client's state can no longer be trusted (insufficient state):
    the subscription is marked ``lost`` and delivers nothing more while it is removed.
    """

    __slots__ = (
        "announced",
        "chan_info",
        "channel",
        "epoch",
        "expire_handle",
        "expires_at",
        "grant",
        "lost",
        "offset",
        "pending",
        "positioned",
        "push_join_leave",
        "recoverable",
        "resolved",
        "server_side",
        "session",
        "token",
    )

    def __init__(
        self,
        session: Session,
        channel: str,
        resolved: ResolvedChannel,
        *,
        server_side: bool = False,
    ) -> None:
        self.session = session
        self.channel = channel
        self.resolved = resolved
        self.server_side = server_side
        self.positioned = False
        self.recoverable = False
        self.push_join_leave = False
        self.chan_info = EMPTY_RAW
        self.offset = 0
        self.epoch = ""
        self.expires_at: int | None = None
        self.expire_handle: asyncio.TimerHandle | None = None
        self.lost = False
        self.announced = False
        """Presence was recorded and the join sent; dropping must undo them."""
        self.grant: Grant | None = None
        """Set when a bearer access token authorised the subscription."""
        self.token: TokenId | None = None
        """The token that authorised the subscription, when one did: it ends when that
        token is revoked."""
        self.pending: list[tuple[bytes, int, str]] | None = []

    def deliver(self, message: bytes, offset: int, epoch: str) -> None:
        """Hand one encoded publication push to the session (hot path: no awaits)."""
        if self.lost:
            return
        if self.pending is not None:
            self.pending.append((message, offset, epoch))
            return
        if self.positioned and offset:
            if offset != self.offset + 1 or epoch != self.epoch:
                if epoch == self.epoch and offset <= self.offset:
                    return  # already delivered (recovered in the subscribe reply)
                self.session.lost_position(self)
                return
            self.offset = offset
        self.session.write(message)

    def deliver_event(self, message: bytes) -> None:
        """Hand a join/leave push to the session."""
        if self.lost:
            return
        if self.pending is not None:
            self.pending.append((message, 0, ""))
        else:
            self.session.write(message)

    def release(self) -> None:
        """Deliver what arrived while the subscribe reply was being prepared."""
        held, self.pending = self.pending, None
        for message, offset, epoch in held or ():
            self.deliver(message, offset, epoch)

    def cancel_expiry(self) -> None:
        if self.expire_handle is not None:
            self.expire_handle.cancel()
            self.expire_handle = None
