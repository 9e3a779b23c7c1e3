"""Redis URLs: which Redis a deployment uses, parsed strictly, with clear errors.

::

    redis://[[user]:password@]host[:port][/db][?option=value&…]
    rediss://…                                  the same over TLS
    unix://[[user]:password@]/path/to/redis.sock[?db=N&…]
    redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service_name[/db][?…]
    redis+cluster://[[user]:password@]host[:port][,host[:port]…][?…]

Ports default to 6379 (26379 for Sentinel). Credentials are percent-decoded and apply
to the Redis servers (Sentinels are asked without them). Options: ``socket_timeout``
and ``socket_connect_timeout`` (seconds, > 0; defaults 5 and 2), ``client_name``, and
``db`` where the path does not give one. A malformed URL raises ParsecError
``PARSEC_INVALID_ARGUMENT`` naming the problem; messages never show the password.

Every client ``make_clients`` builds bounds its connections and makes commands wait
for one rather than fail: at most ``pool_size`` of its commands run at once (on a
Cluster, in all), and a command beyond them waits its turn up to ``pool_timeout``
seconds, then fails with ``PoolBusy``. Its pool (each node's pool, on a Cluster) holds
at most ``pool_size`` + ``PUBSUB_CONNECTIONS`` connections: the commands' and those of
the node's long-lived pub/sub listeners. redis-py alone would refuse a command at once
(``MaxConnectionsError``) when 100 connections are busy: its pool that waits
(``BlockingConnectionPool``) costs every command several microseconds even when
connections are free, where a free turn here costs about one, and its Cluster
and Sentinel clients have no such pool at all.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl, unquote

from redis.asyncio import Redis, RedisCluster, Sentinel
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.typing import EncodableT

from parsec.backends.redis.client import PoolBusy, RedisClient
from parsec.errors import ParsecError
from parsec.options import DEFAULT_POOL_SIZE, DEFAULT_POOL_TIMEOUT

__all__ = ["PUBSUB_CONNECTIONS", "Clients", "RedisURL", "make_clients", "parse_url"]

PUBSUB_CONNECTIONS = 5
"""Pub/sub connections a node holds while it runs, beside ``pool_size``: the broker's
subscriber, the controller's two listeners, the channel events' and the keyring's."""

Kind = Literal["tcp", "unix", "sentinel", "cluster"]

_SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis": ("tcp", False),
    "rediss": ("tcp", True),
    "unix": ("unix", False),
    "redis+sentinel": ("sentinel", False),
    "redis+cluster": ("cluster", False),
}
_DEFAULT_PORT = {"tcp": 6379, "unix": 0, "sentinel": 26379, "cluster": 6379}
_OPTIONS = ("client_name", "db", "socket_connect_timeout", "socket_timeout")


@dataclass(frozen=True, slots=True)
class RedisURL:
    """A parsed Redis URL (``parse_url``). ``hosts`` is empty for ``unix``."""

    kind: Kind
    hosts: tuple[tuple[str, int], ...] = ()
    path: str = ""
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    socket_timeout: float = 5.0
    socket_connect_timeout: float = 2.0
    client_name: str | None = None


class _BadURL(Exception):
    """A problem with the URL; parse_url adds the (redacted) URL to it."""


def parse_url(url: str) -> RedisURL:
    """Parse a Redis URL. Raises ParsecError PARSEC_INVALID_ARGUMENT when malformed."""
    try:
        return _parse(url)
    except _BadURL as exc:
        raise ParsecError("PARSEC_INVALID_ARGUMENT", f"Redis URL {redact(url)!r}: {exc}") from None


