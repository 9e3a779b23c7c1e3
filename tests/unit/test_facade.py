"""Parsec's lifecycle (new → running → closed, a failed start closes what it opened)
and its one JSON encoding path (publish and publish_or_sink refuse the same values)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from parsec import AuthOptions, Options, Parsec, ParsecError
from parsec.auth.keyring import KeyRing
from parsec.auth.keyring_store import MemoryKeyRingStore, StoredKeyRing
from parsec.auth.refresh import MemoryRefreshStore
from parsec.auth.revocation_store import MemoryRevocationStore, StoredRevocations
from parsec.channels.events import ChannelEvent
from parsec.facade import ParsecState
from parsec.services.keys import KeyService
from parsec.services.payload import UnencodableData, publication_bytes
from parsec.sinks.base import Message
from parsec.testing import serve_for_tests


class Down(Exception):
    """What the failing part of a test raises."""


class FailingBus:
    """A ChannelEventBus whose start fails: the channel manager's start fails with it."""

    async def start(self, deliver: Callable[[ChannelEvent], None]) -> None:
        raise Down("the event bus is down")

    async def publish(self, event: ChannelEvent) -> None:
        pass

    async def aclose(self) -> None:
        pass


class FailingRevocationStore(MemoryRevocationStore):
    """A revocation store that cannot be read: the revocations' start fails."""

    async def load(self) -> StoredRevocations:
        raise Down("the revocation store is down")


class FailingKeyRingStore(MemoryKeyRingStore):
    """A keyring store that cannot be read: the shared keyring's start fails."""

    async def load(self) -> StoredKeyRing | None:
        raise Down("the keyring store is down")


PARTS = ("keys", "node", "revocations", "manager", "channels", "delivery")
"""Parsec's parts, in the order ``start`` starts them."""


