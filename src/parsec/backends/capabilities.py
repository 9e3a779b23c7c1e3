"""What the backends behind a broker URL can do, known before anything connects.

The Redis and memory backends implement every contract. The NATS broker (``nats://``,
``tls://``) fans out over core NATS and keeps no history: channel options that need
history (history itself, recovery, positioning) cannot work on it, so a configuration
that asks for them is refused at load time (:func:`history_conflict`) rather than
failing on the first publish. The built-in ``public`` and ``private`` namespaces, which
the operator did not write, keep no history on such a broker
(:func:`parsec.options.builtin_namespaces`).
"""

from __future__ import annotations

from typing import Final

from parsec.channels.options import ChannelOptions
from parsec.options import Options

__all__ = ["NATS_SCHEMES", "history_conflict", "keeps_history", "needs_history"]

NATS_SCHEMES: Final = ("nats://", "tls://")
"""URL schemes of the NATS backends."""

_HISTORY_FLAGS: Final = (
    "force_recovery",
    "allow_recovery",
    "force_positioning",
    "allow_positioning",
)


def keeps_history(url: str) -> bool:
    """Whether the broker at ``url`` keeps channel history (all but NATS do)."""
    return not url.startswith(NATS_SCHEMES)


def needs_history(options: ChannelOptions) -> str | None:
    """The first option of ``options`` that needs a broker with history, else None."""
    if options.history_enabled:
        return "history_size"
    return next((flag for flag in _HISTORY_FLAGS if getattr(options, flag)), None)


def history_conflict(options: Options) -> tuple[str, str] | None:
    """``(key, problem)`` for the first channel options that need history while the
    broker keeps none; None when the configuration fits its broker.

    ``key`` is a config path (``namespaces[1].force_recovery``,
    ``without_namespace.history_size``). The built-in namespaces never conflict: they
    adapt to the broker."""
    if keeps_history(options.broker.url):
        return None
    why = "which the NATS broker (broker.url nats://…) does not keep"
    tables: list[tuple[str, ChannelOptions]] = [
        (f"namespaces[{index}]", namespace) for index, namespace in enumerate(options.namespaces)
    ]
    tables.append(("without_namespace", options.without_namespace))
    for path, table in tables:
        option = needs_history(table)
        if option is not None:
            return (
                f"{path}.{option}",
                f"needs channel history, {why}: turn it off or use a Redis broker",
            )
    return None
