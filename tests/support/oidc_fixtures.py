"""Fixtures of the local OpenID provider (a pytest plugin, loaded by tests/conftest.py).

``served`` runs one provider per module; ``idp`` hands it to a test reset (one fresh
key, up, nothing counted). A module that needs another setup defines its own ``idp``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from oidc_provider import OIDCProvider, running_provider


@pytest.fixture(scope="module")
def served() -> Iterator[OIDCProvider]:
    """The module's provider, served on a loopback port until the module ends."""
    with running_provider() as provider:
        yield provider


@pytest.fixture
def idp(served: OIDCProvider) -> OIDCProvider:
    """The module's provider, reset: one fresh key, up, nothing counted."""
    served.reset()
    return served
