"""What the runner hands the load generator, and what it hands back (JSON files).

Both sides import these Structs, so the contract between the two processes is checked
by msgspec on decode: a malformed spec is refused with a message naming the field.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = ["Metric", "Result", "Spec", "Target"]

Metric = float | int | None
"""A headline number; None when the server could not produce it (stated in ``notes``)."""

AdapterName = Literal["centrifuge", "socketio", "broadcaster", "limit"]


class Target(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The server under test, as the load generator reaches it."""

    adapter: AdapterName
    """The wire format the server speaks (one adapter per format)."""
    host: str
    port: int
    pid: int
    """The server process, read from ``/proc/<pid>`` (with its descendants) for CPU and
    RSS."""
    hmac_secret: str
    """The HS256 secret connection tokens are signed with."""
    publish_path: str | None = None
    """HTTP path that publishes one message (JSON ``{"channel", "data"}``), if any."""
    batch_path: str | None = None
    """HTTP path of the Centrifugo ``batch`` method, if the server has one."""
    api_key: str | None = None
    workers: int = 1
    """How many processes serve the port: 1, or that many descendants of ``pid``
    sharing it (SO_REUSEPORT)."""


class Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One workload against one server."""

    workload: str
    target: Target
    params: dict[str, Any]
    """The workload's parameters; each workload decodes them into its own Struct."""


class Result(msgspec.Struct, forbid_unknown_fields=True):
    """What one workload measured against one server."""

    metrics: dict[str, Metric]
    """Headline numbers (the report's tables and charts read these)."""
    details: dict[str, Any] = {}
    """Everything else worth keeping: per-step numbers, error counts."""
    notes: list[str] = []
    """Plain-language caveats (lost connections, steps not reached)."""
