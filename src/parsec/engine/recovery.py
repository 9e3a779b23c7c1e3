"""The recovery decision: can a client's missed publications be returned whole?"""

from __future__ import annotations

from parsec.engine.broker import HistoryResult
from parsec.engine.types import Publication

__all__ = ["recovered_publications"]


def recovered_publications(
    since_offset: int, since_epoch: str, history: HistoryResult
) -> list[Publication] | None:
    """The publications after ``since_offset`` if they form the complete, contiguous
    tail of the stream in the same epoch; None otherwise.

    Never returns a partial set: when the stream dropped some of them (size or TTL),
    or the epoch changed, or more were missed than the read limit returned, the
    answer is None and the client is told ``recovered: false``.
    """
    top = history.position
    if since_epoch and since_epoch != top.epoch:
        return None
    pubs = history.publications
    if not pubs:
        return [] if since_offset == top.offset else None
    if pubs[0].offset != since_offset + 1 or pubs[-1].offset != top.offset:
        return None
    return pubs
