"""Redis URLs: every supported form parses, bad ones fail with a clear message that
never shows the password, and each form builds the right redis-py client.

Sentinel and Cluster deployments cannot run here: their tests stop at the parsed URL
and the client built from it (nothing connects until first use)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.asyncio.sentinel import SentinelConnectionPool

from parsec.backends.redis import from_url
from parsec.backends.redis.urls import (
    PUBSUB_CONNECTIONS,
    RedisURL,
    make_clients,
    parse_url,
    redact,
)
from parsec.errors import ParsecError
from parsec.options import DEFAULT_POOL_SIZE


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost", RedisURL("tcp", (("localhost", 6379),))),
        ("REDIS://10.0.0.5:6380/2", RedisURL("tcp", (("10.0.0.5", 6380),), db=2)),
        ("redis://[::1]:7000/", RedisURL("tcp", (("::1", 7000),))),
        ("redis://[::1]", RedisURL("tcp", (("::1", 6379),))),
        (
            "rediss://app:p%40ss%3Aw@cache.example:6380/1",
            RedisURL(
                "tcp", (("cache.example", 6380),), db=1, username="app", password="p@ss:w", tls=True
            ),
        ),
        ("redis://:secret@h", RedisURL("tcp", (("h", 6379),), password="secret")),
        ("redis://user@h", RedisURL("tcp", (("h", 6379),), username="user")),
        (
            "redis://h?socket_timeout=0.5&socket_connect_timeout=1&client_name=node-1",
            RedisURL(
                "tcp",
                (("h", 6379),),
                socket_timeout=0.5,
                socket_connect_timeout=1.0,
                client_name="node-1",
            ),
        ),
        ("redis://h?db=4", RedisURL("tcp", (("h", 6379),), db=4)),
        ("unix:///run/redis.sock", RedisURL("unix", path="/run/redis.sock")),
        (
            "unix://:pw@/tmp/r.sock?db=3",
            RedisURL("unix", path="/tmp/r.sock", db=3, password="pw"),
        ),
        (
            "redis+sentinel://s1:26380,s2/mymaster/2",
            RedisURL("sentinel", (("s1", 26380), ("s2", 26379)), service="mymaster", db=2),
        ),
        (
            "redis+sentinel://s1/mymaster",
            RedisURL("sentinel", (("s1", 26379),), service="mymaster"),
        ),
        (
            "redis+cluster://n1:7000,n2:7001,[::1]",
            RedisURL("cluster", (("n1", 7000), ("n2", 7001), ("::1", 6379))),
        ),
        ("redis+cluster://n1/0", RedisURL("cluster", (("n1", 6379),))),
    ],
)
def test_supported_urls_parse(url: str, expected: RedisURL) -> None:
    """Each supported form gives its hosts, database, credentials, TLS and options."""
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("127.0.0.1:6379", "expected <scheme>://"),
        ("http://h:6379", "unknown scheme 'http'"),
        ("redis://", "expected a host"),
        ("redis://:6379", "missing host"),
        ("redis://h:port", "port must be a number from 1 to 65535, not 'port'"),
        ("redis://h:0", "port must be a number"),
        ("redis://h:65536", "port must be a number"),
        ("redis://h:\uff16\uff13\uff17\uff19", "port must be a number"),  # fullwidth digits
        ("redis://[::1", "malformed IPv6 address"),
        ("redis://[::1]6379", "malformed IPv6 address"),
        ("redis://h/x", "database must be a number >= 0, not 'x'"),
        ("redis://h/-1", "database must be a number"),
        ("redis://h/0/extra", "database must be a number"),
        ("redis://h?db=", "database must be a number"),
        ("redis://h/1?db=2", "give the database once"),
        ("redis://a,b", "one host only; for several use redis+cluster:// or redis+sentinel://"),
        ("redis+sentinel://s1", "expected the service name"),
        ("redis+sentinel://s1/", "expected the service name"),
        ("redis+cluster://n1/1", "Redis Cluster has only database 0"),
        ("redis+cluster://n1?db=2", "Redis Cluster has only database 0"),
        ("unix://host/run/redis.sock", "a unix socket URL has no host"),
        ("unix://", "expected the socket path"),
        ("redis://h?foo=1", "unknown option 'foo'; known: client_name, db,"),
        ("redis://h?db", "malformed options 'db'"),
        ("redis://h?db=1&db=2", "option 'db' given twice"),
        ("redis://h?socket_timeout=0", "socket_timeout must be a number of seconds > 0"),
        ("redis://h?socket_timeout=soon", "socket_timeout must be a number of seconds"),
        ("redis://h?socket_connect_timeout=inf", "socket_connect_timeout must be a number"),
        ("redis://h?socket_timeout=nan", "socket_timeout must be a number"),
        ("redis://h#top", "a fragment (#…) has no meaning here"),
    ],
)
def test_malformed_urls_name_the_problem(url: str, problem: str) -> None:
    """A malformed URL raises PARSEC_INVALID_ARGUMENT quoting the URL and the problem."""
    with pytest.raises(ParsecError) as caught:
        parse_url(url)

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"
    assert problem in caught.value.message
    assert repr(url) in caught.value.message


def test_errors_never_show_the_password() -> None:
    """The password of a malformed URL is replaced by *** in the error message."""
    with pytest.raises(ParsecError) as caught:
        parse_url("redis://app:hunter2@h:notaport/0")

    assert "hunter2" not in str(caught.value)
    assert "redis://app:***@h:notaport/0" in caught.value.message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://app:hunter2@h/0", "redis://app:***@h/0"),
        ("redis://:hunter2@h", "redis://:***@h"),
        ("redis://app@h", "redis://app@h"),
        ("redis://h:6379", "redis://h:6379"),
        ("not a url", "not a url"),
    ],
)
def test_redact_hides_only_the_password(url: str, shown: str) -> None:
    """redact keeps everything but the password."""
    assert redact(url) == shown


def test_parsed_url_repr_hides_the_password() -> None:
    """A parsed URL's repr (as logs would show it) leaves the password out."""
    assert "hunter2" not in repr(parse_url("redis://:hunter2@h"))


