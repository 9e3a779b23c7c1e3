"""Deprecated: the handoff protocol moved to :mod:`parsec.server.handoff`.

``parsec.server.protocol.http_protocol`` (and the limits beside it) keep working, with a
DeprecationWarning, until the next minor release; import them from
:mod:`parsec.server.handoff` instead.
"""

from __future__ import annotations

import warnings
from typing import Any

from parsec.server import handoff

__all__ = list(handoff.__all__)


def __getattr__(name: str) -> Any:
    if name in handoff.__all__:
        warnings.warn(
            f"parsec.server.protocol.{name} moved to parsec.server.handoff.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(handoff, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
