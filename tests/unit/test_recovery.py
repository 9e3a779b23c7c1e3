"""recovered_publications: the recovery decision, as a table and against a model."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsec.engine.broker import HistoryResult
from parsec.engine.recovery import recovered_publications
from parsec.engine.types import Publication, StreamPosition

EPOCH = "current"


def pubs(*offsets: int) -> list[Publication]:
    return [Publication(data=msgspec.Raw(b"%d" % o), offset=o) for o in offsets]


def read(top: int, *offsets: int, epoch: str = EPOCH) -> HistoryResult:
    """What a broker read returns: the given publications and the top position."""
    return HistoryResult(pubs(*offsets), StreamPosition(top, epoch))


@pytest.mark.parametrize(
    ("since_offset", "since_epoch", "history", "expected"),
    [
        (0, EPOCH, read(0), []),
        (3, EPOCH, read(3), []),
        (2, EPOCH, read(5, 3, 4, 5), [3, 4, 5]),
        (0, EPOCH, read(2, 1, 2), [1, 2]),
        (4, EPOCH, read(5, 5), [5]),
        (2, "", read(4, 3, 4), [3, 4]),
        (0, "", read(0), []),
        (2, "older", read(4, 3, 4), None),
        (3, "older", read(3), None),
        (1, EPOCH, read(5, 3, 4, 5), None),
        (1, EPOCH, read(4), None),
        (2, EPOCH, read(6, 3, 4), None),
        (6, EPOCH, read(4), None),
    ],
    ids=[
        "fresh-stream",
        "up-to-date",
        "missed-tail",
        "missed-everything",
        "missed-one",
        "no-epoch-yet",
        "no-epoch-fresh-stream",
        "epoch-changed",
        "epoch-changed-up-to-date",
        "size-dropped-some",
        "ttl-dropped-all",
        "read-limit-cut-tail",
        "client-ahead-of-stream",
    ],
)
def test_recovery_decision(
    since_offset: int, since_epoch: str, history: HistoryResult, expected: list[int] | None
) -> None:
    """Recovery returns the whole contiguous tail after the client's position, or None."""
    result = recovered_publications(since_offset, since_epoch, history)

    assert (None if result is None else [p.offset for p in result]) == expected


def test_recovered_publications_are_the_ones_read() -> None:
    """The publications returned are the history's own, data included."""
    history = read(3, 2, 3)

    result = recovered_publications(1, EPOCH, history)

    assert result == history.publications


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, str, HistoryResult, int, int, int]:
    """A stream, what it still keeps, a client position and a broker read of it.

    Returns (since_offset, since_epoch, history read, top, first kept offset, read
    limit)."""
    top = draw(st.integers(min_value=0, max_value=40))
    first_kept = draw(st.integers(min_value=1, max_value=top + 1))
    since = draw(st.integers(min_value=0, max_value=45))
    limit = draw(st.one_of(st.just(-1), st.integers(min_value=1, max_value=45)))
    since_epoch = draw(st.sampled_from([EPOCH, "", "older"]))
    after = [o for o in range(first_kept, top + 1) if o > since]
    if limit > 0:
        after = after[:limit]
    return since, since_epoch, read(top, *after), top, first_kept, limit


@given(scenario=scenarios())
def test_recovery_matches_the_model(
    scenario: tuple[int, str, HistoryResult, int, int, int],
) -> None:
    """Recovery succeeds exactly when the model says nothing missed is lost or unread."""
    since, since_epoch, history, top, first_kept, limit = scenario
    missed = list(range(since + 1, top + 1))
    recoverable = (
        since_epoch in (EPOCH, "")
        and since <= top
        and (not missed or first_kept <= missed[0])
        and (limit < 0 or len(missed) <= limit)
    )

    result = recovered_publications(since, since_epoch, history)

    assert (None if result is None else [p.offset for p in result]) == (
        missed if recoverable else None
    )
