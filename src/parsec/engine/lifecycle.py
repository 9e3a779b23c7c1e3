"""Lifecycle states: what an engine object can be, and how it may move on.

Every object with a lifecycle keeps its state in an :class:`enum.Enum` and moves it
only through :func:`advance`, against a table of the transitions it allows. An illegal
transition is a bug in the caller, not a client's doing: it raises
:class:`IllegalTransition` (a ``RuntimeError``) naming the object and both states.

Most owners of I/O run once — :class:`~parsec.engine.node.Node`, the ``Parsec``
facade, the delivery queue — and share :class:`RunState` and :data:`RUN_TRANSITIONS`;
a :class:`~parsec.engine.session.Session` and the ASGI writer have tables of their own.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

__all__ = ["RUN_TRANSITIONS", "IllegalTransition", "RunState", "advance"]

S = TypeVar("S", bound=enum.Enum)


class IllegalTransition(RuntimeError):
    """A lifecycle state asked to move where its table does not allow (a bug)."""


def advance(
    what: str, current: S, to: S, allowed: Mapping[S, frozenset[S]], *, hint: str = ""
) -> S:
    """``to``, when ``allowed`` lets ``what`` move there from ``current``; else raise
    :class:`IllegalTransition`, saying which move was refused (and ``hint``, what to do
    instead, when given)."""
    if to not in allowed.get(current, frozenset()):
        refused = f"{what} cannot go from {current.value} to {to.value}"
        raise IllegalTransition(f"{refused}: {hint}" if hint else refused)
    return to


class RunState(enum.Enum):
    """NEW → RUNNING → CLOSED, once; an object never started may close (NEW → CLOSED)."""

    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


RUN_TRANSITIONS: Mapping[RunState, frozenset[RunState]] = {
    RunState.NEW: frozenset({RunState.RUNNING, RunState.CLOSED}),
    RunState.RUNNING: frozenset({RunState.CLOSED}),
    RunState.CLOSED: frozenset(),
}
