"""Process-wide tuning for a process whose job is serving Parsec.

``parsec serve`` applies it once the server is ready. An application that embeds
Parsec and runs it with ``Parsec.run`` owns its process and decides for itself; it
can call ``tune_gc`` the same way.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_gc"]

GC_THRESHOLDS = (50_000, 20, 100)
"""Generation thresholds while serving (CPython's defaults are 700, 10, 10).

A fan-out allocates a few short-lived objects per subscriber per message; with the
default 700 the collector runs every few hundred deliveries and, often enough, walks
the older generations holding every connection's objects, which stalls delivery for
tens of milliseconds (the fan-out p99 in docs/performance.md). Reference counting frees
nearly all of those objects anyway; the collector is only for cycles."""


def tune_gc() -> None:
    """Collect once, move every object alive now (modules, the app, its
    configuration) out of the collector's view with ``gc.freeze``, and raise the
    thresholds to ``GC_THRESHOLDS``. Idempotent; cycles are still collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
