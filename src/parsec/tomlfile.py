"""What every reader of a configuration table checks, in one place below both readers:
:mod:`parsec.config` (the file, environment and flags) and :mod:`parsec.sinks.config`
(``[sinks.<name>]`` and ``[sink_retry]``). Re-exported by :mod:`parsec.config`, where
users find :class:`ConfigError` and :func:`parse_duration`."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "ConfigError",
    "expect_table",
    "parse_duration",
    "reject_unknown",
    "type_name",
    "wrong_type",
]


class ConfigError(Exception):
    """Bad configuration. ``key`` names where (a key path, an environment variable or a
    dotted override key), ``code`` is a stable identifier of the problem and ``problem``
    says what is wrong in words."""

    def __init__(self, key: str, problem: str, *, code: str = "invalid_value") -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem
        self.code = code


_DURATION_RE: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|h|m|s)")
_DURATION_UNITS: Final[Mapping[str, float]] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_HINT: Final = 'use e.g. "300s", "5m", "1h30m", "250ms" or a number of seconds'


def parse_duration(value: object, key: str) -> float:
    """Seconds in ``value``: a non-negative number, or a string of ``<number><unit>``
    parts with units ``ms``, ``s``, ``m``, ``h`` (``"1h30m"``), or a plain number string.

    Raises ``ConfigError(key, …)`` with code ``bad_duration`` for anything else,
    including negative, infinite and NaN values and booleans.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(
            key,
            f"expected a duration, got {type_name(value)} ({_DURATION_HINT})",
            code="bad_duration",
        )
    seconds = _duration_seconds(value.strip()) if isinstance(value, str) else float(value)
    if seconds is None or math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ConfigError(
            key, f"invalid duration {value!r} ({_DURATION_HINT})", code="bad_duration"
        )
    return seconds


def _duration_seconds(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        pass
    matches = list(_DURATION_RE.finditer(text))
    if not matches or "".join(m.group(0) for m in matches) != text:
        return None
    return sum(float(m.group(1)) * _DURATION_UNITS[m.group(2)] for m in matches)


def reject_unknown(table: Mapping[str, Any], known: tuple[str, ...], path: str) -> None:
    for name in table:
        if name not in known:
            key = f"{path}.{name}" if path else name
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(key, f"unknown key{hint}", code="unknown_key")


def expect_table(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise wrong_type(key, "a table", value)
    return value


def wrong_type(key: str, expected: str, value: object) -> ConfigError:
    return ConfigError(key, f"expected {expected}, got {type_name(value)}", code="wrong_type")


def type_name(value: object) -> str:
    names = {
        bool: "boolean",
        int: "integer",
        float: "float",
        str: "string",
        list: "array",
        dict: "table",
    }
    for cls, name in names.items():
        if isinstance(value, cls):
            return name
    return type(value).__name__
