"""The Transport contract: how a Session writes to its connection.

A Session never awaits a write. It hands encoded messages to ``write``, which queues
them; the transport coalesces whatever is queued into as few frames as it can (JSON
messages joined by ``\\n``). This is where most per-message cost is saved under load.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Transport"]


class Transport(Protocol):
    """One client connection's writer.

    Guarantees:

    * Messages are sent in the order ``write`` was called, never split or merged into
      one another; several may share one frame.
    * ``write`` never blocks. It returns False, and queues nothing, when the bytes
      queued but not yet sent would exceed the transport's limit; the session then
      disconnects the client as slow (3008).
    * ``close`` sends what was queued before it, then closes with ``code`` and
      ``reason``. It is idempotent and never blocks; writes after it are dropped.
    """

    @property
    def name(self) -> str:
        """The transport's name as metrics and logs report it (``websocket``, …)."""

    def write(self, message: bytes) -> bool:
        """Queue one encoded message (without a trailing newline)."""

    def close(self, code: int, reason: str) -> None:
        """Flush, then close the connection with a close code and a reason."""
