"""Hub: this node's sessions and who among them is subscribed to what.

The Hub does local fan-out only: it encodes each publication once per channel and
hands the same bytes to every local subscriber. It never does I/O and never awaits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from parsec.engine import protocol
from parsec.engine.types import ClientInfo, Publication, StreamPosition

if TYPE_CHECKING:
    from parsec.engine.session import Session
    from parsec.engine.subscription import Subscription

__all__ = ["Hub"]


class Hub:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._users: dict[str, dict[str, Session]] = {}
        self._channels: dict[str, dict[str, Subscription]] = {}
        self.deliveries = 0
        """Publications handed to local subscribers since the start (metrics read it)."""

    # --- sessions ---------------------------------------------------------------

    def add_session(self, session: Session) -> None:
        self._sessions[session.client_id] = session
        self._users.setdefault(session.user, {})[session.client_id] = session

    def remove_session(self, session: Session) -> None:
        if self._sessions.pop(session.client_id, None) is None:
            return
        by_user = self._users.get(session.user)
        if by_user is not None:
            by_user.pop(session.client_id, None)
            if not by_user:
                del self._users[session.user]

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    def user_sessions(self, user: str) -> list[Session]:
        return list(self._users.get(user, {}).values())

    # --- subscriptions ----------------------------------------------------------

    def add_subscription(self, sub: Subscription) -> bool:
        """Register a subscription; True when it is the channel's first on this node."""
        subs = self._channels.get(sub.channel)
        if subs is None:
            self._channels[sub.channel] = {sub.session.client_id: sub}
            return True
        subs[sub.session.client_id] = sub
        return False

    def remove_subscription(self, sub: Subscription) -> bool:
        """Unregister a subscription; True when the channel has no local subscriber left."""
        subs = self._channels.get(sub.channel)
        if subs is None or subs.get(sub.session.client_id) is not sub:
            return False
        del subs[sub.session.client_id]
        if subs:
            return False
        del self._channels[sub.channel]
        return True

    def holds(self, sub: Subscription) -> bool:
        """Whether ``sub`` is registered."""
        subs = self._channels.get(sub.channel)
        return subs is not None and subs.get(sub.session.client_id) is sub

    def subscribers(self, channel: str) -> list[Subscription]:
        return list(self._channels.get(channel, {}).values())

    def has_subscribers(self, channel: str) -> bool:
        return channel in self._channels

    def channels(self) -> Iterator[tuple[str, int]]:
        """(channel, number of local subscribers) for every channel with one."""
        for channel, subs in self._channels.items():
            yield channel, len(subs)

    # --- fan-out ----------------------------------------------------------------

    def broadcast_publication(
        self, channel: str, pub: Publication, position: StreamPosition
    ) -> None:
        subs = self._channels.get(channel)
        if not subs:
            return
        message = protocol.encode_push(channel, "pub", pub)
        offset, epoch = pub.offset, position.epoch
        self.deliveries += len(subs)
        for sub in list(subs.values()):
            sub.deliver(message, offset, epoch)

    def broadcast_join_leave(self, channel: str, kind: str, info: ClientInfo) -> None:
        subs = self._channels.get(channel)
        if not subs:
            return
        message = protocol.encode_push(channel, kind, protocol.JoinLeave(info))
        for sub in list(subs.values()):
            if sub.push_join_leave:
                sub.deliver_event(message)

    # --- stats ------------------------------------------------------------------

    @property
    def num_clients(self) -> int:
        return len(self._sessions)

    @property
    def num_users(self) -> int:
        return len(self._users)

    @property
    def num_channels(self) -> int:
        return len(self._channels)

    @property
    def num_subs(self) -> int:
        return sum(len(s) for s in self._channels.values())
