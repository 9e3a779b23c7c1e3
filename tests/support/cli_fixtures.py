"""Fixtures of the command-line tests (a pytest plugin, loaded by tests/conftest.py).

``hermetic`` is not autouse: a module that runs the CLI asks for it with
``pytestmark = pytest.mark.usefixtures("hermetic")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_runs import Proc, isolate, processes


@pytest.fixture
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the test in its own directory with no PARSEC_* variables set."""
    isolate(tmp_path, monkeypatch)


@pytest.fixture
def spawn() -> Iterator[Callable[..., Proc]]:
    """Start ``python -m parsec`` processes that are killed after the test."""
    with processes() as start:
        yield start
