"""Fixtures of the fake GitHub (a pytest plugin, loaded by tests/conftest.py).

``github_served`` runs one fake per module; ``fake_github`` hands it to a test reset
(the app, alice and bob, ``login_as`` alice, nothing counted or overridden).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_github import FakeGitHub, running_github


@pytest.fixture(scope="module")
def github_served() -> Iterator[FakeGitHub]:
    """The module's fake GitHub, served on a loopback port until the module ends."""
    with running_github() as github:
        yield github


@pytest.fixture
def fake_github(github_served: FakeGitHub) -> FakeGitHub:
    """The module's fake GitHub, reset."""
    github_served.reset()
    return github_served
