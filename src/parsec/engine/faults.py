"""Problems clients cause: always counted, logged only within a budget.

A client that sends garbage — malformed or oversized frames, commands the protocol does
not allow, invalid tokens — must not be able to flood the log. Every such problem is
counted by reason in :attr:`ClientFaults.counts` (what metrics export), and logged on
the ``parsec.clients`` logger at INFO only while two budgets last:

- per connection: :data:`LINES_PER_CONNECTION` lines;
- per node: a bucket of :data:`NODE_BURST` lines, refilled at :data:`NODE_LINES_PER_SECOND`
  (most problems close their connection, so a flood comes over many connections).

Past either budget a problem is logged at DEBUG, and the next INFO line says how many
were not. ERROR is for the server's own faults, never for what a client sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final, Protocol

from parsec.engine.bucket import TokenBucket

__all__ = [
    "FRAME_TOO_BIG",
    "INVALID_TOKEN",
    "LINES_PER_CONNECTION",
    "MALFORMED_COMMAND",
    "NODE_BURST",
    "NODE_LINES_PER_SECOND",
    "PROTOCOL_VIOLATION",
    "REASONS",
    "REFUSED_COMMAND",
    "WEBSOCKET_PROTOCOL_ERROR",
    "ClientFaults",
]

log = logging.getLogger("parsec.clients")

MALFORMED_COMMAND: Final = "malformed_command"
"""A message that is not a command: bad JSON, bad UTF-8, a wrongly typed field (3501)."""
PROTOCOL_VIOLATION: Final = "protocol_violation"
"""A well-formed command the protocol does not allow there: before connect, a second
connect, an unknown or empty command, an id out of range, an unasked pong (3501)."""
FRAME_TOO_BIG: Final = "frame_too_big"
"""A WebSocket message over ``server.max_frame_size`` (1009)."""
WEBSOCKET_PROTOCOL_ERROR: Final = "websocket_protocol_error"
"""Broken WebSocket framing: bad fragments, bad opcodes, bad lengths (1002)."""
REFUSED_COMMAND: Final = "refused_command"
"""A command refused with 102 unknown channel or 103 permission denied; the log line
names the channel and the rule that refused it."""
INVALID_TOKEN: Final = "invalid_token"
"""A connection or subscription token that does not verify (3500 or 103)."""
REASONS: Final = (
    MALFORMED_COMMAND,
    PROTOCOL_VIOLATION,
    FRAME_TOO_BIG,
    WEBSOCKET_PROTOCOL_ERROR,
    INVALID_TOKEN,
    REFUSED_COMMAND,
)

LINES_PER_CONNECTION: Final = 3
NODE_BURST: Final = 20
NODE_LINES_PER_SECOND: Final = 0.1


class Budgeted(Protocol):
    """What carries a per-connection budget (a Session)."""

    fault_lines: int


class ClientFaults:
    """A node's count of client-caused problems, by reason, and its log budget."""

    __slots__ = ("_bucket", "_suppressed", "counts")

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.counts: dict[str, int] = dict.fromkeys(REASONS, 0)
        """Problems seen since the node started, by reason (every reason present)."""
        self._bucket = TokenBucket(NODE_BURST, NODE_LINES_PER_SECOND, clock=clock)
        self._suppressed = 0

    def report(self, reason: str, owner: Budgeted | None, msg: str, *args: object) -> None:
        """Count one problem of ``reason`` and log ``msg % args`` at INFO if both the
        connection's (``owner``'s, when known) and the node's budgets allow, else at
        DEBUG. ``reason`` is one of :data:`REASONS`."""
        self.counts[reason] += 1
        if owner is not None:
            if owner.fault_lines <= 0:
                self._quiet(msg, args)
                return
            owner.fault_lines -= 1
        if not self._bucket.take():
            self._quiet(msg, args)
            return
        if self._suppressed:
            msg += " (%d more client problems since the last line were logged at DEBUG only)"
            args = (*args, self._suppressed)
            self._suppressed = 0
        log.info(msg, *args)

    def _quiet(self, msg: str, args: tuple[object, ...]) -> None:
        self._suppressed += 1
        log.debug(msg, *args)
