"""Fixtures of the backend conformance suite.

Every test here runs once per entry of ``BACKENDS``. An entry is a factory class (see
``factories.BackendFactory``) built with a key prefix unique to the test; adding a
backend means adding its factory class and one ``pytest.param`` line below. A factory
that makes only some contracts says which in ``contracts``; the tests of the others
are deselected for it. Finer: a test marked ``@pytest.mark.requires("history", …)``
needs those features of its backend, and is deselected for a factory whose
``features`` lack one (see ``factories.supports``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from parsec.auth.refresh import RefreshStore
from parsec.auth.revocation_store import RevocationStore
from parsec.channels.store import ChannelStore
from parsec.engine.broker import Broker
from parsec.engine.controller import Controller
from parsec.engine.presence import PresenceManager
from parsec.sinks.dlq import DLQ

from .factories import BackendFactory, MemoryBackend, MemoryClusterBackend, supports
from .nats_backend import NatsBackend
from .recorders import BrokerRecorder, ControlRecorder
from .redis_backend import RedisBackend

BACKENDS = [
    pytest.param(MemoryBackend, id="memory"),
    pytest.param(MemoryClusterBackend, id="memory-cluster"),
    pytest.param(RedisBackend, id="redis"),
    pytest.param(NatsBackend, id="nats"),
]

_HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*features): a conformance test needing backend features (history, "
        "idempotency); deselected for a backend factory without them",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (visibly) the tests of contracts a backend does not implement, and the
    tests needing features it lacks.

    A test in ``test_<contract>.py`` exercises that contract. A factory class lists the
    contracts it makes in a ``contracts`` attribute; one without it makes them all. A
    test marked ``requires(*features)`` runs only on factories that support them all.
    """
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        if _HERE not in item.path.parents:
            kept.append(item)
            continue
        callspec = getattr(item, "callspec", None)
        factory = callspec.params.get("backend") if callspec is not None else None
        contracts: frozenset[str] | None = getattr(factory, "contracts", None)
        contract = item.path.stem.removeprefix("test_")
        needed = [f for mark in item.iter_markers("requires") for f in mark.args]
        unmade = contracts is not None and contract not in contracts
        if unmade or not all(supports(factory, f) for f in needed):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[BackendFactory]:
    """A factory for the backend under test; closes what it made after the test."""
    make: Callable[[str], BackendFactory] = request.param
    factory = make(f"parsec-conformance-{uuid.uuid4().hex[:12]}")
    try:
        yield factory
    finally:
        await factory.aclose()


@pytest.fixture
def channel() -> str:
    """A channel name no other test uses."""
    return f"conformance:{uuid.uuid4().hex[:12]}"


@pytest.fixture
def recorder() -> BrokerRecorder:
    """Records what the ``broker`` fixture delivers."""
    return BrokerRecorder()


@pytest.fixture
async def broker(backend: BackendFactory, recorder: BrokerRecorder) -> Broker:
    """A started broker delivering to ``recorder``."""
    instance = backend.broker()
    await instance.start(recorder)
    return instance


@pytest.fixture
def presence(backend: BackendFactory) -> PresenceManager:
    """A presence manager of the backend under test."""
    return backend.presence()


@pytest.fixture
def channel_store(backend: BackendFactory) -> ChannelStore:
    """A channel store of the backend under test."""
    return backend.channel_store()


@pytest.fixture
def refresh_store(backend: BackendFactory) -> RefreshStore:
    """A refresh-rotation store of the backend under test."""
    return backend.refresh_store()


@pytest.fixture
def revocation_store(backend: BackendFactory) -> RevocationStore:
    """A revocation store of the backend under test."""
    return backend.revocation_store()


@pytest.fixture
def control_recorder() -> ControlRecorder:
    """Records the commands the ``controller`` fixture receives."""
    return ControlRecorder()


@pytest.fixture
async def controller(backend: BackendFactory, control_recorder: ControlRecorder) -> Controller:
    """A started controller delivering to ``control_recorder``."""
    instance = backend.controller()
    await instance.start(control_recorder)
    return instance


@pytest.fixture
async def dlq(backend: BackendFactory) -> AsyncIterator[DLQ]:
    """An empty dead-letter queue of the backend under test; closed after the test."""
    instance = backend.dlq()
    try:
        yield instance
    finally:
        await instance.aclose()
