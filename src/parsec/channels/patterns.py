"""Channel patterns: the globs token scopes use (parsec-reference.md §3 "Pattern grammar").

::

    <visibility>:<segment>(.<segment>)*

``visibility`` is ``public`` or ``private``, never a wildcard. After it come 1 to 8
dot-separated segments; each is a literal (``[a-z0-9_-]+``, as a name component), ``*``
(exactly one component, in any position) or ``**`` (one or more components, last segment
only). A pattern matches a channel when the visibilities are equal and the segments walk
the name's components to the end: without a trailing ``**`` the counts must be equal.

Parsing is strict: anything else raises :class:`~parsec.errors.ParsecError` with code
``PARSEC_INVALID_ARGUMENT``. Matching never raises: a channel that is not a valid Parsec
name matches no pattern, so callers that authorise with patterns fail closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from parsec.channels.names import VISIBILITIES, InvalidChannelName, parse_name
from parsec.errors import ParsecError

__all__ = ["MAX_PATTERN_DEPTH", "PATTERN_REGEX", "ChannelPattern"]

MAX_PATTERN_DEPTH: Final = 8
"""The most segments a pattern may have, so a pattern cannot be made arbitrarily costly."""

PATTERN_REGEX: Final = (
    rf"^(?:public|private):(?:(?:[a-z0-9_-]+|\*)\.){{0,{MAX_PATTERN_DEPTH - 1}}}"
    r"(?:[a-z0-9_-]+|\*|\*\*)$"
)
"""What :meth:`ChannelPattern.parse` accepts, as a regular expression for the OpenAPI
document (ECMA-262 syntax, which Python's ``re.fullmatch`` reads the same way)."""

_ONE: Final = "*"
_ONE_OR_MORE: Final = "**"

_LITERAL: Final = re.compile(r"[a-z0-9_-]+")
_INVALID: Final = "PARSEC_INVALID_ARGUMENT"


@dataclass(frozen=True, slots=True)
class ChannelPattern:
    """A parsed pattern. Build one with :meth:`parse`; ``str()`` gives the text back.

    Two patterns are equal exactly when their texts are equal.
    """

    visibility: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> ChannelPattern:
        """Parse ``text`` as ``<visibility>:<segment>(.<segment>)*``.

        Raises:
            ParsecError: ``PARSEC_INVALID_ARGUMENT``; the message names the first rule broken.
        """
        visibility, colon, rest = text.partition(":")
        if not colon or not visibility or not rest:
            raise _invalid(text, "must start with 'public:' or 'private:' and have a segment")
        if visibility not in VISIBILITIES:
            raise _invalid(text, "visibility must be 'public' or 'private' (no wildcard)")
        if ":" in rest:
            raise _invalid(text, "the ':' character is reserved for the visibility prefix")
        segments = tuple(rest.split("."))
        if len(segments) > MAX_PATTERN_DEPTH:
            raise _invalid(text, f"has {len(segments)} segments; at most {MAX_PATTERN_DEPTH}")
        for position, segment in enumerate(segments, start=1):
            _check_segment(text, segment, last=position == len(segments))
        return cls(visibility, segments)

    def matches(self, channel: str) -> bool:
        """Whether ``channel`` is a valid Parsec channel name this pattern covers.

        Never raises: a string that is not a valid name gives False.
        """
        try:
            name = parse_name(channel)
        except InvalidChannelName:
            return False
        if name.visibility != self.visibility:
            return False
        components = [c for c in (name.app, name.domain, name.id, name.topic) if c is not None]
        return _walk(self.segments, components)

    def __str__(self) -> str:
        return f"{self.visibility}:{'.'.join(self.segments)}"


def _walk(segments: tuple[str, ...], components: list[str]) -> bool:
    """Match segments left to right; a trailing ``**`` takes the one-or-more rest."""
    for index, segment in enumerate(segments):
        if segment == _ONE_OR_MORE:
            return len(components) > index
        if index >= len(components):
            return False
        if segment != _ONE and segment != components[index]:
            return False
    return len(components) == len(segments)


def _check_segment(text: str, segment: str, *, last: bool) -> None:
    if segment == _ONE or _LITERAL.fullmatch(segment):
        return
    if segment == _ONE_OR_MORE:
        if last:
            return
        raise _invalid(text, "'**' is only allowed as the last segment")
    if not segment:
        raise _invalid(text, "a segment is empty")
    raise _invalid(
        text, f"segment {segment!r} must be '*', '**' or made of a-z, 0-9, '_', '-' only"
    )


def _invalid(text: str, reason: str) -> ParsecError:
    return ParsecError(_INVALID, f"invalid channel pattern {text!r}: {reason}")