def redact(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{hosts}{slash}{tail}"


def _parse(url: str) -> RedisURL:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise _BadURL("expected <scheme>://…, e.g. redis://127.0.0.1:6379/0")
    spec = _SCHEMES.get(scheme.lower())
    if spec is None:
        raise _BadURL(f"unknown scheme {scheme!r}; use one of {', '.join(_SCHEMES)}")
    kind, tls = spec
    if "#" in rest:
        raise _BadURL("a fragment (#…) has no meaning here")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    options = _options(query)
    fields: dict[str, Any] = {"kind": kind, "hosts": _hosts(hostlist, kind), "tls": tls}
    path_db = path
    if kind == "unix":
        if not path:
            raise _BadURL("expected the socket path: unix:///path/to/redis.sock")
        fields["path"] = slash + unquote(path)
        path_db = ""
    elif kind == "sentinel":
        service, _, path_db = path.partition("/")
        if not service:
            raise _BadURL("expected the service name: redis+sentinel://host:26379/mymaster")
        fields["service"] = unquote(service)
    db_option = options.pop("db", None)
    if db_option is not None and path_db:
        raise _BadURL("give the database once: in the path or as ?db=, not both")
    if db_option is not None:
        fields["db"] = _db(db_option)
    elif path_db:
        fields["db"] = _db(path_db)
    if kind == "cluster" and fields.get("db", 0) != 0:
        raise _BadURL("Redis Cluster has only database 0")
    return RedisURL(**fields, username=username, password=password, **_typed(options))


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    return unquote(user) or None, (unquote(password) or None) if colon else None


def _hosts(hostlist: str, kind: Kind) -> tuple[tuple[str, int], ...]:
    if kind == "unix":
        if hostlist:
            raise _BadURL("a unix socket URL has no host: unix:///path/to/redis.sock")
        return ()
    if not hostlist:
        raise _BadURL("expected a host, e.g. 127.0.0.1:6379")
    hosts = tuple(_host(item, _DEFAULT_PORT[kind]) for item in hostlist.split(","))
    if kind == "tcp" and len(hosts) > 1:
        raise _BadURL("one host only; for several use redis+cluster:// or redis+sentinel://")
    return hosts


def _host(item: str, default_port: int) -> tuple[str, int]:
    if item.startswith("["):
        host, bracket, port_text = item[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise _BadURL(f"malformed IPv6 address {item!r}; write [::1]:6379")
        port_text = port_text[1:]
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise _BadURL(f"missing host in {item!r}")
    if not port_text:
        return host, default_port
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise _BadURL(f"port must be a number from 1 to 65535, not {port_text!r}")
    return host, int(port_text)


def _db(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise _BadURL(f"database must be a number >= 0, not {text!r}")
    return int(text)


def _options(query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _BadURL(f"malformed options {query!r}; write ?name=value&name=value") from None
    for name, value in pairs:
        if name not in _OPTIONS:
            raise _BadURL(f"unknown option {name!r}; known: {', '.join(_OPTIONS)}")
        if name in options:
            raise _BadURL(f"option {name!r} given twice")
        options[name] = value
    return options


def _typed(options: dict[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for name, value in options.items():
        if name == "client_name":
            typed[name] = value or None
            continue
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not (seconds > 0 and math.isfinite(seconds)):
            raise _BadURL(f"{name} must be a number of seconds > 0, not {value!r}")
        typed[name] = seconds
    return typed


class Clients(NamedTuple):
    """The client the backends use, and any helper clients to close with it (the
    Sentinel clients a Sentinel-managed client asks for the master's address)."""

    main: RedisClient
    helpers: tuple[Redis, ...] = ()


def make_clients(
    url: RedisURL,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    pool_timeout: float = DEFAULT_POOL_TIMEOUT,
) -> Clients:
    """Build (without connecting) the client for a parsed URL, running at most
    ``pool_size`` commands at once; the others wait their turn up to ``pool_timeout``
    seconds (see the module docstring).

    Standalone and Sentinel clients never retry a command on their own: a publish
    either happens once or raises. Cluster clients keep redis-py's retries, which
    follow slot moves and failovers. Clients speak RESP2: with it redis-py notices a
    pooled connection that Redis closed (a restart) before using it again, where with
    RESP3 (redis-py 8's default) the next command on it fails.
    """
    turns = _Turns(pool_size, pool_timeout)
    common: dict[str, Any] = {
        "protocol": 2,
        "username": url.username,
        "password": url.password,
        "socket_timeout": url.socket_timeout,
        "socket_connect_timeout": url.socket_connect_timeout,
        "client_name": url.client_name,
        "max_connections": pool_size + PUBSUB_CONNECTIONS,
    }
    if url.kind == "cluster":
        per_node = common["max_connections"]
        nodes = [ClusterNode(host, port, max_connections=per_node) for host, port in url.hosts]
        return Clients(_WaitingCluster(turns, startup_nodes=nodes, ssl=url.tls, **common))
    common["retry"] = Retry(NoBackoff(), 0)
    if url.kind == "sentinel":
        timeouts = {k: v for k, v in common.items() if k.startswith("socket_")}
        sentinel = Sentinel(list(url.hosts), sentinel_kwargs=timeouts, **common)
        # as Sentinel.master_for builds its client, but one that takes turns
        kwargs = {**sentinel.connection_kwargs, "db": url.db, "is_master": True}
        pool = SentinelConnectionPool(url.service, sentinel, **kwargs)  # type: ignore[no-untyped-call]
        master = _WaitingRedis(turns, connection_pool=pool)
        master.auto_close_connection_pool = True  # the client owns (closes) the pool
        return Clients(master, tuple(sentinel.sentinels))
    if url.kind == "unix":
        return Clients(_WaitingRedis(turns, unix_socket_path=url.path, db=url.db, **common))
    host, port = url.hosts[0]
    return Clients(_WaitingRedis(turns, host=host, port=port, db=url.db, ssl=url.tls, **common))


class _Turns:
    """At most ``size`` commands at once; one beyond them waits for its turn up to
    ``timeout`` seconds, then raises PoolBusy."""

    __slots__ = ("_slots", "_timeout")

    def __init__(self, size: int, timeout: float) -> None:
        if size < 1 or not timeout > 0:
            raise ValueError(f"a pool needs a size >= 1 and a timeout > 0: {size}, {timeout}")
        self._slots = asyncio.Semaphore(size)
        self._timeout = timeout

    async def take(self) -> None:
        slots = self._slots
        if not slots.locked():
            await slots.acquire()  # free: returns at once
            return
        try:
            async with asyncio.timeout(self._timeout):
                await slots.acquire()
        except TimeoutError:
            raise PoolBusy(f"no connection came free within {self._timeout:g}s") from None

    def give_back(self) -> None:
        self._slots.release()


class _WaitingRedis(Redis):
    """A standalone or Sentinel-managed client whose commands take turns (``_Turns``).
    Pub/sub connections and pipelines take none: the pool's bound covers them."""

    def __init__(self, turns: _Turns, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._turns = turns

    async def execute_command(self, *args: EncodableT, **options: Any) -> Any:
        await self._turns.take()
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        finally:
            self._turns.give_back()


class _WaitingCluster(RedisCluster):
    """A Cluster client whose commands take turns (``_Turns``): with at most
    ``pool_size`` commands at once in all, no node's pool runs out (redis-py's Cluster
    node pools refuse a command at once when full)."""

    def __init__(self, turns: _Turns, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._turns = turns

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        await self._turns.take()
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self._turns.give_back()
