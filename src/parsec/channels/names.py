"""Parsec's channel name grammar (parsec-reference.md §3):

    <visibility>:<app>.<domain>[.<id>][.<topic>]

``visibility`` is ``public`` or ``private``; there is exactly one ``:``; after it come 2 to 4
dot-separated components, each non-empty and made of ``[a-z0-9_-]`` only. A private channel
must have an ``id``. This module is the only validator of that grammar: every valid name
parses, ``str()`` of the result gives the name back, and anything else raises
:class:`InvalidChannelName` with a message saying what is wrong.

It is also where the characters every channel name may hold are decided, whatever its
namespace (:func:`has_safe_characters`): printable ASCII, space included. Control
characters (``\x00``-``\x1f``, ``\x7f``) would break log lines and are refused on every
path; non-ASCII is refused as Centrifugo refuses it. Characters NATS subjects reserve
(``.``, ``*``, ``>``, space) stay allowed: the NATS backend escapes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Final

from parsec.engine.channel import has_safe_characters

__all__ = [
    "NAME_REGEX",
    "PRIVATE_NAME_REGEX",
    "PUBLIC_NAME_REGEX",
    "VISIBILITIES",
    "ChannelName",
    "InvalidChannelName",
    "has_safe_characters",
    "is_valid_name",
    "parse_name",
    "require_name",
]

VISIBILITIES: Final = frozenset({"public", "private"})
"""The two visibility prefixes, which are also Parsec's two built-in namespaces."""

_COMPONENT: Final = re.compile(r"[a-z0-9_-]+")
_MIN_COMPONENTS: Final = 2
_MAX_COMPONENTS: Final = 4

_C: Final = "[a-z0-9_-]+"
PUBLIC_NAME_REGEX: Final = rf"^public:{_C}\.{_C}(?:\.{_C}){{0,2}}$"
"""The public names of the grammar, as a regular expression for the OpenAPI document
(ECMA-262 syntax, which Python's ``re.fullmatch`` reads the same way)."""
PRIVATE_NAME_REGEX: Final = rf"^private:{_C}\.{_C}\.{_C}(?:\.{_C})?$"
"""The private names of the grammar (an ``id`` is required), as a regular expression."""
NAME_REGEX: Final = f"^(?:{PUBLIC_NAME_REGEX[1:-1]}|{PRIVATE_NAME_REGEX[1:-1]})$"
"""Every name of the grammar, as a regular expression: what :func:`is_valid_name`
accepts, for documents that cannot call it."""


class InvalidChannelName(ValueError):
    """A string that is not a Parsec channel name; the message says why."""

    code: ClassVar[str] = "PARSEC_CHANNEL_INVALID"


@dataclass(frozen=True, slots=True)
class ChannelName:
    """A valid channel name, split into its components.

    Construction validates, so every instance is a valid name and
    ``parse_name(str(name)) == name`` always holds. ``topic`` needs ``id`` (a name with three
    components has an ``id``, not a ``topic``), and ``private`` names need ``id``.

    Raises:
        InvalidChannelName: a component or the visibility breaks the grammar.
    """

    visibility: str
    app: str
    domain: str
    id: str | None = None
    topic: str | None = None

    def __post_init__(self) -> None:
        _check_visibility(self.visibility)
        for position, component in enumerate(self._components(), start=1):
            _check_component(position, component)
        if self.topic is not None and self.id is None:
            raise InvalidChannelName("a channel name with a <topic> must also have an <id>")
        if self.visibility == "private" and self.id is None:
            raise InvalidChannelName("private channel names must include an <id> component")

    def _components(self) -> list[str]:
        return [c for c in (self.app, self.domain, self.id, self.topic) if c is not None]

    def __str__(self) -> str:
        return f"{self.visibility}:{'.'.join(self._components())}"


def parse_name(name: str) -> ChannelName:
    """Parse ``name`` as ``<visibility>:<app>.<domain>[.<id>][.<topic>]``.

    Returns the parsed name; ``str()`` of it equals ``name``.

    Raises:
        InvalidChannelName: ``name`` breaks the grammar; the message names the first rule
        it breaks.
    """
    if not name:
        raise InvalidChannelName("channel name is empty")
    visibility, colon, rest = name.partition(":")
    if not colon or not visibility:
        raise InvalidChannelName("channel name must start with 'public:' or 'private:'")
    _check_visibility(visibility)
    if ":" in rest:
        raise InvalidChannelName("the ':' character is reserved for the visibility prefix")
    parts = rest.split(".")
    if len(parts) < _MIN_COMPONENTS:
        raise InvalidChannelName("channel name must include at least <app>.<domain>")
    if len(parts) > _MAX_COMPONENTS:
        raise InvalidChannelName(
            f"channel name has {len(parts)} components; at most 4: <app>.<domain>.<id>.<topic>"
        )
    optional: list[str | None] = [*parts[2:], None, None]
    return ChannelName(visibility, parts[0], parts[1], optional[0], optional[1])


def _check_visibility(visibility: str) -> None:
    if visibility not in VISIBILITIES:
        raise InvalidChannelName(f"unknown visibility {visibility!r}; want 'public' or 'private'")


def _check_component(position: int, component: str) -> None:
    """Raise :class:`InvalidChannelName` unless ``component`` is non-empty ``[a-z0-9_-]+``."""
    if _COMPONENT.fullmatch(component):
        return
    if not component:
        raise InvalidChannelName(f"component {position} of the channel name is empty")
    bad = next(c for c in component if not _COMPONENT.fullmatch(c))
    raise InvalidChannelName(
        f"invalid character {bad!r} in component {component!r}; allowed are a-z, 0-9, '_', '-'"
    )


def is_valid_name(name: str) -> bool:
    """Whether ``name`` follows the grammar (never raises)."""
    try:
        parse_name(name)
    except InvalidChannelName:
        return False
    return True


def require_name(name: object) -> ChannelName:
    """``parse_name`` for the management layer: a bad name (or not a string) raises
    ``ParsecError("PARSEC_CHANNEL_INVALID", …)`` saying what is wrong."""
    from parsec.errors import ParsecError

    if not isinstance(name, str):
        raise ParsecError("PARSEC_CHANNEL_INVALID", "channel name must be a string")
    try:
        return parse_name(name)
    except InvalidChannelName as exc:
        raise ParsecError("PARSEC_CHANNEL_INVALID", str(exc)) from None