async def test_standalone_url_builds_a_client_that_never_retries() -> None:
    """redis:// builds a Redis client with the URL's address, db, timeouts, credentials."""
    clients = make_clients(parse_url("redis://app:pw@h:6380/3?socket_timeout=1.5"))
    try:
        assert isinstance(clients.main, Redis)
        kwargs = clients.main.connection_pool.connection_kwargs
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("h", 6380, 3)
        assert (kwargs["username"], kwargs["password"]) == ("app", "pw")
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (1.5, 2.0)
        assert kwargs["retry"].get_retries() == 0
        assert clients.helpers == ()
    finally:
        await clients.main.aclose()


@pytest.mark.parametrize(
    "url",
    ["redis://h:6380/3", "rediss://h", "unix:///run/redis.sock", "redis+sentinel://s1/mymaster"],
)
async def test_every_client_bounds_its_pool(url: str) -> None:
    """A standalone, TLS, socket or Sentinel client's pool holds at most pool_size
    connections for commands plus the pub/sub ones (redis-py's default is 100)."""
    clients = make_clients(parse_url(url), pool_size=7, pool_timeout=1.5)
    try:
        assert isinstance(clients.main, Redis)
        assert clients.main.connection_pool.max_connections == 7 + PUBSUB_CONNECTIONS
    finally:
        await clients.main.aclose()
        for helper in clients.helpers:
            await helper.aclose()


async def test_the_default_pool_is_the_documented_one() -> None:
    """Without pool options a client's pool is bounded by broker.pool_size's default."""
    clients = make_clients(parse_url("redis://h"))
    try:
        assert isinstance(clients.main, Redis)
        assert clients.main.connection_pool.max_connections == (
            DEFAULT_POOL_SIZE + PUBSUB_CONNECTIONS
        )
    finally:
        await clients.main.aclose()


