"""The listening sockets of ``Parsec.run``, bound before uvicorn starts.

uvicorn, left to bind, logs a taken port and calls ``sys.exit`` from inside the event
loop. Binding here turns every failure into one :class:`ListenError` naming the
address, raised before anything serves. The native WebSocket transport binds nothing
of its own: it takes over connections accepted on these sockets.

Every address ``host`` resolves to is bound, as asyncio's ``create_server`` does
(``SO_REUSEADDR``; ``IPV6_V6ONLY`` on IPv6 sockets so that both families of one name
can be bound). With ``reuse_port`` the sockets are bound with ``SO_REUSEPORT`` too, so
several processes (the workers of ``parsec serve --workers N``) share the port.
"""

from __future__ import annotations

import errno
import socket
from typing import Final

__all__ = ["BACKLOG", "ListenError", "listen"]

BACKLOG: Final = 2048
"""Pending connections the kernel queues per socket (uvicorn's default)."""

_SockAddr = tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]

_WHY: Final = {
    errno.EADDRINUSE: "the address is already in use (another process is listening there)",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
    errno.EADDRNOTAVAIL: "the host is not an address of this machine",
}


class ListenError(OSError):
    """The server cannot listen on ``addr`` (``host:port``); ``why`` says why in words."""

    def __init__(self, addr: str, code: int | None, why: str) -> None:
        super().__init__(code, why)
        self.addr = addr
        self.why = why

    def __str__(self) -> str:
        return f"cannot listen on {self.addr}: {self.why}"


def listen(host: str, port: int, *, reuse_port: bool = False) -> list[socket.socket]:
    """Listening, non-blocking TCP sockets on every address of ``host`` (an IPv6
    address may be bracketed) at ``port``. Raises :class:`ListenError`; nothing stays
    bound when it does."""
    addr = f"{host}:{port}"
    name = host.removeprefix("[").removesuffix("]")
    try:
        infos = socket.getaddrinfo(
            name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(
            addr, exc.errno, f"cannot resolve host {name!r} ({exc.strerror})"
        ) from None
    sockets: list[socket.socket] = []
    try:
        for family, sockaddr in dict.fromkeys((info[0], info[4]) for info in infos):
            sockets.append(_bound(family, sockaddr, reuse_port))
    except OSError as exc:
        for sock in sockets:
            sock.close()
        why = _WHY.get(exc.errno or 0, exc.strerror or str(exc))
        raise ListenError(addr, exc.errno, why) from None
    return sockets


def _bound(family: socket.AddressFamily, sockaddr: _SockAddr, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
