"""Fixtures of the backend conformance suite.

Every test here runs once per entry of ``BACKENDS``. An entry is a factory class (see
``factories.BackendFactory``) built with a key prefix unique to the test; adding a
backend means adding its factory class and one ``pytest.param`` line below.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from parsec.auth.refresh import RefreshStore
from parsec.auth.revocation import RevocationStore
from parsec.channels.store import ChannelStore
from parsec.engine.broker import Broker
from parsec.engine.controller import Controller
from parsec.engine.presence import PresenceManager

from .factories import BackendFactory, MemoryBackend
from .recorders import BrokerRecorder, ControlRecorder

BACKENDS = [
    pytest.param(MemoryBackend, id="memory"),
]


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