async def test_a_cluster_client_bounds_every_node_pool() -> None:
    """A Cluster client's per-node pools hold pool_size connections plus the pub/sub
    ones, startup nodes included (redis-py's default is 100)."""
    clients = make_clients(parse_url("redis+cluster://n1:7000,n2:7001"), pool_size=7)
    try:
        assert isinstance(clients.main, RedisCluster)
        nodes = clients.main.nodes_manager.startup_nodes.values()
        assert {node.max_connections for node in nodes} == {7 + PUBSUB_CONNECTIONS}
    finally:
        await clients.main.aclose()


@pytest.mark.parametrize(("size", "timeout"), [(0, 5.0), (1, 0.0)])
def test_a_pool_needs_a_size_and_a_timeout(size: int, timeout: float) -> None:
    """A pool of no connection, or one that never waits, is refused."""
    with pytest.raises(ValueError, match="pool"):
        make_clients(parse_url("redis://h"), pool_size=size, pool_timeout=timeout)


async def test_tls_url_builds_a_tls_client() -> None:
    """rediss:// connects with TLS."""
    clients = make_clients(parse_url("rediss://h:6380"))
    try:
        assert isinstance(clients.main, Redis)
        assert clients.main.connection_pool.connection_class is SSLConnection
    finally:
        await clients.main.aclose()


async def test_unix_url_builds_a_socket_client() -> None:
    """unix:// connects to the socket path with the given db."""
    clients = make_clients(parse_url("unix:///run/redis.sock?db=2"))
    try:
        assert isinstance(clients.main, Redis)
        pool = clients.main.connection_pool
        assert pool.connection_class is UnixDomainSocketConnection
        assert (pool.connection_kwargs["path"], pool.connection_kwargs["db"]) == (
            "/run/redis.sock",
            2,
        )
    finally:
        await clients.main.aclose()


async def test_sentinel_url_builds_a_master_client_and_its_sentinels() -> None:
    """redis+sentinel:// asks the listed Sentinels for the service's master."""
    clients = make_clients(parse_url("redis+sentinel://:pw@s1:26380,s2/mymaster/1"))
    try:
        assert isinstance(clients.main, Redis)
        pool = clients.main.connection_pool
        assert isinstance(pool, SentinelConnectionPool)
        assert pool.service_name == "mymaster"
        assert (pool.connection_kwargs["db"], pool.connection_kwargs["password"]) == (1, "pw")
        sentinels = [
            (
                s.connection_pool.connection_kwargs["host"],
                s.connection_pool.connection_kwargs["port"],
            )
            for s in clients.helpers
        ]
        assert sentinels == [("s1", 26380), ("s2", 26379)]
        assert [s.connection_pool.connection_kwargs.get("password") for s in clients.helpers] == [
            None,
            None,
        ]
    finally:
        await clients.main.aclose()
        for sentinel in clients.helpers:
            await sentinel.aclose()


async def test_cluster_url_builds_a_cluster_client() -> None:
    """redis+cluster:// starts from the listed nodes."""
    clients = make_clients(parse_url("redis+cluster://n1:7000,n2:7001?client_name=a"))
    try:
        assert isinstance(clients.main, RedisCluster)
        assert set(clients.main.nodes_manager.startup_nodes) == {"n1:7000", "n2:7001"}
    finally:
        await clients.main.aclose()


@pytest.mark.parametrize("prefix", ["", "a b", "te{nant}", "parsec*", "x\n"])
def test_from_url_refuses_a_bad_key_prefix(prefix: str) -> None:
    """A key prefix that would break hash tags or key scans is refused before connecting."""
    with pytest.raises(ParsecError) as caught:
        from_url("redis://127.0.0.1:6379", key_prefix=prefix)

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"
    assert "key prefix" in caught.value.message


def test_from_url_refuses_a_bad_url() -> None:
    """A malformed URL fails from_url with PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as caught:
        from_url("redis://h:bad")

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"
