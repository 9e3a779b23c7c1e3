"""One small adapter per wire format: how to connect, subscribe, publish and recognise
a delivered publication, a ping and a reply.

=============== =============================================================
``centrifuge``  Parsec: the Centrifugo client protocol v2, JSON
``socketio``    python-socketio: Engine.IO 4 / Socket.IO 5 over WebSocket
``broadcaster`` the Starlette + broadcaster peer's small JSON protocol
``limit``       the picows limit server's plain-text protocol
=============== =============================================================
"""

from __future__ import annotations

from bench.loadgen.adapters.base import Conn
from bench.loadgen.adapters.broadcaster import BroadcasterConn
from bench.loadgen.adapters.centrifuge import CentrifugeConn
from bench.loadgen.adapters.limit import LimitConn
from bench.loadgen.adapters.socketio import SocketIOConn

__all__ = ["ADAPTERS", "Conn"]

ADAPTERS: dict[str, type[Conn]] = {
    "centrifuge": CentrifugeConn,
    "socketio": SocketIOConn,
    "broadcaster": BroadcasterConn,
    "limit": LimitConn,
}