def spy_on_closes(parsec: Parsec) -> list[str]:
    """The names of the parts whose ``aclose`` ran, in the order they ran (each real
    ``aclose`` still runs)."""
    closed: list[str] = []

    def recording(name: str, close: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def aclose() -> None:
            closed.append(name)
            await close()

        return aclose

    for name in PARTS:
        part = getattr(parsec, name)
        part.aclose = recording(name, part.aclose)
    return closed


@pytest.mark.parametrize(
    ("make", "failing"),
    [
        (lambda: Parsec(keyring=KeyRing.in_memory(), keyring_store=FailingKeyRingStore()), "keys"),
        (lambda: Parsec(revocations=FailingRevocationStore()), "revocations"),
        (lambda: Parsec(channel_event_bus=FailingBus()), "manager"),
    ],
    ids=["keys", "revocations", "manager"],
)
async def test_a_failed_start_closes_what_it_opened_in_reverse_order(
    make: Callable[[], Parsec], failing: str
) -> None:
    """When step N fails, steps N..1 are closed in reverse order (the failing part too:
    it may be half-way started), later steps are never started, the error propagates
    and the instance is closed."""
    parsec = make()
    closed = spy_on_closes(parsec)
    with pytest.raises(Down):
        await parsec.start()
    opened = PARTS[: PARTS.index(failing) + 1]
    assert closed == list(reversed(opened))
    assert not parsec.node.running
    assert parsec.state is ParsecState.CLOSED
    with pytest.raises(RuntimeError, match="cannot go from closed to running"):
        await parsec.start()


async def test_the_identity_provider_keys_run_and_close_with_the_instance() -> None:
    """With auth.jwks_url the IdP's key source starts first (a provider that is down
    does not stop the start) and closes with the instance, also when a later part's
    start fails."""
    options = Options(auth=AuthOptions(jwks_url="http://127.0.0.1:9/certs"))
    async with Parsec(options) as parsec:
        keys = parsec.idp_keys
        assert keys is not None
        running = keys.state
    assert (running, keys.state) == (ParsecState.RUNNING, ParsecState.CLOSED)
    failing = Parsec(options, channel_event_bus=FailingBus())
    with pytest.raises(Down):
        await failing.start()
    assert failing.idp_keys is not None
    assert failing.idp_keys.state is ParsecState.CLOSED
    assert Parsec().idp_keys is None


async def test_a_failed_start_leaves_the_node_stopped() -> None:
    """The issue's case: an event bus whose start raises no longer leaves the node
    running (its sessions, its presence refresher)."""
    parsec = Parsec(channel_event_bus=FailingBus())
    with pytest.raises(Down):
        await parsec.start()
    assert not parsec.node.running
    with pytest.raises(RuntimeError, match="closed"):
        await parsec.node.start()


async def test_aclose_closes_every_part_once_in_reverse_order() -> None:
    """aclose closes what start started, last first; a second aclose does nothing."""
    parsec = Parsec()
    closed = spy_on_closes(parsec)
    states = [parsec.state]
    await parsec.start()
    states.append(parsec.state)
    await parsec.aclose()
    assert closed == list(reversed(PARTS))
    await parsec.aclose()
    assert closed == list(reversed(PARTS))
    states.append(parsec.state)
    assert states == [ParsecState.NEW, ParsecState.RUNNING, ParsecState.CLOSED]
    assert not parsec.node.running


async def test_start_after_close_raises_clearly() -> None:
    """A closed instance, started or not, cannot start: make a new one."""
    started = Parsec()
    async with started:
        pass
    never_started = Parsec()
    await never_started.aclose()
    for parsec in (started, never_started):
        with pytest.raises(
            RuntimeError,
            match=r"from closed to running: an instance starts once \(make a new one\)",
        ):
            await parsec.start()


async def test_start_twice_raises() -> None:
    async with Parsec() as parsec:
        with pytest.raises(RuntimeError, match="Parsec cannot go from running to running"):
            await parsec.start()
        assert parsec.node.running


async def test_a_part_that_fails_to_close_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing aclose is logged; the parts started before it still close."""
    parsec = Parsec()
    close_channels = parsec.channels.aclose

    async def broken() -> None:
        await close_channels()
        raise Down("cannot close")

    parsec.channels.aclose = broken  # type: ignore[method-assign]
    closed = spy_on_closes(parsec)
    await parsec.start()
    await parsec.aclose()
    assert closed == list(reversed(PARTS))
    assert not parsec.node.running
    assert "cannot close" in caplog.text


# --- one JSON encoding path ---------------------------------------------------------


@pytest.mark.parametrize("value", [object(), 1 + 2j, {"when": object()}])
async def test_publish_and_publish_or_sink_refuse_what_json_cannot_encode_alike(
    value: object,
) -> None:
    """Both raise UnencodableData: a ParsecError PARSEC_INVALID_ARGUMENT naming what
    could not be encoded, and a TypeError (what publish raised before)."""
    async with Parsec(Options()) as parsec:
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: parsec.publish("chat:lobby", value),
            lambda: parsec.publish_or_sink("chat:lobby", value, "mail", "a@b.c", Message()),
        ]
        for call in calls:
            with pytest.raises(UnencodableData) as refused:
                await call()
            assert isinstance(refused.value, ParsecError)
            assert isinstance(refused.value, TypeError)
            assert refused.value.code == "PARSEC_INVALID_ARGUMENT"
            assert "not JSON-encodable" in refused.value.message
            assert type(value).__name__ in refused.value.message


@pytest.mark.parametrize("data", [b"{not json", b""])
async def test_publish_and_publish_or_sink_refuse_bytes_that_are_not_json_alike(
    data: bytes,
) -> None:
    """Bytes must hold JSON: PARSEC_INVALID_ARGUMENT from both (not a TypeError)."""
    async with Parsec() as parsec:
        for call in (
            lambda: parsec.publish("chat:lobby", data),
            lambda: parsec.publish_or_sink("chat:lobby", data, "mail", "a@b.c", Message()),
        ):
            with pytest.raises(ParsecError) as refused:
                await call()
            assert refused.value.code == "PARSEC_INVALID_ARGUMENT"
            assert not isinstance(refused.value, TypeError)


def test_publication_bytes_checks_json_bytes_and_encodes_values() -> None:
    """Bytes holding JSON pass (without raw newlines); other values are encoded."""
    assert publication_bytes(b'{ "a" :\n1 }') == b'{ "a" :1 }'
    assert publication_bytes(memoryview(b"[1, 2]")) == b"[1, 2]"
    assert publication_bytes({"a": [1, "x"]}) == b'{"a":[1,"x"]}'


def test_an_empty_store_given_is_the_store_used() -> None:
    """An empty memory store is falsy (it has a length): given, it is still used."""
    revocations, refresh = MemoryRevocationStore(), MemoryRefreshStore()
    parsec = Parsec(revocations=revocations, refresh_store=refresh)
    assert parsec.revocations.store is revocations
    assert parsec.refresh_store is refresh


async def test_a_service_works_on_its_own() -> None:
    """A service needs only what its constructor takes (no Parsec): the keys service
    over a keyring in memory, as an async context manager."""
    async with KeyService(KeyRing.in_memory()) as keys:
        key = await keys.generate_key("es256")
        await keys.promote_key(key.id)
        assert keys.keyring.active.id == key.id
        with pytest.raises(ParsecError) as refused:
            await keys.generate_key("none")
        assert refused.value.code == "PARSEC_INVALID_ARGUMENT"
    await keys.aclose()


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is Unix-only")
async def test_run_reloads_the_keyring_on_sighup_until_it_returns() -> None:
    """While ``run`` serves, SIGHUP reloads the keyring from its file (serving.serve
    through the keys service); once it returns, the previous handler is back."""
    caught: list[int] = []
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: caught.append(signum))
    try:
        options = Options(auth=AuthOptions(keyring_poll=0))
        async with serve_for_tests(options) as server:
            keyring = server.parsec.keyring
            assert keyring.path is not None
            other = KeyRing.open(keyring.path.parent)
            other.promote(other.generate().id)
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(100):
                if keyring.active.id == other.active.id:
                    break
                await asyncio.sleep(0.01)
            assert keyring.active.id == other.active.id
            assert caught == []
        os.kill(os.getpid(), signal.SIGHUP)
        assert caught == [signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, previous)


async def test_aclose_while_starting_stops_the_start() -> None:
    """aclose during start (here: while the revocations start) closes what started,
    and start then raises instead of starting the parts after it."""
    parsec = Parsec()
    closed = spy_on_closes(parsec)
    start_revocations = parsec.revocations.start

    async def closing_meanwhile(*args: Any, **kwargs: Any) -> None:
        await start_revocations(*args, **kwargs)
        await parsec.aclose()

    parsec.revocations.start = closing_meanwhile  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="closed while it was starting"):
        await parsec.start()
    assert closed == ["revocations", "node", "keys"]
    assert parsec.state is ParsecState.CLOSED
